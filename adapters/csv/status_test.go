package csv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/syncbuf"
)

// t0 is the status files' modification time in these tests; the adapter's
// clock stands 10s later unless a test moves it, so files are neither
// "racy" (modified within the last 2s) nor settled (left alone for a
// minute).
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type statusEnv struct {
	a    *Adapter
	path string
	log  *syncbuf.Buffer
	now  time.Time
}

func newStatusEnv(t *testing.T, opts Options) *statusEnv {
	t.Helper()
	env := &statusEnv{log: &syncbuf.Buffer{}, now: t0.Add(10 * time.Second)}
	if opts.Path == "" {
		opts.Path = "testdata/grouping.csv"
	}
	if opts.OrderStatusPath == "" {
		opts.OrderStatusPath = filepath.Join(t.TempDir(), "order-status.csv")
	}
	env.path = opts.OrderStatusPath
	opts.Logger = slog.New(slog.NewJSONHandler(env.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return env.now }
	env.a = a
	return env
}

// write replaces the status file's content (in place, as a shop's program
// that truncates and writes would) and sets its modification time.
func (env *statusEnv) write(t *testing.T, data string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(env.path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(env.path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func (env *statusEnv) poll(t *testing.T) []bridge.OrderUpdate {
	t.Helper()
	ups, err := env.a.OrderUpdates(context.Background())
	if err != nil {
		t.Fatalf("OrderUpdates: %v", err)
	}
	return ups
}

// logEntry is one JSON log line.
type logEntry struct {
	Level   string `json:"level"`
	Msg     string `json:"msg"`
	Line    int    `json:"line"`
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

func (env *statusEnv) warnings(t *testing.T) []logEntry {
	t.Helper()
	var out []logEntry
	for _, l := range strings.Split(strings.TrimSpace(env.log.String()), "\n") {
		if l == "" {
			continue
		}
		var e logEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if e.Level == "WARN" {
			out = append(out, e)
		}
	}
	return out
}

// ful is a shipping fulfillment.
func ful(id, status, carrier, number, url string) *bridge.Fulfillment {
	return &bridge.Fulfillment{ID: id, Type: "shipping", Status: status, Carrier: carrier, TrackingNumber: number, TrackingURL: url}
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

type wantWarning struct {
	line    int
	orderID string
	reason  string // substring
}

func TestOrderUpdatesFixtures(t *testing.T) {
	tests := []struct {
		file     string
		delim    rune
		want     []bridge.OrderUpdate
		warnings []wantWarning
	}{
		{
			file: "statuses.csv",
			want: []bridge.OrderUpdate{
				{OrderID: "ord_confirmed", Status: "confirmed", At: date("2026-11-20T10:00:00Z")},
				{OrderID: "ord_processing", Status: "processing", At: date("2026-11-20T00:00:00Z")},
				{OrderID: "ord_shipped", Status: "shipped", At: date("2026-11-21T08:30:00Z"),
					Fulfillment: ful("ful_1", "shipped", "UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784")},
				{OrderID: "ord_transit", Status: "shipped", At: t0,
					Fulfillment: ful("ful_1", "in_transit", "DHL", "JD014600006281230704", "")},
				{OrderID: "ord_ofd", Status: "shipped", At: t0,
					Fulfillment: ful("ful_1", "out_for_delivery", "USPS", "9400111899223197428490", "http://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428490")},
				{OrderID: "ord_delivered", Status: "completed", Reason: "Left at the front door", At: date("2026-11-24T14:22:00Z"),
					Fulfillment: ful("ful_1", "delivered", "FedEx", "794644790138", "")},
				{OrderID: "ord_completed", Status: "completed", At: t0},
				{OrderID: "ord_canceled", Status: "canceled", Reason: "Out of stock", At: t0},
				// Not an order of the bridge's: passed on, the consumer decides.
				{OrderID: "ord_not_from_the_bridge", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "")},
			},
		},
		{
			// A history: the rows of an order in file order, each shipment
			// step keeping the tracking details given before.
			file: "history.csv",
			want: []bridge.OrderUpdate{
				{OrderID: "ord_A", Status: "processing", At: date("2026-11-20T08:00:00Z")},
				{OrderID: "ord_B", Status: "confirmed", At: date("2026-11-20T08:05:00Z")},
				{OrderID: "ord_A", Status: "shipped", At: date("2026-11-21T08:00:00Z"),
					Fulfillment: ful("ful_1", "shipped", "UPS", "1Z1", "https://ups.example/t/1Z1")},
				{OrderID: "ord_A", Status: "shipped", At: date("2026-11-22T08:00:00Z"),
					Fulfillment: ful("ful_1", "in_transit", "UPS", "1Z1", "https://ups.example/t/1Z1")},
				{OrderID: "ord_B", Status: "canceled", Reason: "Buyer asked, by phone", At: date("2026-11-22T09:00:00Z")},
				{OrderID: "ord_A", Status: "completed", At: date("2026-11-23T08:00:00Z"),
					Fulfillment: ful("ful_1", "delivered", "UPS", "1Z1", "https://ups.example/t/1Z1")},
			},
		},
		{
			// Several shipments of one order by fulfillment_id; a new
			// tracking number drops the old number's URL.
			file: "shipments.csv",
			want: []bridge.OrderUpdate{
				{OrderID: "ord_C", Status: "shipped", At: t0, Fulfillment: ful("parcel-1", "shipped", "UPS", "1Z1", "https://ups.example/t/1Z1")},
				{OrderID: "ord_C", Status: "shipped", At: t0, Fulfillment: ful("parcel-2", "shipped", "DHL", "JD2", "https://dhl.example/t/JD2")},
				{OrderID: "ord_C", Status: "completed", At: t0, Fulfillment: ful("parcel-1", "delivered", "UPS", "1Z1", "https://ups.example/t/1Z1")},
				{OrderID: "ord_C", Status: "shipped", At: t0, Fulfillment: ful("parcel-2", "in_transit", "DHL", "JD3", "")},
				{OrderID: "ord_D", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "UPS", "1Z4", "")},
				{OrderID: "ord_D", Status: "completed", At: t0, Fulfillment: ful("ful_1", "delivered", "UPS", "1Z4", "")},
			},
		},
		{
			file: "bad_rows.csv",
			want: []bridge.OrderUpdate{
				{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "https://t.example/1")},
				{OrderID: "ord_7", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "")},
				{OrderID: "ord_8", Status: "completed", At: date("2026-11-27T00:00:00Z"), Fulfillment: ful("ful_1", "delivered", "", "", "")},
			},
			warnings: []wantWarning{
				{3, "", "order_id is empty"},
				{4, "ord_2", `status "teleported" is not one of confirmed`},
				{5, "ord_3", "status is empty"},
				{6, "ord_4", `at "yesterday" is neither`},
				{7, "", "6 fields, header has 5"},
				{8, "", `a " appears inside a value that is not in quotes`},
				{9, "ord_7", "tracking_url left out"},
				{12, "", `column "order_id" is not valid UTF-8`},
				{13, "", "order_id is not an order id"},
				{14, "ord_10", `at "2026-11-27T10:00:00" is neither`},
			},
		},
		{
			// Byte order mark, ';', CRLF, header names in any case and with
			// spaces, status words as people type them.
			file:  "bom_semicolon.csv",
			delim: ';',
			want: []bridge.OrderUpdate{
				{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "out_for_delivery", "", "1Z1", "")},
				{OrderID: "ord_2", Status: "canceled", Reason: "Sorry; sold out", At: t0},
			},
		},
		{
			file:  "tab.tsv",
			delim: '\t',
			want: []bridge.OrderUpdate{
				{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "in_transit", "La Poste", "", "")},
				{OrderID: "ord_2", Status: "completed", At: t0, Fulfillment: ful("ful_1", "delivered", "", "", "")},
			},
		},
		{
			// The unfinished last line waits for its newline.
			file: "partial.csv",
			want: []bridge.OrderUpdate{
				{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "")},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/orderstatus", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			env := newStatusEnv(t, Options{Delimiter: tc.delim})
			env.write(t, string(data), t0)
			got := env.poll(t)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("updates:\n%s\nwant\n%s", dump(got), dump(tc.want))
			}
			warns := env.warnings(t)
			if len(warns) != len(tc.warnings) {
				t.Errorf("%d warnings, want %d:\n%s", len(warns), len(tc.warnings), env.log.String())
			}
			for i, w := range tc.warnings {
				if i >= len(warns) {
					break
				}
				g := warns[i]
				if g.Line != w.line || g.OrderID != w.orderID || !strings.Contains(g.Reason, w.reason) {
					t.Errorf("warning %d = line %d, order %q, %q; want line %d, order %q, %q", i, g.Line, g.OrderID, g.Reason, w.line, w.orderID, w.reason)
				}
			}
			// No personal data in logs: the fixtures' customer names stay out.
			if logs := env.log.String(); strings.Contains(logs, "Lovelace") || strings.Contains(logs, "Builder") || strings.Contains(logs, "javascript") {
				t.Errorf("logs carry row contents:\n%s", logs)
			}
			// Polling again: nothing new, nothing warned again, no read.
			reads := env.a.status.reads
			if again := env.poll(t); len(again) != 0 {
				t.Errorf("second poll returned %s", dump(again))
			}
			if env.a.status.reads != reads && tc.file != "partial.csv" {
				t.Errorf("unchanged file read again")
			}
			if n := len(env.warnings(t)); n != len(tc.warnings) {
				t.Errorf("warnings repeated: %d, want %d", n, len(tc.warnings))
			}
		})
	}
}

func dump(ups []bridge.OrderUpdate) string {
	var b strings.Builder
	for _, u := range ups {
		fmt.Fprintf(&b, "  %s %s %q %s", u.OrderID, u.Status, u.Reason, u.At.Format(time.RFC3339))
		if u.Fulfillment != nil {
			fmt.Fprintf(&b, " %+v", *u.Fulfillment)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestOrderStatusWords covers each status word and the spellings people type.
func TestOrderStatusWords(t *testing.T) {
	tests := []struct {
		word              string
		order, fulfilment string // fulfilment "" = none
	}{
		{"confirmed", "confirmed", ""},
		{"processing", "processing", ""},
		{"shipped", "shipped", "shipped"},
		{"in_transit", "shipped", "in_transit"},
		{"out_for_delivery", "shipped", "out_for_delivery"},
		{"delivered", "completed", "delivered"},
		{"completed", "completed", ""},
		{"canceled", "canceled", ""},
		{"cancelled", "canceled", ""},
		{"  Shipped ", "shipped", "shipped"},
		{"In Transit", "shipped", "in_transit"},
		{"out-for-delivery", "shipped", "out_for_delivery"},
		{"DELIVERED", "completed", "delivered"},
		{"fulfilled", "", ""}, // not a word of the file: skipped
		{"ship ped", "", ""},
		{"pending_payment", "", ""}, // never from the store
	}
	for _, tc := range tests {
		t.Run(tc.word, func(t *testing.T) {
			rows, err := parseStatusString("order_id,status,carrier\nord_1," + tc.word + ",UPS\n")
			if err != nil || len(rows) != 1 {
				t.Fatalf("rows %+v, err %v", rows, err)
			}
			u := rows[0].update
			if tc.order == "" {
				if u != nil || len(rows[0].notes) != 1 || !strings.Contains(rows[0].notes[0], "is not one of") {
					t.Fatalf("want a skipped row, got %+v", rows[0])
				}
				return
			}
			if u == nil || u.Status != tc.order {
				t.Fatalf("update %+v, want status %q", u, tc.order)
			}
			switch {
			case tc.fulfilment == "" && u.Fulfillment != nil:
				t.Errorf("fulfillment %+v, want none (tracking cells belong to shipments)", *u.Fulfillment)
			case tc.fulfilment != "" && !reflect.DeepEqual(u.Fulfillment, ful("ful_1", tc.fulfilment, "UPS", "", "")):
				t.Errorf("fulfillment %+v, want status %q", u.Fulfillment, tc.fulfilment)
			}
		})
	}
}

func parseStatusString(data string) ([]statusRow, error) {
	var rows []statusRow
	_, err := readStatus(context.Background(), strings.NewReader(data), int64(len(data)), false, ',', t0, newKeyer(),
		func(r statusRow) { rows = append(rows, r) })
	return rows, err
}

func TestOrderStatusCells(t *testing.T) {
	long := strings.Repeat("x", 201)
	tests := []struct {
		name  string
		row   string // after the header order_id,status,fulfillment_id,carrier,tracking_number,tracking_url,reason,at
		want  *bridge.OrderUpdate
		notes []string // substrings
	}{
		{"all cells", "ord_1,shipped,box-1,UPS,1Z1,HTTPS://ups.example/t?n=1Z1,Gift,2026-11-27T10:00:00-05:00",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "shipped", Reason: "Gift", At: date("2026-11-27T15:00:00Z"),
				Fulfillment: ful("box-1", "shipped", "UPS", "1Z1", "HTTPS://ups.example/t?n=1Z1")}, nil},
		{"fractional seconds", "ord_1,confirmed,,,,,,2026-11-27T10:00:00.123Z",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "confirmed", At: date("2026-11-27T10:00:00.123Z")}, nil},
		{"not a date", "ord_1,confirmed,,,,,,2026-13-01", nil, []string{`at "2026-13-01" is neither`}},
		{"slashes", "ord_1,confirmed,,,,,,27/11/2026", nil, []string{"is neither"}},
		{"long order id", long + ",shipped,,,,,,", nil, []string{"order_id is not an order id"}},
		{"long fulfillment id", "ord_1,shipped," + long + ",,,,,", nil, []string{"fulfillment_id is not an id"}},
		{"ftp URL", "ord_1,shipped,,,,ftp://x.example/t,,",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "")},
			[]string{"tracking_url left out"}},
		{"URL without host", "ord_1,shipped,,,,https:///t,,",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "")},
			[]string{"tracking_url left out"}},
		{"relative URL", "ord_1,shipped,,,,/track/1,,",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "")},
			[]string{"tracking_url left out"}},
		{"long carrier and number", "ord_1,shipped,," + long + "," + long + ",,,",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "shipped", At: t0, Fulfillment: ful("ful_1", "shipped", "", "", "")},
			[]string{"carrier left out", "tracking_number left out"}},
		{"reason on one line", "ord_1,canceled,,,,,\"Out of\r\n  stock\",",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "canceled", Reason: "Out of stock", At: t0}, nil},
		{"long reason", "ord_1,canceled,,,,," + strings.Repeat("é", 600) + ",",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "canceled", Reason: strings.Repeat("é", 499) + "…", At: t0}, nil},
		{"tracking on a non-shipment row", "ord_1,processing,,UPS,1Z1,,,",
			&bridge.OrderUpdate{OrderID: "ord_1", Status: "processing", At: t0}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := parseStatusString("order_id,status,fulfillment_id,carrier,tracking_number,tracking_url,reason,at\n" + tc.row + "\n")
			if err != nil || len(rows) != 1 {
				t.Fatalf("rows %+v, err %v", rows, err)
			}
			r := rows[0]
			if !reflect.DeepEqual(r.update, tc.want) {
				var got []bridge.OrderUpdate
				if r.update != nil {
					got = append(got, *r.update)
				}
				t.Errorf("update:\n%s", dump(got))
			}
			if len(r.notes) != len(tc.notes) {
				t.Fatalf("notes %q, want %q", r.notes, tc.notes)
			}
			for i, n := range tc.notes {
				if !strings.Contains(r.notes[i], n) {
					t.Errorf("note %q, want %q", r.notes[i], n)
				}
			}
		})
	}
}

func TestOrderStatusHeader(t *testing.T) {
	tests := []struct {
		name, data string
		want       string // error substring; "" = no error, no rows
	}{
		{"empty file", "", ""},
		{"header being written", "order_id,sta", ""},
		{"header only", "order_id,status\n", ""},
		{"no status", "order_id,state\nord_1,shipped\n", `header has no column "status"; it has "order_id", "state"`},
		{"nothing known", "a;b\n1;2\n", `no column "order_id" or "status"`},
		{"twice", "order_id,status,Status\n", `names column "status" twice (columns 2 and 3)`},
		{"broken quote", "\"order_id,status\n", "header row"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newStatusEnv(t, Options{})
			env.write(t, tc.data, t0)
			for range 2 { // the error stays until the file is fixed
				ups, err := env.a.OrderUpdates(context.Background())
				if tc.want == "" {
					if err != nil || len(ups) != 0 {
						t.Fatalf("updates %v, err %v", ups, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), env.path) {
					t.Fatalf("err = %v, want %q and the path", err, tc.want)
				}
			}
			if tc.want != "" {
				env.write(t, "order_id,status\nord_1,shipped\n", t0)
				if ups := env.poll(t); len(ups) != 1 {
					t.Errorf("after the fix: %s", dump(ups))
				}
			}
		})
	}
}

// statusStep is one thing that happens to the status file, and what the
// next poll must return.
type statusStep struct {
	do    func(t *testing.T, env *statusEnv)
	want  []string // summaries: "ord_1 shipped"
	reads int      // file reads the poll makes
}

func write(data string, mtime time.Time) func(*testing.T, *statusEnv) {
	return func(t *testing.T, env *statusEnv) { env.write(t, data, mtime) }
}

func TestOrderUpdatesPolling(t *testing.T) {
	const header = "order_id,status\n"
	tests := []struct {
		name  string
		steps []statusStep
	}{
		{"missing file", []statusStep{
			{do: nil, want: nil, reads: 0},
			{do: write(header+"ord_1,shipped\n", t0), want: []string{"ord_1 shipped"}, reads: 1},
			{do: func(t *testing.T, env *statusEnv) { must(t, os.Remove(env.path)) }, want: nil, reads: 0},
			// Back with the same rows: already returned by this process.
			{do: write(header+"ord_1,shipped\n", t0), want: nil, reads: 1},
		}},
		{"appended rows are returned once", []statusStep{
			{do: write(header+"ord_1,processing\n", t0), want: []string{"ord_1 processing"}, reads: 1},
			{do: nil, want: nil, reads: 0},
			{do: write(header+"ord_1,processing\nord_1,shipped\nord_2,confirmed\n", t0.Add(time.Second)),
				want: []string{"ord_1 shipped", "ord_2 confirmed"}, reads: 1},
			{do: write(header+"ord_1,processing\nord_1,shipped\nord_2,confirmed\nord_1,delivered\n", t0.Add(2*time.Second)),
				want: []string{"ord_1 completed"}, reads: 1},
			{do: nil, want: nil, reads: 0},
		}},
		{"rewritten file", []statusStep{
			{do: write(header+"ord_1,shipped\nord_2,shipped\n", t0), want: []string{"ord_1 shipped", "ord_2 shipped"}, reads: 1},
			// The shop keeps only the latest status per order, sorted otherwise.
			{do: write("status,order_id\nshipped,ord_2\ndelivered,ord_1\n", t0.Add(time.Second)), want: []string{"ord_1 completed"}, reads: 1},
			// Rewritten through an empty file: nothing returned twice.
			{do: write("", t0.Add(2*time.Second)), want: nil, reads: 1},
			{do: write(header+"ord_2,shipped\nord_1,delivered\nord_3,canceled\n", t0.Add(3*time.Second)), want: []string{"ord_3 canceled"}, reads: 1},
		}},
		{"replaced by rename", []statusStep{
			{do: write(header+"ord_1,shipped\n", t0), want: []string{"ord_1 shipped"}, reads: 1},
			{do: func(t *testing.T, env *statusEnv) {
				// Same size and time, another file: read it.
				tmp := env.path + ".tmp"
				must(t, os.WriteFile(tmp, []byte(header+"ord_9,shipped\n"), 0o644))
				must(t, os.Chtimes(tmp, t0, t0))
				must(t, os.Rename(tmp, env.path))
			}, want: []string{"ord_9 shipped"}, reads: 1},
		}},
		{"partial last line", []statusStep{
			{do: write(header+"ord_1,shipped\nord_2,deliv", t0), want: []string{"ord_1 shipped"}, reads: 1},
			// Unchanged, but the left-out line makes it worth a look.
			{do: nil, want: nil, reads: 1},
			{do: write(header+"ord_1,shipped\nord_2,delivered\n", t0.Add(time.Second)), want: []string{"ord_2 completed"}, reads: 1},
			{do: nil, want: nil, reads: 0},
		}},
		{"last line without newline settles", []statusStep{
			{do: write(header+"ord_1,shipped\nord_2,delivered", t0), want: []string{"ord_1 shipped"}, reads: 1},
			{do: func(t *testing.T, env *statusEnv) { env.now = t0.Add(statusSettle) }, want: []string{"ord_2 completed"}, reads: 1},
			{do: nil, want: nil, reads: 0},
		}},
		{"racy modification time", []statusStep{
			// Modified a second ago: a write in the same clock tick would
			// leave size and time as they are, so look again.
			{do: func(t *testing.T, env *statusEnv) { env.write(t, header+"ord_1,shipped\n", env.now.Add(-time.Second)) },
				want: []string{"ord_1 shipped"}, reads: 1},
			{do: func(t *testing.T, env *statusEnv) {
				mtime := env.now.Add(-time.Second)
				env.write(t, header+"ord_1,canceled\n", mtime) // same size, same time
			}, want: []string{"ord_1 canceled"}, reads: 1},
			// Still recent: read again, and once the time is old enough
			// that nothing can hide behind it, no more.
			{do: nil, want: nil, reads: 1},
			{do: func(t *testing.T, env *statusEnv) { env.now = env.now.Add(statusRacyAfter) }, want: nil, reads: 1},
			{do: nil, want: nil, reads: 0},
		}},
		{"repeated rows", []statusStep{
			{do: write(header+"ord_1,shipped\nord_1,shipped\nord_1, Shipped \n", t0), want: []string{"ord_1 shipped", "ord_1 shipped"}, reads: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newStatusEnv(t, Options{})
			for i, st := range tc.steps {
				if st.do != nil {
					st.do(t, env)
				}
				reads := env.a.status.reads
				var got []string
				for _, u := range env.poll(t) {
					got = append(got, u.OrderID+" "+u.Status)
				}
				if !reflect.DeepEqual(got, st.want) {
					t.Errorf("step %d: got %q, want %q", i, got, st.want)
				}
				if n := env.a.status.reads - reads; n != st.reads {
					t.Errorf("step %d: %d reads, want %d", i, n, st.reads)
				}
			}
			if w := env.warnings(t); len(w) != 0 {
				t.Errorf("warnings: %s", env.log.String())
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOrderUpdatesAtDefaultsToModTime(t *testing.T) {
	env := newStatusEnv(t, Options{})
	mtime := time.Date(2026, 11, 27, 13, 14, 15, 123456789, time.FixedZone("CET", 3600))
	env.write(t, "order_id,status\nord_1,shipped\n", mtime)
	ups := env.poll(t)
	if len(ups) != 1 || !ups[0].At.Equal(mtime) || ups[0].At.Location() != time.UTC {
		t.Fatalf("updates %s, want At = %s in UTC", dump(ups), mtime.UTC())
	}
}

func TestOrderUpdatesOff(t *testing.T) {
	a := newAdapter(t, Options{Path: "c.csv"})
	ups, err := a.OrderUpdates(context.Background())
	if ups != nil || err != nil {
		t.Fatalf("OrderUpdates without a status file = %v, %v", ups, err)
	}
}

func TestOrderUpdatesErrors(t *testing.T) {
	t.Run("canceled context", func(t *testing.T) {
		env := newStatusEnv(t, Options{})
		env.write(t, "order_id,status\nord_1,shipped\n", t0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := env.a.OrderUpdates(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		// Nothing was marked as returned.
		if ups := env.poll(t); len(ups) != 1 {
			t.Errorf("after the canceled poll: %s", dump(ups))
		}
	})
	t.Run("directory", func(t *testing.T) {
		env := newStatusEnv(t, Options{})
		must(t, os.Mkdir(env.path, 0o755))
		_, err := env.a.OrderUpdates(context.Background())
		if err == nil || !strings.Contains(err.Error(), "csv: ") || !strings.Contains(err.Error(), env.path) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cut short while read", func(t *testing.T) {
		// The file claimed more bytes than it delivers: rewritten in place
		// under the read, so the last row may be a fragment.
		data := "order_id,status\nord_1,shipped\nord_2,shipped,UP"
		_, err := readStatus(context.Background(), strings.NewReader(data), int64(len(data))+10, true, ',', t0, newKeyer(), func(statusRow) {})
		if !errors.Is(err, errStatusChanged) {
			t.Fatalf("settled: err = %v", err)
		}
		_, err = readStatus(context.Background(), strings.NewReader(data), int64(len(data))+10, false, ',', t0, newKeyer(), func(statusRow) {})
		if !errors.Is(err, errStatusChanged) {
			t.Fatalf("unsettled: err = %v", err)
		}
	})
}

func TestOrderUpdatesConcurrent(t *testing.T) {
	env := newStatusEnv(t, Options{})
	var b bytes.Buffer
	b.WriteString("order_id,status\n")
	for i := range 500 {
		fmt.Fprintf(&b, "ord_%d,shipped\n", i)
	}
	env.write(t, b.String(), t0)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ups, err := env.a.OrderUpdates(context.Background())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += len(ups)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 500 {
		t.Errorf("%d updates over concurrent polls, want each of 500 once", total)
	}
}

func TestNewOrderStatusPath(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"local", Options{Path: "c.csv", OrderStatusPath: "data/status.csv"}, ""},
		{"URL", Options{Path: "c.csv", OrderStatusPath: "https://shop.example/status.csv"}, "must be a local file path"},
		{"orders file", Options{Path: "c.csv", OrdersPath: "data/orders.jsonl", OrderStatusPath: "./data/orders.jsonl"}, "needs its own"},
		{"catalog", Options{Path: "c.csv", OrderStatusPath: "c.csv"}, "needs its own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts, nil, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
