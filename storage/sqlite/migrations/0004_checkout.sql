-- Checkout: sessions, the orders they make and the idempotency records that
-- guard every request that changes them. All three are written together by
-- CheckoutStore.Commit, in one transaction.
--
-- Times are integers of Unix nanoseconds (UTC), like reservation_orders'
-- created_ns: they compare exactly and sort as numbers.

-- The session is stored whole as the JSON of bridge.Session; the columns
-- beside it are copies for the WHERE clauses (owner check, optimistic
-- revision, purge). rev is the revision the body is at: a change is written
-- only over rev − 1.
CREATE TABLE checkout_sessions (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    rev        INTEGER NOT NULL CHECK (rev >= 1),
    status     TEXT NOT NULL,
    -- A session without an expiry is stored with the largest integer: the
    -- purge never reaches it.
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body       TEXT NOT NULL
) STRICT;

CREATE INDEX checkout_sessions_by_expiry ON checkout_sessions (expires_at);

-- Orders outlive their sessions: the purge never deletes them.
CREATE TABLE orders (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    owner      TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL
) STRICT;

-- One row per (scope, Idempotency-Key). A row whose expires_at has passed is
-- as good as gone: reads skip it, an insert replaces it, the purge deletes
-- it. token and locked_until describe the in-flight claim (locked_until 0
-- when none); outcome is the answer once done = 1.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    token        TEXT NOT NULL,
    locked_until INTEGER NOT NULL,
    done         INTEGER NOT NULL CHECK (done IN (0, 1)),
    outcome      BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
