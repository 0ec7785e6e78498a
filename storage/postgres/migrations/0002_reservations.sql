-- Stock held by orders, for stores that cannot hold stock themselves.
--
-- An order row of its own is what makes a hold idempotent: the first hold of
-- an order inserts it with its lines, a repeated one finds it and changes
-- nothing, whatever lines it brings. created_ns (Unix nanoseconds) is when
-- the hold was made: holds are counted from the catalog export's date on.
CREATE TABLE reservation_orders (
    order_id   TEXT   PRIMARY KEY,
    created_ns BIGINT NOT NULL
);

CREATE INDEX reservation_orders_by_time ON reservation_orders (created_ns);

CREATE TABLE reservation_lines (
    order_id   TEXT   NOT NULL REFERENCES reservation_orders (order_id) ON DELETE CASCADE,
    variant_id TEXT   NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, variant_id)
);

-- Reserved sums one variant on every checkout; the index covers the sum.
CREATE INDEX reservation_lines_by_variant ON reservation_lines (variant_id) INCLUDE (quantity);
