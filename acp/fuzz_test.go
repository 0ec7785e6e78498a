package acp

import (
	"bytes"
	"strings"
	"testing"
)

// seedRequests adds every official request example (each is tried at every
// version) and a few hand-made edge cases to a fuzz corpus.
func seedRequests(f *testing.F, kind string) {
	f.Helper()
	for _, byName := range exampleRequests(f) {
		for name, body := range byName {
			if kind == "" || exampleKind(name) == kind {
				f.Add([]byte(body))
			}
		}
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"items":[{"id":"a","quantity":1e-7}]}`,
		`{"line_items":[{"id":"a","quantity":1e400}],"currency":"usd","capabilities":{}}`,
		`{"selected_fulfillment_options":[{"type":"digital","digital":{"option_id":"x"}}]}`,
		`{"fulfillment_option_id":"x","fulfillment_address":{}}`,
		`{"payment_data":{"purchase_order_number":"1"}}`,
		`{"intent_trace":{"metadata":{"a":{"b":1}}}}`} {
		f.Add([]byte(s))
	}
}

// checkError: a refusal is a well-formed invalid_request with a JSONPath.
func checkError(t *testing.T, v Version, err *Error) {
	t.Helper()
	if err.Type != InvalidRequest || err.Code == "" || err.Message == "" || !strings.HasPrefix(err.Param, "$") {
		t.Fatalf("%s: malformed error %+v", v, err)
	}
	if _, encErr := err.Encode(v); encErr != nil {
		t.Fatalf("%s: %v", v, encErr)
	}
}

func FuzzDecodeCreate(f *testing.F) {
	seedRequests(f, "create")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range Versions {
			r, err := DecodeCreate(v, body)
			if err != nil {
				checkError(t, v, err)
				continue
			}
			if len(r.Items) == 0 || len(r.Items) > MaxLineItems {
				t.Fatalf("%s: accepted %d items", v, len(r.Items))
			}
			for _, it := range r.Items {
				if strings.TrimSpace(it.ID) == "" || it.Quantity < 1 || it.Quantity > MaxQuantity {
					t.Fatalf("%s: accepted item %+v", v, it)
				}
			}
			if v.Before(V20260130) != (r.Currency == "") || r.Currency != strings.ToUpper(r.Currency) {
				t.Fatalf("%s: currency %q", v, r.Currency)
			}
			if v.Before(V20260130) != (r.Interventions == nil) {
				t.Fatalf("%s: interventions %#v", v, r.Interventions)
			}
		}
	})
}

func FuzzDecodeUpdate(f *testing.F) {
	seedRequests(f, "update")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range Versions {
			r, err := DecodeUpdate(v, body)
			if err != nil {
				checkError(t, v, err)
				continue
			}
			for _, it := range r.Items {
				if strings.TrimSpace(it.ID) == "" || it.Quantity < 1 || it.Quantity > MaxQuantity {
					t.Fatalf("%s: accepted item %+v", v, it)
				}
			}
			if r.SelectedOption != nil && strings.TrimSpace(*r.SelectedOption) == "" {
				t.Fatalf("%s: empty option id accepted", v)
			}
		}
	})
}

func FuzzDecodeComplete(f *testing.F) {
	seedRequests(f, "complete")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range Versions {
			r, err := DecodeComplete(v, body)
			if err != nil {
				checkError(t, v, err)
				continue
			}
			p := r.Payment
			if strings.TrimSpace(p.Token) == "" || v.Before(V20260130) != (p.Provider == "stripe" && p.HandlerID == "") ||
				!v.Before(V20260130) && strings.TrimSpace(p.HandlerID) == "" {
				t.Fatalf("%s: accepted payment %+v", v, p)
			}
			if r.Auth != nil && !authOutcomes[r.Auth.Outcome] {
				t.Fatalf("%s: outcome %q", v, r.Auth.Outcome)
			}
		}
	})
}

func FuzzDecodeCancel(f *testing.F) {
	seedRequests(f, "cancel")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range Versions {
			r, err := DecodeCancel(v, body)
			if err != nil {
				checkError(t, v, err)
				continue
			}
			if r.ReasonCode != "" && !reasonCodes[r.ReasonCode] || len([]rune(r.Summary)) > maxTraceSummary {
				t.Fatalf("%s: accepted %+v", v, r)
			}
		}
	})
}

// FuzzBodyHash: hashing never panics, and a body hashes like its own
// canonical form (canonicalisation is idempotent).
func FuzzBodyHash(f *testing.F) {
	seedRequests(f, "")
	f.Add([]byte(`{"a":[1.0,-0,1e5,"\u00e9"],"b":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := BodyHash(body)
		if err != nil {
			return
		}
		v, perr := parseJSON(body)
		if perr != nil {
			t.Fatalf("BodyHash accepted what parseJSON refuses: %v", perr)
		}
		canon := appendCanonical(nil, v)
		h2, err := BodyHash(canon)
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", canon, err)
		}
		if h != h2 {
			t.Fatalf("hash of %q differs from the hash of its canonical form %q", body, canon)
		}
		v2, _ := parseJSON(canon)
		if !bytes.Equal(appendCanonical(nil, v2), canon) {
			t.Fatalf("canonical form is not stable: %q", canon)
		}
	})
}
