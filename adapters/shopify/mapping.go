package shopify

// DefaultMapping is the field mapping the Shopify adapter ships, in the
// mapping package's YAML form, over the records ReadCatalog emits (see
// the README's Shopify section for every field). Admins override single
// fields in the config's mapping: section.
func DefaultMapping() string { return defaultMapping }

const defaultMapping = `# Default mapping of the Shopify adapter.
product:
  id: product.id
  title: product.title | truncate 150
  description: product.description_html | strip_html | truncate 5000
  description_html: product.description_html
  url: product.url
  brand: product.vendor
  category: product.product_type
  image: product.image
  images: product.images
variant:
  id: variant.id
  sku: variant.sku
  title: variant.title
  url: variant.url
  price: variant.price
  list_price: variant.compare_at_price
  currency: variant.currency
  quantity: variant.quantity
  availability: variant.availability
  condition: '"new"'
  options:
    Color: variant.option_color
    Size: variant.option_size
`
