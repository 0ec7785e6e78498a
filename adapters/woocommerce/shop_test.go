package woocommerce

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/acp-bridge/bridge/internal/fakewoo"
)

// newShop starts a fake shop over TLS holding testdata/shop.json.
func newShop(t *testing.T) *fakewoo.Server {
	t.Helper()
	shop := fakewoo.New(t)
	loadShop(t, shop, "testdata/shop.json")
	return shop
}

// loadShop adds the products of a fixture file: a list of {product,
// variations}.
func loadShop(t *testing.T, shop *fakewoo.Server, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var items []struct {
		Product    fakewoo.Product   `json:"product"`
		Variations []fakewoo.Product `json:"variations"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, it := range items {
		p := it.Product
		p.Children = it.Variations
		shop.AddProduct(p)
	}
}
