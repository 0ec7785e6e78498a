package storagetest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// runFeedPush checks the push targets' state and the per-product records
// that make Feed API pushes incremental.
func runFeedPush(t *testing.T, open func(t *testing.T) bridge.Storage) {
	t.Run("FeedPushState", func(t *testing.T) { testFeedPushState(t, open(t)) })
	t.Run("PushedProducts", func(t *testing.T) { testPushedProducts(t, open(t)) })
	t.Run("PushedProductsHeld", func(t *testing.T) { testPushedProductsHeld(t, open(t)) })
	t.Run("PushedProductsInvalid", func(t *testing.T) { testPushedProductsInvalid(t, open(t)) })
}

func testFeedPushState(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	if _, err := s.FeedPushState(ctx, "feed_api"); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("before the first save: err = %v, want ErrNotFound", err)
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 123, time.UTC)
	want := bridge.FeedPushState{
		Target: "feed_api", RemoteID: "feed_8f3K2x", Version: "v1",
		LastAttempt: at, LastSuccess: at, Items: 3, Bytes: 1234, Rejected: 1,
		RejectedSample: []bridge.RejectedProduct{{ProductID: "p1", Reason: "invalid_product_payload: bad"}},
	}
	if err := s.SaveFeedPushState(ctx, want); err != nil {
		t.Fatal(err)
	}
	// A second target is apart, and a save replaces the whole state.
	if err := s.SaveFeedPushState(ctx, bridge.FeedPushState{Target: "sftp", Error: "down"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FeedPushState(ctx, "feed_api")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("state:\n got %+v\nwant %+v", got, want)
	}
	want.Error, want.RejectedSample, want.Rejected = "agent answered 503", nil, 0
	if err := s.SaveFeedPushState(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err = s.FeedPushState(ctx, "feed_api"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("replaced state:\n got %+v (err %v)\nwant %+v", got, err, want)
	}
	if err := s.SaveFeedPushState(ctx, bridge.FeedPushState{}); err == nil {
		t.Fatal("a state without target was saved")
	}
}

func pushed(t *testing.T, s bridge.Storage, target string) map[string]bridge.PushedProduct {
	t.Helper()
	out := map[string]bridge.PushedProduct{}
	if err := s.EachPushedProduct(t.Context(), target, func(p bridge.PushedProduct) error {
		out[p.ProductID] = p
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func testPushedProducts(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	if got := pushed(t, s, "feed_api"); len(got) != 0 {
		t.Fatalf("new store has records: %v", got)
	}
	first := []bridge.PushedProduct{
		{ProductID: "p1", Hash: -1, Retract: `{"id":"p1","variants":[]}`}, // the full int64 range round-trips
		{ProductID: "p2", Hash: 1<<63 - 1, Retracted: true, Retract: `{"id":"p2"}`},
		{ProductID: "p3", Hash: 7, Rejected: "invalid_product_payload"},
	}
	if err := s.SavePushedProducts(ctx, "feed_api", first); err != nil {
		t.Fatal(err)
	}
	if err := s.SavePushedProducts(ctx, "other", []bridge.PushedProduct{{ProductID: "p1", Hash: 99}}); err != nil {
		t.Fatal(err)
	}
	// Saving again replaces by id and keeps the rest.
	if err := s.SavePushedProducts(ctx, "feed_api", []bridge.PushedProduct{
		{ProductID: "p3", Hash: 8}, {ProductID: "p4", Hash: 4},
	}); err != nil {
		t.Fatal(err)
	}
	// A walk leaves the retract bodies out; PushedRetractions reads them.
	want := map[string]bridge.PushedProduct{
		"p1": {ProductID: "p1", Hash: -1, Held: true},
		"p2": {ProductID: "p2", Hash: 1<<63 - 1, Retracted: true},
		"p3": {ProductID: "p3", Hash: 8, Held: true},
		"p4": {ProductID: "p4", Hash: 4, Held: true},
	}
	if got := pushed(t, s, "feed_api"); !maps.Equal(got, want) {
		t.Fatalf("records:\n got %v\nwant %v", got, want)
	}
	bodies, err := s.PushedRetractions(ctx, "feed_api", []string{"p1", "p2", "p3", "p9"})
	if err != nil {
		t.Fatal(err)
	}
	if wantB := map[string]string{"p1": first[0].Retract, "p2": first[1].Retract, "p3": ""}; !maps.Equal(bodies, wantB) {
		t.Fatalf("retractions:\n got %q\nwant %q", bodies, wantB)
	}
	// Many ids at once (more than a statement's parameters in some drivers).
	many := make([]string, 2000)
	for i := range many {
		many[i] = fmt.Sprintf("x%d", i)
	}
	if bodies, err := s.PushedRetractions(ctx, "feed_api", append(many, "p1")); err != nil || len(bodies) != 1 {
		t.Fatalf("retractions of 2001 ids: %v, %v", bodies, err)
	}
	// fn's error stops the walk and comes back as it is.
	stop := errors.New("stop")
	n := 0
	if err := s.EachPushedProduct(ctx, "feed_api", func(bridge.PushedProduct) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("stopping walk: err=%v after %d calls", err, n)
	}
	if err := s.ForgetPushedProducts(ctx, "feed_api"); err != nil {
		t.Fatal(err)
	}
	if got := pushed(t, s, "feed_api"); len(got) != 0 {
		t.Fatalf("after forget: %v", got)
	}
	if got := pushed(t, s, "other"); len(got) != 1 {
		t.Fatalf("forget touched another target: %v", got)
	}
}

func testPushedProductsInvalid(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	for _, tc := range []struct {
		name, target string
		ps           []bridge.PushedProduct
		want         string
	}{
		{"no target", "", []bridge.PushedProduct{{ProductID: "p1"}}, "empty target"},
		{"no product id", "feed_api", []bridge.PushedProduct{{ProductID: "p1"}, {}}, "no product id"},
		{"duplicate id", "feed_api", []bridge.PushedProduct{{ProductID: "p1", Hash: 1}, {ProductID: "p1", Hash: 2}}, `"p1" twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SavePushedProducts(ctx, tc.target, tc.ps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if got := pushed(t, s, "feed_api"); len(got) != 0 {
				t.Fatalf("a refused batch left records: %v", got)
			}
		})
	}
}

// testPushedProductsHeld: Held is the store's: set by an accepted product,
// cleared by an accepted withdrawal, and kept, with the retract body of
// the version the agent holds, through refusals.
func testPushedProductsHeld(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	type step struct {
		save     bridge.PushedProduct
		held     bool
		retract  string // PushedRetractions after the step
		rejected string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"refused first: not held", []step{
			{bridge.PushedProduct{Hash: 1, Rejected: "bad", Retract: "r1"}, false, "r1", "bad"},
		}},
		{"accepted, then an update refused: still held, old retract kept", []step{
			{bridge.PushedProduct{Hash: 1, Retract: "r1"}, true, "r1", ""},
			{bridge.PushedProduct{Hash: 2, Rejected: "bad", Retract: "r2"}, true, "r1", "bad"},
			{bridge.PushedProduct{Hash: 3, Rejected: "worse", Retract: "r3"}, true, "r1", "worse"},
		}},
		{"held, refused, then accepted again", []step{
			{bridge.PushedProduct{Hash: 1, Retract: "r1"}, true, "r1", ""},
			{bridge.PushedProduct{Hash: 2, Rejected: "bad", Retract: "r2"}, true, "r1", "bad"},
			{bridge.PushedProduct{Hash: 3, Retract: "r3"}, true, "r3", ""},
		}},
		{"withdrawal accepted: no longer held", []step{
			{bridge.PushedProduct{Hash: 1, Retract: "r1"}, true, "r1", ""},
			{bridge.PushedProduct{Hash: 9, Retracted: true, Retract: "r1"}, false, "r1", ""},
		}},
		{"withdrawal refused: still held", []step{
			{bridge.PushedProduct{Hash: 1, Retract: "r1"}, true, "r1", ""},
			{bridge.PushedProduct{Hash: 9, Retracted: true, Rejected: "unknown", Retract: "r1"}, true, "r1", "unknown"},
		}},
		{"the caller's Held is ignored", []step{
			{bridge.PushedProduct{Hash: 1, Rejected: "bad", Held: true}, false, "", "bad"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := "held_" + strings.ReplaceAll(tc.name, " ", "_")
			for i, st := range tc.steps {
				st.save.ProductID = "p1"
				if err := s.SavePushedProducts(ctx, target, []bridge.PushedProduct{st.save}); err != nil {
					t.Fatal(err)
				}
				got := pushed(t, s, target)["p1"]
				if got.Held != st.held || got.Rejected != st.rejected || got.Hash != st.save.Hash {
					t.Fatalf("step %d: record %+v, want held %v, rejected %q, hash %d", i, got, st.held, st.rejected, st.save.Hash)
				}
				bodies, err := s.PushedRetractions(ctx, target, []string{"p1"})
				if err != nil {
					t.Fatal(err)
				}
				if bodies["p1"] != st.retract {
					t.Fatalf("step %d: retract body %q, want %q", i, bodies["p1"], st.retract)
				}
			}
		})
	}
}
