package csv_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	csvstore "github.com/acp-bridge/bridge/adapters/csv"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/mapping"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"gopkg.in/yaml.v3"
)

// TestHoldsAcrossExports runs the real pieces (CSV file, default mapping,
// syncer, SQLite) through the life of a CSV shop: the bridge sells, the shop
// imports the order and exports a new CSV, the bridge syncs it.
func TestHoldsAcrossExports(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "release on newer export", true: "keep holds"}[keep], func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			db, err := sqlite.Open(ctx, filepath.Join(dir, "bridge.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			path := filepath.Join(dir, "catalog.csv")
			export := func(qty string, at time.Time) {
				t.Helper()
				data := "group_id,sku,title,description,url,brand,image_url,price,quantity\n" +
					"tee,TEE-1,Tee,A tee,https://shop.example/tee,Acme,https://shop.example/tee.jpg,10.00," + qty + "\n"
				if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(path, at, at); err != nil {
					t.Fatal(err)
				}
			}
			opts := csvstore.Options{Path: path, OrdersPath: filepath.Join(dir, "orders.jsonl"), ReleaseHoldsOnNewerExport: !keep}
			ad, err := csvstore.New(opts, db, db)
			if err != nil {
				t.Fatal(err)
			}
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(csvstore.DefaultMapping(opts)), &n); err != nil {
				t.Fatal(err)
			}
			m, err := mapping.Compile(mapping.MerchantFields{Name: "Shop", Currency: "USD"}, mapping.Source{File: "default", Node: &n})
			if err != nil {
				t.Fatal(err)
			}
			syncer := &catalog.Syncer{Store: db, Pipeline: &catalog.Pipeline{Source: ad, Mapping: m,
				Settings: feed.Settings{Merchant: bridge.Merchant{Name: "Shop", Currency: "USD", Country: "US"}}}}
			stock := func(want int64) {
				t.Helper()
				level, err := ad.Stock(ctx, "TEE-1")
				if err != nil || !level.Tracked {
					t.Fatalf("Stock = %+v, %v; want tracked", level, err)
				}
				if got, err := level.Available(ctx, db, "TEE-1"); err != nil || got != want {
					t.Fatalf("available = %d, %v; want %d", got, err, want)
				}
			}

			export("5", time.Now().Add(-time.Hour))
			if _, err := syncer.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			stock(5)
			order := bridge.Order{ID: "ord_1", Lines: []bridge.OrderLine{{VariantID: "TEE-1", Quantity: 2}}}
			if _, err := ad.WriteOrder(ctx, order); err != nil {
				t.Fatal(err)
			}
			stock(3)
			// A sync of the same, older export keeps the hold.
			if _, err := syncer.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			stock(3)
			// The shop imports the order and exports again: 3 left.
			export("3", time.Now().Add(time.Second))
			if _, err := syncer.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if keep {
				stock(1) // the admin said exports never include the orders
			} else {
				stock(3) // the sale is in the export now; counting it again would show 1
			}
		})
	}
}
