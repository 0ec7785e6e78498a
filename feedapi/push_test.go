package feedapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/feedapi"
	"github.com/acp-bridge/bridge/internal/fakeagent"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/storage/storagetest"
	"github.com/acp-bridge/bridge/upstream"
)

const token = "tok_feed_0123456789abcdefghijkl" // long enough to spot in a log

var merchant = bridge.Merchant{Name: "Example Shop", URL: "https://shop.example.com", Country: "US", Currency: "USD",
	ReturnPolicyURL: "https://shop.example.com/returns"}

// harness is a real SQLite store, a strict fake Feed API and a Pusher
// between them.
type harness struct {
	db     *sqlite.DB
	agent  *fakeagent.FeedAPI
	pusher *feedapi.Pusher
	logs   *syncbuf.Buffer
	snap   int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	agent := fakeagent.NewFeedAPI(t, token)
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := upstream.New(upstream.Config{Name: "feed_api_test", RetryMax: 3, RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond, Budget: 2 * time.Second, MinRequests: 1000, Logger: log})
	h := &harness{db: db, agent: agent, logs: logs}
	h.pusher = &feedapi.Pusher{
		Client:        &feedapi.Client{BaseURL: agent.URL(), Token: token, HTTP: client},
		Store:         db,
		Settings:      feed.Settings{Merchant: merchant},
		Country:       "US",
		BatchProducts: 10,
		Log:           log,
	}
	return h
}

// commit makes a new snapshot of products 0…n−1; change edits entry i.
func (h *harness) commit(t *testing.T, n int, change func(i int, e *bridge.CatalogEntry)) string {
	t.Helper()
	h.snap++
	version := fmt.Sprintf("v%d", h.snap)
	storagetest.CommitEach(t, h.db, bridge.CatalogInfo{Version: version, SyncedAt: time.Now().UTC(), Products: n}, n,
		func(i int) bridge.CatalogEntry {
			e := storagetest.Entry(i)
			if change != nil {
				change(i, &e)
			}
			return e
		})
	return version
}

func (h *harness) push(t *testing.T) bridge.FeedPushState {
	t.Helper()
	st, err := h.pusher.Push(t.Context())
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return st
}

// noFailures asserts the fake refused nothing for a protocol reason.
func (h *harness) noFailures(t *testing.T) {
	t.Helper()
	if f := h.agent.Failures(); len(f) > 0 {
		t.Fatalf("the agent refused requests: %+v", f)
	}
}

func flat(patches [][]string) []string {
	var out []string
	for _, p := range patches {
		out = append(out, p...)
	}
	slices.Sort(out)
	return out
}

func TestPushFullThenOnlyChanged(t *testing.T) {
	h := newHarness(t)
	v1 := h.commit(t, 25, nil)
	st := h.push(t)
	h.noFailures(t)
	feeds := h.agent.Feeds()
	if len(feeds) != 1 {
		t.Fatalf("feeds made: %v, want one", feeds)
	}
	if st.RemoteID != feeds[0] || st.Items != 25 || st.Version != v1 || st.Error != "" || st.LastSuccess.IsZero() || st.Rejected != 0 {
		t.Fatalf("state after the full push: %+v", st)
	}
	if got := len(h.agent.Patches()); got != 3 {
		t.Fatalf("%d requests for 25 products in batches of 10, want 3", got)
	}
	// The agent holds exactly what the ACP file publishes.
	got := h.agent.Products(st.RemoteID)
	enc := feed.NewACPEncoder(feed.Settings{Merchant: merchant})
	for i := range 25 {
		e := storagetest.Entry(i)
		want, _ := enc.AppendProduct(nil, &e)
		if string(got[e.Product.ID]) != string(want) {
			t.Fatalf("product %s at the agent:\n got %s\nwant %s", e.Product.ID, got[e.Product.ID], want)
		}
	}

	// Nothing changed: nothing is sent, not even a request.
	h.agent.ResetPatches()
	before := h.agent.Requests()
	h.commit(t, 25, nil)
	if st := h.push(t); st.Items != 0 || st.Error != "" {
		t.Fatalf("state of an empty push: %+v", st)
	}
	if n := h.agent.Requests() - before; n != 0 {
		t.Fatalf("%d requests for an unchanged catalog", n)
	}

	// A price and a stock status change: those two products only.
	h.commit(t, 26, func(i int, e *bridge.CatalogEntry) {
		switch i {
		case 3:
			e.Product.Variants[1].Price.Amount = 1499
		case 17:
			e.Product.Variants[2].Availability = bridge.OutOfStock
		}
	})
	st = h.push(t)
	h.noFailures(t)
	if want := []string{"p17", "p25", "p3"}; !slices.Equal(flat(h.agent.Patches()), want) {
		t.Fatalf("sent %v, want the changed and the new product %v", h.agent.Patches(), want)
	}
	if st.Items != 3 || len(h.agent.Patches()) != 1 {
		t.Fatalf("state %+v after %d requests", st, len(h.agent.Patches()))
	}
	var p17 feedProduct
	if err := json.Unmarshal(h.agent.Products(st.RemoteID)["p17"], &p17); err != nil {
		t.Fatal(err)
	}
	if a := p17.Variants[2].Availability; a.Available || a.Status != "out_of_stock" {
		t.Fatalf("p17's third variant at the agent: %+v", a)
	}
	if len(h.agent.Feeds()) != 1 {
		t.Fatalf("a second feed was made: %v", h.agent.Feeds())
	}
}

type feedProduct struct {
	ID       string `json:"id"`
	Variants []struct {
		ID           string `json:"id"`
		Availability struct {
			Available bool   `json:"available"`
			Status    string `json:"status"`
		} `json:"availability"`
	} `json:"variants"`
}

// TestPushFaults runs a full push through the agent's failure modes: what
// the shared client retries gets through, what outlasts it fails the push
// with nothing recorded for the failed batch, and the next push sends the
// rest — never a product twice once accepted.
func TestPushFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  func(a *fakeagent.FeedAPI)
		fail string // a push error containing this; "" = the push succeeds
	}{
		{"429 with Retry-After", func(a *fakeagent.FeedAPI) { a.ThrottleNext(2, 0) }, ""},
		{"500s", func(a *fakeagent.FeedAPI) { a.Inject(1, fakeagent.Fault{}); a.FailNext(3) }, ""},
		{"dropped connections", func(a *fakeagent.FeedAPI) { a.Inject(1, fakeagent.Fault{}); a.DropNext(2) }, ""},
		{"outage past the retries", func(a *fakeagent.FeedAPI) {
			a.Inject(2, fakeagent.Fault{}) // POST /feeds and the first batch pass
			a.Inject(4, fakeagent.Fault{Status: http.StatusServiceUnavailable, Body: `{"type":"service_unavailable","code":"down","message":"down"}`})
		}, "503"},
		{"wrong token", func(a *fakeagent.FeedAPI) {
			a.Inject(2, fakeagent.Fault{})
			a.RespondNext(1, http.StatusUnauthorized, `{"type":"invalid_request","code":"invalid_token","message":"bad token"}`)
		}, "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.commit(t, 25, nil)
			tc.arm(h.agent)
			st, err := h.pusher.Push(t.Context())
			switch {
			case tc.fail == "" && err != nil:
				t.Fatalf("push failed: %v", err)
			case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
				t.Fatalf("push error %v, want one containing %q", err, tc.fail)
			case tc.fail != "" && (st.Error == "" || !st.LastSuccess.IsZero()):
				t.Fatalf("state after a failed push: %+v", st)
			}
			if tc.fail != "" {
				if n := len(flat(h.agent.Patches())); n != 10 {
					t.Fatalf("%d products delivered before the outage, want the first batch of 10", n)
				}
				// The next push delivers the rest, and only the rest.
				h.agent.ResetPatches()
				st = h.push(t)
				if want := 15; len(flat(h.agent.Patches())) != want || st.Items != want {
					t.Fatalf("resumed push sent %d products (state %+v), want %d", len(flat(h.agent.Patches())), st, want)
				}
			}
			h.noFailures(t)
			if got := len(h.agent.Products(st.RemoteID)); got != 25 {
				t.Fatalf("the agent holds %d products, want 25", got)
			}
			if strings.Contains(h.logs.String(), token) || strings.Contains(st.Error, token) {
				t.Fatal("the bearer token reached the logs or the status")
			}
		})
	}
}

// TestPushRejected: one product the agent refuses fails its whole request;
// the batch is split until that product stands alone, everything else is
// delivered, and the refused product is reported and not sent again until
// the shop changes it.
func TestPushRejected(t *testing.T) {
	h := newHarness(t)
	h.agent.RefuseProduct("p7", "variant p7-v1 has an unknown GTIN")
	h.commit(t, 25, nil)
	st := h.push(t)
	h.noFailures(t)
	if st.Error != "" || st.Rejected != 1 || st.Items != 24 || len(st.RejectedSample) != 1 ||
		st.RejectedSample[0].ProductID != "p7" || !strings.Contains(st.RejectedSample[0].Reason, "unknown GTIN") {
		t.Fatalf("state: %+v", st)
	}
	held := h.agent.Products(st.RemoteID)
	if _, ok := held["p7"]; ok || len(held) != 24 {
		t.Fatalf("the agent holds %d products (p7: %v)", len(held), ok)
	}

	// Unchanged: not retried, still reported.
	before := h.agent.Requests()
	h.commit(t, 25, nil)
	if st = h.push(t); st.Rejected != 1 || st.Items != 0 || h.agent.Requests() != before {
		t.Fatalf("unchanged refused product: state %+v, %d requests", st, h.agent.Requests()-before)
	}

	// Changed and now acceptable: sent, and no longer reported.
	h.agent.RefuseProduct("p7", "")
	fix7 := func(i int, e *bridge.CatalogEntry) {
		if i == 7 {
			e.Product.Variants[0].GTIN = "00000000000017"
		}
	}
	h.agent.ResetPatches()
	h.commit(t, 25, fix7)
	st = h.push(t)
	if st.Rejected != 0 || st.Items != 1 || !slices.Equal(flat(h.agent.Patches()), []string{"p7"}) {
		t.Fatalf("fixed product: state %+v, patches %v", st, h.agent.Patches())
	}
}

// TestPushCreateAmbiguous: when the answer to POST /feeds is lost the push
// fails (the request is not replayed blindly) and the next push asks again
// with the same Idempotency-Key, so the agent makes one feed, not two.
func TestPushCreateAmbiguous(t *testing.T) {
	h := newHarness(t)
	h.commit(t, 3, nil)
	h.agent.HangNext(1, 3*time.Second) // past the client's 2 s budget; the agent still makes the feed
	if _, err := h.pusher.Push(t.Context()); !errors.Is(err, upstream.ErrAmbiguous) {
		t.Fatalf("push with a lost create answer: err = %v, want ErrAmbiguous", err)
	}
	waitFor(t, func() bool { return len(h.agent.Feeds()) == 1 })
	st := h.push(t)
	if feeds := h.agent.Feeds(); len(feeds) != 1 || st.RemoteID != feeds[0] || st.Items != 3 {
		t.Fatalf("feeds %v, state %+v", feeds, st)
	}
	h.noFailures(t)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPushConfiguredFeed: a feed id from onboarding is used as it is (no
// POST /feeds); a different one holds none of the products, so everything
// is sent to it.
func TestPushConfiguredFeed(t *testing.T) {
	h := newHarness(t)
	first := h.agent.AddFeed("US")
	h.pusher.FeedID = first
	h.commit(t, 12, nil)
	if st := h.push(t); st.RemoteID != first || st.Items != 12 {
		t.Fatalf("state: %+v", st)
	}
	second := h.agent.AddFeed("US")
	h.pusher.FeedID = second
	if st := h.push(t); st.RemoteID != second || st.Items != 12 || len(h.agent.Products(second)) != 12 {
		t.Fatalf("after the feed changed: state %+v", st)
	}
	if len(h.agent.Feeds()) != 2 {
		t.Fatalf("feeds: %v (the pusher made one)", h.agent.Feeds())
	}
	h.noFailures(t)
}

// TestPushSigned: with a signing secret every request is signed; a secret
// that does not match is refused with 401 and fails the push.
func TestPushSigned(t *testing.T) {
	for _, tc := range []struct {
		name, agentSecret, ourSecret string
		ok                           bool
	}{
		{"matching secret", "sig_secret_0123456789abcdef", "sig_secret_0123456789abcdef", true},
		{"wrong secret", "sig_secret_0123456789abcdef", "another_secret_0123456789ab", false},
		{"unsigned", "sig_secret_0123456789abcdef", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.agent.SetSigningSecret(tc.agentSecret)
			h.pusher.Client.SigningSecret = tc.ourSecret
			h.commit(t, 3, nil)
			st, err := h.pusher.Push(t.Context())
			if tc.ok {
				if err != nil || st.Items != 3 {
					t.Fatalf("signed push: %v (state %+v)", err, st)
				}
				h.noFailures(t)
				return
			}
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("push with a bad signature: err = %v", err)
			}
			if f := h.agent.Failures(); len(f) == 0 || f[0].Kind != "signature" {
				t.Fatalf("agent failures: %+v", f)
			}
			if tc.ourSecret != "" && strings.Contains(h.logs.String()+st.Error, tc.ourSecret) {
				t.Fatal("the signing secret reached the logs or the status")
			}
		})
	}
}

// TestPushNoSnapshot: before the first sync there is nothing to push; the
// push fails with a clear error and records it.
func TestPushNoSnapshot(t *testing.T) {
	h := newHarness(t)
	st, err := h.pusher.Push(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no catalog snapshot") || st.Error == "" {
		t.Fatalf("push without a snapshot: err = %v, state %+v", err, st)
	}
	stored, err := h.db.FeedPushState(t.Context(), feedapi.Target)
	if err != nil || stored.Error != st.Error {
		t.Fatalf("stored state %+v (err %v), want the error recorded", stored, err)
	}
}

// TestPushRetractsRemoved: a product that leaves the catalog, or is now
// excluded by validation, is withdrawn once (its variants unavailable and
// discontinued); one that comes back is sent in full.
func TestPushRetractsRemoved(t *testing.T) {
	h := newHarness(t)
	h.commit(t, 12, nil)
	st := h.push(t)
	feedID := st.RemoteID

	// p11 is gone from the store; p4 now fails validation.
	h.agent.ResetPatches()
	exclude4 := func(i int, e *bridge.CatalogEntry) {
		if i == 4 {
			e.Issues = append(e.Issues, bridge.Issue{Severity: bridge.SeverityError, Field: "title", Message: "too long"})
		}
	}
	h.commit(t, 11, exclude4)
	st = h.push(t)
	h.noFailures(t)
	if st.Retracted != 2 || st.Items != 0 || !slices.Equal(flat(h.agent.Patches()), []string{"p11", "p4"}) {
		t.Fatalf("state %+v, patches %v", st, h.agent.Patches())
	}
	for _, id := range []string{"p4", "p11"} {
		var p feedProduct
		if err := json.Unmarshal(h.agent.Products(feedID)[id], &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Variants) != 3 {
			t.Fatalf("%s withdrawn with %d variants, want its 3", id, len(p.Variants))
		}
		for _, v := range p.Variants {
			if v.Availability.Available || v.Availability.Status != "discontinued" {
				t.Fatalf("%s variant %s at the agent: %+v", id, v.ID, v.Availability)
			}
		}
	}

	// Withdrawn once: the next push sends nothing.
	before := h.agent.Requests()
	h.commit(t, 11, exclude4)
	if st = h.push(t); st.Retracted != 0 || h.agent.Requests() != before {
		t.Fatalf("second push after the removal: state %+v, %d requests", st, h.agent.Requests()-before)
	}

	// p11 is back: sent in full, available again.
	h.agent.ResetPatches()
	h.commit(t, 12, exclude4)
	st = h.push(t)
	if st.Items != 1 || !slices.Equal(flat(h.agent.Patches()), []string{"p11"}) {
		t.Fatalf("returning product: state %+v, patches %v", st, h.agent.Patches())
	}
	e := storagetest.Entry(11)
	want, _ := feed.NewACPEncoder(feed.Settings{Merchant: merchant}).AppendProduct(nil, &e)
	if got := h.agent.Products(feedID)["p11"]; string(got) != string(want) {
		t.Fatalf("p11 at the agent:\n got %s\nwant %s", got, want)
	}
}

// TestPushNoRetractionOfRefused: a product the agent refused is not
// withdrawn when it leaves the catalog (the agent may not know it, and an
// unknown product fails the whole request).
func TestPushNoRetractionOfRefused(t *testing.T) {
	h := newHarness(t)
	h.agent.RefuseProduct("p2", "bad GTIN")
	h.commit(t, 5, nil)
	h.push(t)
	h.agent.ResetPatches()
	h.commit(t, 2, nil) // p2, p3, p4 gone
	st := h.push(t)
	if got := flat(h.agent.Patches()); !slices.Equal(got, []string{"p3", "p4"}) || st.Retracted != 2 {
		t.Fatalf("withdrawn %v (state %+v), want p3 and p4 only", got, st)
	}
	h.noFailures(t)
}

// TestPushFeedGone: a feed the agent no longer has fails the push with
// what to do about it; configuring the new feed sends everything there.
func TestPushFeedGone(t *testing.T) {
	h := newHarness(t)
	h.commit(t, 3, nil)
	h.push(t)
	h.commit(t, 3, func(i int, e *bridge.CatalogEntry) { e.Product.Title += " v2" })
	h.agent.RespondNext(1, http.StatusNotFound, `{"type":"invalid_request","code":"feed_not_found","message":"Feed not found","param":"id"}`)
	st, err := h.pusher.Push(t.Context())
	if err == nil || !strings.Contains(err.Error(), "set feed.push.feed_api.feed_id") || st.Error == "" {
		t.Fatalf("push to a deleted feed: err %v, state %+v", err, st)
	}
	h.pusher.FeedID = h.agent.AddFeed("US")
	if st = h.push(t); st.Items != 3 || st.RemoteID != h.pusher.FeedID {
		t.Fatalf("push to the new feed: %+v", st)
	}
}

// TestPushRejectedCounted: refusals from earlier pushes (met by the walk)
// and new ones (met by the sender, concurrently) are all reported.
func TestPushRejectedCounted(t *testing.T) {
	h := newHarness(t)
	h.agent.RefuseProduct("p5", "old refusal")
	h.commit(t, 80, nil)
	h.push(t)
	h.agent.RefuseProduct("p70", "new refusal")
	h.commit(t, 80, func(i int, e *bridge.CatalogEntry) {
		if i >= 10 {
			e.Product.Title += " (new season)"
		}
	})
	st := h.push(t)
	if st.Rejected != 2 || st.Items != 69 || len(st.RejectedSample) != 2 {
		t.Fatalf("state: %+v", st)
	}
	h.noFailures(t)
}

// TestPushRequestLevel400: an answer about the request, not its products
// (an API-Version the agent does not speak, a bad header or Timestamp, a
// proxy's page, or every product refused alone for one reason), fails the
// push at once: no bisection, nothing recorded as refused, and the next
// push, once the cause is gone, sends every product.
func TestPushRequestLevel400(t *testing.T) {
	const batchReason = `{"type":"invalid_request","code":"invalid_product_payload","message":"feed is read-only"}`
	for _, tc := range []struct {
		name     string
		arm      func(h *harness)
		fix      func(h *harness)
		maxReqs  int // PATCH requests of the failed push at most
		contains string
	}{
		{"unsupported API-Version", func(h *harness) { h.pusher.Client.Version = "2025-01-01" },
			func(h *harness) { h.pusher.Client.Version = "" }, 1, "unsupported_api_version"},
		{"bad timestamp", func(h *harness) {
			h.agent.RespondNext(1, http.StatusBadRequest, `{"type":"invalid_request","code":"invalid_timestamp","message":"clock skew","param":"Timestamp"}`)
		}, func(*harness) {}, 1, "invalid_timestamp"},
		{"proxy page", func(h *harness) {
			h.agent.RespondNext(1, http.StatusBadRequest, `<html><body>400 Bad Request</body></html>`)
		}, func(*harness) {}, 1, "400"},
		{"422 idempotency conflict", func(h *harness) {
			h.agent.RespondNext(1, http.StatusUnprocessableEntity, `{"type":"invalid_request","code":"idempotency_conflict","message":"key reused"}`)
		}, func(*harness) {}, 1, "idempotency_conflict"},
		{"every product refused alone for one reason", func(h *harness) {
			h.agent.RespondNext(1+2*10-1, http.StatusUnprocessableEntity, batchReason) // the bisection of the first batch of 10
		}, func(*harness) {}, 19, "same reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.pusher.FeedID = h.agent.AddFeed("US")
			h.commit(t, 25, nil)
			tc.arm(h)
			before := h.agent.Requests()
			st, err := h.pusher.Push(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.contains) || st.Error == "" {
				t.Fatalf("push: err %v, state %+v; want a failure containing %q", err, st, tc.contains)
			}
			if n := h.agent.Requests() - before; n > tc.maxReqs {
				t.Fatalf("%d requests for a request-level refusal, want at most %d", n, tc.maxReqs)
			}
			if st.Rejected != 0 {
				t.Fatalf("%d products recorded as refused for the request's fault", st.Rejected)
			}
			tc.fix(h)
			h.agent.ResetPatches()
			if st = h.push(t); st.Items != 25 || st.Rejected != 0 || len(flat(h.agent.Patches())) != 25 {
				t.Fatalf("push after the fix: state %+v, sent %d", st, len(flat(h.agent.Patches())))
			}
		})
	}
}

// TestPushProductLevel400: a 400 whose error names a product is the
// product's refusal, bisected like a 422.
func TestPushProductLevel400(t *testing.T) {
	for _, body := range []string{
		`{"type":"invalid_request","code":"invalid_product_payload","message":"bad GTIN"}`,
		`{"type":"invalid_request","code":"invalid_value","message":"bad GTIN","param":"$.products[0].variants[0].gtin"}`,
	} {
		h := newHarness(t)
		h.pusher.FeedID = h.agent.AddFeed("US")
		h.commit(t, 4, nil)
		// The batch of 4 and its first half are refused, then p0 alone;
		// p1, p2-p3 pass.
		h.agent.RespondNext(3, http.StatusBadRequest, body)
		st := h.push(t)
		if st.Rejected != 1 || st.Items != 3 || st.RejectedSample[0].ProductID != "p0" || !strings.Contains(st.RejectedSample[0].Reason, "bad GTIN") {
			t.Fatalf("%s: state %+v", body, st)
		}
	}
}

// TestPushNotAccepted: an answer of accepted:false (HTTP 200) is split
// like a refusal; the product declined alone is recorded with the agent's
// answer and every later batch still goes out.
func TestPushNotAccepted(t *testing.T) {
	h := newHarness(t)
	h.agent.DeclineProduct("p3", true)
	h.commit(t, 25, nil)
	st := h.push(t)
	h.noFailures(t)
	if st.Error != "" || st.Items != 24 || st.Rejected != 1 || st.RejectedSample[0].ProductID != "p3" ||
		!strings.Contains(st.RejectedSample[0].Reason, "accepted: false") {
		t.Fatalf("state %+v", st)
	}
	if held := h.agent.Products(st.RemoteID); len(held) != 24 {
		t.Fatalf("the agent holds %d products, want 24", len(held))
	}
}

// TestPushRetractsHeldAfterRefusedUpdate: a product the agent took, whose
// later update it refused, still sells there in its older version; when
// it leaves the catalog it is withdrawn — with the variants the agent
// holds, not those of the refused update.
func TestPushRetractsHeldAfterRefusedUpdate(t *testing.T) {
	h := newHarness(t)
	h.commit(t, 5, nil)
	st := h.push(t)
	feedID := st.RemoteID

	h.agent.RefuseProduct("p2", "bad update")
	twoVariants := func(i int, e *bridge.CatalogEntry) {
		if i == 2 {
			e.Product.Title += " (new)"
			e.Product.Variants = e.Product.Variants[:2]
		}
	}
	h.commit(t, 5, twoVariants)
	if st = h.push(t); st.Rejected != 1 {
		t.Fatalf("refused update: state %+v", st)
	}
	h.agent.RefuseProduct("p2", "") // the agent refused that content, not the id

	h.agent.ResetPatches()
	h.commit(t, 2, nil) // p2, p3, p4 gone
	st = h.push(t)
	h.noFailures(t)
	if got := flat(h.agent.Patches()); !slices.Equal(got, []string{"p2", "p3", "p4"}) || st.Retracted != 3 {
		t.Fatalf("withdrawn %v (state %+v), want p2, p3 and p4", got, st)
	}
	var p feedProduct
	if err := json.Unmarshal(h.agent.Products(feedID)["p2"], &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Variants) != 3 {
		t.Fatalf("p2 withdrawn with %d variants, want the 3 the agent holds", len(p.Variants))
	}
	for _, v := range p.Variants {
		if v.Availability.Available || v.Availability.Status != "discontinued" {
			t.Fatalf("p2 variant %s at the agent: %+v", v.ID, v.Availability)
		}
	}
	// Withdrawn once.
	before := h.agent.Requests()
	h.commit(t, 2, nil)
	if st = h.push(t); st.Retracted != 0 || h.agent.Requests() != before {
		t.Fatalf("second push: state %+v, %d requests", st, h.agent.Requests()-before)
	}
}

// TestPushAllStillWithdraws: a resend of everything (--all) sends every
// product again and still withdraws the products
// that left the catalog since the last push; afterwards only changes go.
func TestPushAllStillWithdraws(t *testing.T) {
	h := newHarness(t)
	h.commit(t, 12, nil)
	st := h.push(t)
	h.commit(t, 10, nil) // p10, p11 gone, not pushed yet
	h.agent.ResetPatches()
	h.pusher.All = true
	st = h.push(t)
	h.noFailures(t)
	if st.Items != 10 || st.Retracted != 2 {
		t.Fatalf("--all: state %+v, patches %v", st, h.agent.Patches())
	}
	for _, id := range []string{"p10", "p11"} {
		var p feedProduct
		if err := json.Unmarshal(h.agent.Products(st.RemoteID)[id], &p); err != nil {
			t.Fatal(err)
		}
		if p.Variants[0].Availability.Status != "discontinued" {
			t.Fatalf("%s not withdrawn: %+v", id, p.Variants[0].Availability)
		}
	}
	h.pusher.All = false
	before := h.agent.Requests()
	h.commit(t, 10, nil)
	if st = h.push(t); st.Items != 0 || st.Retracted != 0 || h.agent.Requests() != before {
		t.Fatalf("push after --all: state %+v, %d requests", st, h.agent.Requests()-before)
	}
}

// readWatch is a store that knows when a catalog read is open.
type readWatch struct {
	*sqlite.DB
	reading    atomic.Bool
	overlapped atomic.Int32 // records saved while a catalog read was open
}

func (s *readWatch) EachCatalogEntry(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
	s.reading.Store(true)
	defer s.reading.Store(false)
	return s.DB.EachCatalogEntry(ctx, fn)
}

func (s *readWatch) SavePushedProducts(ctx context.Context, target string, ps []bridge.PushedProduct) error {
	if s.reading.Load() {
		s.overlapped.Add(1)
	}
	return s.DB.SavePushedProducts(ctx, target, ps)
}

// TestPushReadEndsBeforeRequests: the catalog read is over before the
// first request goes out (a read paced by the agent would hold an SQLite
// reader or a Postgres transaction for the whole push), and the push
// still sends everything, in order, in full batches.
func TestPushReadEndsBeforeRequests(t *testing.T) {
	for _, n := range []int{0, 1, 100} {
		h := newHarness(t)
		w := &readWatch{DB: h.db}
		h.pusher.Store = w
		h.pusher.TempDir = t.TempDir()
		h.commit(t, n, nil)
		st := h.push(t)
		h.noFailures(t)
		if got := w.overlapped.Load(); got != 0 {
			t.Fatalf("%d products: %d batches recorded while the catalog read was open", n, got)
		}
		if st.Items != n || len(h.agent.Patches()) != (n+9)/10 {
			t.Fatalf("%d products: state %+v, %d requests", n, st, len(h.agent.Patches()))
		}
		if left, _ := os.ReadDir(h.pusher.TempDir); len(left) != 0 {
			t.Fatalf("%d products: spool files left: %v", n, left)
		}
	}
}
