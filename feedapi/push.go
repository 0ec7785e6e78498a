// Package feedapi pushes the catalog to an agent's ACP Feed API
// (openapi.feed.yaml, 2026-04-17): it creates the feed once (POST /feeds,
// the id kept in storage) and upserts products with PATCH
// /feeds/{id}/products in batches, sending only the products whose encoded
// form changed since the agent last took them.
//
// # What changed
//
// Each product is encoded exactly as acp/products.jsonl.gz holds it
// (feed.ACPEncoder) and hashed (SHA-256, first 8 bytes). Storage keeps, per
// product, the hash of what the agent last accepted or refused
// (bridge.FeedPushStore); a push walks the snapshot and sends a product only
// when its hash differs. The records of a batch are saved as soon as the
// agent answers it, so a push cut short (a crash, an outage) resumes where it
// stopped. The walk writes the changed products to a temporary spool and
// ends before the first request, so the catalog read is never paced by the
// agent. A push therefore costs one read of the snapshot plus the changed
// products on the wire: the same code serves the first full push, the daily
// re-check and the fast updates after each sync.
//
// # Requests
//
// Every request carries the bearer token, API-Version, a Timestamp, a
// Request-Id and an Idempotency-Key; with a signing secret it is signed too
// (internal/reqsign). An upsert is idempotent by nature (by product id) and
// its key is derived from the feed, the snapshot version and the body, so a
// retry — by the upstream client after a 429/5xx, or by the next push after
// a crash — is recognisably the same request (a resend of everything,
// Pusher.All, salts its keys so that the agent applies it again). Feed creation is not replayed
// on an ambiguous failure (an agent that ignores the key would make a
// second feed); its key is derived from the target, so the next push asks
// again with the same key.
//
// # Removals
//
// The Feed API cannot delete a product (rfc.product_feeds §3.4: mark its
// variants unavailable or discontinued, or publish a full replacement). A
// product the agent holds that the snapshot no longer publishes — gone from
// the store, or now excluded by validation — is sent once more as its
// variants with availability {available: false, status: discontinued}. That
// body is made whenever the product is sent and kept with its record
// (bridge.PushedProduct.Retract), since the product itself is gone by the
// time it is needed. A product that comes back is sent in full again.
// Whether to withdraw follows the store's Held flag (the agent took some
// version and has not taken its withdrawal), not the last update's fate: a
// product whose update was refused still sells there in its older version
// and is withdrawn with that version's body.
//
// # Refusals
//
// The Feed API refuses a whole request for one bad product (422, a 400
// whose error names a product, or accepted:false; any other 400 is about
// the request and fails the push, see APIError.Rejects). A refused batch is split in halves and each half sent
// again, down to single products; a product refused on its own is recorded
// with the agent's reason and its hash, reported in the push status, and not
// sent again until the shop changes it. A refused update does not
// withdraw the version the agent already holds: the checkout prices and
// checks every line against the current snapshot, so the older version
// cannot be sold at its old price, while withdrawing would take a sellable
// product off the agent for what is often a fixable detail (a GTIN, a
// field); the refusal is reported for the merchant to fix. 401/403/404, 429 and 5xx after the
// upstream client's retries end the push with an error and nothing is
// recorded for the batch: the next push sends it again.
//
// # Secrets
//
// The token and the signing secret go only into request headers; the
// upstream client never logs headers, and errors carry only the status and
// the agent's error text.
package feedapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
)

// Target is the name of this push target in storage, metrics and status.
const Target = "feed_api"

// Store is what a push reads and records.
type Store interface {
	CatalogInfo(ctx context.Context) (bridge.CatalogInfo, error)
	EachCatalogEntry(ctx context.Context, fn func(bridge.CatalogEntry) error) error
	bridge.FeedPushStore
}

// Defaults of the batch limits. Nothing in the spec bounds a request; these
// keep one request well under common proxy limits and a refusal's
// bisection short (9 rounds for 500 products).
const (
	DefaultBatchProducts = 500
	DefaultBatchBytes    = 4 << 20
)

// maxRejectedSample bounds the refused products named in the status.
const maxRejectedSample = 10

// Pusher pushes the catalog snapshot to one agent's Feed API. Its fields
// are set once; Push may then be called from several goroutines (pushes
// run one at a time).
type Pusher struct {
	Client *Client
	Store  Store
	// Settings are the feed settings (the merchant, for the seller of each
	// variant), the same as the feed files'.
	Settings feed.Settings
	// Country is the feed's target_country at creation ("" for none).
	Country string
	// FeedID is a feed the agent made at onboarding; "" creates one.
	FeedID string
	// BatchProducts and BatchBytes bound one PATCH request (defaults
	// DefaultBatchProducts, DefaultBatchBytes).
	BatchProducts int
	BatchBytes    int
	// TempDir holds a push's spool of changed products (default the
	// system's temporary folder).
	TempDir string
	// All sends every product, as to a new feed, instead of the changed
	// ones (`bridge feed push --all`: the agent lost what it had). The
	// records are kept, so products that left the catalog are still
	// withdrawn.
	All bool
	Log *slog.Logger
	// Now is the clock of the status (default time.Now).
	Now func() time.Time

	mu sync.Mutex
}

// Push sends the products of the current snapshot that changed since the
// agent last took them, and records the outcome as the target's state
// (also returned). A push with nothing new sends nothing. The error is the
// push's failure; refused products are not one (see the state's Rejected).
func (p *Pusher) Push(ctx context.Context) (bridge.FeedPushState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.now()
	st, err := p.Store.FeedPushState(ctx, Target)
	if err != nil && !errors.Is(err, bridge.ErrNotFound) {
		return st, fmt.Errorf("feed api push: %w", err)
	}
	st.Target, st.LastAttempt = Target, start.UTC()
	run := &push{p: p, log: p.logger()}
	err = run.do(ctx, &st)
	st.Items, st.Bytes = run.sent, run.bytes
	st.Rejected, st.RejectedSample, st.Retracted = run.rejected, run.sample, run.retracted
	st.Error = ""
	if err != nil {
		st.Error = err.Error()
	} else {
		st.LastSuccess, st.Version = st.LastAttempt, run.version
	}
	// The state is saved even when the context ended: use a short,
	// separate one so a shutdown still records where the push stopped.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := p.Store.SaveFeedPushState(sctx, st); serr != nil {
		err = errors.Join(err, fmt.Errorf("feed api push: record the outcome: %w", serr))
	}
	log := run.log.With("feed_id", st.RemoteID, "version", run.version, "sent", run.sent, "bytes", run.bytes,
		"rejected", run.rejected, "retracted", run.retracted, "requests", run.requests, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		log.Error("feed api push failed", "err", err)
		return st, err
	}
	log.Info("feed api push done")
	return st, nil
}

// push is one run's working state.
type push struct {
	p       *Pusher
	log     *slog.Logger
	feedID  string
	version string
	// salt makes this run's idempotency keys its own: a resend of what
	// the agent lost must be applied, not answered from its key store.
	salt      string
	sent      int   // products the agent accepted in this run
	retracted int   // withdrawals the agent accepted in this run
	bytes     int64 // request bytes of this run (refused attempts included)
	requests  int

	mu       sync.Mutex // guards the refusal counts
	rejected int        // refused products of the snapshot, this run's and earlier
	sample   []bridge.RejectedProduct
}

// record is what storage says the agent last took of a product.
type record struct {
	hash      int64
	rejected  string
	retracted bool
	held      bool // the agent holds a version of it (see bridge.PushedProduct)
}

func (r *push) do(ctx context.Context, st *bridge.FeedPushState) error {
	p := r.p
	if err := r.ensureFeed(ctx, st); err != nil {
		return err
	}
	info, err := p.Store.CatalogInfo(ctx)
	if errors.Is(err, bridge.ErrNotFound) {
		// Wraps ErrNotFound: the runner does not back off from it, since
		// the first snapshot (Changed) is what ends it.
		return fmt.Errorf("feed api push: no catalog snapshot yet (%w)", err)
	}
	if err != nil {
		return fmt.Errorf("feed api push: %w", err)
	}
	r.version = info.Version
	if p.All {
		// Every product is sent (the walk ignores stored hashes below),
		// but the records stay: they are what says which products the
		// agent holds, and a product that left the catalog and was not
		// yet withdrawn must still be withdrawn by this push.
		r.salt = "all@" + st.LastAttempt.Format(time.RFC3339Nano)
	}
	known := map[string]record{}
	if err := p.Store.EachPushedProduct(ctx, Target, func(pp bridge.PushedProduct) error {
		known[pp.ProductID] = record{pp.Hash, pp.Rejected, pp.Retracted, pp.Held}
		return nil
	}); err != nil {
		return fmt.Errorf("feed api push: %w", err)
	}

	// The walk writes the changed products to a spool and ends before the
	// first request: the catalog read (on SQLite a reader that keeps the
	// WAL from being checkpointed, on Postgres a transaction and a
	// connection) must not last as long as the agent takes to answer.
	sp, err := newSpool(p.TempDir)
	if err != nil {
		return fmt.Errorf("feed api push: %w", err)
	}
	defer sp.Close()
	enc := feed.NewACPEncoder(p.Settings)
	var buf, rbuf []byte
	readErr := p.Store.EachCatalogEntry(ctx, func(e bridge.CatalogEntry) error {
		var n int
		buf, n = enc.AppendProduct(buf[:0], &e)
		if n == 0 {
			return nil // not published: withdrawn below if the agent has it
		}
		id := e.Product.ID
		h := hash(buf)
		k, ok := known[id]
		delete(known, id) // what is left at the end left the catalog
		if ok && k.hash == h && !p.All {
			if k.rejected != "" {
				r.reject(id, k.rejected)
			}
			return nil
		}
		rbuf = enc.AppendRetraction(rbuf[:0], &e)
		return sp.add(item{id: id, hash: h, json: buf, retract: string(rbuf)})
	})
	if readErr != nil {
		return fmt.Errorf("feed api push: read the catalog: %w", readErr)
	}
	if err := r.retractions(ctx, known, sp.add); err != nil {
		return err
	}
	if err := sp.rewind(); err != nil {
		return fmt.Errorf("feed api push: %w", err)
	}

	// Send the spool in batches.
	maxN, maxB := p.batchLimits()
	var cur []item
	size := 0
	for {
		it, ok, err := sp.next()
		if err != nil {
			return fmt.Errorf("feed api push: %w", err)
		}
		if !ok || (len(cur) > 0 && (len(cur) >= maxN || size+len(it.json) > maxB)) {
			if len(cur) > 0 {
				if err := r.send(ctx, cur); err != nil {
					return err
				}
			}
			cur, size = nil, 0
		}
		if !ok {
			return nil
		}
		cur = append(cur, it)
		size += len(it.json) + 1
	}
}

// retractions queues the withdrawal of the products the agent holds that
// the snapshot no longer publishes (left: the records the walk did not
// meet). The Feed API cannot delete, so each goes as its variants,
// unavailable and discontinued, once. What counts is whether the agent
// holds the product, not how its last update went: a product whose update
// was refused still sells at the agent in its older version, and is
// withdrawn with that version's body (the store keeps it through
// refusals). A product the agent never took is not withdrawn (an id it
// does not know fails the whole request), nor one whose withdrawal it
// refused (it would refuse it again).
func (r *push) retractions(ctx context.Context, left map[string]record, add func(item) error) error {
	var ids []string
	for id, k := range left {
		if k.held && !k.retracted {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // the same batches on a retry, hence the same keys
	for chunk := range slices.Chunk(ids, 1000) {
		bodies, err := r.p.Store.PushedRetractions(ctx, Target, chunk)
		if err != nil {
			return fmt.Errorf("feed api push: %w", err)
		}
		for _, id := range chunk {
			body := bodies[id]
			if body == "" {
				continue // nothing to withdraw it with
			}
			if err := add(item{id: id, hash: hash([]byte(body)), json: []byte(body), retract: body, retracted: true}); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureFeed settles the feed id: the configured one, the stored one, or a
// new feed. A feed other than the one the records were made for holds none
// of the products, so the records are dropped and everything is sent.
func (r *push) ensureFeed(ctx context.Context, st *bridge.FeedPushState) error {
	p := r.p
	id := p.FeedID
	if id == "" {
		id = st.RemoteID
	}
	if id == "" {
		key := "feed_create_" + digest(Target, p.Client.BaseURL, p.Country)
		var err error
		if id, err = p.Client.CreateFeed(ctx, p.Country, key); err != nil {
			return err
		}
		r.log.Info("feed api: feed created", "feed_id", id, "target_country", p.Country)
	}
	if id != st.RemoteID {
		if err := p.Store.ForgetPushedProducts(ctx, Target); err != nil {
			return fmt.Errorf("feed api push: %w", err)
		}
		st.RemoteID = id
		// Saved at once: a push that fails later must not create the feed
		// again.
		if err := p.Store.SaveFeedPushState(ctx, *st); err != nil {
			return fmt.Errorf("feed api push: %w", err)
		}
	}
	r.feedID = id
	return nil
}

// send delivers items, splitting a refused request down to the products
// the agent refuses on their own. Refusals are recorded only once the
// whole batch is settled: when every product of a batch of several is
// refused alone with the same reason, the reason is the request's (an
// agent that answers every upsert with a product code), not theirs, and
// recording them would keep them from the agent for good; the push fails
// instead and nothing is recorded for them.
func (r *push) send(ctx context.Context, items []item) error {
	var refused []item
	if err := r.split(ctx, items, &refused); err != nil {
		return err
	}
	if len(refused) == 0 {
		return nil
	}
	if len(items) > 1 && len(refused) == len(items) && sameReason(refused) {
		return fmt.Errorf("feed api push: the agent refused each of the %d products of a batch on its own with the same reason, taken as a failure of the request, not of the products (nothing recorded): %s",
			len(items), refused[0].rejected)
	}
	for _, it := range refused {
		r.log.Warn("feed api: product rejected", "product_id", it.id, "reason", it.rejected)
		r.reject(it.id, it.rejected)
	}
	return r.record(ctx, refused)
}

// split sends items as one request and, when the agent refuses products
// of it, each half again; products refused alone are added to refused
// with the agent's reason. Accepted requests are recorded at once.
func (r *push) split(ctx context.Context, items []item, refused *[]item) error {
	body := upsertBody(items)
	r.requests++
	r.bytes += int64(len(body))
	key := "feed_upsert_" + digest(r.feedID, r.version, r.salt, string(body))
	err := r.p.Client.UpsertProducts(ctx, r.feedID, body, key)
	var ae *APIError
	switch {
	case err == nil:
		for _, it := range items {
			if it.retracted {
				r.retracted++
			} else {
				r.sent++
			}
		}
		return r.record(ctx, items)
	case errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound && ae.Code == "feed_not_found":
		return fmt.Errorf("%w (the agent no longer has feed %s: set feed.push.feed_api.feed_id to the feed it gave you, and every product is sent to it)", err, r.feedID)
	case ae == nil || !ae.Rejects():
		return err
	case len(items) == 1:
		it := items[0]
		it.rejected = ae.Reason()
		*refused = append(*refused, it)
		return nil
	}
	half := len(items) / 2
	if err := r.split(ctx, items[:half], refused); err != nil {
		return err
	}
	return r.split(ctx, items[half:], refused)
}

func sameReason(items []item) bool {
	for _, it := range items[1:] {
		if it.rejected != items[0].rejected {
			return false
		}
	}
	return true
}

// record saves what the agent took (or refused, with the item's reason)
// of items.
func (r *push) record(ctx context.Context, items []item) error {
	ps := make([]bridge.PushedProduct, len(items))
	for i, it := range items {
		ps[i] = bridge.PushedProduct{ProductID: it.id, Hash: it.hash, Rejected: it.rejected, Retracted: it.retracted, Retract: it.retract}
	}
	if err := r.p.Store.SavePushedProducts(ctx, Target, ps); err != nil {
		return fmt.Errorf("feed api push: %w", err)
	}
	return nil
}

func (r *push) reject(id, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected++
	if len(r.sample) < maxRejectedSample {
		r.sample = append(r.sample, bridge.RejectedProduct{ProductID: id, Reason: reason})
	}
}

// item is one encoded product of a batch: the product, or its
// withdrawal (retracted).
type item struct {
	id        string
	hash      int64
	json      []byte
	retract   string // the body that would withdraw it, kept with its record
	retracted bool
	rejected  string // the agent's reason when it refused the item alone
}

// upsertBody is the UpsertProductsRequest of items.
func upsertBody(items []item) []byte {
	n := len(`{"products":[]}`)
	for _, it := range items {
		n += len(it.json) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"products":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.json...)
	}
	return append(b, "]}"...)
}

// hash identifies a product's encoding: 64 bits of SHA-256 make an
// unnoticed change (two encodings with one hash) a 2⁻⁶⁴ event.
func hash(b []byte) int64 {
	sum := sha256.Sum256(b)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// digest derives an idempotency key from parts (length-prefixed, so no
// two different part lists give the same input).
func digest(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (p *Pusher) batchLimits() (products, bytes int) {
	products, bytes = p.BatchProducts, p.BatchBytes
	if products <= 0 {
		products = DefaultBatchProducts
	}
	if bytes <= 0 {
		bytes = DefaultBatchBytes
	}
	return products, bytes
}

func (p *Pusher) logger() *slog.Logger {
	l := p.Log
	if l == nil {
		l = slog.Default()
	}
	return l.With("component", "feed_push", "target", Target)
}

func (p *Pusher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
