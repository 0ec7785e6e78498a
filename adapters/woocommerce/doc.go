// Package woocommerce is the store adapter for WooCommerce shops, over the
// REST API v3 (/wp-json/wc/v3/) with a consumer key and secret (Basic auth
// over https; query-string keys where a proxy strips the Authorization
// header), every call through the shared resilient client (package
// upstream). It does five jobs:
//
//   - ReadCatalog reads the published products, 100 a page, and the
//     variations of variable products, into one bridge.Record per product;
//     a variation whose manage_stock is "parent" gets its parent's stock.
//     Between full reads (every FullSyncInterval) a read asks only for
//     products modified since the last one, plus those webhooks named, and
//     merges them over the last complete read, so the syncer still gets the
//     whole catalog.
//   - Stock reads a variant's stock live, less the bridge's holds for
//     orders not yet in the shop.
//   - WriteOrder creates the paid order (POST /orders, set_paid, the
//     PaymentIntent as transaction_id, the bridge's order id in meta_data)
//     after checking every line's product and stock live — WooCommerce
//     checks neither — and reports a total that differs from the charge.
//     FindOrder scans recent orders for the bridge's id, since WooCommerce
//     has neither idempotency keys nor a meta filter.
//   - OrderUpdates polls orders modified since the last poll, since
//     WooCommerce never retries a webhook.
//   - Webhooks receives product and order webhooks, signed with
//     HMAC-SHA256 (and the unsigned creation ping).
//
// Ids: product and variant ids in the records are WooCommerce's ids, and
// the mapping must keep them as the bridge's ids: stock reads and orders
// find the shop's products by them.
package woocommerce
