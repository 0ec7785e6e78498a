package fakewoo

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
)

// Default credentials a Server accepts (40 hex characters after the prefix,
// like WooCommerce's keys).
const (
	DefaultKey    = "ck_0123456789abcdef0123456789abcdef01234567"
	DefaultSecret = "cs_0123456789abcdef0123456789abcdef01234567"
)

const (
	prefix    = "/wp-json/wc/v3"
	wooTime   = "2006-01-02T15:04:05"
	batchMax  = 100
	maxBody   = 8 << 20
	defaultPP = 10
)

// Image, Category, Attribute and Meta are as WooCommerce writes them.
type (
	Image struct {
		ID   int64  `json:"id"`
		Src  string `json:"src"`
		Name string `json:"name"`
		Alt  string `json:"alt"`
	}
	Category struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
	}
	Attribute struct {
		ID        int64    `json:"id"`
		Name      string   `json:"name"`
		Variation bool     `json:"variation,omitempty"`
		Options   []string `json:"options,omitempty"`
		Option    string   `json:"option,omitempty"`
	}
	Meta struct {
		ID    int64  `json:"id"`
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
)

// Product is a product or a variation (ParentID set) as the API returns it.
// ManageStock is true, false or "parent".
type Product struct {
	ID               int64       `json:"id"`
	ParentID         int64       `json:"parent_id"`
	Name             string      `json:"name"`
	Slug             string      `json:"slug,omitempty"`
	Permalink        string      `json:"permalink"`
	Type             string      `json:"type,omitempty"`
	Status           string      `json:"status"`
	DateCreatedGMT   string      `json:"date_created_gmt"`
	DateModifiedGMT  string      `json:"date_modified_gmt"`
	Description      string      `json:"description"`
	ShortDescription string      `json:"short_description,omitempty"`
	SKU              string      `json:"sku"`
	Price            string      `json:"price"`
	RegularPrice     string      `json:"regular_price"`
	SalePrice        string      `json:"sale_price"`
	Purchasable      bool        `json:"purchasable"`
	Virtual          bool        `json:"virtual"`
	Downloadable     bool        `json:"downloadable"`
	ManageStock      any         `json:"manage_stock"`
	StockQuantity    *int64      `json:"stock_quantity"`
	StockStatus      string      `json:"stock_status"`
	Backorders       string      `json:"backorders"`
	Weight           string      `json:"weight"`
	Images           []Image     `json:"images,omitempty"`
	Image            *Image      `json:"image,omitempty"`
	Categories       []Category  `json:"categories,omitempty"`
	Brands           []Category  `json:"brands,omitempty"`
	Attributes       []Attribute `json:"attributes"`
	Variations       []int64     `json:"variations,omitempty"`
	MetaData         []Meta      `json:"meta_data"`

	// Children are the variations of a variable product given to
	// AddProduct; the API lists them under /variations, never here.
	Children []Product `json:"-"`
}

// Address, LineItem, ShippingLine, FeeLine and Order are WooCommerce's
// order shapes (the fields the fake keeps).
type (
	Address struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Company   string `json:"company"`
		Address1  string `json:"address_1"`
		Address2  string `json:"address_2"`
		City      string `json:"city"`
		State     string `json:"state"`
		Postcode  string `json:"postcode"`
		Country   string `json:"country"`
		Email     string `json:"email,omitempty"`
		Phone     string `json:"phone,omitempty"`
	}
	LineItem struct {
		ID          int64  `json:"id"`
		ProductID   int64  `json:"product_id"`
		VariationID int64  `json:"variation_id"`
		Quantity    int64  `json:"quantity"`
		Subtotal    string `json:"subtotal"`
		Total       string `json:"total"`
		TotalTax    string `json:"total_tax"`
	}
	ShippingLine struct {
		ID          int64  `json:"id"`
		MethodID    string `json:"method_id"`
		MethodTitle string `json:"method_title"`
		Total       string `json:"total"`
	}
	FeeLine struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		Total     string `json:"total"`
		TaxStatus string `json:"tax_status"`
	}
	Order struct {
		ID                 int64          `json:"id"`
		Status             string         `json:"status"`
		Currency           string         `json:"currency"`
		CreatedVia         string         `json:"created_via"`
		DateCreatedGMT     string         `json:"date_created_gmt"`
		DateModifiedGMT    string         `json:"date_modified_gmt"`
		DatePaidGMT        *string        `json:"date_paid_gmt"`
		Total              string         `json:"total"`
		TotalTax           string         `json:"total_tax"`
		PaymentMethod      string         `json:"payment_method"`
		PaymentMethodTitle string         `json:"payment_method_title"`
		TransactionID      string         `json:"transaction_id"`
		SetPaid            bool           `json:"set_paid,omitempty"`
		Billing            Address        `json:"billing"`
		Shipping           Address        `json:"shipping"`
		LineItems          []LineItem     `json:"line_items"`
		ShippingLines      []ShippingLine `json:"shipping_lines"`
		FeeLines           []FeeLine      `json:"fee_lines"`
		MetaData           []Meta         `json:"meta_data"`

		// stockReduced is WooCommerce's _order_stock_reduced: stock is
		// taken once per order.
		stockReduced bool
	}
)

// Server is a fake WooCommerce shop. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the shop's address (the API is at URL/wp-json/wc/v3/).
	URL string
	// Client trusts the server's certificate (TLS servers).
	Client *http.Client

	srv *httptest.Server

	mu         sync.Mutex
	key        string
	secret     string
	readOnly   bool
	now        func() time.Time
	nextID     int64
	products   map[int64]*Product // products and variations by id
	orders     []*Order
	taxRate    int64 // percent added as tax to every order, to make totals differ
	requests   map[string]int
	failNext   []int
	dropNext   int
	stallPay   int
	afterServe func(route string, q url.Values)
	latency    time.Duration
	weightUnit string
	currency   string
	// noPageHeaders: answers lack X-WP-Total, X-WP-TotalPages and Link,
	// as behind a proxy that strips them.
	noPageHeaders bool
	queries       map[string]url.Values // the last query of each route
}

// New starts a fake shop over TLS (the bridge refuses plain http outside
// development); it stops when the test ends.
func New(t interface{ Cleanup(func()) }) *Server { return start(t, true) }

// NewPlain starts a fake shop over plain http, for a bridge in development
// mode (a child process that cannot trust the test's certificate).
func NewPlain(t interface{ Cleanup(func()) }) *Server { return start(t, false) }

func start(t interface{ Cleanup(func()) }, tls bool) *Server {
	s := &Server{key: DefaultKey, secret: DefaultSecret, now: time.Now, nextID: 100, weightUnit: "kg", currency: "USD",
		products: map[int64]*Product{}, requests: map[string]int{}, queries: map[string]url.Values{}}
	s.srv = httptest.NewUnstartedServer(s)
	// Clients cut off at the end of a test are expected, not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL, s.Client = s.srv.URL, s.srv.Client()
	t.Cleanup(s.srv.Close)
	return s
}

// SetClock replaces the clock dates are stamped with.
func (s *Server) SetClock(now func() time.Time) { s.mu.Lock(); s.now = now; s.mu.Unlock() }

// SetReadOnly makes the key a read-only key: writes answer 401.
func (s *Server) SetReadOnly(ro bool) { s.mu.Lock(); s.readOnly = ro; s.mu.Unlock() }

// SetTaxRate makes WooCommerce add rate percent of tax to each order's
// lines (its calculate_totals with taxes on), so totals differ from the
// bridge's.
func (s *Server) SetTaxRate(percent int64) { s.mu.Lock(); s.taxRate = percent; s.mu.Unlock() }

// SetWeightUnit sets the shop's woocommerce_weight_unit (kg, g, lbs, oz);
// "" makes the setting answer 403, as for a key whose user may not manage
// WooCommerce.
func (s *Server) SetWeightUnit(u string) { s.mu.Lock(); s.weightUnit = u; s.mu.Unlock() }

// SetCurrency sets the shop's currency (woocommerce_currency); orders
// default to it.
func (s *Server) SetCurrency(c string) { s.mu.Lock(); s.currency = c; s.mu.Unlock() }

// SetLatency makes every answer take at least d, like a shop's PHP does
// (100–500 ms a call is common), for benchmarks.
func (s *Server) SetLatency(d time.Duration) { s.mu.Lock(); s.latency = d; s.mu.Unlock() }

// StripPageHeaders makes list answers come without X-WP-Total,
// X-WP-TotalPages and Link, as behind a caching proxy that drops them.
func (s *Server) StripPageHeaders(strip bool) { s.mu.Lock(); s.noPageHeaders = strip; s.mu.Unlock() }

// LastQuery returns the query of the last request of route ("GET
// /orders"), credentials removed.
func (s *Server) LastQuery(route string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := url.Values{}
	for k, v := range s.queries[route] {
		q[k] = slices.Clone(v)
	}
	return q
}

// AfterServe calls fn after each answer with its route and query (nil:
// none), so a test can change the shop between two pages of a list.
func (s *Server) AfterServe(fn func(route string, q url.Values)) {
	s.mu.Lock()
	s.afterServe = fn
	s.mu.Unlock()
}

// FailNext answers the next len(statuses) requests with these statuses
// (and a WooCommerce error body), processing nothing.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, statuses...)
}

// StallPaymentNext makes the next n set_paid requests (creates or PUTs)
// save the order but leave it pending and unpaid, its stock not taken, as
// when a plugin fails in WooCommerce's payment_complete hooks; the answer
// is the usual one.
func (s *Server) StallPaymentNext(n int) { s.mu.Lock(); s.stallPay += n; s.mu.Unlock() }

// DropAfterCommitNext makes the next n order creates commit and then close
// the connection without an answer.
func (s *Server) DropAfterCommitNext(n int) { s.mu.Lock(); s.dropNext += n; s.mu.Unlock() }

// Requests returns how many requests reached each route ("GET
// /products/{id}/variations"), faulted ones included.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// TotalRequests is the sum of Requests.
func (s *Server) TotalRequests() int {
	n := 0
	for _, v := range s.Requests() {
		n += v
	}
	return n
}

func (s *Server) stamp() string { return s.now().UTC().Format(wooTime) }

// AddProduct adds p (and its Children as variations, for a variable
// product) and returns its id. Ids are assigned when zero; price follows
// sale_price or regular_price; stock_status follows the stock.
func (s *Server) AddProduct(p Product) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(p, nil)
}

func (s *Server) add(p Product, parent *Product) int64 {
	if p.ID == 0 {
		s.nextID++
		p.ID = s.nextID
	}
	if p.Status == "" {
		p.Status = "publish"
	}
	if p.Type == "" && parent == nil {
		p.Type = "simple"
	}
	if p.ManageStock == nil {
		p.ManageStock = false
	}
	if p.Backorders == "" {
		p.Backorders = "no"
	}
	if p.Attributes == nil {
		p.Attributes = []Attribute{}
	}
	if p.MetaData == nil {
		p.MetaData = []Meta{}
	}
	if p.Permalink == "" {
		p.Permalink = s.URL + "/product/p-" + strconv.FormatInt(p.ID, 10)
		if parent != nil {
			p.Permalink = parent.Permalink + "?variation_id=" + strconv.FormatInt(p.ID, 10)
		}
	}
	p.Purchasable = p.Status == "publish" && (p.RegularPrice != "" || p.Type == "variable")
	p.DateCreatedGMT, p.DateModifiedGMT = s.stamp(), s.stamp()
	children := p.Children
	p.Children = nil
	if parent != nil {
		p.ParentID = parent.ID
	}
	s.products[p.ID] = &p
	s.settle(&p)
	for _, c := range children {
		id := s.add(c, &p)
		p.Variations = append(p.Variations, id)
	}
	return p.ID
}

// settle recomputes what WooCommerce derives: the effective price and the
// stock status.
func (s *Server) settle(p *Product) {
	p.Price = cmp.Or(p.SalePrice, p.RegularPrice)
	if p.ManageStock == true && p.StockQuantity != nil {
		switch {
		case *p.StockQuantity > 0:
			p.StockStatus = "instock"
		case p.Backorders != "no":
			p.StockStatus = "onbackorder"
		default:
			p.StockStatus = "outofstock"
		}
	}
	if p.StockStatus == "" {
		p.StockStatus = "instock"
	}
	// A "parent" variation shows its parent's state.
	for _, vid := range p.Variations {
		if v := s.products[vid]; v != nil && v.ManageStock == "parent" {
			v.StockStatus = p.StockStatus
		}
	}
}

// Product returns a copy of a product or variation.
func (s *Server) Product(id int64) (Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[id]
	if !ok {
		return Product{}, false
	}
	return *p, true
}

// UpdateProduct changes a product or variation with fn and stamps its
// modification date (a variation's parent keeps its own, as in
// WooCommerce).
func (s *Server) UpdateProduct(id int64, fn func(p *Product)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.products[id]; p != nil {
		fn(p)
		p.DateModifiedGMT = s.stamp()
		s.settle(p)
	}
}

// DeleteProduct deletes a product and its variations for good.
func (s *Server) DeleteProduct(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.products[id]; p != nil {
		for _, v := range p.Variations {
			delete(s.products, v)
		}
	}
	delete(s.products, id)
}

// Orders returns copies of every order, oldest first.
func (s *Server) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, len(s.orders))
	for i, o := range s.orders {
		out[i] = *o
	}
	return out
}

// AddOrder adds o as if an admin or another channel had made it (no stock
// taken), stamping its id (when zero), dates and meta ids, and returns its
// id. Status defaults to processing, paid now.
func (s *Server) AddOrder(o Order) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.ID == 0 {
		s.nextID++
		o.ID = s.nextID
	}
	o.Currency = cmp.Or(o.Currency, s.currency)
	o.DateCreatedGMT, o.DateModifiedGMT = cmp.Or(o.DateCreatedGMT, s.stamp()), cmp.Or(o.DateModifiedGMT, s.stamp())
	if o.Status == "" {
		o.Status = "processing"
		paid := s.stamp()
		o.DatePaidGMT = &paid
	}
	for i := range o.MetaData {
		s.nextID++
		o.MetaData[i].ID = s.nextID
	}
	s.orders = append(s.orders, &o)
	return o.ID
}

// SetOrderStatus changes an order's status as a shop admin would.
func (s *Server) SetOrderStatus(id int64, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orders {
		if o.ID == id {
			o.Status, o.DateModifiedGMT = status, s.stamp()
			return true
		}
	}
	return false
}

// ServeHTTP routes a request of the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, params, ok := match(r.Method, r.URL.Path)
	s.mu.Lock()
	s.requests[route]++
	q := r.URL.Query()
	q.Del("consumer_key")
	q.Del("consumer_secret")
	s.queries[route] = q
	var fail int
	if len(s.failNext) > 0 {
		fail, s.failNext = s.failNext[0], s.failNext[1:]
	}
	latency, now, after := s.latency, s.now, s.afterServe
	s.mu.Unlock()
	if after != nil {
		defer after(route, q)
	}
	time.Sleep(latency)
	// The shop's clock, which dates its records too.
	w.Header().Set("Date", now().UTC().Format(http.TimeFormat))
	if fail != 0 {
		werr(w, fail, "internal_server_error", "There has been a critical error on this website.")
		return
	}
	if !ok {
		werr(w, http.StatusNotFound, "rest_no_route", "No route was found matching the URL and request method.")
		return
	}
	if !s.authorized(w, r) {
		return
	}
	switch route {
	case "GET /products":
		s.listProducts(w, r, 0)
	case "GET /products/{id}":
		s.getProduct(w, params[0], 0)
	case "GET /products/{id}/variations":
		s.listProducts(w, r, params[0])
	case "GET /products/{id}/variations/{id}":
		s.getProduct(w, params[1], params[0])
	case "POST /products/batch", "POST /products/{id}/variations/batch", "POST /orders/batch":
		s.batch(w, r)
	case "POST /orders":
		s.createOrder(w, r)
	case "GET /orders":
		s.listOrders(w, r)
	case "GET /orders/{id}", "PUT /orders/{id}":
		s.oneOrder(w, r, params[0])
	case "GET /settings/general/woocommerce_currency":
		s.mu.Lock()
		cur := s.currency
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"id": "woocommerce_currency", "label": "Currency", "type": "select", "default": "USD", "value": cur})
	case "GET /settings/products/woocommerce_weight_unit":
		s.mu.Lock()
		unit := s.weightUnit
		s.mu.Unlock()
		if unit == "" {
			werr(w, http.StatusForbidden, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": "woocommerce_weight_unit", "label": "Weight unit", "type": "select",
			"default": "kg", "value": unit, "options": map[string]string{"kg": "kg", "g": "g", "lbs": "lbs", "oz": "oz"}})
	}
}

var routes = []struct {
	method string
	re     *regexp.Regexp
	name   string
}{
	{"GET", regexp.MustCompile(`^/products$`), "/products"},
	{"GET", regexp.MustCompile(`^/products/(\d+)$`), "/products/{id}"},
	{"GET", regexp.MustCompile(`^/products/(\d+)/variations$`), "/products/{id}/variations"},
	{"GET", regexp.MustCompile(`^/products/(\d+)/variations/(\d+)$`), "/products/{id}/variations/{id}"},
	{"POST", regexp.MustCompile(`^/products/batch$`), "/products/batch"},
	{"POST", regexp.MustCompile(`^/products/(\d+)/variations/batch$`), "/products/{id}/variations/batch"},
	{"POST", regexp.MustCompile(`^/orders/batch$`), "/orders/batch"},
	{"POST", regexp.MustCompile(`^/orders$`), "/orders"},
	{"GET", regexp.MustCompile(`^/orders$`), "/orders"},
	{"GET", regexp.MustCompile(`^/orders/(\d+)$`), "/orders/{id}"},
	{"PUT", regexp.MustCompile(`^/orders/(\d+)$`), "/orders/{id}"},
	{"GET", regexp.MustCompile(`^/settings/products/woocommerce_weight_unit$`), "/settings/products/woocommerce_weight_unit"},
	{"GET", regexp.MustCompile(`^/settings/general/woocommerce_currency$`), "/settings/general/woocommerce_currency"},
}

func match(method, path string) (string, []int64, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return method + " " + path, nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	for _, rt := range routes {
		if rt.method != method {
			continue
		}
		if m := rt.re.FindStringSubmatch(rest); m != nil {
			var ids []int64
			for _, g := range m[1:] {
				n, _ := strconv.ParseInt(g, 10, 64)
				ids = append(ids, n)
			}
			return method + " " + rt.name, ids, true
		}
	}
	return method + " " + rest, nil, false
}

// authorized checks the credentials as WooCommerce's
// WC_REST_Authentication does, answering 401 when they fail.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	key, secret, basic := r.BasicAuth()
	if !basic {
		key, secret = r.URL.Query().Get("consumer_key"), r.URL.Query().Get("consumer_secret")
	}
	s.mu.Lock()
	wantKey, wantSecret, ro := s.key, s.secret, s.readOnly
	s.mu.Unlock()
	write := r.Method != http.MethodGet
	switch {
	case key == "" && secret == "":
		if write {
			werr(w, http.StatusUnauthorized, "woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.")
		} else {
			werr(w, http.StatusUnauthorized, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
		}
		return false
	case subtle.ConstantTimeCompare([]byte(key), []byte(wantKey)) != 1:
		werr(w, http.StatusUnauthorized, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
		return false
	case subtle.ConstantTimeCompare([]byte(secret), []byte(wantSecret)) != 1:
		werr(w, http.StatusUnauthorized, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
		return false
	case write && ro:
		werr(w, http.StatusUnauthorized, "woocommerce_rest_authentication_error", "The API key provided does not have write permissions.")
		return false
	}
	return true
}

// werr writes WooCommerce's error body.
func werr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg, "data": map[string]any{"status": status}})
}

func invalidParam(w http.ResponseWriter, param, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"code": "rest_invalid_param", "message": "Invalid parameter(s): " + param,
		"data": map[string]any{"status": 400, "params": map[string]string{param: msg}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// paging reads page and per_page as WooCommerce validates them.
func paging(w http.ResponseWriter, q url.Values) (page, perPage int, ok bool) {
	page, perPage = 1, defaultPP
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			invalidParam(w, "per_page", "per_page must be between 1 (inclusive) and 100 (inclusive)")
			return 0, 0, false
		}
		perPage = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			invalidParam(w, "page", "page must be greater than or equal to 1")
			return 0, 0, false
		}
		page = n
	}
	return page, perPage, true
}

// writePage answers one page of items with WooCommerce's pagination
// headers. A page past the end is an empty list (WooCommerce answers 400
// rest_post_invalid_page_number only for posts, not for products).
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, items []any, page, perPage int) {
	s.mu.Lock()
	strip := s.noPageHeaders
	s.mu.Unlock()
	total := len(items)
	pages := (total + perPage - 1) / perPage
	lo := min((page-1)*perPage, total)
	hi := min(lo+perPage, total)
	out := fields(items[lo:hi], r.URL.Query().Get("_fields"))
	if strip {
		writeJSON(w, http.StatusOK, out)
		return
	}
	w.Header().Set("X-WP-Total", strconv.Itoa(total))
	w.Header().Set("X-WP-TotalPages", strconv.Itoa(pages))
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Del("consumer_key")
		q.Del("consumer_secret")
		q.Set("page", strconv.Itoa(p))
		return fmt.Sprintf("<%s%s?%s>; rel=%q", "https://"+r.Host, r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < pages {
		links = append(links, link(page+1, "next"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	writeJSON(w, http.StatusOK, out)
}

// fields keeps only the top-level fields _fields names (WordPress's
// rest_filter_response_fields), or every field when it is empty.
func fields(items []any, list string) []any {
	if list == "" {
		return items
	}
	keep := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		keep[strings.TrimSpace(f)] = true
	}
	out := make([]any, len(items))
	for i, it := range items {
		raw, _ := json.Marshal(it) // the fake's own types always encode
		var m map[string]json.RawMessage
		_ = json.Unmarshal(raw, &m)
		for k := range m {
			if !keep[k] {
				delete(m, k)
			}
		}
		out[i] = m
	}
	return out
}

// anys is items as []any, for writePage.
func anys[T any](items []T) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

// since reads a date filter; WooCommerce reads them in the site's time
// zone unless dates_are_gmt, and the fake's site runs on UTC.
func since(q url.Values, key string) (time.Time, bool, error) {
	v := q.Get(key)
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(wooTime, strings.TrimSuffix(v, "Z"))
	if err != nil {
		t, err = time.Parse(time.RFC3339, v)
	}
	return t, err == nil, err
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request, parent int64) {
	q := r.URL.Query()
	page, perPage, ok := paging(w, q)
	if !ok {
		return
	}
	after, hasAfter, err := since(q, "modified_after")
	if err != nil {
		invalidParam(w, "modified_after", "Invalid date.")
		return
	}
	status := cmp.Or(q.Get("status"), "any")
	var include map[int64]bool
	if v := q.Get("include"); v != "" {
		include = map[int64]bool{}
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				invalidParam(w, "include", "include[0] is not of type integer.")
				return
			}
			include[n] = true
		}
	}
	s.mu.Lock()
	if parent != 0 {
		if p := s.products[parent]; p == nil || p.ParentID != 0 {
			s.mu.Unlock()
			werr(w, http.StatusNotFound, "woocommerce_rest_product_invalid_id", "Invalid ID.")
			return
		}
	}
	candidates := s.products
	if parent != 0 {
		// A parent lists its variations: no scan of the whole shop.
		candidates = make(map[int64]*Product, len(s.products[parent].Variations))
		for _, id := range s.products[parent].Variations {
			if v := s.products[id]; v != nil {
				candidates[id] = v
			}
		}
	}
	var items []Product
	for _, p := range candidates {
		if p.ParentID != parent {
			continue
		}
		if status == "any" && p.Status == "trash" || status != "any" && p.Status != status {
			continue
		}
		if include != nil && !include[p.ID] {
			continue
		}
		if hasAfter {
			if t, _ := time.Parse(wooTime, p.DateModifiedGMT); !t.After(after) {
				continue
			}
		}
		items = append(items, *p)
	}
	s.mu.Unlock()
	sortItems(items, q, func(p Product) (int64, string, string) { return p.ID, p.DateCreatedGMT, p.DateModifiedGMT })
	s.writePage(w, r, anys(items), page, perPage)
}

// sortItems orders a list as orderby/order say (default: date, desc).
func sortItems[T any](items []T, q url.Values, key func(T) (id int64, created, modified string)) {
	by, desc := cmp.Or(q.Get("orderby"), "date"), q.Get("order") != "asc"
	slices.SortStableFunc(items, func(a, b T) int {
		ia, ca, ma := key(a)
		ib, cb, mb := key(b)
		var c int
		switch by {
		case "modified":
			c = cmp.Or(cmp.Compare(ma, mb), cmp.Compare(ia, ib))
		case "date":
			c = cmp.Or(cmp.Compare(ca, cb), cmp.Compare(ia, ib))
		default:
			c = cmp.Compare(ia, ib)
		}
		if desc {
			return -c
		}
		return c
	})
}

func (s *Server) getProduct(w http.ResponseWriter, id, parent int64) {
	s.mu.Lock()
	p := s.products[id]
	var out Product
	if p != nil {
		out = *p
	}
	s.mu.Unlock()
	switch {
	case parent == 0 && (p == nil || p.ParentID != 0):
		werr(w, http.StatusNotFound, "woocommerce_rest_product_invalid_id", "Invalid ID.")
	case parent != 0 && (p == nil || p.ParentID != parent):
		werr(w, http.StatusNotFound, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// batch counts the items of a batch request: WooCommerce refuses more than
// 100 in all before doing any. Within the limit it updates stock and
// prices of the products named.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Create []json.RawMessage `json:"create"`
		Update []struct {
			ID            int64   `json:"id"`
			RegularPrice  *string `json:"regular_price"`
			StockQuantity *int64  `json:"stock_quantity"`
		} `json:"update"`
		Delete []int64 `json:"delete"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req); err != nil {
		werr(w, http.StatusBadRequest, "rest_invalid_json", "Invalid JSON body passed.")
		return
	}
	if n := len(req.Create) + len(req.Update) + len(req.Delete); n > batchMax {
		werr(w, http.StatusRequestEntityTooLarge, "woocommerce_rest_request_entity_too_large",
			fmt.Sprintf("Unable to accept more than %d items for this request.", batchMax))
		return
	}
	var updated []any
	for _, u := range req.Update {
		s.UpdateProduct(u.ID, func(p *Product) {
			if u.RegularPrice != nil {
				p.RegularPrice = *u.RegularPrice
			}
			if u.StockQuantity != nil {
				q := *u.StockQuantity
				p.StockQuantity = &q
			}
		})
		if p, ok := s.Product(u.ID); ok {
			updated = append(updated, p)
		} else {
			updated = append(updated, map[string]any{"id": u.ID, "error": map[string]any{"code": "woocommerce_rest_product_invalid_id",
				"message": "Invalid ID.", "data": map[string]any{"status": 400}}})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"update": updated})
}

// createOrder is POST /orders as WooCommerce's orders controller does it:
// no stock check, no product id check, totals from the posted lines,
// set_paid → processing with stock taken.
func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	var o Order
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&o); err != nil {
		werr(w, http.StatusBadRequest, "rest_invalid_json", "Invalid JSON body passed.")
		return
	}
	for _, sl := range o.ShippingLines {
		if sl.MethodID == "" {
			werr(w, http.StatusBadRequest, "woocommerce_rest_invalid_shipping_item", "Shipping method ID is required.")
			return
		}
	}
	s.mu.Lock()
	cur := cmp.Or(o.Currency, s.currency)
	var sum, tax int64
	for i := range o.LineItems {
		li := &o.LineItems[i]
		s.nextID++
		li.ID = s.nextID
		m, err := bridge.ParseMoney(cmp.Or(li.Total, "0"), cur)
		if err != nil {
			s.mu.Unlock()
			invalidParam(w, "line_items", "total: "+err.Error())
			return
		}
		t := m.Amount * s.taxRate / 100
		li.TotalTax = bridge.Money{Amount: t, Currency: cur}.Decimal()
		sum, tax = sum+m.Amount, tax+t
	}
	for _, sl := range o.ShippingLines {
		m, _ := bridge.ParseMoney(cmp.Or(sl.Total, "0"), cur)
		sum += m.Amount
	}
	for _, f := range o.FeeLines {
		m, _ := bridge.ParseMoney(cmp.Or(f.Total, "0"), cur)
		sum += m.Amount
	}
	s.nextID++
	o.ID, o.Currency, o.CreatedVia = s.nextID, cur, "rest-api"
	o.DateCreatedGMT, o.DateModifiedGMT = s.stamp(), s.stamp()
	o.Total = bridge.Money{Amount: sum + tax, Currency: cur}.Decimal()
	o.TotalTax = bridge.Money{Amount: tax, Currency: cur}.Decimal()
	o.Status = "pending"
	for i := range o.MetaData {
		s.nextID++
		o.MetaData[i].ID = s.nextID
	}
	if o.SetPaid {
		s.paymentComplete(&o)
	}
	o.SetPaid = false
	drop := s.dropNext > 0
	if drop {
		s.dropNext--
	}
	s.orders = append(s.orders, &o)
	out := o
	s.mu.Unlock()
	if drop {
		hijackClose(w)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// paymentComplete is WC_Order::payment_complete: an order that needs
// payment (pending, on-hold, failed, cancelled) becomes processing, paid
// now, and its stock is taken once; any other is left as it is. A stalled
// payment (StallPaymentNext) leaves it pending.
func (s *Server) paymentComplete(o *Order) {
	if s.stallPay > 0 {
		s.stallPay--
		return
	}
	switch o.Status {
	case "pending", "on-hold", "failed", "cancelled":
	default:
		return
	}
	o.Status = "processing"
	paid := s.stamp()
	o.DatePaidGMT = &paid
	o.DateModifiedGMT = paid
	if !o.stockReduced {
		s.reduceStock(o.LineItems)
		o.stockReduced = true
	}
}

// reduceStock is wc_reduce_stock_levels: every managed item loses its
// quantity, a "parent" variation its parent's; stock may go negative.
func (s *Server) reduceStock(items []LineItem) {
	for _, li := range items {
		id := cmp.Or(li.VariationID, li.ProductID)
		p := s.products[id]
		if p == nil {
			continue // an unknown id: the line is kept, nothing to reduce
		}
		if p.ManageStock == "parent" || p.ManageStock == false && p.ParentID != 0 {
			if parent := s.products[p.ParentID]; parent != nil && parent.ManageStock == true {
				p = parent
			}
		}
		if p.ManageStock != true || p.StockQuantity == nil {
			continue
		}
		q := *p.StockQuantity - li.Quantity
		p.StockQuantity = &q
		p.DateModifiedGMT = s.stamp()
		s.settle(p)
	}
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, perPage, ok := paging(w, q)
	if !ok {
		return
	}
	after, hasAfter, err1 := since(q, "after")
	mod, hasMod, err2 := since(q, "modified_after")
	if err1 != nil || err2 != nil {
		invalidParam(w, "after", "Invalid date.")
		return
	}
	status := cmp.Or(q.Get("status"), "any")
	s.mu.Lock()
	var items []Order
	for _, o := range s.orders {
		created, _ := time.Parse(wooTime, o.DateCreatedGMT)
		modified, _ := time.Parse(wooTime, o.DateModifiedGMT)
		if hasAfter && !created.After(after) || hasMod && !modified.After(mod) || status != "any" && o.Status != status {
			continue
		}
		// "any" is WP_Query's: every status but those excluded from
		// search, the trash among them.
		if status == "any" && o.Status == "trash" {
			continue
		}
		items = append(items, *o)
	}
	s.mu.Unlock()
	sortItems(items, q, func(o Order) (int64, string, string) { return o.ID, o.DateCreatedGMT, o.DateModifiedGMT })
	s.writePage(w, r, anys(items), page, perPage)
}

func (s *Server) oneOrder(w http.ResponseWriter, r *http.Request, id int64) {
	var body struct {
		Status        string  `json:"status"`
		SetPaid       bool    `json:"set_paid"`
		TransactionID *string `json:"transaction_id"`
	}
	if r.Method == http.MethodPut {
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil {
			werr(w, http.StatusBadRequest, "rest_invalid_json", "Invalid JSON body passed.")
			return
		}
	}
	s.mu.Lock()
	var out *Order
	for _, o := range s.orders {
		if o.ID != id {
			continue
		}
		// The orders controller saves the fields, then runs set_paid.
		if body.Status != "" {
			o.Status, o.DateModifiedGMT = body.Status, s.stamp()
		}
		if body.TransactionID != nil {
			o.TransactionID = *body.TransactionID
		}
		if body.SetPaid {
			s.paymentComplete(o)
		}
		c := *o
		out = &c
	}
	s.mu.Unlock()
	if out == nil {
		werr(w, http.StatusNotFound, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// webhookID is the id of the fake's webhooks.
const webhookID = "7"

// Sign is WooCommerce's webhook signature of body: base64 of its
// HMAC-SHA256 under secret.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Deliver sends one webhook of topic (product.updated, order.updated …)
// about resource id to target, signed with secret, as WooCommerce's
// WC_Webhook::deliver does; the body is the resource as the API returns it,
// or {"id":N} for a deletion. It returns the receiver's status.
func (s *Server) Deliver(client *http.Client, target, secret, topic string, id int64) (int, error) {
	resource, event, _ := strings.Cut(topic, ".")
	var body []byte
	s.mu.Lock()
	var v any = map[string]int64{"id": id}
	if event != "deleted" {
		switch resource {
		case "product":
			if p := s.products[id]; p != nil {
				v = *p
			}
		case "order":
			for _, o := range s.orders {
				if o.ID == id {
					v = *o
				}
			}
		}
	}
	// WC_Webhook::get_new_delivery_id: wp_hash( $this->get_id() .
	// strtotime( 'now' ) ), the same for every delivery of one webhook
	// within a second.
	sum := md5.Sum([]byte(webhookID + strconv.FormatInt(s.now().Unix(), 10)))
	delivery := hex.EncodeToString(sum[:])
	s.mu.Unlock()
	body, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "WooCommerce/9.4.0 Hookshot (WordPress/6.7)")
	req.Header.Set("X-WC-Webhook-Source", s.URL+"/")
	req.Header.Set("X-WC-Webhook-Topic", topic)
	req.Header.Set("X-WC-Webhook-Resource", resource)
	req.Header.Set("X-WC-Webhook-Event", event)
	req.Header.Set("X-WC-Webhook-ID", webhookID)
	req.Header.Set("X-WC-Webhook-Delivery-ID", delivery)
	req.Header.Set("X-WC-Webhook-Signature", Sign(body, secret))
	return send(client, req)
}

// Ping sends the unsigned creation ping WooCommerce sends when a webhook is
// saved: webhook_id=<id>, form-encoded, with no signature.
func Ping(client *http.Client, target string, webhookID int) (int, error) {
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader("webhook_id="+strconv.Itoa(webhookID)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(client, req)
}

func send(client *http.Client, req *http.Request) (int, error) {
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// AddCatalog adds n variable products of perProduct variations each (a
// Color × Size grid), every third one with its stock on the parent
// ("parent" variations), and returns the product ids. For benchmarks and
// sync tests.
func (s *Server) AddCatalog(n, perProduct int) []int64 {
	ids := make([]int64, 0, n)
	for i := range n {
		qty := int64(5 + i%7)
		p := Product{Type: "variable", Name: fmt.Sprintf("Shirt %d", i), Description: "<p>A shirt.</p>",
			Categories: []Category{{ID: 9, Name: "Shirts", Slug: "shirts"}},
			Images:     []Image{{ID: 1, Src: fmt.Sprintf("https://cdn.example/shirt-%d.jpg", i)}},
			Attributes: []Attribute{{ID: 1, Name: "Color", Variation: true}, {ID: 2, Name: "Size", Variation: true}}}
		parentStock := i%3 == 0
		if parentStock {
			p.ManageStock, p.StockQuantity = true, &qty
		}
		for v := range perProduct {
			c := Product{SKU: fmt.Sprintf("SH-%d-%d", i, v), RegularPrice: fmt.Sprintf("%d.99", 10+v%5), Weight: "0.2",
				Attributes: []Attribute{{ID: 1, Name: "Color", Option: fmt.Sprintf("C%d", v/4)}, {ID: 2, Name: "Size", Option: []string{"S", "M", "L", "XL"}[v%4]}}}
			if parentStock {
				c.ManageStock = "parent"
			} else {
				q := int64(v % 4)
				c.ManageStock, c.StockQuantity = true, &q
			}
			p.Children = append(p.Children, c)
		}
		ids = append(ids, s.AddProduct(p))
	}
	return ids
}
