-- The current catalog snapshot. A sync replaces all three tables in one
-- transaction, so readers see either the previous snapshot or the new one.

-- position is the rowid, so EachCatalogEntry's source order is a plain scan.
-- The entry is stored whole as JSON: every reader wants the whole entry, and
-- a column per field would need a migration each time the domain grows.
CREATE TABLE catalog_products (
    position INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    entry    TEXT NOT NULL
) STRICT;

-- Variant ids are what agents put in a checkout. The primary key refuses a
-- variant id that two products claim instead of letting one win silently.
-- No foreign key to catalog_products: both tables are rewritten together from
-- one staged snapshot, and a per-row check would only slow a 1M-variant swap.
CREATE TABLE catalog_variants (
    variant_id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- The committed bridge.CatalogInfo as JSON; no row until the first snapshot.
CREATE TABLE catalog_info (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    info TEXT NOT NULL
) STRICT;
