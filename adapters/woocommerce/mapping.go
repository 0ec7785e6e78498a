package woocommerce

// DefaultMapping is the field mapping the adapter ships, in the mapping
// package's YAML form. Product and variant ids must stay WooCommerce's ids:
// stock checks and the order write-back find the products by them. The
// brand falls back to the shop's name (own-brand goods): feeds require
// one, and most shops record none. Admins override single fields in the
// config's mapping: section.
const DefaultMapping = `# Default mapping of the WooCommerce adapter.
product:
  id: product.id
  title: product.name | truncate 150
  description_html: product.description
  description: product.description | default product.short_description | strip_html | truncate 5000
  url: product.permalink
  brand: product.brand | default merchant.name
  category: product.category
  image: product.image
  images: product.images
variant:
  id: variant.id
  sku: variant.sku
  url: variant.permalink
  price: variant.price
  list_price: variant.list_price
  quantity: variant.stock_quantity
  availability: variant.availability | default variant.stock_quantity | availability
  image: variant.image
  weight: variant.weight
  weight_unit: variant.weight_unit
  digital: variant.digital
  options:
    Color: variant.options.color
    Size: variant.options.size
`
