-- Holds are counted from a point in time (the catalog export's date): an
-- integer of Unix nanoseconds compares exactly, which RFC 3339 text with
-- trimmed fractions does not.
ALTER TABLE reservation_orders ADD COLUMN created_ns INTEGER NOT NULL DEFAULT 0;
UPDATE reservation_orders
   SET created_ns = CAST((julianday(created_at) - 2440587.5) * 86400000000000 AS INTEGER);
CREATE INDEX reservation_orders_by_time ON reservation_orders (created_ns);
