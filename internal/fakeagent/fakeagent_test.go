package fakeagent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/agenthook"
	"github.com/acp-bridge/bridge/internal/fakeagent"
)

const secret = "whsec_fake"

const validBody = `{"type":"order_create","data":{"type":"order","id":"ord_1","checkout_session_id":"cs_1","permalink_url":"https://shop.example/orders/ord_1","status":"created"}}`

// post sends body to the fake as the bridge would, with change applied to
// the request first; it returns the status and the answer.
func post(t *testing.T, a *fakeagent.Agent, v acp.Version, reqID, body string, change func(*http.Request)) (int, map[string]any) {
	t.Helper()
	code, answer, err := send(a, v, reqID, body, change)
	if err != nil {
		t.Fatal(err)
	}
	return code, answer
}

// send is post without a test, for other goroutines.
func send(a *fakeagent.Agent, v acp.Version, reqID, body string, change func(*http.Request)) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, a.URL(), strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("API-Version", string(v))
	req.Header.Set("Request-Id", reqID)
	req.Header.Set("Merchant-Signature", agenthook.Sign(v, secret, time.Now(), []byte(body)))
	if change != nil {
		change(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer map[string]any
	if err := json.Unmarshal(raw, &answer); err != nil {
		return 0, nil, fmt.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, answer, nil
}

func TestAcceptsAndDedupes(t *testing.T) {
	a := fakeagent.New(t, secret)
	for range 3 {
		code, answer := post(t, a, acp.V20260417, "evt_1", validBody, nil)
		if code != http.StatusOK || answer["received"] != true || answer["request_id"] != "evt_1" {
			t.Fatalf("%d %v", code, answer)
		}
	}
	post(t, a, acp.V20260417, "evt_2", strings.Replace(validBody, "order_create", "order_update", 1), nil)
	ev := a.Events()
	if len(ev) != 2 || a.Duplicates() != 2 || a.Requests() != 4 {
		t.Fatalf("events %d, duplicates %d, requests %d", len(ev), a.Duplicates(), a.Requests())
	}
	if e := ev[0]; e.RequestID != "evt_1" || e.Type != "order_create" || e.OrderID != "ord_1" || e.Status != "created" ||
		e.SessionID != "cs_1" || e.Version != acp.V20260417 || string(e.Body) != validBody {
		t.Errorf("event = %+v", e)
	}
	if ev[1].Type != "order_update" {
		t.Errorf("second event = %+v", ev[1])
	}
	if f := a.Failures(); len(f) != 0 {
		t.Errorf("failures %+v", f)
	}
}

// TestRefusals: each check answers as the spec says and records why.
func TestRefusals(t *testing.T) {
	legacyBody := `{"type":"order_create","data":{"type":"order","checkout_session_id":"cs_1","permalink_url":"https://shop.example/orders/ord_1","status":"created","refunds":[]}}`
	tests := []struct {
		name    string
		version acp.Version
		body    string
		change  func(*http.Request)
		status  int
		kind    string
		code    string
	}{
		{"bad signature", acp.V20260417, validBody, func(r *http.Request) { r.Header.Set("Merchant-Signature", "t=1,v1="+strings.Repeat("0", 64)) },
			401, "signature", "invalid_signature"},
		{"no signature", acp.V20250929, legacyBody, func(r *http.Request) { r.Header.Del("Merchant-Signature") }, 401, "signature", "invalid_signature"},
		{"no API-Version", acp.V20260417, validBody, func(r *http.Request) { r.Header.Del("API-Version") }, 400, "request", "unsupported_api_version"},
		{"text body", acp.V20260417, validBody, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 400, "request", "invalid_content_type"},
		{"latest body at a legacy version", acp.V20260130, validBody, nil, 400, "schema", "invalid_event"},
		{"legacy body at the latest version", acp.V20260417, legacyBody, nil, 400, "schema", "invalid_event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fakeagent.New(t, secret)
			code, answer := post(t, a, tt.version, "evt_x", tt.body, tt.change)
			if code != tt.status || answer["type"] != "invalid_request" || answer["code"] != tt.code || answer["message"] == "" {
				t.Errorf("%d %v", code, answer)
			}
			f := a.Failures()
			if len(f) != 1 || f[0].Kind != tt.kind || f[0].Status != tt.status || f[0].RequestID != "evt_x" {
				t.Errorf("failures = %+v", f)
			}
			if len(a.Events()) != 0 {
				t.Error("a refused request was recorded as an event")
			}
		})
	}
}

func TestFaults(t *testing.T) {
	a := fakeagent.New(t, secret)
	a.ThrottleNext(1, 2*time.Second)
	a.FailNext(1)
	a.RespondNext(1, http.StatusGone, `{"gone":true}`)

	send := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, a.URL(), strings.NewReader(validBody))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	if r := send(); r.StatusCode != 429 || r.Header.Get("Retry-After") != "2" {
		t.Errorf("429: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := send(); r.StatusCode != 500 {
		t.Errorf("500: %d", r.StatusCode)
	}
	if r := send(); r.StatusCode != 410 {
		t.Errorf("410: %d", r.StatusCode)
	}
	if f := a.Failures(); len(f) != 0 {
		t.Errorf("faults are not failures: %+v", f)
	}

	a.DropNext(1)
	req, _ := http.NewRequest(http.MethodPost, a.URL(), bytes.NewReader([]byte(validBody)))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Error("a dropped connection answered")
	}

	a.HangNext(1, 100*time.Millisecond)
	start := time.Now()
	if code, _ := post(t, a, acp.V20260417, "evt_slow", validBody, nil); code != http.StatusOK {
		t.Errorf("after the hang: %d", code)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answered after %s", d)
	}
	if a.Requests() != 5 || len(a.Events()) != 1 {
		t.Errorf("requests %d, events %d", a.Requests(), len(a.Events()))
	}
}

func TestWaitEvents(t *testing.T) {
	a := fakeagent.New(t, secret)
	errc := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _, err := send(a, acp.V20260417, "evt_1", validBody, nil)
		errc <- err
	}()
	ev, err := a.WaitEvents(1, 2*time.Second)
	if err != nil || len(ev) != 1 {
		t.Fatalf("%v %v", ev, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ev, err = a.WaitEvents(2, 30*time.Millisecond)
	if err == nil || len(ev) != 1 || !strings.Contains(err.Error(), "1 of 2") {
		t.Errorf("want a timeout naming 1 of 2: %v %v", ev, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap the context's error", err)
	}
}
