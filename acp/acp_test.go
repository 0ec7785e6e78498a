package acp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge/internal/acpspec"
)

func TestVersionsMatchTheSpecData(t *testing.T) {
	if len(Versions) != len(acpspec.Versions) {
		t.Fatalf("acp knows %d versions, the spec data %d", len(Versions), len(acpspec.Versions))
	}
	for i, v := range Versions {
		if string(v) != acpspec.Versions[i] {
			t.Errorf("version %d: %s, spec data %s", i, v, acpspec.Versions[i])
		}
	}
	if Versions[len(Versions)-1] != Latest {
		t.Errorf("Latest %s is not the newest version", Latest)
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr error
	}{
		{"2026-04-17", V20260417, nil},
		{" 2025-09-29 ", V20250929, nil},
		{"", "", ErrMissingVersion},
		{"2026-05-01", "", ErrUnsupportedVersion},
		{"latest", "", ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseVersion(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestErrorsValidateInEveryVersion encodes each kind of error for each
// version and validates it against that version's official Error schema.
func TestErrorsValidateInEveryVersion(t *testing.T) {
	_, unsupported := ParseVersion("2030-01-01")
	errs := []*Error{
		VersionError(ErrMissingVersion),
		VersionError(unsupported),
		{Type: InvalidRequest, Code: "invalid_type", Message: "quantity must be a whole number", Param: "$.line_items[0].quantity"},
		{Type: RequestNotIdempotent, Code: "idempotency_conflict", Message: "the key was used with another body"},
		{Type: ProcessingError, Code: "internal_error", Message: "internal error"},
		{Type: ServiceUnavailable, Code: "store_unavailable", Message: "try again"},
	}
	for _, v := range Versions {
		for _, e := range errs {
			raw, err := e.Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := acpspec.Validate(string(v), "schema.agentic_checkout.json", "Error", raw); err != nil {
				t.Errorf("%s: %s does not validate: %v", v, raw, err)
			}
		}
	}
	raw, _ := VersionError(ErrMissingVersion).Encode(V20260417)
	var got struct {
		Code              string   `json:"code"`
		SupportedVersions []string `json:"supported_versions"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Code != "missing_api_version" || len(got.SupportedVersions) != 5 || got.SupportedVersions[0] != "2026-04-17" {
		t.Errorf("2026-04-17 version error = %s; want newest-first supported_versions", raw)
	}
	old, _ := VersionError(ErrMissingVersion).Encode(V20250929)
	if strings.Contains(string(old), "supported_versions") || !strings.Contains(string(old), "2025-09-29, 2025-12-12") {
		t.Errorf("2025-09-29 version error = %s; want the versions in the message only", old)
	}
	typ, _ := (&Error{Type: RequestNotIdempotent, Code: "idempotency_conflict", Message: "m"}).Encode(V20260417)
	if !strings.Contains(string(typ), `"type":"invalid_request"`) {
		t.Errorf("2026-04-17 has no request_not_idempotent: %s", typ)
	}
}
