-- Orders after the payment, and the outbox that carries their consequences
-- (store write-back, capture, refunds, the agent's webhooks).
--
-- Times are integers of Unix nanoseconds (UTC), like the checkout tables'.

-- rev is the revision the order's body is at (bridge.Order.Rev): the
-- checkout replaces an order whatever its revision and moves it on by one,
-- everyone else writes only over Rev − 1. Orders stored before this
-- migration are at revision 1.
ALTER TABLE orders ADD COLUMN rev INTEGER NOT NULL DEFAULT 1 CHECK (rev >= 1);
-- payment_ref is the provider's id of the charge (a Stripe PaymentIntent):
-- the provider's webhooks name the payment, not the order. Most orders have
-- one; those that do not (yet) stay out of the index.
ALTER TABLE orders ADD COLUMN payment_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

-- Orders written before carry their payment reference only in the body.
-- Their bodies have no updated_at (the field is newer): the creation time
-- is the best there is.
UPDATE orders SET
    payment_ref = CAST(coalesce(json_extract(body, '$.payment_ref'), '') AS TEXT),
    updated_at = created_at;

CREATE INDEX orders_by_payment_ref ON orders (payment_ref) WHERE payment_ref <> '';
-- Listing, most recent first (the CLI, the admin's order list).
CREATE INDEX orders_by_created ON orders (created_at);

-- One row per job (bridge.Job). A job is written in the same transaction as
-- the change that makes it necessary and is never lost; the worker claims
-- due jobs (lease_until, token), runs them and records the outcome with its
-- claim's token.
CREATE TABLE outbox_jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    order_id    TEXT NOT NULL,   -- '' for a job about no order
    -- pending | done | dead | canceled. Checked by the driver, not by a
    -- CHECK constraint: a status added later would need the table rebuilt.
    status      TEXT NOT NULL,
    payload     BLOB,            -- the kind's JSON, NULL when none
    attempts    INTEGER NOT NULL, -- runs started
    next_run_at INTEGER NOT NULL, -- when a pending job is due
    lease_until INTEGER NOT NULL, -- end of the current claim; 0: none
    token       TEXT NOT NULL,   -- the current claim's token; '' when none
    last_error  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- Claiming walks the pending jobs in the order they fall due.
CREATE INDEX outbox_jobs_due ON outbox_jobs (status, next_run_at);
-- An order's jobs (the CLI, support).
CREATE INDEX outbox_jobs_by_order ON outbox_jobs (order_id);
