// Package cataloggen writes large synthetic CSV catalogs in the demo
// catalog's columns, for benchmarks and load tests of the catalog pipeline
// (cmd/gencatalog is its command line).
package cataloggen

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

var header = []string{"group_id", "sku", "title", "description", "url", "variant_url", "brand", "category",
	"image_url", "variant_image_url", "price", "compare_at_price", "quantity", "availability", "availability_date",
	"color", "size", "gtin", "condition", "weight", "weight_unit"}

var (
	colors     = []string{"Black", "White", "Red", "Navy", "Olive", "Sand", "Grey", "Plum"}
	sizes      = []string{"XS", "S", "M", "L", "XL"}
	brands     = []string{"Northpeak", "Demo Outfitters", "Hydrate Co", "Flowform", "Lumen Works", "Paperline"}
	categories = []string{"Apparel > Shirts", "Apparel > Shoes", "Home > Kitchen", "Sports > Yoga", "Office > Notebooks"}
	nouns      = []string{"Tee", "Runner", "Beanie", "Tote", "Bottle", "Shell", "Mat", "Lamp", "Notebook", "Sock"}
	adjectives = []string{"Classic", "Packable", "Merino", "Canvas", "Insulated", "Natural", "Linen", "Trail"}
)

const lorem = "Made to last with honest materials and a relaxed fit. Machine washable, easy to care for, " +
	"and designed for everyday use in the city or on the trail. Ships in recyclable packaging."

// Write writes a header and n variant rows to w. Products have 1–5 variants
// (3 on average) with realistic text sizes; the output is the same for the
// same n and seed.
func Write(w io.Writer, n int, seed uint64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := csv.NewWriter(bw)
	if err := cw.Write(header); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	row := make([]string, len(header))
	written, product := 0, 0
	for written < n {
		product++
		group := "p" + strconv.Itoa(product)
		title := adjectives[rng.IntN(len(adjectives))] + " " + nouns[rng.IntN(len(nouns))] + " " + strconv.Itoa(product)
		desc := "<p>" + title + ". " + lorem + "</p>"
		brand := brands[rng.IntN(len(brands))]
		cat := categories[rng.IntN(len(categories))]
		url := "https://shop.example/products/" + group
		price := strconv.Itoa(5+rng.IntN(300)) + "." + fmt.Sprintf("%02d", rng.IntN(100))
		count := min(1+rng.IntN(5), n-written)
		for v := 0; v < count; v++ {
			sku := group + "-" + strconv.Itoa(v+1)
			compare := ""
			if rng.IntN(5) == 0 {
				compare = strconv.Itoa(400+rng.IntN(100)) + ".00"
			}
			qty := strconv.Itoa(rng.IntN(40) - 5)
			copy(row, []string{group, sku, title, desc, url, url + "?variant=" + sku, brand, cat,
				"https://cdn.shop.example/" + group + ".jpg", "https://cdn.shop.example/" + sku + ".jpg",
				price, compare, qty, "", "", colors[rng.IntN(len(colors))], sizes[v%len(sizes)], "", "new", "0.4", "kg"})
			if err := cw.Write(row); err != nil {
				return err
			}
			written++
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}
