-- Checkout: sessions, the orders they make and the idempotency records that
-- guard every request that changes them, written together by
-- CheckoutStore.Commit in one transaction.
--
-- Times are BIGINT Unix nanoseconds (UTC), as in the SQLite driver: they
-- compare exactly (timestamptz keeps microseconds only) and the Go side
-- converts nothing but integers.
--
-- Bodies (a session, an order, a catalog entry) are the JSON of the domain
-- type stored as TEXT, not jsonb: no query looks inside them (the columns
-- beside them are the copies the WHERE clauses need); jsonb would parse
-- every write and re-serialize every read on the database server, the one
-- resource all replicas share; and jsonb refuses the escape \u0000, which
-- encoding/json writes for a NUL character an agent may send in any string,
-- so a commit would fail on a buyer's name. `body::jsonb` still works for
-- ad-hoc queries. Binary values (an idempotency answer, which may be
-- compressed; a job's payload, which need not be valid UTF-8) are BYTEA.
--
-- Tables whose rows are updated in place leave room on each page
-- (fillfactor), so an update that changes no indexed column stays on its
-- page (a HOT update: no index entries written).

CREATE TABLE checkout_sessions (
    id         TEXT   PRIMARY KEY,
    owner      TEXT   NOT NULL,
    rev        BIGINT NOT NULL CHECK (rev >= 1),
    status     TEXT   NOT NULL,
    -- A session without an expiry has the largest BIGINT: never purged.
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    body       TEXT   NOT NULL
) WITH (fillfactor = 70);

CREATE INDEX checkout_sessions_by_expiry ON checkout_sessions (expires_at);

-- Orders outlive their sessions: the purge never deletes them. rev is the
-- revision of the body (bridge.Order.Rev); seq orders orders created at
-- the same instant by when they were first written, like SQLite's rowid.
CREATE TABLE orders (
    id          TEXT   PRIMARY KEY,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    session_id  TEXT   NOT NULL,
    owner       TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    rev         BIGINT NOT NULL CHECK (rev >= 1),
    payment_ref TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    body        TEXT   NOT NULL
) WITH (fillfactor = 80);

CREATE INDEX orders_by_payment_ref ON orders (payment_ref) WHERE payment_ref <> '';
CREATE INDEX orders_by_created ON orders (created_at, seq);

-- One row per (scope, Idempotency-Key). A row whose expires_at has passed is
-- as good as gone: reads skip it, an insert replaces it, the purge deletes
-- it. The primary key is what lets exactly one of several requests (on
-- any replica) claim a key: concurrent inserts of one key wait for each
-- other, and all but the first find it taken.
CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    locked_until BIGINT  NOT NULL,
    done         BOOLEAN NOT NULL,
    outcome      BYTEA,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
) WITH (fillfactor = 70);

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);

-- bridge_expect fails the statement (and so the whole transaction) with
-- SQLSTATE code unless ok. A Commit is sent as one pipeline of statements
-- in one implicit transaction (one round trip); a statement whose rule
-- does not hold (a session not at the expected revision, a taken
-- idempotency key) calls it on its row count, so the transaction stops
-- there and the driver maps the code to bridge.ErrStale and the like.
CREATE FUNCTION bridge_expect(ok boolean, code text, message text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
    END IF;
    RETURN true;
END
$$;
