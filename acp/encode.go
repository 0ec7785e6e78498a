package acp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
)

// Codec encodes checkout sessions and the discovery document. Its fields
// are the merchant's settings that every session carries; the zero Codec
// advertises no payment handler. A Codec is safe for concurrent use.
type Codec struct {
	// Handler is the merchant's one payment handler (none when ID is "").
	Handler PaymentHandler
	// Currencies are the ISO 4217 codes the shop sells in, for discovery.
	Currencies []string
}

// PaymentHandler describes the merchant's payment handler as 2026-04-17's
// PaymentHandler requires it. Older versions derive their payment_provider
// from it: provider = PSP (only "stripe" exists there), merchant_id =
// MerchantID, card networks = AcceptedBrands.
//
// The bridge only takes delegated tokens, never card numbers, so the
// encoded handler always says requires_delegate_payment: true and
// requires_pci_compliance: false.
type PaymentHandler struct {
	ID                string   // referenced by the agent's payment_data.handler_id
	Name              string   // reverse-DNS, "dev.acp.tokenized.card"
	DisplayName       string   // optional (2026-04-17+)
	Version           string   // YYYY-MM-DD of the handler spec, "2026-01-22"
	Spec              string   // URI of the handler spec
	ConfigSchema      string   // URI
	InstrumentSchemas []string // URIs
	PSP               string   // "stripe"
	MerchantID        string   // the merchant's PSP account; the agent copies it into the allowance
	AcceptedBrands    []string // "visa", "mastercard", "amex", "discover", …
}

// TokenizedCard is the dev.acp.tokenized.card handler (version 2026-01-22)
// with the URIs of the official examples.
func TokenizedCard(id, psp, merchantID string, brands ...string) PaymentHandler {
	return PaymentHandler{
		ID:                id,
		Name:              "dev.acp.tokenized.card",
		Version:           "2026-01-22",
		Spec:              "https://acp.dev/handlers/tokenized.card",
		ConfigSchema:      "https://acp.dev/schemas/handlers/tokenized.card/config.json",
		InstrumentSchemas: []string{"https://acp.dev/schemas/handlers/tokenized.card/instrument.json"},
		PSP:               psp,
		MerchantID:        merchantID,
		AcceptedBrands:    brands,
	}
}

// Validate reports settings that would make the documents invalid: call it
// at start-up rather than find out from an agent.
func (c *Codec) Validate() error {
	var errs []error
	if h := c.Handler; h.ID != "" {
		for _, f := range []struct{ name, value string }{{"name", h.Name}, {"psp", h.PSP}, {"merchant_id", h.MerchantID}} {
			if strings.TrimSpace(f.value) == "" {
				errs = append(errs, fmt.Errorf("payment handler %s: %s is empty", h.ID, f.name))
			}
		}
		if !isDate(h.Version) {
			errs = append(errs, fmt.Errorf("payment handler %s: version %q is not YYYY-MM-DD", h.ID, h.Version))
		}
		for _, u := range append([]string{h.Spec, h.ConfigSchema}, h.InstrumentSchemas...) {
			if !absURL(u) {
				errs = append(errs, fmt.Errorf("payment handler %s: %q is not an absolute URL", h.ID, u))
			}
		}
		if len(h.InstrumentSchemas) == 0 {
			errs = append(errs, fmt.Errorf("payment handler %s: no instrument schema", h.ID))
		}
	}
	for _, cur := range c.Currencies {
		if !isAlpha3(cur) {
			errs = append(errs, fmt.Errorf("currency %q is not a three-letter code", cur))
		}
	}
	return errors.Join(errs...)
}

func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	return strings.Trim(s[:4]+s[5:7]+s[8:], "0123456789") == ""
}

// EncodeSession returns the JSON body of s for version v: a CheckoutSession,
// or a CheckoutSessionWithOrder when s.Order is set (an order without an id
// or a permalink URL cannot be encoded and is left out). Latest is encoded
// straight from s; each older version is the next newer one transformed
// down (see the package documentation).
func (c *Codec) EncodeSession(v Version, s *bridge.Session) ([]byte, error) {
	i := v.index()
	if i < 0 {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedVersion, string(v))
	}
	w := c.latest(s)
	for j := len(Versions) - 2; j >= i; j-- {
		downgrades[j](w)
	}
	return json.Marshal(w)
}

func (v Version) index() int { return slices.Index(Versions, v) }

// wireSession is the union of every version's CheckoutSession. Each field
// is set only in the versions that have it, so that after building (Latest)
// or after each downgrade step the struct holds exactly one version's
// document; encoding/json with omitempty then writes just that. The schema
// tests (additionalProperties:false almost everywhere) catch a field that
// leaks into a version without it.
type wireSession struct {
	ID                     string                  `json:"id"`
	Protocol               *wireProtocol           `json:"protocol,omitempty"`     // 2026-01-30+
	Capabilities           *wireCapabilities       `json:"capabilities,omitempty"` // 2026-01-30+ (required)
	Buyer                  *wireBuyer              `json:"buyer,omitempty"`
	PaymentProvider        *wirePaymentProvider    `json:"payment_provider,omitempty"` // ≤2026-01-16
	Status                 string                  `json:"status"`
	Currency               string                  `json:"currency"`
	LineItems              []wireLineItem          `json:"line_items"`
	FulfillmentAddress     *wireAddress            `json:"fulfillment_address,omitempty"` // 2025-09-29
	FulfillmentDetails     *wireFulfillmentDetails `json:"fulfillment_details,omitempty"` // 2025-12-12+
	FulfillmentOptions     []wireOption            `json:"fulfillment_options"`
	FulfillmentOptionID    string                  `json:"fulfillment_option_id,omitempty"`        // 2025-09-29
	SelectedOptions        []wireSelected          `json:"selected_fulfillment_options,omitempty"` // 2025-12-12+
	Totals                 []wireTotal             `json:"totals"`
	Messages               []wireMessage           `json:"messages"`
	Links                  []wireLink              `json:"links"`
	AuthenticationMetadata *wireAuthMetadata       `json:"authentication_metadata,omitempty"` // 2026-04-17
	CreatedAt              string                  `json:"created_at,omitempty"`              // 2026-01-30+
	UpdatedAt              string                  `json:"updated_at,omitempty"`
	ExpiresAt              string                  `json:"expires_at,omitempty"`
	Order                  *wireOrder              `json:"order,omitempty"`
}

type wireProtocol struct {
	Version string `json:"version"`
}

type wireCapabilities struct {
	Payment       *wirePayment       `json:"payment,omitempty"`
	Interventions *wireInterventions `json:"interventions,omitempty"`
}

type wirePayment struct {
	Handlers []wireHandler `json:"handlers"`
}

type wireHandler struct {
	ID                      string            `json:"id"`
	Name                    string            `json:"name"`
	DisplayName             string            `json:"display_name,omitempty"` // 2026-04-17
	Version                 string            `json:"version"`
	Spec                    string            `json:"spec"`
	RequiresDelegatePayment bool              `json:"requires_delegate_payment"`
	RequiresPCICompliance   bool              `json:"requires_pci_compliance"`
	PSP                     string            `json:"psp"`
	ConfigSchema            string            `json:"config_schema"`
	InstrumentSchemas       []string          `json:"instrument_schemas"`
	Config                  wireHandlerConfig `json:"config"`
}

type wireHandlerConfig struct {
	MerchantID     string   `json:"merchant_id"`
	PSP            string   `json:"psp"`
	AcceptedBrands []string `json:"accepted_brands,omitempty"`
}

type wireInterventions struct {
	Supported []string `json:"supported"`
}

type wirePaymentProvider struct {
	Provider   string `json:"provider"`
	MerchantID string `json:"merchant_id,omitempty"` // 2026-01-16 (required there)
	// SupportedPaymentMethods is []wirePaymentMethod (2025-12-12+) or
	// []string (2025-09-29).
	SupportedPaymentMethods any `json:"supported_payment_methods"`
}

type wirePaymentMethod struct {
	Type                  string   `json:"type"`
	SupportedCardNetworks []string `json:"supported_card_networks"`
}

type wireBuyer struct {
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	FullName    string `json:"full_name,omitempty"` // 2026-01-30+
	Email       string `json:"email"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

type wireAddress struct {
	Name       string `json:"name"`
	LineOne    string `json:"line_one"`
	LineTwo    string `json:"line_two,omitempty"`
	City       string `json:"city"`
	State      string `json:"state"`
	Country    string `json:"country"`
	PostalCode string `json:"postal_code"`
	Company    string `json:"company,omitempty"` // 2026-04-17
}

type wireFulfillmentDetails struct {
	Name        string       `json:"name,omitempty"`
	PhoneNumber string       `json:"phone_number,omitempty"`
	Email       string       `json:"email,omitempty"`
	Address     *wireAddress `json:"address,omitempty"`
}

type wireLineItem struct {
	ID       string   `json:"id"`
	Item     wireItem `json:"item"`
	Quantity int64    `json:"quantity,omitempty"` // 2026-01-30+ (≥1, required)
	// Flat amounts, ≤2026-01-16 (all required there).
	BaseAmount *int64 `json:"base_amount,omitempty"`
	Discount   *int64 `json:"discount,omitempty"`
	Subtotal   *int64 `json:"subtotal,omitempty"`
	Tax        *int64 `json:"tax,omitempty"`
	Total      *int64 `json:"total,omitempty"`
	// Display fields, 2025-12-12+.
	Name       string   `json:"name,omitempty"`
	Images     []string `json:"images,omitempty"`
	UnitAmount *int64   `json:"unit_amount,omitempty"`
	// 2026-01-30+.
	ProductID string      `json:"product_id,omitempty"`
	VariantID string      `json:"variant_id,omitempty"`
	Totals    []wireTotal `json:"totals,omitempty"` // required there
}

type wireItem struct {
	ID       string `json:"id"`
	Quantity int64  `json:"quantity,omitempty"` // ≤2026-01-16 (required there)
}

type wireTotal struct {
	Type        string `json:"type"`
	DisplayText string `json:"display_text"`
	Amount      int64  `json:"amount"`
}

type wireOption struct {
	Type                 string      `json:"type"`
	ID                   string      `json:"id"`
	Title                string      `json:"title"`
	Subtitle             string      `json:"subtitle,omitempty"`    // ≤2025-12-12
	Description          string      `json:"description,omitempty"` // 2026-01-16+
	Carrier              string      `json:"carrier,omitempty"`     // shipping only
	EarliestDeliveryTime string      `json:"earliest_delivery_time,omitempty"`
	LatestDeliveryTime   string      `json:"latest_delivery_time,omitempty"`
	Totals               []wireTotal `json:"totals,omitempty"` // 2026-01-16+ (required there)
	// ≤2025-12-12 (2025-09-29 requires all three, 2025-12-12 only total).
	Subtotal *int64 `json:"subtotal,omitempty"`
	Tax      *int64 `json:"tax,omitempty"`
	Total    *int64 `json:"total,omitempty"`
}

// wireSelected is flat {type, option_id, item_ids} from 2026-01-30 and
// {type, shipping|digital: {option_id, item_ids}} in 2025-12-12 and
// 2026-01-16.
type wireSelected struct {
	Type     string       `json:"type"`
	OptionID string       `json:"option_id,omitempty"`
	ItemIDs  *[]string    `json:"item_ids,omitempty"`
	Shipping *wireSelName `json:"shipping,omitempty"`
	Digital  *wireSelName `json:"digital,omitempty"`
}

type wireSelName struct {
	OptionID string   `json:"option_id"`
	ItemIDs  []string `json:"item_ids"`
}

type wireMessage struct {
	Type        string `json:"type"`
	Code        string `json:"code,omitempty"`
	Resolution  string `json:"resolution,omitempty"` // 2026-04-17
	Param       string `json:"param,omitempty"`
	ContentType string `json:"content_type"`
	Content     string `json:"content"`
}

type wireLink struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type wireAuthMetadata struct {
	AcquirerDetails wireAcquirer `json:"acquirer_details"`
	DirectoryServer string       `json:"directory_server"`
}

type wireAcquirer struct {
	AcquirerBIN        string `json:"acquirer_bin"`
	AcquirerCountry    string `json:"acquirer_country"`
	AcquirerMerchantID string `json:"acquirer_merchant_id"`
	MerchantName       string `json:"merchant_name"`
}

type wireOrder struct {
	Type              string `json:"type,omitempty"` // 2026-04-17: "order"
	ID                string `json:"id"`
	CheckoutSessionID string `json:"checkout_session_id"`
	PermalinkURL      string `json:"permalink_url"`
}

// Enumerations of 2026-04-17 that canonical values are checked against.
var (
	linkTypes         = set("terms_of_use", "privacy_policy", "return_policy", "shipping_policy", "contact_us", "about_us", "faq", "support")
	interventionTypes = set("3ds", "biometric", "address_verification")
	resolutions       = set("recoverable", "requires_buyer_input", "requires_buyer_review")
	directoryServers  = set("american_express", "mastercard", "visa")
	errorCodes        = set("missing", "invalid", "out_of_stock", "payment_declined", "requires_sign_in", "requires_3ds",
		"low_stock", "quantity_exceeded", "coupon_invalid", "coupon_expired", "minimum_not_met", "maximum_exceeded",
		"region_restricted", "age_verification_required", "approval_required", "unsupported", "not_found",
		"conflict", "rate_limited", "expired", "intervention_required")
	warningCodes = set("low_stock", "high_demand", "shipping_delay", "price_change", "expiring_promotion",
		"limited_availability", "discount_code_expired", "discount_code_invalid", "discount_code_already_applied",
		"discount_code_combination_disallowed", "discount_code_minimum_not_met", "discount_code_user_not_logged_in",
		"discount_code_user_ineligible", "discount_code_usage_limit_reached")
)

func set(vs ...string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// latest builds the 2026-04-17 document of s.
func (c *Codec) latest(s *bridge.Session) *wireSession {
	w := &wireSession{
		ID:                 s.ID,
		Protocol:           &wireProtocol{Version: string(Latest)},
		Capabilities:       c.capabilities(s),
		Buyer:              buyer(s.Buyer),
		Status:             string(s.Status),
		Currency:           strings.ToLower(s.Currency),
		LineItems:          make([]wireLineItem, 0, len(s.Lines)),
		FulfillmentDetails: fulfillmentDetails(s),
		FulfillmentOptions: make([]wireOption, 0, len(s.Options)),
		Totals:             sessionTotals(s),
		Messages:           make([]wireMessage, 0, len(s.Messages)),
		Links:              make([]wireLink, 0, len(s.Links)),
		CreatedAt:          timestamp(s.CreatedAt),
		UpdatedAt:          timestamp(s.UpdatedAt),
		ExpiresAt:          timestamp(s.ExpiresAt),
	}
	included := s.Totals.Tax == 0 && s.Totals.TaxIncluded > 0
	lineIDs := make([]string, len(s.Lines))
	for i := range s.Lines {
		l := &s.Lines[i]
		lineIDs[i] = l.ID
		w.LineItems = append(w.LineItems, lineItem(l, included))
	}
	for i := range s.Options {
		o := &s.Options[i]
		if o.Type != "shipping" && o.Type != "digital" {
			continue // pickup and local delivery need fields the domain lacks
		}
		w.FulfillmentOptions = append(w.FulfillmentOptions, option(o))
		if o.ID == s.Selected {
			ids := lineIDs
			w.SelectedOptions = []wireSelected{{Type: o.Type, OptionID: o.ID, ItemIDs: &ids}}
		}
	}
	for _, m := range s.Messages {
		w.Messages = append(w.Messages, message(m))
	}
	for _, l := range s.Links {
		if linkTypes[l.Type] && absURL(l.URL) {
			w.Links = append(w.Links, wireLink{Type: l.Type, URL: l.URL})
		}
	}
	if s.Status == bridge.StatusAuthRequired {
		if w.AuthenticationMetadata = authMetadata(s.Auth); w.AuthenticationMetadata == nil {
			downgradeAuth(w) // nothing an agent could authenticate with
		}
	}
	if o := s.Order; o != nil && o.ID != "" && o.PermalinkURL != "" {
		w.Order = &wireOrder{Type: "order", ID: o.ID, CheckoutSessionID: s.ID, PermalinkURL: o.PermalinkURL}
	}
	return w
}

func (c *Codec) capabilities(s *bridge.Session) *wireCapabilities {
	caps := &wireCapabilities{Payment: &wirePayment{Handlers: []wireHandler{}}}
	if h := c.Handler; h.ID != "" {
		schemas := h.InstrumentSchemas
		if schemas == nil {
			schemas = []string{}
		}
		caps.Payment.Handlers = append(caps.Payment.Handlers, wireHandler{
			ID: h.ID, Name: h.Name, DisplayName: h.DisplayName, Version: h.Version, Spec: h.Spec,
			RequiresDelegatePayment: true, RequiresPCICompliance: false,
			PSP: h.PSP, ConfigSchema: h.ConfigSchema, InstrumentSchemas: schemas,
			Config: wireHandlerConfig{MerchantID: h.MerchantID, PSP: h.PSP, AcceptedBrands: h.AcceptedBrands},
		})
	}
	var supported []string
	for _, t := range s.Interventions {
		if interventionTypes[t] && !slices.Contains(supported, t) {
			supported = append(supported, t)
		}
	}
	if len(supported) > 0 {
		caps.Interventions = &wireInterventions{Supported: supported}
	}
	return caps
}

// buyer is 2026-04-17's Buyer, which requires only the email. The buyer
// is left out without a well-formed email: the agent may have sent any
// string, and the engine's message about it (param $.buyer.email) says
// what is wrong.
func buyer(b *bridge.Buyer) *wireBuyer {
	if b == nil || !validEmail(b.Email) {
		return nil
	}
	return &wireBuyer{FirstName: b.FirstName, LastName: b.LastName, FullName: fullName(b), Email: b.Email, PhoneNumber: b.Phone}
}

func fullName(b *bridge.Buyer) string {
	if b == nil {
		return ""
	}
	if b.Name != "" {
		return b.Name
	}
	return strings.TrimSpace(b.FirstName + " " + b.LastName)
}

// fulfillmentDetails joins the address and the contact. Address.name falls
// back to the contact's and then the buyer's name; a missing region is
// written as state "" (the schemas require the key, not a value).
func fulfillmentDetails(s *bridge.Session) *wireFulfillmentDetails {
	var d wireFulfillmentDetails
	if c := s.Contact; c != nil {
		d.Name, d.PhoneNumber = fullName(c), c.Phone
		if validEmail(c.Email) {
			d.Email = c.Email
		}
	}
	if a := s.ShipTo; a != nil {
		name := a.Name
		if name == "" {
			name = d.Name
		}
		if name == "" {
			name = fullName(s.Buyer)
		}
		d.Address = &wireAddress{Name: name, LineOne: a.Line1, LineTwo: a.Line2, City: a.City, State: a.Region,
			Country: a.Country, PostalCode: a.PostalCode, Company: a.Company}
	}
	if d == (wireFulfillmentDetails{}) {
		return nil
	}
	return &d
}

func lineItem(l *bridge.SessionLine, taxIncluded bool) wireLineItem {
	w := wireLineItem{
		ID: l.ID, Item: wireItem{ID: l.VariantID}, Quantity: l.Quantity, Name: l.Title,
		UnitAmount: ptr(l.UnitAmount), ProductID: l.ProductID, VariantID: l.VariantID,
	}
	if absURL(l.ImageURL) {
		w.Images = []string{l.ImageURL}
	}
	taxText := "Tax"
	if taxIncluded && l.Tax == 0 {
		taxText = "Tax (included in price)"
	}
	w.Totals = make([]wireTotal, 0, 5)
	w.Totals = append(w.Totals, wireTotal{"items_base_amount", "Base amount", l.Base})
	if l.Discount != 0 {
		w.Totals = append(w.Totals, wireTotal{"items_discount", "Discount", l.Discount})
	}
	w.Totals = append(w.Totals,
		wireTotal{"subtotal", "Subtotal", l.Subtotal},
		wireTotal{"tax", taxText, l.Tax},
		wireTotal{"total", "Total", l.Total})
	return w
}

func option(o *bridge.FulfillmentOption) wireOption {
	w := wireOption{Type: o.Type, ID: o.ID, Title: o.Title, Description: o.Subtitle,
		EarliestDeliveryTime: timestamp(o.Earliest), LatestDeliveryTime: timestamp(o.Latest)}
	if o.Type == "shipping" {
		w.Carrier = o.Carrier
	} else {
		w.EarliestDeliveryTime, w.LatestDeliveryTime = "", "" // digital options have no delivery window
	}
	w.Totals = make([]wireTotal, 0, 3)
	w.Totals = append(w.Totals, wireTotal{"subtotal", "Subtotal", o.Subtotal})
	if o.Tax != 0 {
		w.Totals = append(w.Totals, wireTotal{"tax", "Tax", o.Tax})
	}
	w.Totals = append(w.Totals, wireTotal{"total", "Total", o.Total})
	return w
}

// sessionTotals lists the session's sums in the order a receipt shows them.
// Discounts, fulfillment and tax appear when they apply; total always does.
// With tax-inclusive prices the tax entry stays 0 (nothing is added on
// top, so the entries still add up to the total) and its text says how
// much tax the prices include.
func sessionTotals(s *bridge.Session) []wireTotal {
	t := &s.Totals
	out := make([]wireTotal, 0, 7)
	out = append(out, wireTotal{"items_base_amount", "Item(s) total", t.ItemsBase})
	if t.ItemsDiscount != 0 {
		out = append(out, wireTotal{"items_discount", "Item discounts", t.ItemsDiscount})
	}
	if t.Discount != 0 {
		out = append(out, wireTotal{"discount", "Discount", t.Discount})
	}
	out = append(out, wireTotal{"subtotal", "Subtotal", t.Subtotal})
	if s.Selected != "" || t.Fulfillment != 0 {
		text := "Fulfillment"
		for i := range s.Options {
			if s.Options[i].ID == s.Selected && s.Options[i].Type == "shipping" {
				text = "Shipping"
			}
		}
		out = append(out, wireTotal{"fulfillment", text, t.Fulfillment})
	}
	switch {
	case t.Tax == 0 && t.TaxIncluded > 0:
		m := bridge.Money{Amount: t.TaxIncluded, Currency: s.Currency}
		out = append(out, wireTotal{"tax", "Tax (" + m.String() + " included in prices)", 0})
	case t.Tax != 0 || s.ShipTo != nil:
		out = append(out, wireTotal{"tax", "Tax", t.Tax})
	}
	return append(out, wireTotal{"total", "Total", t.Total})
}

// message encodes m for 2026-04-17: an error code outside the enum becomes
// "invalid", a warning whose code is not a warning code becomes info.
func message(m bridge.Message) wireMessage {
	w := wireMessage{Type: string(m.Type), Param: m.Param, ContentType: "plain", Content: m.Content}
	switch m.Type {
	case bridge.MessageError:
		w.Code = m.Code
		if !errorCodes[w.Code] {
			w.Code = bridge.MsgInvalid
		}
	case bridge.MessageWarning:
		if w.Code = m.Code; !warningCodes[w.Code] {
			w.Type, w.Code = string(bridge.MessageInfo), ""
		}
	default:
		w.Type = string(bridge.MessageInfo)
	}
	if resolutions[m.Resolution] {
		w.Resolution = m.Resolution
	}
	return w
}

// authMetadata is 2026-04-17's AuthenticationMetadata, or nil when the
// challenge cannot satisfy the schema's limits. Only the merchant name may
// be shortened (it is display text).
func authMetadata(a *bridge.AuthChallenge) *wireAuthMetadata {
	if a == nil || a.AcquirerBIN == "" || len(a.AcquirerBIN) > 11 || utf8.RuneCountInString(a.AcquirerCountry) != 2 ||
		a.AcquirerMerchantID == "" || utf8.RuneCountInString(a.AcquirerMerchantID) > 35 || !directoryServers[a.DirectoryServer] {
		return nil
	}
	name := a.MerchantName
	if utf8.RuneCountInString(name) > 40 {
		name = string([]rune(name)[:40])
	}
	return &wireAuthMetadata{
		AcquirerDetails: wireAcquirer{AcquirerBIN: a.AcquirerBIN, AcquirerCountry: a.AcquirerCountry,
			AcquirerMerchantID: a.AcquirerMerchantID, MerchantName: name},
		DirectoryServer: a.DirectoryServer,
	}
}

// timestamp is RFC 3339 in UTC, "" for the zero time.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func ptr(n int64) *int64 { return &n }

// absURL reports whether s is an absolute URL (JSON Schema format "uri").
func absURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != ""
}

// validEmail is a conservative form of JSON Schema's "email" format: a
// dot-atom local part and a host name. Quoted local parts and address
// literals, valid but unheard of in checkouts, count as invalid.
func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at < 1 || len(s) > 254 || at > 64 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for _, c := range []byte(local) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".!#$%&'*+-/=?^_`{|}~", c) >= 0) {
			return false
		}
	}
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" || len(domain) > 253 {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
