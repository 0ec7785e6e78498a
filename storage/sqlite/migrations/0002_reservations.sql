-- Stock held by orders, for stores that cannot hold stock themselves.
--
-- An order row of its own is what makes Reserve idempotent: the first Reserve
-- of an order inserts it with its lines, a repeated one finds it and changes
-- nothing, even if it brings other lines. A unique (order, variant) pair alone
-- would let a retry with different lines add to the hold.
CREATE TABLE reservation_orders (
    order_id   TEXT PRIMARY KEY,
    -- RFC 3339 UTC; kept so that abandoned holds can be expired later.
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE reservation_lines (
    order_id   TEXT NOT NULL REFERENCES reservation_orders (order_id) ON DELETE CASCADE,
    variant_id TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, variant_id)
) STRICT, WITHOUT ROWID;

-- Reserved sums one variant on every checkout; the index covers the sum.
CREATE INDEX reservation_lines_by_variant ON reservation_lines (variant_id, quantity);
