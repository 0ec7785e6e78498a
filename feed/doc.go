// Package feed turns the catalog snapshot into the product feeds that AI agents
// and their platforms ingest, and tells the shop admin which products cannot go
// into them and why.
//
// It has two halves that share one set of rules:
//
//   - Validate checks one mapped product against the rules the feed consumers
//     enforce (OpenAI's flat feed and the ACP nested feed, see
//     docs/product-feed.md §1 and §4). Errors keep a variant, or the whole
//     product, out of every feed and out of checkout; warnings are advice.
//     Report gathers the findings of a whole sync into something an admin can
//     read.
//   - The writers stream a catalog into each published format (the seed's
//     feed.json, OpenAI's jsonl/csv/tsv, the ACP products.jsonl + metadata.json).
//     They publish only what validation let through and never stop on one bad
//     product; Build writes a set of formats to a directory atomically.
//     ACPEncoder encodes one ACP Product (and its withdrawal) for the Feed
//     API push, byte for byte what the ACP file holds.
//
// The formats differ in more than field names; the writers translate:
//
//   - feed.json (G1): {"meta":{format, generated_at, merchant}, "products":[one
//     object per variant], "count":N}. The count comes last because the
//     document is streamed; meta comes first so readers know what follows.
//     availability is in_stock, out_of_stock or preorder: limited_stock is
//     in_stock; backorder is preorder when it has a date and in_stock
//     otherwise; discontinued and unknown are out_of_stock.
//     inventory_quantity is left out for untracked stock (a 0 next to
//     in_stock would mislead) and is 0 when oversold.
//   - openai.jsonl.gz / .csv.gz / .tsv.gz (G2): availability is in_stock,
//     out_of_stock, pre_order, backorder or unknown (limited_stock →
//     in_stock, discontinued → out_of_stock). CSV and TSV have every column
//     on every row; TSV cannot quote, so tabs and line breaks in values
//     become spaces.
//   - acp/products.jsonl.gz (G3) keeps the canonical states, with available
//     set for those a buyer can order; acp/metadata.json is the FeedMetadata.
//
// In every format a sale is shown only when the list price is above the
// price (flat feeds: price = list price, sale_price = price), and a plain
// description is derived from the HTML one when the store has only HTML.
//
// Everything here streams: memory stays constant in the size of the catalog,
// and the hot paths (Validate and the per-variant encoders) do not allocate in
// the steady state, because a sync pushes a million variants through them.
// Output is byte-for-byte deterministic for the same input so that feed
// ETags only change when the catalog does.
package feed
