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
//
// Everything here streams: memory stays constant in the size of the catalog,
// and the hot paths (Validate and the per-variant encoders) do not allocate in
// the steady state, because a sync pushes a million variants through them.
// Output is byte-for-byte deterministic for the same input so that feed
// ETags only change when the catalog does.
package feed
