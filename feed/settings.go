package feed

import (
	"strings"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

// Settings is what feeds need beyond the products themselves: who sells, where,
// and when the feed was made.
type Settings struct {
	// Merchant gives the seller name and url, policy links, return window,
	// currency and the store's country.
	Merchant bridge.Merchant
	// TargetCountries are ISO 3166-1 alpha-2 codes; the default is
	// [Merchant.Country].
	TargetCountries []string
	// FeedID is the ACP feed id in acp/metadata.json; the default is "feed_"
	// plus a lower-case slug of the merchant name, or "feed_default".
	FeedID string
	// GeneratedAt is stamped into headers and metadata and is "now" for the
	// future-date rules. Writers never read the clock themselves, so the same
	// catalog and settings always give the same bytes.
	GeneratedAt time.Time
}

// withDefaults fills the optional settings.
func (s Settings) withDefaults() Settings {
	if len(s.TargetCountries) == 0 && s.Merchant.Country != "" {
		s.TargetCountries = []string{s.Merchant.Country}
	}
	if s.FeedID == "" {
		s.FeedID = defaultFeedID(s.Merchant.Name)
	}
	return s
}

// targetCountry is the first target country, the one ACP's single-country
// feed metadata can carry.
func (s Settings) targetCountry() string {
	if len(s.TargetCountries) > 0 {
		return s.TargetCountries[0]
	}
	return s.Merchant.Country
}

// defaultFeedID derives a stable id from the merchant name; ACP ids must stay
// the same from one upload to the next, so nothing time-based goes in.
func defaultFeedID(name string) string {
	var b strings.Builder
	b.WriteString("feed_")
	sep := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if sep && b.Len() > len("feed_") {
				b.WriteByte('_')
			}
			sep = false
			b.WriteRune(r)
		default:
			sep = true
		}
	}
	if b.Len() == len("feed_") {
		b.WriteString("default")
	}
	return b.String()
}

// isCountryCode reports whether c looks like an ISO 3166-1 alpha-2 code
// (the ACP schema's ^[A-Z]{2}$).
func isCountryCode(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}
