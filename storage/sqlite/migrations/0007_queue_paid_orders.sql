-- Orders paid before the outbox existed (status created, no store write
-- queued) were never written to the store: queue their store write now, so
-- the upgrade loses none. The job is due at once and its retry horizon
-- starts at the upgrade; a later migration run changes nothing (the job id
-- exists).
INSERT OR IGNORE INTO outbox_jobs
    (id, kind, order_id, status, payload, attempts, next_run_at, lease_until, token, last_error, created_at, updated_at)
SELECT 'store_write:' || id, 'store_write', id, 'pending', NULL, 0,
       created_at, 0, '', '',
       CAST(unixepoch('now') AS INTEGER) * 1000000000,
       CAST(unixepoch('now') AS INTEGER) * 1000000000
FROM orders
WHERE status = 'created';

-- Those orders were always charged in full (the bridge could not hold
-- money then): say so, so a cancel refunds them.
UPDATE orders SET body = json_set(body, '$.payment', 'captured')
WHERE status = 'created' AND payment_ref <> '' AND json_extract(body, '$.payment') IS NULL;
