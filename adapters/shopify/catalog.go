package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/shopspring/decimal"
)

// What the adapter reads of a product, its media and its variants. The
// same selections serve paged reads and bulk operations (which take no
// first: arguments), so the two cannot drift apart.
const (
	productFields = `id legacyResourceId title handle descriptionHtml vendor productType status tags updatedAt onlineStoreUrl`
	mediaFields   = `... on MediaImage { id image { url altText } }`
	// mediaPage is how many images a paged read takes per product.
	mediaPage = 5
	// maxCost is Shopify's limit on one query's requested cost.
	maxCost = 1000
	// readOverlap is how far before the latest change already seen an
	// incremental read (products, order news) starts again.
	readOverlap = 2 * time.Minute
)

// variantFields selects a variant; with locations configured, the
// available quantity at each (aliased loc0, loc1 …).
func (a *Adapter) variantFields() string {
	var b strings.Builder
	b.WriteString(`id legacyResourceId title sku barcode price compareAtPrice inventoryQuantity inventoryPolicy selectedOptions { name value } inventoryItem { id tracked`)
	for i, l := range a.locIDs {
		fmt.Fprintf(&b, ` loc%d: inventoryLevel(locationId: %q) { quantities(names: ["available"]) { name quantity } }`, i, l)
	}
	b.WriteString(` }`)
	return b.String()
}

// Page sizes under Shopify's documented cost rules (an object costs 1, a
// connection 2 plus first × one node): a variant costs 3 (itself, its
// options, its inventory item) plus 2 per location; a product 1, its
// media connection 2 + mediaPage × 2, its variant connection 2 +
// variants × that. Pages are as big as fit in maxCost.
func (a *Adapter) pageSizes() (products, variants, morVariants int) {
	variantNode := 3 + 2*len(a.locIDs)
	variants = max(1, min(25, (maxCost-2-1-2-2-2*mediaPage-2)/variantNode))
	productNode := 1 + (2 + 2*mediaPage) + (2 + variants*variantNode)
	products = max(1, min(250, (maxCost-2)/productNode))
	morVariants = max(1, min(250, (maxCost-2-1-2)/variantNode))
	return products, variants, morVariants
}

type pageInfo struct {
	HasNextPage bool   `json:"hasNextPage"`
	EndCursor   string `json:"endCursor"`
}

// gqlProduct is a product as a query or a bulk line returns it.
type gqlProduct struct {
	ID              string   `json:"id"`
	LegacyID        string   `json:"legacyResourceId"`
	Title           string   `json:"title"`
	Handle          string   `json:"handle"`
	DescriptionHTML string   `json:"descriptionHtml"`
	Vendor          string   `json:"vendor"`
	ProductType     string   `json:"productType"`
	Status          string   `json:"status"`
	Tags            []string `json:"tags"`
	UpdatedAt       string   `json:"updatedAt"`
	OnlineStoreURL  *string  `json:"onlineStoreUrl"`
	Media           *struct {
		Nodes []gqlMedia `json:"nodes"`
	} `json:"media,omitempty"`
	Variants *struct {
		PageInfo pageInfo     `json:"pageInfo"`
		Nodes    []gqlVariant `json:"nodes"`
	} `json:"variants,omitempty"`
}

type gqlMedia struct {
	ID    string `json:"id"`
	Image *struct {
		URL     string  `json:"url"`
		AltText *string `json:"altText"`
	} `json:"image"`
	ParentID string `json:"__parentId"`
}

type gqlVariant struct {
	ID                string  `json:"id"`
	LegacyID          string  `json:"legacyResourceId"`
	Title             string  `json:"title"`
	SKU               *string `json:"sku"`
	Barcode           *string `json:"barcode"`
	Price             string  `json:"price"`
	CompareAtPrice    *string `json:"compareAtPrice"`
	InventoryQuantity *int64  `json:"inventoryQuantity"`
	InventoryPolicy   string  `json:"inventoryPolicy"`
	SelectedOptions   []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"selectedOptions"`
	// InventoryItem holds id, tracked and the aliased levels (loc0 …).
	InventoryItem map[string]json.RawMessage `json:"inventoryItem"`
	ParentID      string                     `json:"__parentId"`
}

// product is a product as the adapter keeps it between reads.
type product struct {
	gqlProduct
	images   []gqlMedia
	variants []gqlVariant
}

// catalogCache is what the last full read returned, with the incremental
// reads since merged in.
type catalogCache struct {
	products map[string]*product // by product gid
	currency string
	fullAt   time.Time // start of the last full read
	readAt   time.Time // start of the last read of any kind
	// maxUpdated is the latest updatedAt of a product read, by Shopify's
	// clock: incremental reads start from it, not from the bridge's clock,
	// which may be ahead of Shopify's and skip changes.
	maxUpdated time.Time
}

func (c *catalogCache) clone() *catalogCache {
	n := *c
	n.products = maps.Clone(c.products)
	return &n
}

func (c *catalogCache) variantCount() int {
	n := 0
	for _, p := range c.products {
		n += len(p.variants)
	}
	return n
}

// put keeps p if it may be sold (ACTIVE), else drops it.
func (c *catalogCache) put(p *product) {
	if t, err := time.Parse(time.RFC3339, p.UpdatedAt); err == nil && t.After(c.maxUpdated) {
		c.maxUpdated = t
	}
	if p.Status != "ACTIVE" {
		delete(c.products, p.ID)
		return
	}
	c.products[p.ID] = p
}

// ReadCatalog emits every active product of the shop. A full read (bulk
// operation or pages) happens first and then every FullReadEvery; the
// reads between ask only for products updated since the last read, plus
// those webhooks named (MarkProducts, MarkInventoryItems), and merge them
// into what the last full read returned. Either way every product is
// emitted, since a sync builds a whole snapshot.
func (a *Adapter) ReadCatalog(ctx context.Context, emit func(bridge.Record) error, skip func(bridge.Problem)) error {
	a.readMu.Lock()
	defer a.readMu.Unlock()
	start := time.Now()
	a.mu.Lock()
	cache := a.cache
	dirty, items := a.dirty, a.dirtyItems
	a.dirty, a.dirtyItems = map[string]bool{}, map[string]bool{}
	a.mu.Unlock()

	var err error
	if cache == nil || start.Sub(cache.fullAt) >= a.opts.FullReadEvery {
		cache, err = a.readFull(ctx, cache, skip)
	} else {
		cache, err = a.readChanges(ctx, cache, dirty, items, skip)
	}
	if err != nil {
		// Keep the marks for the next read.
		a.mu.Lock()
		maps.Copy(a.dirty, dirty)
		maps.Copy(a.dirtyItems, items)
		a.mu.Unlock()
		return err
	}
	cache.readAt = start
	a.mu.Lock()
	a.cache, a.sourceTime = cache, start
	a.mu.Unlock()

	ids := slices.Collect(maps.Keys(cache.products))
	slices.SortFunc(ids, func(x, y string) int {
		if len(x) != len(y) {
			return len(x) - len(y) // numeric order of same-prefix gids
		}
		return strings.Compare(x, y)
	})
	for _, id := range ids {
		if err := emit(a.record(cache.products[id], cache.currency)); err != nil {
			return err
		}
	}
	return nil
}

// readFull reads the whole catalog, by bulk operation when Options.Bulk
// says so, falling back to pages when the bulk run cannot be had.
func (a *Adapter) readFull(ctx context.Context, prev *catalogCache, skip func(bridge.Problem)) (*catalogCache, error) {
	start := time.Now()
	cur, err := a.shopCurrency(ctx)
	if err != nil {
		return nil, err
	}
	next := &catalogCache{products: map[string]*product{}, currency: cur, fullAt: start}
	bulk := a.opts.Bulk == BulkAlways ||
		a.opts.Bulk == BulkAuto && (prev == nil || prev.variantCount() > a.opts.BulkThreshold)
	if bulk {
		err := a.readBulk(ctx, next, skip)
		if err == nil {
			return next, nil
		}
		if ctx.Err() != nil || !errors.Is(err, errBulkUnavailable) {
			return nil, err
		}
		a.log.Warn("shopify bulk read unavailable; reading the catalog page by page", "err", err)
		next.products = map[string]*product{}
	}
	if err := a.readPaged(ctx, "status:active", next); err != nil {
		return nil, err
	}
	return next, nil
}

// readChanges merges products updated since the last read, and those
// webhooks marked, into a copy of cache.
func (a *Adapter) readChanges(ctx context.Context, cache *catalogCache, dirty, items map[string]bool, _ func(bridge.Problem)) (*catalogCache, error) {
	next := cache.clone()
	// From the latest change already read, by Shopify's clock (the
	// bridge's may run ahead of it), with an overlap for changes the
	// search index had not listed yet: a product read twice costs nothing
	// but the call.
	from := cache.maxUpdated
	if from.IsZero() {
		// Nothing read yet (a shop without products): everything.
		from = time.Unix(0, 0).Add(readOverlap)
	}
	since := from.Add(-readOverlap).UTC().Format(time.RFC3339)
	if err := a.readPaged(ctx, "updated_at:>'"+since+"'", next); err != nil {
		return nil, err
	}
	if len(items) > 0 {
		for _, p := range cache.products {
			for _, v := range p.variants {
				if id, _ := itemID(v); items[id] {
					dirty[p.ID] = true
				}
			}
		}
	}
	if err := a.readMarked(ctx, slices.Sorted(maps.Keys(dirty)), next); err != nil {
		return nil, err
	}
	return next, nil
}

// readMarked reads the products ids by nodes(ids:), a direct lookup: a
// null node is a product deleted in the shop, so it leaves c. The search
// index (products(query: "id:…")) would not do: it lags behind writes, and
// a product it does not list yet is not a deleted one.
func (a *Adapter) readMarked(ctx context.Context, ids []string, c *catalogCache) error {
	perPage, variants, _ := a.pageSizes()
	q := `query MarkedProducts($ids: [ID!]!, $variants: Int!) {
  nodes(ids: $ids) { ... on Product { ` + productFields + `
    media(first: ` + fmt.Sprint(mediaPage) + `) { nodes { ` + mediaFields + ` } }
    variants(first: $variants) { pageInfo { hasNextPage endCursor } nodes { ` + a.variantFields() + ` } } } } }`
	for len(ids) > 0 {
		batch := ids[:min(perPage, len(ids))]
		var out struct {
			Nodes []*gqlProduct `json:"nodes"`
		}
		err := a.gql.query(ctx, q, map[string]any{"ids": batch, "variants": variants}, &out)
		var ge *GraphQLError
		if errors.As(err, &ge) && ge.has("MAX_COST_EXCEEDED") && perPage > 1 {
			perPage /= 2
			continue
		}
		if err != nil {
			return fmt.Errorf("shopify: read marked products: %w", err)
		}
		if len(out.Nodes) != len(batch) {
			return fmt.Errorf("shopify: read marked products: %d nodes for %d ids", len(out.Nodes), len(batch))
		}
		for i, gp := range out.Nodes {
			if gp == nil || gp.ID == "" {
				delete(c.products, batch[i]) // deleted in the shop
				continue
			}
			if err := a.putProduct(ctx, *gp, c); err != nil {
				return err
			}
		}
		ids = ids[len(batch):]
	}
	return nil
}

// productsQuery is the paged read of products matching $query, with the
// first page of each one's variants.
func (a *Adapter) productsQuery() string {
	return `query Products($first: Int!, $after: String, $query: String, $variants: Int!) {
  products(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes { ` + productFields + `
      media(first: ` + fmt.Sprint(mediaPage) + `) { nodes { ` + mediaFields + ` } }
      variants(first: $variants) { pageInfo { hasNextPage endCursor } nodes { ` + a.variantFields() + ` } } } } }`
}

func (a *Adapter) variantsQuery() string {
	return `query MoreVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) { variants(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { ` + a.variantFields() + ` } } } }`
}

// putProduct keeps gp in c, with its further variants read by nested
// paging.
func (a *Adapter) putProduct(ctx context.Context, gp gqlProduct, c *catalogCache) error {
	_, _, more := a.pageSizes()
	p := &product{gqlProduct: gp}
	if gp.Media != nil {
		p.images = gp.Media.Nodes
	}
	if gp.Variants != nil {
		p.variants = gp.Variants.Nodes
		pi := gp.Variants.PageInfo
		for pi.HasNextPage {
			var mv struct {
				Product *struct {
					Variants struct {
						PageInfo pageInfo     `json:"pageInfo"`
						Nodes    []gqlVariant `json:"nodes"`
					} `json:"variants"`
				} `json:"product"`
			}
			if err := a.gql.query(ctx, a.variantsQuery(), map[string]any{"id": gp.ID, "first": more, "after": pi.EndCursor}, &mv); err != nil {
				return fmt.Errorf("shopify: read variants of %s: %w", gp.ID, err)
			}
			if mv.Product == nil {
				break // deleted meanwhile; the next read drops it
			}
			p.variants = append(p.variants, mv.Product.Variants.Nodes...)
			pi = mv.Product.Variants.PageInfo
		}
	}
	p.Media, p.Variants = nil, nil
	c.put(p)
	return nil
}

// readPaged reads every product matching q into c, page by page, each
// product's further variants by nested paging.
func (a *Adapter) readPaged(ctx context.Context, q string, c *catalogCache) error {
	perPage, variants, _ := a.pageSizes()
	query := a.productsQuery()
	var after any
	for {
		var out struct {
			Products struct {
				PageInfo pageInfo     `json:"pageInfo"`
				Nodes    []gqlProduct `json:"nodes"`
			} `json:"products"`
		}
		err := a.gql.query(ctx, query, map[string]any{"first": perPage, "after": after, "query": q, "variants": variants}, &out)
		var ge *GraphQLError
		if errors.As(err, &ge) && ge.has("MAX_COST_EXCEEDED") && perPage > 1 {
			perPage /= 2 // Shopify counted more than its documented rules say
			continue
		}
		if err != nil {
			return fmt.Errorf("shopify: read products: %w", err)
		}
		for _, gp := range out.Products.Nodes {
			if err := a.putProduct(ctx, gp, c); err != nil {
				return err
			}
		}
		if !out.Products.PageInfo.HasNextPage {
			return nil
		}
		after = out.Products.PageInfo.EndCursor
	}
}

func (a *Adapter) shopCurrency(ctx context.Context) (string, error) {
	var out struct {
		Shop struct {
			CurrencyCode string `json:"currencyCode"`
		} `json:"shop"`
	}
	if err := a.gql.query(ctx, `query Shop { shop { currencyCode } }`, nil, &out); err != nil {
		return "", fmt.Errorf("shopify: read the shop's currency: %w", err)
	}
	if out.Shop.CurrencyCode == "" {
		return "", errors.New("shopify: the shop has no currency code")
	}
	return out.Shop.CurrencyCode, nil
}

// itemID returns a variant's inventory item gid and whether it is tracked.
func itemID(v gqlVariant) (string, bool) {
	var id string
	var tracked bool
	_ = json.Unmarshal(v.InventoryItem["id"], &id)
	_ = json.Unmarshal(v.InventoryItem["tracked"], &tracked)
	return id, tracked
}

// stock is a variant's quantity and whether it can run out: tracked, and
// not allowed to oversell (inventoryPolicy CONTINUE). The quantity is
// inventoryQuantity, Shopify's available figure over every location; with
// locations configured, the sum available there, but never more than
// that total: orderCreate takes the units wherever Shopify routes the
// order, and the bridge's holds end once the order is written
// (CountsWrittenOrders), so only the total is sure to count every written
// order. A location sum above it (another location oversold, negative)
// would sell units Shopify refuses (INVENTORY_CLAIM_FAILED: a paid order
// canceled).
func (a *Adapter) stock(v gqlVariant) (qty int64, limited bool) {
	_, tracked := itemID(v)
	if v.InventoryQuantity != nil {
		qty = *v.InventoryQuantity
	}
	if len(a.locIDs) > 0 {
		total := qty
		qty = 0
		for i := range a.locIDs {
			var lvl *struct {
				Quantities []struct {
					Name     string `json:"name"`
					Quantity int64  `json:"quantity"`
				} `json:"quantities"`
			}
			_ = json.Unmarshal(v.InventoryItem[fmt.Sprintf("loc%d", i)], &lvl)
			if lvl == nil {
				continue // not stocked at that location
			}
			for _, q := range lvl.Quantities {
				if q.Name == "available" {
					qty += q.Quantity
				}
			}
		}
		if v.InventoryQuantity != nil {
			qty = min(qty, total)
		}
	}
	return qty, tracked && v.InventoryPolicy != "CONTINUE"
}

// record is the store record of p that the mapping reads. Ids are the
// numeric ids (what merchants see in their admin); the gids travel along.
func (a *Adapter) record(p *product, currency string) bridge.Record {
	url := a.productURL(p)
	prod := map[string]any{
		"id": p.LegacyID, "gid": p.ID, "title": p.Title, "handle": p.Handle, "description_html": p.DescriptionHTML,
		"vendor": p.Vendor, "brand": p.Vendor, "product_type": p.ProductType, "status": strings.ToLower(p.Status), "url": url,
		"updated_at": p.UpdatedAt,
	}
	tags := make([]any, len(p.Tags))
	for i, t := range p.Tags {
		tags[i] = t
	}
	prod["tags"] = tags
	var images []any
	for _, m := range p.images {
		if m.Image == nil || m.Image.URL == "" {
			continue // a video or a 3D model
		}
		if _, ok := prod["image"]; !ok {
			prod["image"] = m.Image.URL
			continue
		}
		images = append(images, m.Image.URL)
	}
	prod["images"] = images
	rec := bridge.Record{Key: p.LegacyID, Product: prod}
	for _, v := range p.variants {
		qty, limited := a.stock(v)
		vm := map[string]any{
			"id": v.LegacyID, "gid": v.ID, "sku": deref(v.SKU), "barcode": deref(v.Barcode), "price": v.Price,
			"currency": currency, "inventory_policy": strings.ToLower(v.InventoryPolicy),
			"url": url + "?variant=" + v.LegacyID, "title": p.Title,
		}
		if v.Title != "" && v.Title != "Default Title" {
			vm["title"] = p.Title + " - " + v.Title
		}
		// Compare-at is the regular price only when it is above the price:
		// Shopify lets shops leave a lower or equal one in place.
		if ca := deref(v.CompareAtPrice); ca != "" {
			if c, err := decimal.NewFromString(ca); err == nil {
				if pr, err := decimal.NewFromString(v.Price); err == nil && c.GreaterThan(pr) {
					vm["compare_at_price"] = ca
				}
			}
		}
		switch {
		case !limited && qty <= 0 && v.InventoryPolicy == "CONTINUE":
			vm["availability"] = string(bridge.Backorder)
		case !limited:
			vm["availability"] = string(bridge.InStock)
		case qty > 0:
			vm["availability"], vm["quantity"] = string(bridge.InStock), qty
		default:
			vm["availability"], vm["quantity"] = string(bridge.OutOfStock), qty
		}
		for _, o := range v.SelectedOptions {
			vm["option_"+optionKey(o.Name)] = o.Value
		}
		rec.Variants = append(rec.Variants, vm)
	}
	return rec
}

// productURL is the product's page: under the configured storefront, else
// where Shopify says it is published, else on the shop's own domain.
func (a *Adapter) productURL(p *product) string {
	switch {
	case a.front != "":
		return a.front + "/products/" + p.Handle
	case p.OnlineStoreURL != nil && *p.OnlineStoreURL != "":
		return *p.OnlineStoreURL
	}
	return a.base.String() + "/products/" + p.Handle
}

// optionKey turns an option name into a record field name: "Color" →
// "color", "Shoe size" → "shoe_size".
func optionKey(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// MarkProducts asks the next catalog read to read these products (gids or
// numeric ids) again: a webhook said they changed or were deleted.
func (a *Adapter) MarkProducts(ids ...string) { a.mark(a.dirty, "Product", ids) }

// MarkInventoryItems asks the next catalog read to read the products of
// these inventory items again (inventory changes do not move a product's
// updatedAt).
func (a *Adapter) MarkInventoryItems(ids ...string) { a.mark(a.dirtyItems, "InventoryItem", ids) }

func (a *Adapter) mark(set map[string]bool, kind string, ids []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		if g, err := toGID(kind, id); err == nil {
			set[g] = true
		}
	}
}
