package bridge

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned by lookups of things that do not exist.
var ErrNotFound = errors.New("not found")

// Record is one product as the store describes it, before mapping: the
// product's own fields and one field map per variant. Values are strings,
// numbers, booleans, nil, nested maps and lists, as decoded from the store.
type Record struct {
	// Key identifies the product in the store (CSV group value, Shopify id …).
	Key string
	// Line is where the record starts in its source (CSV row number), for
	// reports; 0 when the source has no lines.
	Line     int
	Product  map[string]any
	Variants []map[string]any
	// VariantLines holds the source line of each variant, when known.
	VariantLines []int
}

// Problem is something wrong at a place in an input the shop admin controls:
// a config or mapping line, or a store record that could not be read and was
// skipped (a malformed CSV row). Key names the thing: a config path, a
// mapping field, a product key.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// String formats p as "file:line: key: message", leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
	}
	if p.Line > 0 {
		if p.File == "" {
			b.WriteString("line ")
		} else {
			b.WriteString(":")
		}
		b.WriteString(strconv.Itoa(p.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is an error made of every problem found, so that an admin fixes a
// file in one pass.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// CatalogSource is implemented by store adapters: it streams every product of
// the store as records. Unreadable parts are reported through skip and left
// out; they never stop the scan. An error return means the source as a whole
// could not be read (unreachable, wrong format), and the sync keeps its last
// good snapshot.
type CatalogSource interface {
	ReadCatalog(ctx context.Context, emit func(Record) error, skip func(Problem)) error
}

// Severity grades a validation issue: errors keep a variant out of feeds and
// checkout; warnings are advice.
type Severity string

// Issue severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Issue is one finding of feed validation about a product or one of its
// variants.
type Issue struct {
	Severity  Severity `json:"severity"`
	VariantID string   `json:"variant_id,omitempty"`
	Field     string   `json:"field"`
	Message   string   `json:"message"`
	// Line is the source line of the variant's store record, when known.
	Line int `json:"line,omitempty"`
}

// CatalogEntry is a mapped product in the snapshot with what validation found.
type CatalogEntry struct {
	Product Product `json:"product"`
	Issues  []Issue `json:"issues,omitempty"`
	// SourceKey and SourceLine point back at the store record.
	SourceKey  string `json:"source_key,omitempty"`
	SourceLine int    `json:"source_line,omitempty"`
}

// Excluded reports whether the product-level issues keep the whole product out.
func (e CatalogEntry) Excluded() bool {
	for _, is := range e.Issues {
		if is.Severity == SeverityError && is.VariantID == "" {
			return true
		}
	}
	return len(e.ValidVariants()) == 0
}

// VariantValid reports whether no error issue names variant id or the product.
func (e CatalogEntry) VariantValid(id string) bool {
	for _, is := range e.Issues {
		if is.Severity == SeverityError && (is.VariantID == id || is.VariantID == "") {
			return false
		}
	}
	return true
}

// ValidVariantCount counts the variants feeds may publish, without
// allocating.
func (e CatalogEntry) ValidVariantCount() int {
	n := 0
	for _, v := range e.Product.Variants {
		if e.VariantValid(v.ID) {
			n++
		}
	}
	return n
}

// ValidVariants returns the variants feeds may publish.
func (e CatalogEntry) ValidVariants() []Variant {
	out := make([]Variant, 0, len(e.Product.Variants))
	for _, v := range e.Product.Variants {
		if e.VariantValid(v.ID) {
			out = append(out, v)
		}
	}
	return out
}

// CatalogInfo describes a committed snapshot.
type CatalogInfo struct {
	// Version changes with every committed snapshot; feed ETags derive from it.
	Version  string    `json:"version"`
	SyncedAt time.Time `json:"synced_at"`
	Products int       `json:"products"`
	Variants int       `json:"variants"`
	// ValidVariants counts the variants feeds publish.
	ValidVariants int `json:"valid_variants"`
	// Excluded counts products left out of feeds by validation errors.
	Excluded int `json:"excluded"`
	// Problems are the source rows skipped while reading (capped; see
	// ProblemCount for the total).
	Problems     []Problem `json:"problems,omitempty"`
	ProblemCount int       `json:"problem_count"`
	// SourceTime is when the store data of the snapshot was current (a CSV
	// file's modification time, an HTTP Last-Modified); zero when unknown.
	SourceTime time.Time `json:"source_time,omitzero"`
}

// DatedSource is implemented by catalog sources that know how current the
// data their last ReadCatalog returned was.
type DatedSource interface {
	// SourceTime is the time of the data the last completed ReadCatalog
	// read; zero when the source cannot tell.
	SourceTime() time.Time
}

// CatalogWriter receives a new snapshot entry by entry; nothing is visible to
// readers until Commit, and Rollback (or a failed Commit) leaves the previous
// snapshot in place.
type CatalogWriter interface {
	Put(ctx context.Context, e CatalogEntry) error
	Commit(ctx context.Context, info CatalogInfo) error
	Rollback() error
}

// CatalogStore holds the current catalog snapshot.
type CatalogStore interface {
	BeginCatalog(ctx context.Context) (CatalogWriter, error)
	// CatalogInfo returns ErrNotFound before the first snapshot.
	CatalogInfo(ctx context.Context) (CatalogInfo, error)
	// EachCatalogEntry calls fn for every entry in source order.
	EachCatalogEntry(ctx context.Context, fn func(CatalogEntry) error) error
	CatalogEntry(ctx context.Context, productID string) (CatalogEntry, error)
	// CatalogEntryByVariant finds the entry holding variant id.
	CatalogEntryByVariant(ctx context.Context, variantID string) (CatalogEntry, error)
}

// Reservation holds quantity of a variant for an order.
type Reservation struct {
	VariantID string `json:"variant_id"`
	Quantity  int64  `json:"quantity"`
}

// ReservationStore tracks stock held by orders for stores that cannot hold
// stock themselves (a CSV export).
type ReservationStore interface {
	// Reserve records the lines for orderID; reserving the same orderID again
	// changes nothing.
	Reserve(ctx context.Context, orderID string, lines []Reservation) error
	// Reserved sums what orders reserved at or after since hold of
	// variantID; the zero time counts every order.
	Reserved(ctx context.Context, variantID string, since time.Time) (int64, error)
	// Release drops orderID's reservations (order canceled).
	Release(ctx context.Context, orderID string) error
}

// EventLog remembers webhook events already handled, so a delivery the
// sender repeats is acknowledged without acting twice.
type EventLog interface {
	EventSeen(ctx context.Context, source, id string) (bool, error)
	// RecordEvent is idempotent.
	RecordEvent(ctx context.Context, source, id string) error
}

// Storage is everything the bridge keeps. Each driver implements all of it and
// passes the shared conformance suite (storage/storagetest).
type Storage interface {
	CatalogStore
	ReservationStore
	CheckoutStore
	EventLog
	Outbox
	FeedPushStore
	Ping(ctx context.Context) error
	Close() error
}
