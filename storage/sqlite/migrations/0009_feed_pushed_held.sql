-- held: the agent holds some version of the product (set when it accepts
-- the product, cleared when it accepts its withdrawal, kept through
-- refusals). A refused update overwrites hash and rejected, and without
-- this flag the product would look unknown to the agent and never be
-- withdrawn when it leaves the catalog. Existing rows: what they say.
ALTER TABLE feed_pushed_products ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
UPDATE feed_pushed_products SET held = 1 WHERE rejected = '' AND retracted = 0;
