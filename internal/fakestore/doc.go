// Package fakestore is a fake HTTP store with fault injection, and the
// bridge.OrderStore client that writes orders to it over the shared
// upstream client, for tests of the order write-back until the real store
// adapters (Shopify, WooCommerce) exist.
//
// # The store
//
// Server is a small orders REST API on a loopback httptest server, shaped
// like real stores' admin APIs:
//
//	POST /orders                 create  → 201 {id:"S-<n>", external_id, status:"open", url, …}
//	GET  /orders?external_id=X   search  → 200 {orders:[…]} (all orders without the filter)
//	GET  /orders/{id}            one     → 200 {…} or 404
//
// Every request needs `Authorization: Bearer <token>` (Server.Token);
// errors are JSON {"error":{"code","message"}}. Amounts are decimal
// strings in the order's currency ("49.99"), as Shopify and WooCommerce
// send them, checked with bridge.ParseMoney.
//
// Like real stores, the create does NOT deduplicate by external_id:
// sending the same order twice makes two store orders. That is the failure
// the bridge must avoid, and Server.Count shows it. Stock is optional per
// SKU (SetStock): a create asking for more than is left is refused with 422
// insufficient_stock and creates nothing; an accepted one takes its
// quantities off the stock.
//
// # Faults
//
// Fault switches are armed for a number of requests and consumed one per
// request, safe for concurrent use. A request meets them in this order:
//
//  1. HangNext: the store sleeps before it gets to the request. A client
//     that gives up meanwhile leaves nothing behind (the request is never
//     processed): the timeout whose create did not happen.
//  2. SetDown / DownFor: every request answers 503 (no Retry-After), as a
//     load balancer with no healthy backend does; this trips breakers.
//  3. FailNext: the next requests answer the given status (500, 502, 503
//     without Retry-After) before anything is processed.
//  4. ThrottleNext: the next requests answer 429 with Retry-After.
//  5. Authentication (401).
//  6. DropAfterCommitNext: the next creates are committed, then the
//     connection is closed without an answer: the ambiguous create whose
//     order does exist.
//
// Requests counts every request that reached the server, faulted or not,
// by "METHOD /path" (no query).
//
// # The client
//
// Client implements bridge.OrderStore against the store with
// upstream.Client, so it retries, budgets and breaks circuits exactly as the
// real adapters will. The create is a non-idempotent request: it is never
// replayed after the store may have processed it, and such failures wrap
// upstream.ErrAmbiguous. WriteOrder does not look the order up before
// creating it — see its documentation for why.
package fakestore
