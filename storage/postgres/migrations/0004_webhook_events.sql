-- Webhook events already handled, so that a delivery repeated by the
-- sender (Stripe retries for days) is acknowledged without acting twice.
CREATE TABLE webhook_events (
    source      TEXT   NOT NULL, -- "stripe", later the stores
    id          TEXT   NOT NULL, -- the sender's event id
    received_at BIGINT NOT NULL, -- Unix ns, for the purge
    PRIMARY KEY (source, id)
);

CREATE INDEX webhook_events_by_time ON webhook_events (received_at);
