// Package csv is the store adapter for shops that can only export a CSV file
// (a legacy shop, a spreadsheet, a product export). It does four jobs:
//
//   - ReadCatalog streams the file (a local path or an https:// URL) and turns
//     each run of adjacent rows sharing a group value into one bridge.Record,
//     the way Shopify's product export lays out a product and its variants.
//     Bad rows are reported with their line number and left out; they never
//     stop the scan, because one typo in row 40,000 must not take the whole
//     catalog offline.
//   - WriteOrder appends paid orders to a JSON Lines file, durably (fsync) and
//     idempotently by order id, since the CSV store has nowhere else to put
//     them. A person or a script picks them up from there. Concurrent writes
//     are committed together: one append and one fsync per batch.
//   - Stock answers live stock from the last catalog snapshot minus what the
//     bridge's own reservations hold, because a CSV file cannot hold stock for
//     an order between two exports.
//   - OrderUpdates polls the shop's order status file (a CSV the shop
//     rewrites or appends to: order id, status, tracking) and returns the rows
//     it has not returned before, since a shop without webhooks can only tell
//     the bridge of shipments and cancellations that way.
//
// Limits worth knowing: the orders file supports one bridge process at a time
// (see WriteOrder); the catalog scan keeps a 64-bit hash of every product key
// it has seen (about 20 bytes each) to catch a product whose rows are not
// adjacent, so memory grows with the number of products by that much and no
// more. Variant ids are checked for repeats within a product only; an id
// shared by two products is refused later by the pipeline, once the mapping
// has decided which column is the id. OrderUpdates keeps a 128-bit hash of
// every status row it has returned, for the life of the process, so that a
// file rewritten whole returns only its new rows; a changed file is parsed
// whole (about 370k rows/s).
package csv
