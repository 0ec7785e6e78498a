// Package acp is the Agentic Commerce Protocol as the bridge speaks it: the
// released API versions, the API-Version header, and the protocol's error
// object in the shape each version allows. The canonical form is the newest
// version; older versions are encoded from it, the way Stripe versions its
// API, so the engine never branches on versions.
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
