package feed

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/htmltext"
)

// Field names used in issues. They are the canonical names of the product
// record (and of the merchant settings), not those of one feed format, so that
// one report explains every feed.
const (
	FieldID               = "id"
	FieldVariants         = "variants"
	FieldTitle            = "title"
	FieldDescription      = "description"
	FieldURL              = "url"
	FieldImage            = "image"
	FieldBrand            = "brand"
	FieldPrice            = "price"
	FieldListPrice        = "list_price"
	FieldAvailability     = "availability"
	FieldAvailabilityDate = "availability_date"
	FieldGTIN             = "gtin"
	FieldMPN              = "mpn"
	FieldWeight           = "weight"
	FieldCondition        = "condition"
	FieldEligibleCheckout = "eligible_checkout"
	FieldSellerName       = "seller_name"
	FieldSellerURL        = "seller_url"
	FieldReturnPolicy     = "return_policy"
	FieldPrivacyPolicy    = "privacy_policy"
	FieldTermsOfService   = "terms_of_service"
	FieldCurrency         = "currency"
	FieldStoreCountry     = "store_country"
	FieldReturnWindow     = "return_window"
)

// Limits from the feed specifications (docs/product-feed.md §1a), in runes.
const (
	maxIDLen          = 100
	maxTitleLen       = 150
	maxBrandLen       = 70
	maxMPNLen         = 70
	maxSellerNameLen  = 70
	allCapsMinLetters = 6 // "TV STAND" shouts; "USB" alone is just an acronym
)

// Validate checks one mapped product against the feed rules and returns what
// it found, product-level issues first. An error issue without VariantID
// keeps the whole product out of every feed and out of checkout; one with a
// VariantID keeps that variant out; warnings are advice. Problems with the
// merchant settings (seller name, policy links, currency) come out on every
// product, because no feed row may go out without them.
//
// Validate runs once per product on every sync, so it allocates only when it
// has something to report.
func Validate(p *bridge.Product, s Settings) []bridge.Issue {
	v := validator{
		currency:         s.Merchant.Currency,
		now:              s.GeneratedAt,
		checkoutPolicies: s.Merchant.PrivacyPolicyURL != "" && s.Merchant.TermsURL != "",
		out:              merchantIssues(s.Merchant),
	}
	v.product(p)
	return v.out
}

// validator holds copies of the few settings the rules need rather than a
// pointer to them, so that the settings do not escape to the heap.
type validator struct {
	currency         string
	now              time.Time
	checkoutPolicies bool
	out              []bridge.Issue
}

func (v *validator) add(sev bridge.Severity, variant, field, msg string) {
	v.out = append(v.out, bridge.Issue{Severity: sev, VariantID: variant, Field: field, Message: msg})
}

func (v *validator) errorf(variant, field, format string, args ...any) {
	v.add(bridge.SeverityError, variant, field, fmt.Sprintf(format, args...))
}

func (v *validator) warnf(variant, field, format string, args ...any) {
	v.add(bridge.SeverityWarning, variant, field, fmt.Sprintf(format, args...))
}

func (v *validator) product(p *bridge.Product) {
	if isMissing(p.ID) {
		v.add(bridge.SeverityError, "", FieldID, "product id is missing"+placeholderNote(p.ID))
	}
	v.title("", p.Title, "title")
	if isMissing(p.Brand) {
		v.add(bridge.SeverityError, "", FieldBrand, "brand is missing"+placeholderNote(p.Brand)+"; feeds require the brand (or the shop name for own-brand goods)")
	} else if n, over := runesOver(p.Brand, maxBrandLen); over {
		v.errorf("", FieldBrand, "brand is %d characters long; the limit is %d", n, maxBrandLen)
	}
	if !p.Description.IsZero() {
		v.description("", p.Description)
	}
	if p.URL != "" {
		v.url("", FieldURL, "product url", p.URL)
	}
	productImages := 0
	for _, m := range p.Media {
		if isImage(m) {
			productImages++
		}
		v.url("", FieldImage, "image url", m.URL)
	}
	if len(p.Variants) == 0 {
		v.add(bridge.SeverityError, "", FieldVariants, "product has no variants, so there is nothing to sell")
		return
	}

	// A field a variant may inherit from its product is reported once on
	// the product when no variant has it either, and per variant otherwise.
	var needDesc, needURL, needImage bool
	if p.Description.IsZero() || p.URL == "" || productImages == 0 {
		var withDesc, withURL, withImage int
		for i := range p.Variants {
			vr := &p.Variants[i]
			if !vr.Description.IsZero() {
				withDesc++
			}
			if vr.URL != "" {
				withURL++
			}
			if hasImage(vr.Media) {
				withImage++
			}
		}
		needDesc = p.Description.IsZero()
		needURL = p.URL == ""
		needImage = productImages == 0
		if needDesc && withDesc == 0 {
			v.add(bridge.SeverityError, "", FieldDescription, "description is missing (neither plain text nor HTML)")
			needDesc = false
		}
		if needURL && withURL == 0 {
			v.add(bridge.SeverityError, "", FieldURL, "url of the product page is missing")
			needURL = false
		}
		if needImage && withImage == 0 {
			v.add(bridge.SeverityError, "", FieldImage, "product has no image; feeds require at least one")
			needImage = false
		}
	}

	// Uniqueness is checked pairwise, which is fastest for the usual handful
	// of variants; a map takes over for large products.
	var seen map[string]int
	if len(p.Variants) > 32 {
		seen = make(map[string]int, len(p.Variants))
	}
	for i := range p.Variants {
		vr := &p.Variants[i]
		if isMissing(vr.ID) {
			// An issue is tied to a variant by its id, so a variant without
			// one can only be reported (and excluded) with its product.
			v.errorf("", FieldID, "variant %d has no id%s; the whole product is left out until it has one", i+1, placeholderNote(vr.ID))
			continue
		}
		dup := -1
		if seen == nil {
			dup = duplicateBefore(p.Variants, i)
		} else if j, ok := seen[vr.ID]; ok {
			dup = j
		} else {
			seen[vr.ID] = i
		}
		if dup >= 0 {
			v.errorf(vr.ID, FieldID, "variant id %q is used by variants %d and %d; ids must be unique", clip(vr.ID), dup+1, i+1)
		}
		v.variant(p, vr, needDesc, needURL, needImage)
	}
}

func (v *validator) variant(p *bridge.Product, vr *bridge.Variant, needDesc, needURL, needImage bool) {
	id := vr.ID
	if n, over := runesOver(id, maxIDLen); over {
		v.errorf(id, FieldID, "variant id is %d characters long; the limit is %d", n, maxIDLen)
	}
	if vr.Title != p.Title || isMissing(vr.Title) { // the product's title was checked already
		v.title(id, vr.Title, "variant title")
	}
	if !vr.Description.IsZero() {
		v.description(id, vr.Description)
	} else if needDesc {
		v.add(bridge.SeverityError, id, FieldDescription, "description is missing (neither the variant nor its product has one)")
	}
	if vr.URL != "" {
		v.url(id, FieldURL, "variant url", vr.URL)
	} else if needURL {
		v.add(bridge.SeverityError, id, FieldURL, "url is missing (neither the variant nor its product has one)")
	}
	for _, m := range vr.Media {
		v.url(id, FieldImage, "image url", m.URL)
	}
	if needImage && !hasImage(vr.Media) {
		v.add(bridge.SeverityError, id, FieldImage, "variant has no image and its product has none either")
	}
	v.price(id, vr)
	v.availability(id, vr)
	if vr.GTIN != "" {
		if msg := gtinProblem(vr.GTIN); msg != "" {
			v.errorf(id, FieldGTIN, "gtin %q %s", clip(vr.GTIN), msg)
		}
	}
	if n, over := runesOver(vr.MPN, maxMPNLen); over {
		v.errorf(id, FieldMPN, "mpn is %d characters long; the limit is %d", n, maxMPNLen)
	}
	if vr.Weight != "" {
		if !isPlainDecimal(strings.TrimSpace(vr.Weight)) {
			v.errorf(id, FieldWeight, "weight %q is not a plain number like 1.25", clip(vr.Weight))
		} else if strings.TrimSpace(vr.WeightUnit) == "" {
			v.add(bridge.SeverityError, id, FieldWeight, "weight is set but weight_unit is missing (kg, g, lb or oz)")
		}
	}
	if vr.Condition != "" && hasUpper(vr.Condition) {
		v.warnf(id, FieldCondition, "condition %q should be lower-case; feeds send %q", clip(vr.Condition), strings.ToLower(vr.Condition))
	}
	if vr.EligibleCheckout {
		if !vr.EligibleSearch {
			v.add(bridge.SeverityError, id, FieldEligibleCheckout, "checkout is enabled but search is not; enable search too, or disable checkout")
		}
		if !v.checkoutPolicies {
			v.add(bridge.SeverityError, id, FieldEligibleCheckout, "checkout is enabled but the store's privacy policy and terms of service URLs are not both configured")
		}
	}
}

func (v *validator) title(variant, title, what string) {
	if isMissing(title) {
		v.add(bridge.SeverityError, variant, FieldTitle, what+" is missing"+placeholderNote(title))
		return
	}
	if n, over := runesOver(title, maxTitleLen); over {
		v.errorf(variant, FieldTitle, "%s is %d characters long; the limit is %d", what, n, maxTitleLen)
	}
	if allCaps(title) {
		v.add(bridge.SeverityWarning, variant, FieldTitle, what+" is in ALL CAPS; feeds ask for normal capitalization")
	}
}

func (v *validator) description(variant string, d bridge.Description) {
	if d.Plain == "" {
		return // HTML only: writers derive the plain text from it
	}
	if isMissing(d.Plain) && d.HTML == "" {
		v.add(bridge.SeverityError, variant, FieldDescription, "description is missing"+placeholderNote(d.Plain))
		return
	}
	if htmltext.ContainsHTML(d.Plain) {
		v.add(bridge.SeverityError, variant, FieldDescription, "plain-text description contains HTML tags; feeds accept plain text only (put HTML in the HTML description)")
	}
	if n, over := runesOver(d.Plain, maxDescription); over {
		v.errorf(variant, FieldDescription, "plain-text description is %d characters long; the limit is %d", n, maxDescription)
	}
}

// url reports a URL problem in field; http is accepted with a warning.
func (v *validator) url(variant, field, what, u string) {
	if u == "" {
		v.add(bridge.SeverityError, variant, field, what+" is empty")
		return
	}
	switch p := checkURL(u); p {
	case urlOK:
	case urlHTTP:
		v.add(bridge.SeverityWarning, variant, field, what+" uses http; https is preferred")
	default:
		v.errorf(variant, field, "%s %q %s", what, clip(u), urlProblemText(p))
	}
}

func (v *validator) price(id string, vr *bridge.Variant) {
	pr := vr.Price
	cur := v.currency
	switch {
	case pr.Currency == "":
		v.add(bridge.SeverityError, id, FieldPrice, "price has no currency")
		return
	case !validCurrency(pr.Currency):
		v.errorf(id, FieldPrice, "price currency %q is not an ISO 4217 code", clip(pr.Currency))
		return
	case pr.Amount <= 0:
		v.add(bridge.SeverityError, id, FieldPrice, "price must be above zero")
	}
	if cur != "" && pr.Currency != cur {
		v.errorf(id, FieldPrice, "price is in %s but the store sells in %s", pr.Currency, cur)
	}
	lp := vr.ListPrice
	if lp == nil {
		return
	}
	switch {
	case lp.Currency != pr.Currency:
		v.errorf(id, FieldListPrice, "list price is in %q but the price is in %s; they must match", clip(lp.Currency), pr.Currency)
	case lp.Amount <= pr.Amount:
		v.add(bridge.SeverityWarning, id, FieldListPrice, "list price not above price; sale ignored")
	}
}

func (v *validator) availability(id string, vr *bridge.Variant) {
	a := vr.Availability
	if !a.Valid() {
		if a == "" {
			v.add(bridge.SeverityError, id, FieldAvailability, "availability is missing")
		} else {
			v.errorf(id, FieldAvailability, "availability %q is not one of in_stock, limited_stock, backorder, preorder, out_of_stock, discontinued, unknown", clip(string(a)))
		}
		return
	}
	feedsDate := a == bridge.Preorder || a == bridge.Backorder // writers send the date only for these
	if vr.AvailabilityDate == "" {
		if a == bridge.Preorder {
			v.add(bridge.SeverityError, id, FieldAvailabilityDate, "preorder needs an availability_date (the date it ships, like 2026-12-01)")
		}
		return
	}
	t, ok := parseDate(vr.AvailabilityDate)
	switch {
	case !ok && feedsDate:
		v.errorf(id, FieldAvailabilityDate, "availability_date %q is not an ISO 8601 date (like 2026-12-01)", clip(vr.AvailabilityDate))
	case !ok:
		v.warnf(id, FieldAvailabilityDate, "availability_date %q is not an ISO 8601 date (like 2026-12-01); it is ignored while the variant is %s", clip(vr.AvailabilityDate), a)
	case a == bridge.Preorder && !v.now.IsZero() && !t.After(v.now):
		v.errorf(id, FieldAvailabilityDate, "preorder availability_date %s is not in the future", vr.AvailabilityDate)
	}
}

// parseDate accepts the ISO 8601 forms stores export: a date, or a date and
// time with a zone.
func parseDate(s string) (time.Time, bool) {
	if len(s) == len("2006-01-02") {
		t, err := time.Parse(time.DateOnly, s)
		return t, err == nil
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// merchantCache holds the issues of the last merchant seen: every product of
// a sync carries the same merchant, so they are computed once.
var merchantCache atomic.Pointer[merchantResult]

type merchantResult struct {
	m      bridge.Merchant
	issues []bridge.Issue
}

// merchantIssues returns a fresh slice (the caller appends to it) holding the
// product-level issues that come from the merchant settings.
func merchantIssues(m bridge.Merchant) []bridge.Issue {
	r := merchantCache.Load()
	if r == nil || r.m != m {
		r = &merchantResult{m: m, issues: checkMerchant(m)}
		merchantCache.Store(r)
	}
	if len(r.issues) == 0 {
		return nil
	}
	return append([]bridge.Issue(nil), r.issues...)
}

func checkMerchant(m bridge.Merchant) []bridge.Issue {
	var v validator
	if isMissing(m.Name) {
		v.add(bridge.SeverityError, "", FieldSellerName, "seller name (the store's name in the settings) is missing")
	} else if n, over := runesOver(m.Name, maxSellerNameLen); over {
		v.errorf("", FieldSellerName, "seller name is %d characters long; the limit is %d", n, maxSellerNameLen)
	}
	v.url("", FieldSellerURL, "seller url (the store's address in the settings)", m.URL)
	v.url("", FieldReturnPolicy, "return policy url (in the settings)", m.ReturnPolicyURL)
	if m.PrivacyPolicyURL != "" {
		v.url("", FieldPrivacyPolicy, "privacy policy url (in the settings)", m.PrivacyPolicyURL)
	}
	if m.TermsURL != "" {
		v.url("", FieldTermsOfService, "terms of service url (in the settings)", m.TermsURL)
	}
	switch {
	case m.Currency == "":
		v.add(bridge.SeverityError, "", FieldCurrency, "the store currency is not set in the settings")
	case !validCurrency(m.Currency):
		v.errorf("", FieldCurrency, "the store currency %q in the settings is not an ISO 4217 code", clip(m.Currency))
	}
	if !isCountryCode(m.Country) {
		v.warnf("", FieldStoreCountry, "the store country %q in the settings is not a two-letter ISO 3166 code; OpenAI rejects rows without store_country", clip(m.Country))
	}
	if m.ReturnWindowDays < 0 {
		v.warnf("", FieldReturnWindow, "return window of %d days is negative and is left out of feeds", m.ReturnWindowDays)
	}
	return v.out
}

// isMissing reports whether a required text value is absent: empty, blank, or
// a placeholder that exports put where they have nothing.
func isMissing(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || isPlaceholder(s)
}

func isPlaceholder(s string) bool {
	return strings.EqualFold(s, "null") || strings.EqualFold(s, "n/a") || strings.EqualFold(s, "unknown")
}

func placeholderNote(s string) string {
	if t := strings.TrimSpace(s); t != "" && isPlaceholder(t) {
		return fmt.Sprintf(" (%q is a placeholder, not a value)", t)
	}
	return ""
}

// clip shortens a value quoted in a message so one bad field does not flood
// the report.
func clip(s string) string {
	const n = 80
	if t := truncateRunes(s, n); len(t) < len(s) {
		return t + "…"
	}
	return s
}

// runesOver reports whether s has more than n runes and how many it has;
// a string of at most n bytes cannot, which spares counting most values.
func runesOver(s string, n int) (int, bool) {
	if len(s) <= n {
		return len(s), false
	}
	c := utf8.RuneCountInString(s)
	return c, c > n
}

func duplicateBefore(vs []bridge.Variant, i int) int {
	id := vs[i].ID
	for j := 0; j < i; j++ {
		if vs[j].ID == id {
			return j
		}
	}
	return -1
}

func allCaps(s string) bool {
	upper := 0
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			if 'a' <= r && r <= 'z' {
				return false
			}
			if 'A' <= r && r <= 'Z' {
				upper++
			}
		case unicode.IsLower(r):
			return false
		case unicode.IsUpper(r):
			upper++
		}
	}
	return upper >= allCapsMinLetters
}

func hasUpper(s string) bool {
	for _, r := range s {
		if unicode.IsUpper(r) {
			return true
		}
	}
	return false
}

// gtinProblem returns why code is not a GTIN, or "" when it is one:
// 8 to 14 digits whose last is the GS1 mod-10 check digit.
func gtinProblem(code string) string {
	if len(code) < 8 || len(code) > 14 {
		return "must have 8 to 14 digits"
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "must be digits only, without spaces or dashes"
		}
	}
	sum := 0
	for i, w := len(code)-2, 3; i >= 0; i, w = i-1, 4-w {
		sum += int(code[i]-'0') * w
	}
	if check := (10 - sum%10) % 10; int(code[len(code)-1]-'0') != check {
		return fmt.Sprintf("has a wrong check digit (expected %d); check for a typo", check)
	}
	return ""
}

func isImage(m bridge.Media) bool {
	return m.Type == "" || strings.EqualFold(m.Type, "image")
}

func hasImage(ms []bridge.Media) bool {
	for _, m := range ms {
		if isImage(m) {
			return true
		}
	}
	return false
}

type urlProblem int

const (
	urlOK urlProblem = iota
	urlHTTP
	urlNotAbsolute
	urlCredentials
	urlBadChar
	urlBadPercent
	urlBadHost
)

func urlProblemText(p urlProblem) string {
	switch p {
	case urlNotAbsolute:
		return "is not an absolute http:// or https:// URL"
	case urlCredentials:
		return "contains a user name or password; remove them"
	case urlBadChar:
		return "contains spaces or characters that must be percent-encoded"
	case urlBadPercent:
		return "has a % that does not start a percent-encoding like %20"
	case urlBadHost:
		return "has no valid host name"
	}
	return "is invalid"
}

// urlClass sorts URL bytes: 0 for the plain ones RFC 3986 allows anywhere,
// urlSpecial for the ones checkURL looks at (% / ? # @), urlBad for those
// that must be percent-encoded. One lookup per byte keeps the common case to
// a single branch.
var urlClass = func() (t [256]uint8) {
	for i := range t {
		t[i] = urlBad
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 0, 0
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 0
	}
	for _, c := range "-._~:[]!$&'()*+,;=" {
		t[c] = 0
	}
	for _, c := range "%/?#@" {
		t[c] = urlSpecial
	}
	return t
}()

const (
	urlSpecial = 1
	urlBad     = 2
)

// checkURL checks that u is an absolute, encoded http(s) URL without
// credentials. It is stricter than net/url.Parse (which lets spaces and
// non-ASCII through) because feed consumers reject URLs that are not RFC
// 3986 encoded, and it does not allocate.
func checkURL(u string) urlProblem {
	var rest string
	http := false
	switch {
	case len(u) > 8 && strings.EqualFold(u[:8], "https://"):
		rest = u[8:]
	case len(u) > 7 && strings.EqualFold(u[:7], "http://"):
		rest, http = u[7:], true
	default:
		return urlNotAbsolute
	}
	// One pass checks the characters and finds where the authority
	// (user@host:port) ends.
	authEnd := -1
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		cls := urlClass[c]
		if cls == 0 {
			continue
		}
		if cls == urlBad {
			return urlBadChar
		}
		switch c {
		case '%':
			if i+2 >= len(rest) || !isHex(rest[i+1]) || !isHex(rest[i+2]) {
				return urlBadPercent
			}
		case '/', '?', '#':
			if authEnd < 0 {
				authEnd = i
			}
		case '@':
			if authEnd < 0 {
				return urlCredentials
			}
		}
	}
	auth := rest
	if authEnd >= 0 {
		auth = rest[:authEnd]
	}
	host := auth
	if strings.HasPrefix(host, "[") { // IPv6 literal
		end := strings.IndexByte(host, ']')
		if end < 2 {
			return urlBadHost
		}
		if port := host[end+1:]; port != "" && (port[0] != ':' || !allDigits(port[1:])) {
			return urlBadHost
		}
		host = host[1:end]
		for i := 0; i < len(host); i++ {
			if c := host[i]; !isHex(c) && c != ':' && c != '.' {
				return urlBadHost
			}
		}
	} else {
		if i := strings.IndexByte(host, ':'); i >= 0 {
			if !allDigits(host[i+1:]) {
				return urlBadHost
			}
			host = host[:i]
		}
		if host == "" || host[0] == '.' || host[0] == '-' {
			return urlBadHost
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(c|0x20 >= 'a' && c|0x20 <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '%') {
				return urlBadHost
			}
		}
	}
	if http {
		return urlHTTP
	}
	return urlOK
}

// isPlainDecimal reports whether s is a non-negative decimal like "12" or
// "0.45", the only number form every feed reader accepts.
func isPlainDecimal(s string) bool {
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
