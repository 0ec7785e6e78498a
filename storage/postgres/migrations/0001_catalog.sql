-- The catalog snapshot. Every snapshot gets a number from
-- catalog_snapshot_seq; its rows carry it, and catalog_info names the one
-- readers see. A sync writes its snapshot's rows in one transaction, which
-- also points catalog_info at it and deletes the rows of older snapshots,
-- so readers (one statement each) see the old snapshot or the new one,
-- never a mix, and a sync that fails or dies leaves nothing behind.
--
-- Unlike SQLite's, the tables are never emptied and refilled under a lock:
-- readers on other replicas keep reading while a sync streams in, and the
-- rows of an unfinished snapshot are invisible because they are
-- uncommitted (and carry another number).

CREATE SEQUENCE catalog_snapshot_seq;

-- position keeps the source order; entry is the bridge.CatalogEntry as
-- JSON text (see 0003_checkout.sql for why text and not jsonb). The unique
-- (snapshot, id) refuses a product id twice in one snapshot.
CREATE TABLE catalog_products (
    snapshot BIGINT NOT NULL,
    position BIGINT NOT NULL,
    id       TEXT   NOT NULL,
    entry    TEXT   NOT NULL,
    PRIMARY KEY (snapshot, position),
    UNIQUE (snapshot, id)
);

-- Variant ids are what agents put in a checkout; the primary key refuses a
-- variant id that two products of one snapshot claim.
CREATE TABLE catalog_variants (
    snapshot   BIGINT NOT NULL,
    variant_id TEXT   NOT NULL,
    product_id TEXT   NOT NULL,
    PRIMARY KEY (snapshot, variant_id)
);

-- The committed snapshot: its number and its bridge.CatalogInfo as JSON.
-- No row until the first snapshot.
CREATE TABLE catalog_info (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    snapshot BIGINT NOT NULL,
    info     TEXT   NOT NULL
);
