package rowcodec

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

func TestNano(t *testing.T) {
	in := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.FixedZone("CEST", 7200))
	n, err := ToNano(in)
	if err != nil || !FromNano(n).Equal(in) || FromNano(n).Location() != time.UTC {
		t.Errorf("ToNano/FromNano(%v) = %v (%v)", in, FromNano(n), err)
	}
	if n, err := ToNano(time.Time{}); n != 0 || err != nil || !FromNano(0).IsZero() {
		t.Errorf("the zero time: %d, %v", n, err)
	}
	early, late := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		t    time.Time
		want int64
	}{{early, math.MinInt64}, {late, math.MaxInt64}, {in, in.UnixNano()}, {time.Time{}, 0}} {
		if got := ClampNano(tt.t); got != tt.want {
			t.Errorf("ClampNano(%v) = %d, want %d", tt.t, got, tt.want)
		}
	}
	for _, out := range []time.Time{early, late} {
		if _, err := ToNano(out); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("ToNano(%v) = %v, want out of range", out, err)
		}
	}
}

// Outcomes are stored compressed when long; short ones and rows written
// before compression read back as they are.
func TestOutcomeCompression(t *testing.T) {
	long := []byte(`{"session":{"id":"cs_1","lines":[` + strings.Repeat(`{"title":"Classic Tee / Navy / M","quantity":1},`, 40) + `{}]}}`)
	for _, b := range [][]byte{nil, {}, []byte(`{"error":{}}`), long} {
		packed := PackOutcome(b)
		if len(b) >= compressOutcomes && (len(packed) >= len(b)/2 || packed[0] != s2Outcome) {
			t.Errorf("%d bytes packed to %d", len(b), len(packed))
		}
		got, err := UnpackOutcome(packed)
		if err != nil || !bytes.Equal(got, b) || (b == nil) != (got == nil) {
			t.Errorf("round trip of %d bytes: %d bytes, %v", len(b), len(got), err)
		}
	}
	if _, err := UnpackOutcome([]byte{s2Outcome, 0xff, 0xff}); err == nil {
		t.Error("corrupt compressed outcome accepted")
	}
}

// The columns of a change carry the body's values; an order's times are
// converted to UTC without touching the caller's slices.
func TestEncodeChange(t *testing.T) {
	cest := time.FixedZone("CEST", 7200)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, cest)
	o := bridge.Order{ID: "o1", SessionID: "s1", Owner: "alice", Status: bridge.OrderCreated, PaymentRef: "pi_1",
		CreatedAt: at, UpdatedAt: at.Add(time.Minute), Rev: 2, History: []bridge.OrderEvent{{At: at, Status: "created"}}}
	s := bridge.Session{ID: "s1", Owner: "alice", Rev: 3, Status: bridge.StatusReady, UpdatedAt: at}
	w, err := EncodeChange(bridge.Change{Session: &s, Order: &o, Jobs: []bridge.Job{{ID: "j1", Kind: "notice"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := w.Session; r.ID != "s1" || r.Owner != "alice" || r.Rev != 3 || r.Status != string(bridge.StatusReady) ||
		r.Expires != math.MaxInt64 || r.UpdatedAt != at.UnixNano() || r.Session.UpdatedAt.Location() != time.UTC {
		t.Errorf("session row = %+v", r)
	}
	if r := w.Order; r.ID != "o1" || r.Rev != 2 || r.PaymentRef != "pi_1" || r.CreatedAt != at.UnixNano() ||
		!bytes.Contains(r.Body, []byte(`"2026-05-01T10:00:00Z"`)) {
		t.Errorf("order row = %+v, body %s", r, r.Body)
	}
	if o.History[0].At.Location() != cest {
		t.Error("encoding changed the caller's order")
	}
	if len(w.Jobs) != 1 || w.Jobs[0].Status != string(bridge.JobPending) || w.Empty() {
		t.Errorf("jobs = %+v", w.Jobs)
	}
	if next, created := w.Jobs[0].Times(42); next != 42 || created != 42 {
		t.Errorf("a job without times is written at now: %d, %d", next, created)
	}
	if w, err := EncodeChange(bridge.Change{HoldOrderID: "o1"}); err != nil || !w.Empty() {
		t.Errorf("a hold without lines: %+v, %v; want nothing to write", w, err)
	}
}

// A claim's arguments; limit 0 claims nothing; a zero now is the clock's.
func TestNewClaim(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	for _, tt := range []struct {
		name  string
		at    time.Time
		lease time.Duration
		limit int
	}{
		{"zero lease", now, 0, 1},
		{"negative limit", now, time.Minute, -1},
		{"limit above the cap", now, time.Minute, MaxClaim + 1},
		{"lease beyond 2262", time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC), time.Hour, 1},
	} {
		if _, err := NewClaim(tt.at, tt.lease, tt.limit, clock); err == nil || !strings.HasPrefix(err.Error(), "claim jobs: ") {
			t.Errorf("%s: %v, want a claim jobs error", tt.name, err)
		}
	}
	if c, err := NewClaim(now, time.Minute, 0, clock); c != nil || err != nil {
		t.Errorf("limit 0: %v, %v; want nothing", c, err)
	}
	a, err := NewClaim(time.Time{}, time.Minute, 5, clock)
	if err != nil || a.At != now.UnixNano() || a.Until != now.Add(time.Minute).UnixNano() || a.Limit != 5 {
		t.Fatalf("claim = %+v, %v", a, err)
	}
	if b, _ := NewClaim(now, time.Minute, 5, clock); b.Token == a.Token || len(a.Token) != 32 {
		t.Errorf("tokens %q and %q", a.Token, b.Token)
	}
}

// Claimed jobs come back oldest due first, then in queue order.
func TestClaimedJobs(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	row := func(seq int64, id string, next int64) Claimed {
		c := Claimed{seq: seq}
		c.js.j.ID, c.js.next = id, next
		return c
	}
	got := ClaimedJobs([]Claimed{row(3, "c", t0), row(1, "a", t0+1), row(2, "b", t0)})
	var ids []string
	for _, j := range got {
		ids = append(ids, j.ID)
	}
	if strings.Join(ids, ",") != "b,c,a" {
		t.Errorf("order = %v, want b,c,a", ids)
	}
	if ClaimedJobs(nil) != nil {
		t.Error("no rows: want nil")
	}
}

func TestFinishAndSetJob(t *testing.T) {
	for _, j := range []bridge.Job{
		{Token: "t", Status: bridge.JobDone},
		{ID: "j", Status: bridge.JobDone},
		{ID: "j", Token: "t", Status: "later"},
		{ID: "j", Token: "t", Status: bridge.JobDone, Attempts: -1},
	} {
		if _, err := EncodeFinish(j); err == nil || !strings.HasPrefix(err.Error(), "finish job") {
			t.Errorf("EncodeFinish(%+v) = %v", j, err)
		}
	}
	f, err := EncodeFinish(bridge.Job{ID: "j", Token: "t", Status: bridge.JobPending})
	if err != nil || f.NextAt(7) != 7 {
		t.Errorf("a pending job without NextRunAt: %v, next %d", err, f.NextAt(7))
	}
	if f.Status = string(bridge.JobDone); f.NextAt(7) != 0 {
		t.Errorf("a done job without NextRunAt: next %d, want 0", f.NextAt(7))
	}
	if _, err := EncodeSetJob("j", "later", time.Time{}); err == nil {
		t.Error("EncodeSetJob with an unknown status succeeded")
	}
	sj, err := EncodeSetJob("j", bridge.JobPending, time.Time{})
	if err != nil || sj.NextAt(9) != 9 {
		t.Errorf("SetJob without next: %v, next %d", err, sj.NextAt(9))
	}
}

func TestJobColumnsAndFilter(t *testing.T) {
	if got := JobColumns("j"); !strings.HasPrefix(got, "j.id, j.kind,") || strings.Count(got, "j.") != len(jobColumns) {
		t.Errorf("JobColumns(j) = %q", got)
	}
	if n := len(new(JobScanner).Dest()); n != len(jobColumns) {
		t.Errorf("JobScanner scans %d columns, JobColumns lists %d", n, len(jobColumns))
	}
	if n := len(new(Claimed).Dest()); n != len(jobColumns)+1 {
		t.Errorf("Claimed scans %d columns, want seq and %d", n, len(jobColumns))
	}
	if n, want := len(new(IdemScanner).Dest()), strings.Count(IdemColumns, ",")+1; n != want {
		t.Errorf("IdemScanner scans %d columns, IdemColumns lists %d", n, want)
	}
	cols, vals := JobFilter(bridge.JobFilter{Kind: "notice", Status: bridge.JobDead})
	if strings.Join(cols, ",") != "status,kind" || len(vals) != 2 || vals[0] != "dead" || vals[1] != "notice" {
		t.Errorf("JobFilter = %v %v", cols, vals)
	}
}

func TestLimits(t *testing.T) {
	if n, err := ListLimit(0); n != DefaultListLimit || err != nil {
		t.Errorf("ListLimit(0) = %d, %v", n, err)
	}
	if _, err := ListLimit(-1); err == nil {
		t.Error("ListLimit(-1) succeeded")
	}
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if idem, rest, err := PurgeCuts(now, time.Hour); err != nil || idem != now.UnixNano() || rest != now.Add(-time.Hour).UnixNano() {
		t.Errorf("PurgeCuts = %d, %d, %v", idem, rest, err)
	}
	if _, _, err := PurgeCuts(now, -time.Second); err == nil {
		t.Error("PurgeCuts with a negative keep succeeded")
	}
}
