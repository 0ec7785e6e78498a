package bridge

import (
	"context"
	"time"
)

// FeedPushState is what a push target (an agent's Feed API, an SFTP drop)
// remembers between runs: the id the agent gave the feed and how the last
// push went. `bridge feed status` and /readyz show it.
type FeedPushState struct {
	// Target names the push target ("feed_api", "sftp").
	Target string `json:"target"`
	// RemoteID is the agent's id of the feed (POST /feeds), "" until made.
	RemoteID string `json:"remote_id,omitempty"`
	// Version is the catalog snapshot the last complete push delivered.
	Version     string    `json:"version,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Items counts the products (Feed API) or variants (files) the last
	// push sent, Bytes the request or file bytes.
	Items int   `json:"items"`
	Bytes int64 `json:"bytes"`
	// Rejected counts the products of the catalog the agent refused and
	// that have not changed since; RejectedSample names a few with the
	// agent's reason.
	Rejected       int               `json:"rejected"`
	RejectedSample []RejectedProduct `json:"rejected_sample,omitempty"`
	// Retracted counts the products the last push marked unavailable at
	// the agent because they left the catalog (Feed API).
	Retracted int `json:"retracted,omitempty"`
	// Error is the last push's failure, "" when it succeeded.
	Error string `json:"error,omitempty"`
}

// RejectedProduct is a product an agent refused, with its reason.
type RejectedProduct struct {
	ProductID string `json:"product_id"`
	Reason    string `json:"reason"`
}

// PushedProduct records the content of a product as last delivered to a
// target: Hash identifies the encoded product, Rejected holds the agent's
// reason when it refused that content ("" when accepted). A product is sent
// again only when its hash changes, so a refused product is not retried
// until the shop changes it.
//
// Retract is the body that withdraws the product (every variant it had,
// unavailable), sent when it leaves the catalog since the Feed API cannot
// delete; Retracted marks a record whose last delivery was that body.
//
// Held says the agent holds some version of the product. The store derives
// it, and the caller's value is ignored: saving an accepted product sets
// it, an accepted withdrawal (Retracted) clears it, and a refusal
// (Rejected ≠ "") keeps both Held and the stored Retract body — the agent
// still has the version that body withdraws, so a product whose update was
// refused can still be withdrawn when it leaves the catalog.
type PushedProduct struct {
	ProductID string
	Hash      int64
	Rejected  string
	Retracted bool
	Held      bool
	// Retract is written by SavePushedProducts and read back only by
	// PushedRetractions (EachPushedProduct leaves it empty, so a walk over
	// a big catalog stays light).
	Retract string
}

// FeedPushStore keeps the push targets' state and the per-product content
// hashes that make Feed API pushes send only what changed. Each driver
// implements it and passes the conformance suite.
type FeedPushStore interface {
	// FeedPushState returns target's state; ErrNotFound before the first
	// save.
	FeedPushState(ctx context.Context, target string) (FeedPushState, error)
	// SaveFeedPushState replaces the state of s.Target.
	SaveFeedPushState(ctx context.Context, s FeedPushState) error
	// EachPushedProduct calls fn for every product recorded for target, in
	// no particular order; an error from fn stops it and is returned.
	EachPushedProduct(ctx context.Context, target string, fn func(PushedProduct) error) error
	// SavePushedProducts records ps for target in one transaction,
	// replacing the records of the same product ids.
	SavePushedProducts(ctx context.Context, target string, ps []PushedProduct) error
	// PushedRetractions returns the Retract bodies of the given products
	// of target, by product id (ids without a record are left out).
	PushedRetractions(ctx context.Context, target string, ids []string) (map[string]string, error)
	// ForgetPushedProducts drops every record of target (the feed was
	// made anew: the agent holds nothing of it).
	ForgetPushedProducts(ctx context.Context, target string) error
}
