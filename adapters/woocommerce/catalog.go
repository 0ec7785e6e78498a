package woocommerce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// snapshot is what the last complete catalog read found: every published
// product as read, in the order they were read, and the problems of those
// skipped, so a read that only asks for changes can still hand the syncer
// the whole catalog. Products are kept as the typed answers (trimmed of
// what records do not use), not as records: a record's maps cost about
// three times as much memory.
type snapshot struct {
	items    map[int64]kept
	problems map[int64]bridge.Problem
	order    []int64
	listed   map[int64]bool // ids in order (dropped ones stay: emit skips them)
	// cursor is the shop's time when the read began (its Date header), or
	// the newest date_modified_gmt seen when it sends none: the next read
	// asks for products modified after it (less an overlap). The shop's
	// clock, never the bridge's, and never a product's date when the shop
	// can tell its time: a product saved during a long read but older than
	// one read later would be missed.
	cursor time.Time
	newest time.Time
	// full is when the last full read began; started when this one did.
	full, started time.Time
	// weightUnit is the shop's (kg, g, lb, oz), read with every full read;
	// "" when it could not be read, and weights are then left out.
	weightUnit string
}

// overlap is how far before the cursor a read of changes starts: a product
// saved just before the last read may commit just after it, and reading a
// product twice costs one row.
const overlap = 2 * time.Minute

// wooTime is the layout of WooCommerce's *_gmt dates.
const wooTime = "2006-01-02T15:04:05"

// ReadCatalog emits every published product of the shop, variable products
// with their variations. The first read and one every FullSyncInterval
// read every product (GET /products, 100 a page, by id); the reads between
// ask only for products modified since the previous read (modified_after)
// and those MarkChanged named, and merge them over the previous read:
// the syncer still gets the whole catalog, from a fraction of the calls.
//
// A product that cannot be turned into a record (a variable product whose
// variations vanished meanwhile) is reported through skip. Any failure to
// read the store fails the read, so the syncer keeps its last snapshot.
func (a *Adapter) ReadCatalog(ctx context.Context, emit func(bridge.Record) error, skip func(bridge.Problem)) error {
	a.readMu.Lock()
	defer a.readMu.Unlock()
	a.mu.Lock()
	last, dirty, gone := a.last, a.dirty, a.gone
	a.dirty, a.gone = map[int64]bool{}, map[int64]bool{}
	a.mu.Unlock()

	var next *snapshot
	var err error
	if last == nil || a.opts.FullSyncInterval < 0 || a.now().Sub(last.full) >= a.opts.FullSyncInterval {
		next, err = a.readAll(ctx, emit, skip)
	} else {
		next, err = a.readChanges(ctx, last, dirty, gone)
		if err == nil {
			err = next.emit(emit, skip)
		}
	}
	if err != nil {
		// The changes are still to be read: put them back.
		a.mu.Lock()
		maps.Copy(a.dirty, dirty)
		maps.Copy(a.gone, gone)
		a.mu.Unlock()
		return fmt.Errorf("woocommerce: read catalog: %w", err)
	}
	a.mu.Lock()
	a.last = next
	a.mu.Unlock()
	return nil
}

// SourceTime is when the last complete catalog read began.
func (a *Adapter) SourceTime() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return time.Time{}
	}
	return a.last.started
}

// MarkChanged tells the adapter that products changed (a webhook): the
// next read asks for them whatever their modification date. A variation's
// change names its parent. deleted: the id was reported deleted, and may
// be a variation's (a deletion's body is {"id":N} alone); the next read
// asks for the product holding it, and drops it only if the shop no longer
// has it — the report is not trusted (its topic header is not signed).
func (a *Adapter) MarkChanged(id int64, deleted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if deleted {
		a.gone[id] = true
		delete(a.dirty, id)
		return
	}
	a.dirty[id] = true
}

// kept is a product as read: the product and its variations.
type kept struct {
	p    product
	vars []product
}

// trimmed drops what records never read (meta data, which plugins fill,
// and the variations' product-level fields), to keep the snapshot small.
func (k kept) trimmed() kept {
	k.p.MetaData = nil
	vars := make([]product, len(k.vars))
	for i, v := range k.vars {
		v.MetaData, v.Description, v.ShortDescription, v.Images, v.Categories, v.Tags, v.Brands, v.Variations = nil, "", "", nil, nil, nil, nil, nil
		vars[i] = v
	}
	k.vars = vars
	return k
}

func (s *snapshot) emit(emit func(bridge.Record) error, skip func(bridge.Problem)) error {
	for _, id := range s.order {
		if k, ok := s.items[id]; ok {
			if err := emit(record(k.p, k.vars, s.weightUnit)); err != nil {
				return err
			}
		} else if p, ok := s.problems[id]; ok {
			skip(p)
		}
	}
	return nil
}

func newSnapshot(started time.Time) *snapshot {
	return &snapshot{items: map[int64]kept{}, problems: map[int64]bridge.Problem{}, listed: map[int64]bool{}, started: started}
}

// put records what reading p gave: the product for sale, a problem, or
// neither (not for sale here: dropped).
func (s *snapshot) put(p product, k *kept, prob *bridge.Problem) {
	if !s.listed[p.ID] && (k != nil || prob != nil) {
		s.order = append(s.order, p.ID)
		s.listed[p.ID] = true
	}
	delete(s.items, p.ID)
	delete(s.problems, p.ID)
	switch {
	case k != nil:
		s.items[p.ID] = k.trimmed()
	case prob != nil:
		s.problems[p.ID] = *prob
	}
	if t, err := time.Parse(wooTime, p.DateModifiedGMT); err == nil && t.After(s.newest) {
		s.newest = t
	}
}

// productOf finds the product holding variation id.
func (s *snapshot) productOf(id int64) (int64, bool) {
	for pid, k := range s.items {
		for _, v := range k.vars {
			if v.ID == id {
				return pid, true
			}
		}
	}
	return 0, false
}

func (s *snapshot) drop(id int64) {
	delete(s.items, id)
	delete(s.problems, id)
}

// readAll reads every published product, emitting each as it is read.
func (a *Adapter) readAll(ctx context.Context, emit func(bridge.Record) error, skip func(bridge.Problem)) (*snapshot, error) {
	started := a.now()
	next := newSnapshot(started)
	next.full = started
	if err := a.checkCurrency(ctx); err != nil {
		return nil, err
	}
	unit, err := a.weightUnit(ctx)
	if err != nil {
		return nil, err
	}
	next.weightUnit = unit
	q := url.Values{"status": {"publish"}, "orderby": {"id"}, "order": {"asc"}}
	info, err := listAll(ctx, a, "products", q, productID, func(page []product) error {
		return a.readPage(ctx, page, func(p product, k *kept, prob *bridge.Problem) error {
			if _, dup := next.items[p.ID]; dup {
				return nil // the list shifted between two pages
			}
			next.put(p, k, prob)
			switch {
			case k != nil:
				return emit(record(k.p, k.vars, next.weightUnit))
			case prob != nil:
				skip(*prob)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	next.cursor = cmp.Or(info.served, next.newest)
	return next, nil
}

func productID(p product) int64 { return p.ID }

// readChanges reads the products modified since last's cursor and those
// named dirty, and returns last with them merged in (last itself is not
// changed: a failed read leaves it as it was).
func (a *Adapter) readChanges(ctx context.Context, last *snapshot, dirty, gone map[int64]bool) (*snapshot, error) {
	next := &snapshot{items: maps.Clone(last.items), problems: maps.Clone(last.problems), order: slices.Clone(last.order),
		listed: maps.Clone(last.listed), cursor: last.cursor, full: last.full, started: a.now()}
	// Reported deleted: read again, by id, like any change; not there
	// (deleted, trashed) it is dropped below.
	for id := range gone {
		if _, ok := next.items[id]; !ok {
			if pid, ok := next.productOf(id); ok {
				dirty[pid] = true // a deleted variation: read its product again
				continue
			}
		}
		dirty[id] = true
	}
	apply := func(p product, k *kept, prob *bridge.Problem) error {
		delete(dirty, p.ID)
		next.put(p, k, prob)
		return nil
	}
	// Every status: a product moved to draft must leave the catalog, and it
	// shows only this way. "any" leaves out the trash, so the trash is
	// asked for too.
	q := url.Values{"status": {"any"}, "orderby": {"id"}, "order": {"asc"}, "dates_are_gmt": {"true"}}
	if !last.cursor.IsZero() {
		q.Set("modified_after", last.cursor.Add(-overlap).UTC().Format(wooTime))
	}
	info, err := listAll(ctx, a, "products", q, productID, func(page []product) error { return a.readPage(ctx, page, apply) })
	if err != nil {
		return nil, err
	}
	served := info.served
	q.Set("status", "trash")
	if _, err := listAll(ctx, a, "products", q, productID, func(page []product) error { return a.readPage(ctx, page, apply) }); err != nil {
		return nil, err
	}
	switch {
	case !served.IsZero():
		next.cursor = served
	case next.newest.After(next.cursor):
		next.cursor = next.newest
	}
	// Webhooks named these, but their modification date did not move
	// (a variation's stock changed, say): ask for them by id.
	ids := slices.Sorted(maps.Keys(dirty))
	for chunk := range slices.Chunk(ids, perPage) {
		inc := make([]string, len(chunk))
		for i, id := range chunk {
			inc[i] = idString(id)
		}
		q := url.Values{"status": {"any"}, "include": {strings.Join(inc, ",")}}
		if _, err := list(ctx, a.c, "products", q, func(page []product) error { return a.readPage(ctx, page, apply) }); err != nil {
			return nil, err
		}
		for _, id := range chunk {
			if dirty[id] {
				next.drop(id) // asked for by id and not there: deleted for good
			}
		}
	}
	return next, nil
}

// readPage reads the variations of the page's variable products (up to
// Concurrency at once) and calls fn for each product in the page's order,
// with the product for sale, a problem, or neither (not for sale here).
func (a *Adapter) readPage(ctx context.Context, page []product, fn func(p product, k *kept, prob *bridge.Problem) error) error {
	type result struct {
		k    *kept
		prob *bridge.Problem
		err  error
	}
	results := make([]result, len(page))
	sem := make(chan struct{}, a.opts.Concurrency)
	var wg sync.WaitGroup
	for i, p := range page {
		if p.Status != "publish" {
			continue
		}
		switch p.Type {
		case "grouped":
			continue // a list of other products, each listed on its own
		case "external":
			results[i].prob = &bridge.Problem{Key: idString(p.ID), Message: "external product (sold on another site): the bridge cannot sell it"}
			continue
		case "variable":
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				vars, err := a.variations(ctx, p.ID)
				if itemGone(err) {
					results[i].prob = &bridge.Problem{Key: idString(p.ID), Message: "its variations could not be read: the product was deleted during the sync"}
					return
				}
				if err != nil {
					results[i].err = err
					return
				}
				results[i].k = &kept{p: p, vars: vars}
			}()
		default:
			results[i].k = &kept{p: p}
		}
	}
	wg.Wait()
	for i, p := range page {
		if err := results[i].err; err != nil {
			return fmt.Errorf("product %d: %w", p.ID, err)
		}
		if err := fn(p, results[i].k, results[i].prob); err != nil {
			return err
		}
	}
	return nil
}

// errSettingRefused: the key may not read the shop's settings.
var errSettingRefused = errors.New("the key may not read the shop's settings")

// setting reads one of the shop's settings (GET /settings/{group}/{id}).
// A key without access to them (401, 403, 404: a user who may not manage
// WooCommerce) gets an error wrapping errSettingRefused.
func (a *Adapter) setting(ctx context.Context, group, id string) (string, error) {
	var s struct {
		Value string `json:"value"`
	}
	if _, err := a.c.get(ctx, "settings/"+group+"/"+id, nil, &s); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden || ae.StatusCode == http.StatusNotFound) {
			return "", fmt.Errorf("%s: %w: %w", id, errSettingRefused, err)
		}
		return "", fmt.Errorf("setting %s: %w", id, err)
	}
	return s.Value, nil
}

// checkCurrency refuses to read a shop whose prices are in another
// currency than the bridge sells in: every price would be read as the
// wrong money (JPY 1500 as USD 1500.00). A shop that will not tell is
// read, with a warning.
func (a *Adapter) checkCurrency(ctx context.Context) error {
	if a.opts.Currency == "" {
		return nil
	}
	cur, err := a.setting(ctx, "general", "woocommerce_currency")
	switch {
	case errors.Is(err, errSettingRefused):
		a.log.Warn("woocommerce: the shop's currency could not be read; make sure it is merchant.currency", "err", err)
		return nil
	case err != nil:
		return err
	case cur != a.opts.Currency:
		return fmt.Errorf("the shop's prices are in %s but merchant.currency is %s: set merchant.currency to the shop's currency",
			upstream.Excerpt(cur, 8), a.opts.Currency)
	}
	return nil
}

// weightUnit reads the shop's weight unit (WooCommerce keeps weights as
// bare numbers in it), in the bridge's words. A shop that will not tell
// gets "" and a warning: weights are then left out rather than guessed.
func (a *Adapter) weightUnit(ctx context.Context) (string, error) {
	unit, err := a.setting(ctx, "products", "woocommerce_weight_unit")
	if errors.Is(err, errSettingRefused) {
		a.log.Warn("woocommerce: the shop's weight unit could not be read; weights are left out of the feeds", "err", err)
		return "", nil
	}
	if err != nil {
		return "", err
	}
	switch unit {
	case "kg", "g", "oz":
		return unit, nil
	case "lbs":
		return "lb", nil
	}
	a.log.Warn("woocommerce: unknown weight unit; weights are left out of the feeds", "unit", upstream.Excerpt(unit, 16))
	return "", nil
}

// variations reads every variation of a variable product; a variation
// deleted while a long list is read shifts the pages like any list
// (listAll reads again).
func (a *Adapter) variations(ctx context.Context, productID int64) ([]product, error) {
	var out []product
	q := url.Values{"orderby": {"id"}, "order": {"asc"}}
	_, err := listAll(ctx, a, "products/"+idString(productID)+"/variations", q, func(p product) int64 { return p.ID }, func(page []product) error {
		out = append(out, page...)
		return nil
	})
	return out, err
}

// itemGone reports whether err is WooCommerce saying that the product or
// variation asked for does not exist: a 404 with one of its invalid-id
// codes. Any other 404 (rest_no_route: a wrong URL, permalinks off,
// WooCommerce deactivated during an update; a proxy's page without a code)
// is about the whole API, not the item: treating it as "deleted" would
// refuse, and so cancel and refund, every paid order during an outage.
func itemGone(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
		return false
	}
	switch ae.Code {
	case "woocommerce_rest_product_invalid_id", // WC_REST_CRUD_Controller: "woocommerce_rest_{post_type}_invalid_id"
		"woocommerce_rest_product_variation_invalid_id", // the same for post type product_variation
		"woocommerce_rest_invalid_product_id":           // the order controller's code for a line's product
		return true
	}
	return false
}

// record is the bridge's record of p: its own fields under product, and
// one variant per published variation (or p itself, for a simple product).
// Field names are WooCommerce's, plus a few the default mapping needs
// resolved: availability (from stock_status), list_price (the regular price
// of a variant on sale), stock_quantity resolved to the parent's for
// "parent" stock, options (attribute name → value) and digital.
func record(p product, vars []product, weightUnit string) bridge.Record {
	prod := map[string]any{
		"id":                idString(p.ID),
		"name":              p.Name,
		"slug":              p.Slug,
		"permalink":         p.Permalink,
		"type":              p.Type,
		"sku":               p.SKU,
		"description":       p.Description,
		"short_description": p.ShortDescription,
	}
	var cats []any
	for _, c := range p.Categories {
		cats = append(cats, c.Name)
	}
	prod["categories"] = cats
	if len(cats) > 0 {
		prod["category"] = cats[0]
	}
	var tags []any
	for _, t := range p.Tags {
		tags = append(tags, t.Name)
	}
	prod["tags"] = tags
	imgs := make([]any, 0, len(p.Images))
	for _, im := range p.Images {
		imgs = append(imgs, im.Src)
	}
	prod["images"] = imgs
	if len(imgs) > 0 {
		prod["image"] = imgs[0]
	}
	attrs := map[string]any{}
	for _, at := range p.Attributes {
		attrs[attrKey(at.Name)] = strings.Join(at.Options, ", ")
	}
	prod["attributes"] = attrs
	// WooCommerce's brands (9.6+), else a "Brand" attribute, the common
	// way before.
	if len(p.Brands) > 0 {
		prod["brand"] = p.Brands[0].Name
	} else if b, ok := attrs["brand"]; ok {
		prod["brand"] = b
	}

	r := bridge.Record{Key: idString(p.ID), Product: prod}
	if p.Type != "variable" {
		r.Variants = []map[string]any{variant(p, nil, weightUnit)}
		return r
	}
	for _, v := range vars {
		if v.Status != "" && v.Status != "publish" {
			continue // "private": the variation is disabled in the shop
		}
		r.Variants = append(r.Variants, variant(v, &p, weightUnit))
	}
	return r
}

// variant is the variant map of item (a variation of parent, or a simple
// product when parent is nil).
func variant(item product, parent *product, weightUnit string) map[string]any {
	st := stockOf(item, parent)
	v := map[string]any{
		"id":            idString(item.ID),
		"sku":           item.SKU,
		"name":          item.Name,
		"permalink":     item.Permalink,
		"price":         item.Price,
		"regular_price": item.RegularPrice,
		"sale_price":    item.SalePrice,
		"stock_status":  item.StockStatus,
		"availability":  availability(item.StockStatus),
		"backorders":    st.Backorders,
		"weight":        item.Weight,
		"digital":       item.Virtual || item.Downloadable,
		"purchasable":   item.Purchasable,
	}
	if item.Price == "" {
		// WooCommerce's effective price is empty until one is set; the
		// regular price is what the shop shows then.
		v["price"] = item.RegularPrice
	}
	if item.SalePrice != "" && item.RegularPrice != "" && item.RegularPrice != item.Price {
		v["list_price"] = item.RegularPrice
	}
	if st.Managed {
		v["stock_quantity"] = st.Quantity
	}
	if parent != nil && item.Weight == "" {
		v["weight"] = parent.Weight // WooCommerce's rule: a variation inherits it
	}
	if weightUnit == "" {
		delete(v, "weight") // a weight without its unit would be wrong by 1000× or fail validation
	} else if v["weight"] != "" {
		v["weight_unit"] = weightUnit
	}
	switch {
	case item.Image != nil && item.Image.Src != "":
		v["image"] = item.Image.Src
	case parent == nil && len(item.Images) > 0:
		v["image"] = item.Images[0].Src
	}
	opts := map[string]any{}
	for _, at := range item.Attributes {
		opts[attrKey(at.Name)] = at.Option
	}
	v["options"] = opts
	return v
}

// attrKey is an attribute's name as a mapping path segment: "Color" and
// global attributes' "pa_color" both become "color".
func attrKey(name string) string {
	k := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "pa_"))
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return '_'
		}
		return r
	}, k)
}

// availability maps stock_status to the bridge's words.
func availability(status string) string {
	switch status {
	case "instock":
		return string(bridge.InStock)
	case "outofstock":
		return string(bridge.OutOfStock)
	case "onbackorder":
		return string(bridge.Backorder)
	}
	return ""
}

// parseID reads a WooCommerce id the bridge put in a record.
func parseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
