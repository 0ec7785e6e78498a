// Package shopify is the store adapter for Shopify shops, over the
// GraphQL Admin API only (the version pinned in the config). It does five
// jobs:
//
//   - ReadCatalog reads the active products with their variants, prices,
//     compare-at prices, options, images and stock (the variant's total,
//     or the sum at the configured locations capped at that total): a
//     bulk operation (JSONL,
//     children carrying __parentId) for the first full read and for
//     catalogs above a threshold, cursor pages with nested variant pages
//     otherwise. It keeps what the last full read returned; the reads in
//     between ask only for products updated since the latest updatedAt
//     seen (Shopify's clock), plus those webhooks named (read by id with
//     nodes), and merge them in. A full read runs again every
//     FullReadEvery, which also catches what no webhook told.
//   - Stock asks Shopify for a variant's live stock at checkout.
//   - WriteOrder creates the paid order with orderCreate (no idempotency
//     key exists: sent once, looked up by its tag bridge:<order id> when
//     the answer is lost), with the tax as charged and taxesIncluded, and
//     checks Shopify's total against the charge; FindOrder finds it by
//     that tag.
//   - OrderUpdates reconciles: the bridge's orders updated since the last
//     call, as fulfillments and cancellations, covering webhooks missed.
//   - Webhooks (POST /webhooks/shopify) verifies Shopify's HMAC over the
//     raw body, ignores other shops, skips events already handled (per
//     topic), marks changed products and asks for a sync, and applies
//     order news (a refund made in Shopify is logged as an alert: no
//     money moved at Stripe).
//
// Throttling is by query cost: Shopify answers a throttled query with
// HTTP 200 and a THROTTLED error, which only the GraphQL layer sees; the
// client waits (requested − available) / restoreRate and asks again, and
// paces queries whose cost it has seen so the bucket is not overdrawn.
// 429 and 5xx are the shared upstream client's (retries, breaker).
package shopify
