package csv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	bridge "github.com/acp-bridge/bridge"
)

// writeCatalog writes a catalog of rows rows shaped like a shop export: a
// dozen columns, products of one to four variants, values that repeat down a
// column (currency, vendor) next to values that do not (titles, ids).
func writeCatalog(tb testing.TB, rows int) (path string, products int) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "catalog.csv")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "group_id,sku,title,description,vendor,product_type,option1_name,option1_value,price,compare_at_price,currency,quantity,image_url,url,gtin")
	sizes := []string{"S", "M", "L", "XL"}
	for r, p := 0, 0; r < rows; p++ {
		n := 1 + p%4
		for v := 0; v < n && r < rows; v, r = v+1, r+1 {
			fmt.Fprintf(w, "p%07d,p%07d-%s,\"Organic cotton tee %d, relaxed fit\",\"Soft jersey tee.\nMachine washable, \"\"pre-shrunk\"\".\",Acme Apparel,Shirts,Size,%s,%d.99,,USD,%d,https://cdn.example/img/p%07d.jpg,https://shop.example/products/p%07d?variant=%d,%013d\n",
				p, p, sizes[v], p, sizes[v], 10+p%90, (p*7+v)%50, p, p, v, 4006381333931+int64(r))
		}
		products++
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, products
}

// BenchmarkReadCatalog reads a 100,000-row catalog file end to end.
//
//	go test -run='^$' -bench=ReadCatalog -benchmem ./adapters/csv/
func BenchmarkReadCatalog(b *testing.B) {
	const rows = 100_000
	path, products := writeCatalog(b, rows)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Options{Path: path}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		var gotRows, gotProducts, problems int
		err := a.ReadCatalog(ctx, func(r bridge.Record) error {
			gotProducts++
			gotRows += len(r.Variants)
			return nil
		}, func(bridge.Problem) { problems++ })
		if err != nil {
			b.Fatal(err)
		}
		if gotRows != rows || gotProducts != products || problems != 0 {
			b.Fatalf("read %d rows in %d products with %d problems; want %d rows in %d products",
				gotRows, gotProducts, problems, rows, products)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
}

// BenchmarkOrderUpdates reads a 100,000-row order status file in full (a
// changed file seen by a fresh process: every row is new).
//
//	go test -run='^$' -bench=OrderUpdates -benchmem ./adapters/csv/
func BenchmarkOrderUpdates(b *testing.B) {
	const rows = 100_000
	path := filepath.Join(b.TempDir(), "order-status.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "order_id,customer,status,carrier,tracking_number,tracking_url,reason,at")
	steps := []string{"processing", "shipped", "in_transit", "delivered"}
	for r := range rows {
		o := r / len(steps)
		fmt.Fprintf(w, "ord_%012d,Customer %d,%s,UPS,1Z%010d,https://ups.example/track?n=1Z%010d,,2026-11-%02dT10:00:00Z\n",
			o, o, steps[r%len(steps)], o, o, 1+r%28)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		a, err := New(Options{Path: "c.csv", OrderStatusPath: path}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ups, err := a.OrderUpdates(ctx)
		if err != nil || len(ups) != rows {
			b.Fatalf("%d updates, err %v", len(ups), err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteOrder appends paid orders to an orders file with real
// fsyncs: one writer at a time, and 64 at once (the load tool's connection
// count; the checkout writes each paid order at once), which group commit
// turns into a few large appends. orders/fsync tells how well it batches.
//
//	go test -run='^$' -bench=WriteOrder ./adapters/csv/
func BenchmarkWriteOrder(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			a, err := New(Options{Path: "c.csv", OrdersPath: filepath.Join(b.TempDir(), "orders.jsonl")},
				&fakeCatalog{}, newFakeReservations())
			if err != nil {
				b.Fatal(err)
			}
			var syncs, next atomic.Int64
			a.syncFile = func(f *os.File) error { syncs.Add(1); return f.Sync() }
			ctx := context.Background()
			write := func() {
				if _, err := a.WriteOrder(ctx, testOrder(fmt.Sprintf("ord_%d", next.Add(1)))); err != nil {
					b.Error(err)
				}
			}
			b.ReportAllocs()
			if writers == 1 {
				for b.Loop() {
					write()
				}
			} else {
				b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						write()
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
			b.ReportMetric(float64(b.N)/float64(max(1, syncs.Load())), "orders/fsync")
		})
	}
}
