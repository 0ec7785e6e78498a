package acp

import (
	"strings"
	"testing"
)

func TestBodyHash(t *testing.T) {
	tests := []struct {
		a, b  string
		equal bool
	}{
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, true},
		{`{"a":1}`, " {\n\t\"a\" : 1 }\r\n", true},
		{`{"q":1}`, `{"q":1.0}`, true},
		{`{"q":1}`, `{"q":1e0}`, true},
		{`{"q":100}`, `{"q":1E2}`, true},
		{`{"q":1.5}`, `{"q":15e-1}`, true},
		{`{"q":0}`, `{"q":-0.0}`, true},
		{`{"q":0.1}`, `{"q":1e-1}`, true},
		{`{"q":1}`, `{"q":1.0000000000000001}`, false},                        // exact, not IEEE
		{`{"id":12345678901234567890}`, `{"id":12345678901234567891}`, false}, // likewise
		{`{"q":1}`, `{"q":"1"}`, false},
		{`{"a":null}`, `{}`, false},
		{`{"a":null}`, `{"a":false}`, false},
		{`[1,2]`, `[2,1]`, false},
		{`{"s":"A"}`, `{"s":"\u0041"}`, true},
		{`{"s":"é"}`, `{"s":"\u00e9"}`, true},
		{`{"s":"\/"}`, `{"s":"/"}`, true},
		{`{"a":{"y":1,"x":[{"k":2,"j":1}]}}`, `{"a":{"x":[{"j":1,"k":2}],"y":1}}`, true},
		{``, `{}`, true},
		{`  `, `{}`, true},
		{`{"a":1,"a":2}`, `{"a":2}`, true}, // the last member counts, as in decoding
		{`{"a":"x"}`, `{"a":"x "}`, false},
		{`{"ab":1}`, `{"a":1,"b":1}`, false},
		{`[]`, `{}`, false},
		{`{"q":1e9999999999999}`, `{"q":1e9999999999999}`, true},
	}
	for _, tt := range tests {
		ha, err := BodyHash([]byte(tt.a))
		if err != nil {
			t.Fatalf("%s: %v", tt.a, err)
		}
		hb, err := BodyHash([]byte(tt.b))
		if err != nil {
			t.Fatalf("%s: %v", tt.b, err)
		}
		if (ha == hb) != tt.equal {
			t.Errorf("BodyHash(%s) == BodyHash(%s) is %v, want %v", tt.a, tt.b, ha == hb, tt.equal)
		}
		if len(ha) != 64 || strings.Trim(ha, "0123456789abcdef") != "" {
			t.Errorf("hash %q is not 64 hex digits", ha)
		}
	}
	for _, bad := range []string{`{`, `{"a":1}x`, `nul`, `{"a":01}`, `{'a':1}`} {
		if _, err := BodyHash([]byte(bad)); err == nil {
			t.Errorf("BodyHash(%s): no error", bad)
		}
	}
}

func TestCanonicalForm(t *testing.T) {
	tests := map[string]string{
		`{"b":[1.50,true,null],"a":"x\"\\\n\u0001é"}`: `{"a":"x\"\\\n\u0001é","b":[15e-1,true,null]}`,
		`[0, -0, 100, 1e20, 1e21, -2.5e-3, 0.000]`:    `[0,0,100,100000000000000000000,1e21,-25e-4,0]`,
		`"\u2028\ud83d\ude00"`:                        "\"\u2028\U0001F600\"",
	}
	for in, want := range tests {
		v, err := parseJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendCanonical(nil, v)); got != want {
			t.Errorf("canonical(%s) = %s, want %s", in, got, want)
		}
	}
}

// Canonical is the form BodyHash hashes, exported for signatures over
// re-encoded bodies: for strings and integers it is JCS (RFC 8785).
func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{` { "line_items" : [ {"quantity": 2, "id": "a"} ], "currency":"usd" } `, `{"currency":"usd","line_items":[{"id":"a","quantity":2}]}`},
		{`{"s":"<&>\u00e9\/"}`, `{"s":"<&>é/"}`}, // no HTML escaping, unlike encoding/json
		{``, `{}`},
	} {
		got, err := Canonical([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
		h1, _ := BodyHash([]byte(tc.in))
		h2, _ := BodyHash(got)
		if h1 != h2 {
			t.Errorf("%s: the canonical form hashes differently", tc.in)
		}
	}
	if _, err := Canonical([]byte(`{"a":`)); err == nil {
		t.Error("Canonical of invalid JSON: no error")
	}
}
