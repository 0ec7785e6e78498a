-- The outbox: one row per bridge.Job, written in the transaction of the
-- change that makes it necessary. Workers on any replica claim due jobs
-- with FOR UPDATE SKIP LOCKED (so two claims never wait for each other nor
-- take the same job), run them, and record the outcome with their claim's
-- token. seq keeps the order jobs were queued in, for jobs due at the same
-- instant (SQLite's rowid).
CREATE TABLE outbox_jobs (
    id          TEXT   PRIMARY KEY,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    kind        TEXT   NOT NULL,
    order_id    TEXT   NOT NULL,  -- '' for a job about no order
    -- pending | done | dead | canceled, checked by the driver: a status
    -- added later needs no constraint changed.
    status      TEXT   NOT NULL,
    payload     BYTEA,            -- the kind's JSON, NULL when none
    attempts    BIGINT NOT NULL,  -- runs started
    next_run_at BIGINT NOT NULL,  -- when a pending job is due
    lease_until BIGINT NOT NULL,  -- end of the current claim; 0: none
    token       TEXT   NOT NULL,  -- the current claim's token; '' when none
    last_error  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
) WITH (fillfactor = 80);

-- Claiming walks the pending jobs in the order they fall due; done jobs
-- (most of the table) stay out of the index.
CREATE INDEX outbox_jobs_due ON outbox_jobs (next_run_at, seq) WHERE status = 'pending';
-- An order's jobs (the CLI, support).
CREATE INDEX outbox_jobs_by_order ON outbox_jobs (order_id);
-- Listing by status and the purge of old done and canceled jobs.
CREATE INDEX outbox_jobs_by_status ON outbox_jobs (status, updated_at);
