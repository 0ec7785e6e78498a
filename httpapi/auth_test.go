package httpapi

import (
	"errors"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestKeysLookupAndRotation(t *testing.T) {
	k := NewKeys([]APIKey{{Name: "openai", Key: "old"}, {Name: "openai", Key: "new"}, {Name: "other", Key: "o"}, {Name: "empty", Key: ""}})
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{
		{"old", "openai", true},
		{"new", "openai", true},
		{"o", "other", true},
		{"", "", false}, // an empty configured key never matches
		{"ol", "", false},
		{"oldx", "", false},
	} {
		got, ok := k.lookup(tc.key)
		if ok != tc.ok || got.name != tc.want {
			t.Errorf("lookup(%q) = %q, %v; want %q, %v", tc.key, got.name, ok, tc.want, tc.ok)
		}
	}
	k.Set([]APIKey{{Name: "openai", Key: "new"}})
	if _, ok := k.lookup("old"); ok {
		t.Error("rotated-out key still accepted")
	}
	if got, ok := k.lookup("new"); !ok || got.name != "openai" {
		t.Error("kept key refused after Set")
	}
	if k.Len() != 1 {
		t.Errorf("Len = %d, want 1", k.Len())
	}
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer  abc ": "abc",
		"Basic abc":    "",
		"Bearer":       "",
		"":             "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		if got := bearer(r.Header); got != want {
			t.Errorf("bearer(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestHMACVerifier(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	secret := []byte("s3cret")
	body := []byte(`{"line_items":[{"id":"a"}]}`)
	ts := now.Format(time.RFC3339)
	good := Sign(secret, ts, body)
	v := HMACVerifier{MaxSkew: 5 * time.Minute, Now: func() time.Time { return now }}
	for _, tc := range []struct {
		name      string
		sig, ts   string
		body      []byte
		secret    []byte
		want      error
		wantOther bool
	}{
		{name: "good", sig: good, ts: ts, body: body, secret: secret},
		{name: "padded base64url accepted", sig: good + "=", ts: ts, body: body, secret: secret},
		{name: "unix seconds", sig: Sign(secret, strconv.FormatInt(now.Unix(), 10), body), ts: strconv.FormatInt(now.Unix(), 10), body: body, secret: secret},
		{name: "unsigned", ts: ts, body: body, secret: secret, want: ErrUnsigned},
		{name: "body changed", sig: good, ts: ts, body: []byte(`{"line_items":[{"id":"b"}]}`), secret: secret, want: ErrBadSignature},
		{name: "other secret", sig: good, ts: ts, body: body, secret: []byte("x"), want: ErrBadSignature},
		{name: "timestamp not the signed one", sig: good, ts: now.Add(time.Second).Format(time.RFC3339), body: body, secret: secret, want: ErrBadSignature},
		{name: "too old", sig: Sign(secret, now.Add(-6*time.Minute).Format(time.RFC3339), body), ts: now.Add(-6 * time.Minute).Format(time.RFC3339), body: body, secret: secret, want: ErrTimestampSkew},
		{name: "too far ahead", sig: Sign(secret, now.Add(6*time.Minute).Format(time.RFC3339), body), ts: now.Add(6 * time.Minute).Format(time.RFC3339), body: body, secret: secret, want: ErrTimestampSkew},
		{name: "bad timestamp", sig: good, ts: "yesterday", body: body, secret: secret, want: ErrBadTimestamp},
		{name: "missing timestamp", sig: good, body: body, secret: secret, wantOther: true},
		{name: "no secret for key", sig: good, ts: ts, body: body, want: ErrNoSigningSecret},
		{name: "not base64", sig: "!!!", ts: ts, body: body, secret: secret, want: ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/checkout_sessions", nil)
			if tc.sig != "" {
				r.Header.Set("Signature", tc.sig)
			}
			if tc.ts != "" {
				r.Header.Set("Timestamp", tc.ts)
			}
			err := v.Verify(r, tc.body, tc.secret)
			switch {
			case tc.wantOther:
				if err == nil {
					t.Fatal("accepted")
				}
			case !errors.Is(err, tc.want) && !(tc.want == nil && err == nil):
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(1, 3)
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait <= 0 {
		t.Fatalf("request past the burst: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another key shares the first key's bucket")
	}
	if ok, _ := (*limiter)(nil).allow("a"); !ok {
		t.Fatal("a disabled limiter refused")
	}
	if newLimiter(0, 10) != nil {
		t.Fatal("rate 0 should disable the limiter")
	}
}
