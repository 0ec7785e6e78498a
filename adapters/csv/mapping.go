package csv

import (
	"fmt"
	"strings"
)

// DefaultMapping returns the field mapping the CSV adapter ships, in the
// mapping package's YAML form, for the columns opts names (group, id and stock
// columns are configurable; the other column names are the documented
// defaults of examples/catalog.csv). Admins override single fields in the
// config's mapping: section.
func DefaultMapping(opts Options) string {
	group, id, stock := opts.GroupColumn, opts.IDColumn, opts.StockColumn
	if group == "" {
		group = DefaultGroupColumn
	}
	if id == "" {
		id = DefaultIDColumn
	}
	if stock == "" {
		stock = DefaultStockColumn
	}
	avail := "variant.availability | default " + path("variant", stock) + " | availability"
	if !plain(stock) {
		avail = fmt.Sprintf(`'{{ index .variant %q | availability }}'`, stock)
	}
	return fmt.Sprintf(defaultMapping, path("product", group), path("variant", id), path("variant", stock), avail)
}

// path writes a column reference; columns whose names are not plain words
// cannot be paths, so the mapping then reads them through a template.
func path(root, col string) string {
	if plain(col) {
		return root + "." + col
	}
	return fmt.Sprintf(`'{{ index .%s %q }}'`, root, col)
}

func plain(col string) bool {
	return col != "" && strings.IndexFunc(col, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0
}

const defaultMapping = `# Default mapping of the CSV adapter (generated for the configured columns).
product:
  id: %[1]s
  title: product.title | truncate 150
  description: product.description | strip_html | truncate 5000
  url: product.url
  brand: product.brand
  category: product.category
  image: product.image_url
variant:
  id: %[2]s
  sku: %[2]s
  url: variant.variant_url | default variant.url
  gtin: variant.gtin
  mpn: variant.mpn
  price: variant.price
  list_price: variant.compare_at_price
  currency: variant.currency
  quantity: %[3]s
  availability: %[4]s
  availability_date: variant.availability_date
  image: variant.variant_image_url
  images: variant.additional_image_urls | split
  condition: variant.condition | default "new" | lower
  weight: variant.weight
  weight_unit: variant.weight_unit
  options:
    Color: variant.color
    Size: variant.size
`
