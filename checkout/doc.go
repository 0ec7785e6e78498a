// Package checkout is the checkout engine: the session state machine, prices
// from the catalog snapshot, live stock, fulfillment options, tax, payment
// and the idempotency of every change. It knows nothing of API versions or
// HTTP: the front doors (httpapi, later MCP) decode requests into the
// canonical types here and encode the sessions it returns.
package checkout
