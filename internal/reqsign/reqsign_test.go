package reqsign

import "testing"

// TestSign pins the profile to a vector computed independently (Python's
// hmac and base64 modules), so both ends of an agreement can check it.
func TestSign(t *testing.T) {
	for _, tc := range []struct {
		secret, ts, body, want string
	}{
		{"secret", "2026-11-27T12:00:00Z", `{"products":[]}`, "XFKR9uAGUXS1ATeTUIQPii_0NAIsENC7KHfyQM-EORc"},
		{"k", "1700000000", "", "XCmZpDMzpod_ScgAPyNcT23kD4Wxt0FLcL1HCo21PZc"},
	} {
		if got := Sign([]byte(tc.secret), tc.ts, []byte(tc.body)); got != tc.want {
			t.Errorf("Sign(%q, %q, %q) = %s, want %s", tc.secret, tc.ts, tc.body, got, tc.want)
		}
	}
}
