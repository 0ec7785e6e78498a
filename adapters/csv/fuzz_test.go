package csv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	bridge "github.com/acp-bridge/bridge"
)

// FuzzReadCatalog feeds arbitrary bytes as the catalog. Whatever the input,
// the scan must not panic, and what it emits must hold the promises the
// mapping relies on.
//
//	go test -run='^$' -fuzz=FuzzReadCatalog -fuzztime=60s ./adapters/csv/
func FuzzReadCatalog(f *testing.F) {
	const maxFuzzInput = 1024
	addFixtureSeeds(f, "testdata/*.*sv")
	for _, s := range []string{
		"",
		"\uFEFF",
		"group_id,sku\n",
		"group_id,sku\na,1\na,1\nb,2\na,3\n",
		"group_id,sku,quantity\na,1,9223372036854775808\na,2,-0\n",
		"sku,group_id\n\"a\nb\",g\ng,\"\"\"\"\n",
		"group_id,sku\n\"a,1\n",
		"group_id,sku\r\na,1\r\n\r\n,\r\n",
		"group_id,group_id\n",
		"\xff,sku\n",
	} {
		f.Add([]byte(s), byte(0))
	}
	delims := []rune{',', ';', '\t'}
	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		if len(data) > maxFuzzInput {
			// Go's minimizer tries every byte range of a new input (n²
			// runs); on inputs of kilobytes it spends the whole fuzz time
			// minimizing instead of fuzzing. Every row rule shows on a few
			// short lines.
			t.Skip("input too long")
		}
		opts := Options{Path: "fuzz.csv", Delimiter: delims[int(delim)%len(delims)]}
		if delim&0x80 != 0 {
			opts.GroupColumn, opts.IDColumn = "sku", "sku"
		}
		a, err := New(opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		lastLine := 0
		err = a.readCatalog(context.Background(), strings.NewReader(string(data)),
			func(r bridge.Record) error {
				if r.Key == "" || keys[r.Key] {
					t.Fatalf("record key %q empty or repeated", r.Key)
				}
				keys[r.Key] = true
				ids := map[string]bool{}
				if len(r.Variants) == 0 || len(r.Variants) != len(r.VariantLines) {
					t.Fatalf("record %q: %d variants, %d lines", r.Key, len(r.Variants), len(r.VariantLines))
				}
				if r.Line <= lastLine || r.Line != r.VariantLines[0] {
					t.Fatalf("record %q at line %d after line %d, first variant line %d", r.Key, r.Line, lastLine, r.VariantLines[0])
				}
				if r.Product == nil || r.Product[a.opts.GroupColumn] != r.Key {
					t.Fatalf("record %q: product map %v lacks its key", r.Key, r.Product)
				}
				for i, v := range r.Variants {
					if r.VariantLines[i] < r.Line || (i > 0 && r.VariantLines[i] <= r.VariantLines[i-1]) {
						t.Fatalf("record %q: variant lines %v", r.Key, r.VariantLines)
					}
					lastLine = r.VariantLines[i]
					if v[a.opts.GroupColumn] != r.Key {
						t.Fatalf("record %q: variant %d has group %v", r.Key, i, v[a.opts.GroupColumn])
					}
					id, _ := v[a.opts.IDColumn].(string)
					if id == "" || ids[id] {
						t.Fatalf("record %q: variant id %q empty or repeated in the product", r.Key, id)
					}
					ids[id] = true
					for col, val := range v {
						s, ok := val.(string)
						if !ok || !utf8.ValidString(s) || col == "" {
							t.Fatalf("record %q: column %q = %#v", r.Key, col, val)
						}
					}
				}
				return nil
			},
			func(p bridge.Problem) {
				if p.Line <= 0 || p.Message == "" || !utf8.ValidString(p.Key) || !utf8.ValidString(p.Message) {
					t.Fatalf("problem %+v", p)
				}
			})
		if err != nil && !strings.HasPrefix(err.Error(), "csv: catalog fuzz.csv") {
			t.Fatalf("unexpected kind of error: %v", err)
		}
	})
}

// FuzzOrderStatus feeds arbitrary bytes as the order status file. Whatever
// the input, reading must not panic, every update must be one the consumer
// can apply as it is, every skipped row must say why, and a last line
// without a newline must change nothing until the file settles.
//
//	go test -run='^$' -fuzz=FuzzOrderStatus -fuzztime=60s ./adapters/csv/
func FuzzOrderStatus(f *testing.F) {
	const maxFuzzInput = 1024 // see FuzzReadCatalog
	addFixtureSeeds(f, "testdata/orderstatus/*")
	for _, s := range []string{
		"",
		"\uFEFF",
		"order_id,status\n",
		"ORDER_ID , Status\nord_1,shipped\nord_1,shipped\n",
		"order_id,status,fulfillment_id,carrier,tracking_number,tracking_url,reason,at\nord_1,in transit,f,UPS,1,https://x.example/,\"a\nb\",2026-11-27\nord_1,delivered,f,,2,,,\n",
		"order_id,status,tracking_url\nord_1,shipped,javascript:x\nord_1,shipped,https://\n",
		"order_id,status,at\nord_1,shipped,2026-02-30\nord_1,shipped,0000-01-01T00:00:00Z\n",
		"order_id,status\n\"ord_1,shipped\n",
		"order_id,status\nord_1,shipped,extra\n,\n",
		"order_id,order_id,status\n",
		"order_id,status\n\xff,shipped\nord\x00,shipped\n",
	} {
		f.Add([]byte(s), byte(0))
	}
	delims := []rune{',', ';', '\t'}
	keys := newKeyer()
	shipment := map[string]string{"shipped": "shipped", "in_transit": "shipped", "out_for_delivery": "shipped", "delivered": "completed"}
	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		if len(data) > maxFuzzInput {
			t.Skip("input too long")
		}
		d := delims[int(delim)%len(delims)]
		read := func(data []byte, settled bool) ([]statusRow, int64, error) {
			var rows []statusRow
			tail, err := readStatus(context.Background(), bytes.NewReader(data), int64(len(data)), settled, d, t0, keys,
				func(r statusRow) { rows = append(rows, r) })
			return rows, tail, err
		}
		rows, tail, err := read(data, false)
		if err != nil {
			if errors.Is(err, errStatusChanged) || !strings.HasPrefix(err.Error(), "header") {
				t.Fatalf("unexpected kind of error: %v", err)
			}
			return
		}
		for _, r := range rows {
			if r.line <= 0 {
				t.Fatalf("row at line %d", r.line)
			}
			for _, n := range r.notes {
				if n == "" || !utf8.ValidString(n) || strings.ContainsAny(n, "\r\n") {
					t.Fatalf("line %d: note %q", r.line, n)
				}
			}
			u := r.update
			if u == nil {
				if len(r.notes) == 0 || r.orderID != "" && !validID(r.orderID) {
					t.Fatalf("line %d: skipped row %+v", r.line, r)
				}
				continue
			}
			if u.OrderID == "" || u.OrderID != r.orderID || !validID(u.OrderID) || strings.TrimSpace(u.OrderID) != u.OrderID || !utf8.ValidString(u.OrderID) {
				t.Fatalf("line %d: order id %q", r.line, u.OrderID)
			}
			if u.At.IsZero() || u.At.Location() != time.UTC {
				t.Fatalf("line %d: at %v", r.line, u.At)
			}
			if !utf8.ValidString(u.Reason) || utf8.RuneCountInString(u.Reason) > maxReasonRunes || strings.ContainsFunc(u.Reason, unicode.IsControl) {
				t.Fatalf("line %d: reason %q", r.line, u.Reason)
			}
			fl := u.Fulfillment
			if fl == nil {
				switch u.Status {
				case bridge.OrderConfirmed, bridge.OrderProcessing, bridge.OrderCompleted, bridge.OrderCanceled:
				default:
					t.Fatalf("line %d: status %q without a fulfillment", r.line, u.Status)
				}
				continue
			}
			if shipment[fl.Status] != u.Status || fl.Type != "shipping" || fl.ID == "" || !validID(fl.ID) {
				t.Fatalf("line %d: order %q with fulfillment %+v", r.line, u.Status, *fl)
			}
			if fl.TrackingURL != "" && !validTrackingURL(fl.TrackingURL) {
				t.Fatalf("line %d: tracking URL %q", r.line, fl.TrackingURL)
			}
			if !validText(fl.Carrier, maxCarrier) || !validText(fl.TrackingNumber, maxTracking) || !utf8.ValidString(fl.Carrier+fl.TrackingNumber) {
				t.Fatalf("line %d: carrier %q, number %q", r.line, fl.Carrier, fl.TrackingNumber)
			}
		}
		// The unfinished last line is left out: the same rows as the file
		// cut after its last newline, read as final.
		complete := data[:int64(len(data))-tail]
		if len(complete) > 0 && complete[len(complete)-1] != '\n' {
			t.Fatalf("tail %d leaves %q", tail, complete)
		}
		again, tail2, err := read(complete, true)
		if err != nil || tail2 != 0 || !reflect.DeepEqual(again, rows) {
			t.Fatalf("the complete lines alone read differently: %v, tail %d\n%+v\nwant\n%+v", err, tail2, again, rows)
		}
	})
}

// addFixtureSeeds seeds f with the files matching glob, each with the
// delimiter code its name implies (.tsv: tab, "semicolon": ';', else ',').
func addFixtureSeeds(f *testing.F, glob string) {
	f.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		delim := byte(0)
		switch {
		case strings.HasSuffix(name, ".tsv"):
			delim = 2
		case strings.Contains(name, "semicolon"):
			delim = 1
		}
		f.Add(data, delim)
	}
}
