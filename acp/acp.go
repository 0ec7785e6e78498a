// Package acp is the Agentic Commerce Protocol as the bridge speaks it: the
// released API versions, the API-Version header, the protocol's error
// object, and the per-version codecs of the checkout. The canonical form is
// the newest version (2026-04-17, shaped like bridge.Session); older
// versions are transforms of the next newer one, the way Stripe versions its
// API, so the engine never branches on versions.
//
// # Responses: one typed document, transformed down
//
// Codec.EncodeSession builds the 2026-04-17 document from the session in
// typed structs and marshals it with encoding/json (no maps). For an older
// version it then applies the down-transforms 2026-04-17 → 2026-01-30 →
// 2026-01-16 → 2025-12-12 → 2025-09-29 in turn, each reading only the
// previous version's document. The document type is the union of all
// versions' fields (wireSession): every field is set only while the
// document is in a version that has it, so after each step the struct is
// exactly one version's CheckoutSession. That keeps the transforms typed
// and short (a generic JSON tree would need a type assertion per access;
// per-version struct sets would repeat ~15 types five times), and the
// tests validate every version against its official schema, whose
// additionalProperties:false catches any field that leaks.
//
// What changes on the way down (details at each step in downgrade.go):
//
//   - 2026-01-30: no handler display_name, address company, message
//     resolution or order type. authentication_required leaves: until
//     2026-04-17 authentication_metadata requires the buyer's browser
//     (channel), which a merchant cannot know, and the RFC says the status
//     MUST come with the metadata. The session shows ready_for_payment with
//     a requires_3ds error message, like a declined card (another card may
//     pay).
//   - 2026-01-16: capabilities become payment_provider (stripe only,
//     merchant_id, card networks from the handler's brands); line amounts
//     become flat fields; selections nest under shipping/digital; statuses,
//     message codes and links shrink to the older enums (tables in
//     downgrade.go); warnings become info; the buyer needs first and last
//     name (a full name is split at its last space, or the buyer is left
//     out); no protocol, timestamps.
//   - 2025-12-12: fulfillment options carry subtitle and subtotal/tax/total
//     instead of description and totals[]; no merchant_id.
//   - 2025-09-29: fulfillment_address and fulfillment_option_id instead of
//     details and selections; no line display fields; payment methods as
//     ["card"]; return_policy becomes seller_shop_policies.
//
// Message params are JSONPaths into the canonical session; each step
// rewrites the ones whose target moved ($.fulfillment_details.address →
// $.fulfillment_address, $.line_items[0].quantity →
// $.line_items[0].item.quantity, …) and drops those with no counterpart.
// No step ever emits an object with a required field it cannot fill: such
// objects (a buyer without a last name, a provider other than stripe) are
// left out when optional.
//
// # Requests: up-transforms, errors in the caller's words
//
// DecodeCreate, DecodeUpdate, DecodeComplete and DecodeCancel parse the body
// into a JSON tree and run the up-transforms from the caller's version to
// 2026-04-17 (items → line_items, fulfillment_address →
// fulfillment_details.address, nested → flat selections, payment_data
// {token, provider} → an instrument), then decode the canonical shape into
// package checkout's request types. Each step first deletes the fields that
// the newer version added (to the caller they are unknown fields, which
// are ignored) and records where it moved values, so an error found later
// names the path in the caller's own request ($.items[1].quantity at
// 2025-09-29, $.line_items[1].quantity at 2026-04-17). Validation covers
// what the bridge reads: JSON types, required fields, quantities (whole
// numbers 1…MaxQuantity), at most MaxLineItems items. Null counts as
// absent. Everything else is ignored.
//
// BodyHash gives the semantic identity of a body for idempotency.
package acp

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Version is an ACP API version, the value of the API-Version header.
type Version string

// The released versions.
const (
	V20250929 Version = "2025-09-29"
	V20251212 Version = "2025-12-12"
	V20260116 Version = "2026-01-16"
	V20260130 Version = "2026-01-30"
	V20260417 Version = "2026-04-17"
	// Latest is the canonical version.
	Latest = V20260417
)

// Versions lists the released versions, oldest first (the order of the
// discovery document's protocol.supported_versions).
var Versions = []Version{V20250929, V20251212, V20260116, V20260130, V20260417}

// Errors of ParseVersion.
var (
	ErrMissingVersion     = errors.New("missing API-Version header")
	ErrUnsupportedVersion = errors.New("unsupported API-Version")
)

// ParseVersion reads an API-Version header value.
func ParseVersion(header string) (Version, error) {
	v := Version(strings.TrimSpace(header))
	if v == "" {
		return "", ErrMissingVersion
	}
	if !slices.Contains(Versions, v) {
		return "", fmt.Errorf("%w %q", ErrUnsupportedVersion, string(v))
	}
	return v, nil
}

// Before reports whether v is older than w.
func (v Version) Before(w Version) bool { return v < w } // YYYY-MM-DD sorts as text

// ErrorType is the category of a protocol error.
type ErrorType string

// Error types. RequestNotIdempotent exists up to 2026-01-30; 2026-04-17
// dropped it for InvalidRequest with an idempotency code.
const (
	InvalidRequest       ErrorType = "invalid_request"
	ProcessingError      ErrorType = "processing_error"
	ServiceUnavailable   ErrorType = "service_unavailable"
	RequestNotIdempotent ErrorType = "request_not_idempotent"
)

// Error is the protocol's error object, used only when no checkout session
// can be returned (business problems go in the session's messages).
type Error struct {
	Type    ErrorType
	Code    string
	Message string
	// Param is an RFC 9535 JSONPath to the offending input ("$.line_items[0]").
	Param string
	// SupportedVersions is set on version errors; only 2026-04-17 and later
	// can carry it.
	SupportedVersions bool
}

func (e *Error) Error() string { return string(e.Type) + "/" + e.Code + ": " + e.Message }

// VersionError is the 400 answer to a missing or unsupported API-Version.
func VersionError(err error) *Error {
	e := &Error{Type: InvalidRequest, Code: "unsupported_api_version", SupportedVersions: true,
		Message: fmt.Sprintf("%v; supported versions: %s", err, joinVersions(Versions))}
	if errors.Is(err, ErrMissingVersion) {
		e.Code = "missing_api_version"
	}
	return e
}

func joinVersions(vs []Version) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// wireError is the JSON of every version's Error; fields a version lacks are
// left empty and omitted.
type wireError struct {
	Type              ErrorType `json:"type"`
	Code              string    `json:"code"`
	Message           string    `json:"message"`
	Param             string    `json:"param,omitempty"`
	SupportedVersions []Version `json:"supported_versions,omitempty"`
}

// Encode renders e in the shape version v allows. Every Error schema is
// additionalProperties:false, so a field a version does not know must not
// appear at all.
func (e *Error) Encode(v Version) ([]byte, error) {
	w := wireError{Type: e.Type, Code: e.Code, Message: e.Message, Param: e.Param}
	// Before 2026-04-17 there is no supported_versions (the message names
	// the versions instead) and request_not_idempotent is still a type.
	if !v.Before(V20260417) {
		if w.Type == RequestNotIdempotent {
			w.Type = InvalidRequest
		}
		if e.SupportedVersions {
			// Newest first, "ordered by preference".
			w.SupportedVersions = slices.Clone(Versions)
			slices.Reverse(w.SupportedVersions)
		}
	}
	return json.Marshal(w)
}
