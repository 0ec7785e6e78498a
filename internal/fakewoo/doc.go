// Package fakewoo is a fake WooCommerce shop for tests: the parts of the
// REST API v3 (/wp-json/wc/v3/) the bridge uses, answering as WooCommerce
// does — status codes, error bodies {"code","message","data":{"status"}},
// pagination headers — and signed webhooks, so the WooCommerce adapter is
// tested against the API's documented behaviour rather than against itself.
//
// # What it serves
//
//	GET  /products                       list (per_page 1–100, else 400 rest_invalid_param;
//	                                      page, status, include, modified_after, dates_are_gmt,
//	                                      orderby id|date|modified, order) with X-WP-Total,
//	                                      X-WP-TotalPages and Link headers
//	GET  /products/{id}                  one product, 404 woocommerce_rest_product_invalid_id
//	GET  /products/{id}/variations       list, paginated the same way
//	GET  /products/{id}/variations/{v}   one variation
//	POST /products/batch, /products/{id}/variations/batch, /orders/batch
//	                                     more than 100 items in all: 413
//	                                     woocommerce_rest_request_entity_too_large
//	POST /orders                         201; set_paid makes it processing and takes the
//	                                     stock, which goes negative if it must: like
//	                                     WooCommerce, it checks neither stock nor product ids
//	GET  /orders                         list (after, modified_after, dates_are_gmt, orderby
//	                                     date|id|modified, order, status, page, per_page)
//	GET  /orders/{id}, PUT /orders/{id}  one order; PUT changes its status, transaction_id,
//	                                     and set_paid runs payment_complete (pending, on-hold,
//	                                     failed, cancelled → processing, stock taken once)
//	GET  /settings/products/woocommerce_weight_unit   the shop's weight unit
//	GET  /settings/general/woocommerce_currency       the shop's currency
//
// Lists honour _fields= (top-level fields only, as WordPress filters them).
//
// A variation's manage_stock may be the string "parent": it sells from its
// parent's stock_quantity, as WooCommerce does (woocommerce#19500).
//
// # Authentication
//
// Basic auth with the consumer key and secret, or the consumer_key and
// consumer_secret query parameters. A wrong key or secret answers 401
// woocommerce_rest_authentication_error; no credentials answer 401
// woocommerce_rest_cannot_view (or _cannot_create for writes); a read-only
// key (SetReadOnly) answers writes with 401 "does not have write
// permissions". The fake accepts Basic auth over plain http too (real
// WooCommerce wants OAuth 1.0a there): the bridge refuses plain http
// outside development mode anyway.
//
// # Faults and webhooks
//
// FailNext answers the next requests with a status before doing anything;
// DropAfterCommitNext lets the next order creates commit and then closes the
// connection without an answer (the ambiguous create). Requests counts
// requests by route, and LastQuery a route's last query. StripPageHeaders
// drops X-WP-Total, X-WP-TotalPages and Link from list answers, as a
// caching proxy may. AddOrder adds an order made elsewhere (an admin, a
// plugin's copy). StallPaymentNext leaves the next set_paid orders pending
// and unpaid, as a plugin failing in the payment_complete hooks does.
// Deliver sends a signed webhook (X-WC-Webhook-Signature: base64
// HMAC-SHA256 of the raw body) with WooCommerce's X-WC-Webhook-Delivery-ID
// (a hash of the webhook's id and the current second: the same for every
// delivery of one webhook within a second), and Ping the unsigned creation
// ping (webhook_id=<id>, form-encoded).
package fakewoo
