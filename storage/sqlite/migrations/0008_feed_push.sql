-- Feed push targets: the agent's feed id and the last push's outcome
-- (bridge.FeedPushState as JSON, read and written whole).
CREATE TABLE feed_push_state (
    target TEXT NOT NULL PRIMARY KEY, -- "feed_api", "sftp"
    state  TEXT NOT NULL              -- JSON
) STRICT;

-- What each product looked like when last delivered to a target, so a push
-- sends only the products whose encoding changed; rejected holds the
-- agent's reason when it refused that content ('' = accepted); retract is
-- the body that withdraws the product when it leaves the catalog, and
-- retracted marks a record whose last delivery was that body.
CREATE TABLE feed_pushed_products (
    target     TEXT    NOT NULL,
    product_id TEXT    NOT NULL,
    hash       INTEGER NOT NULL,
    rejected   TEXT    NOT NULL DEFAULT '',
    retracted  INTEGER NOT NULL DEFAULT 0,
    retract    TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (target, product_id)
) STRICT; -- rows hold the retract bodies: too big for WITHOUT ROWID
