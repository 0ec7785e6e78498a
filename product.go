package bridge

// Product is the canonical product record: what a store record becomes after
// mapping, what the snapshot stores and what every feed format and the checkout
// read. It is shaped like the ACP 2026-04-17 feed Product (product → variants);
// older flat feed formats are projections of it.
type Product struct {
	ID          string      `json:"id"`
	Title       string      `json:"title"`
	Description Description `json:"description,omitzero"`
	URL         string      `json:"url,omitempty"`
	Brand       string      `json:"brand,omitempty"`
	// Category is a path with " > " separators ("Apparel > Shirts").
	Category string    `json:"category,omitempty"`
	Media    []Media   `json:"media,omitempty"`
	Variants []Variant `json:"variants"`
}

// Variant is one purchasable item of a product; its ID is the item id agents
// put in a checkout.
type Variant struct {
	ID          string      `json:"id"`
	SKU         string      `json:"sku,omitempty"`
	Title       string      `json:"title"`
	Description Description `json:"description,omitzero"`
	URL         string      `json:"url,omitempty"`
	GTIN        string      `json:"gtin,omitempty"`
	MPN         string      `json:"mpn,omitempty"`
	// Price is the price the buyer pays now.
	Price Money `json:"price"`
	// ListPrice is the regular price when Price is a sale price; nil otherwise.
	ListPrice        *Money       `json:"list_price,omitempty"`
	Availability     Availability `json:"availability"`
	AvailabilityDate string       `json:"availability_date,omitempty"`
	// Quantity is the stock the store reports; nil when the store does not
	// track stock for this variant.
	Quantity   *int64   `json:"quantity,omitempty"`
	Options    []Option `json:"options,omitempty"`
	Media      []Media  `json:"media,omitempty"`
	Condition  string   `json:"condition,omitempty"`
	Weight     string   `json:"weight,omitempty"`
	WeightUnit string   `json:"weight_unit,omitempty"`
	// Digital variants are delivered without shipping (downloads, gift
	// cards by email): a cart of only digital items gets the digital
	// fulfillment option and no address is needed.
	Digital          bool `json:"digital,omitempty"`
	EligibleSearch   bool `json:"eligible_search"`
	EligibleCheckout bool `json:"eligible_checkout"`
}

// Description holds long text in the forms the store gave; at least one is set
// on a valid record. Plain is what flat feeds carry.
type Description struct {
	Plain string `json:"plain,omitempty"`
	HTML  string `json:"html,omitempty"`
}

// IsZero reports whether no form of the description is set.
func (d Description) IsZero() bool { return d.Plain == "" && d.HTML == "" }

// Media is an image or other asset; the first of a list is the primary one.
type Media struct {
	Type    string `json:"type"`
	URL     string `json:"url"`
	AltText string `json:"alt_text,omitempty"`
}

// Option is one selected characteristic of a variant ("Color": "Red").
type Option struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Availability is the canonical stock state of a variant. Each feed format
// spells it its own way (pre_order, preorder …); writers translate.
type Availability string

// The canonical availability states (ACP 2026-04-17 names).
const (
	InStock      Availability = "in_stock"
	LimitedStock Availability = "limited_stock"
	Backorder    Availability = "backorder"
	Preorder     Availability = "preorder"
	OutOfStock   Availability = "out_of_stock"
	Discontinued Availability = "discontinued"
	Unknown      Availability = "unknown"
)

// Availabilities lists every canonical state, for validation and docs.
var Availabilities = []Availability{InStock, LimitedStock, Backorder, Preorder, OutOfStock, Discontinued, Unknown}

// Valid reports whether a is one of the canonical states.
func (a Availability) Valid() bool {
	for _, v := range Availabilities {
		if a == v {
			return true
		}
	}
	return false
}

// Purchasable reports whether a buyer can order a variant in state a.
func (a Availability) Purchasable() bool {
	switch a {
	case InStock, LimitedStock, Backorder, Preorder:
		return true
	}
	return false
}

// Merchant is the seller identity and policies that feeds and checkout show.
type Merchant struct {
	Name             string
	URL              string
	Currency         string
	Country          string
	PrivacyPolicyURL string
	TermsURL         string
	ReturnPolicyURL  string
	ReturnWindowDays int
}
