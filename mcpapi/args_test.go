package mcpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/httpapi"
)

func TestDecodeArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      httpapi.Op
		raw     string
		want    args // compared when wantErr is ""
		wantErr string
		param   string
	}{
		{name: "create", op: httpapi.OpCreate, raw: `{"meta":{"api_version":"2026-04-17","idempotency_key":"k"},"payload":{"a": 1}}`,
			want: args{meta: map[string]string{"api_version": "2026-04-17", "idempotency_key": "k"}, payload: json.RawMessage(`{"a": 1}`)}},
		{name: "id on create is ignored", op: httpapi.OpCreate, raw: `{"meta":{},"id":5,"payload":{}}`,
			want: args{meta: map[string]string{}, payload: json.RawMessage(`{}`)}},
		{name: "get ignores a payload", op: httpapi.OpGet, raw: `{"meta":{"request_id":"r"},"id":"cs_1","payload":[1]}`,
			want: args{meta: map[string]string{"request_id": "r"}, id: "cs_1"}},
		{name: "cancel without payload", op: httpapi.OpCancel, raw: `{"meta":{},"id":"cs_1"}`,
			want: args{meta: map[string]string{}, id: "cs_1"}},
		{name: "cancel with null payload", op: httpapi.OpCancel, raw: `{"meta":{},"id":"cs_1","payload":null}`,
			want: args{meta: map[string]string{}, id: "cs_1"}},
		{name: "null meta fields are absent, unknown ones ignored", op: httpapi.OpGet, raw: `{"meta":{"signature":null,"x":{"y":1}},"id":"cs_1"}`,
			want: args{meta: map[string]string{}, id: "cs_1"}},
		{name: "payload bytes kept as sent", op: httpapi.OpUpdate, raw: "{\"meta\":{},\"id\":\"a\",\"payload\":{ \"b\" :\n[1.0] }}",
			want: args{meta: map[string]string{}, id: "a", payload: json.RawMessage("{ \"b\" :\n[1.0] }")}},

		{name: "no arguments", op: httpapi.OpGet, raw: ``, wantErr: acp.CodeMissing, param: "$.meta"},
		{name: "null arguments", op: httpapi.OpGet, raw: `null`, wantErr: acp.CodeMissing, param: "$.meta"},
		{name: "arguments a string", op: httpapi.OpGet, raw: `"x"`, wantErr: acp.CodeInvalidType, param: "$"},
		{name: "meta an array", op: httpapi.OpGet, raw: `{"meta":[]}`, wantErr: acp.CodeInvalidType, param: "$.meta"},
		{name: "meta field a bool", op: httpapi.OpGet, raw: `{"meta":{"timestamp":true}}`, wantErr: acp.CodeInvalidType, param: "$.meta.timestamp"},
		{name: "no id", op: httpapi.OpComplete, raw: `{"meta":{},"payload":{}}`, wantErr: acp.CodeMissing, param: "$.id"},
		{name: "id an object", op: httpapi.OpUpdate, raw: `{"meta":{},"id":{},"payload":{}}`, wantErr: acp.CodeInvalidType, param: "$.id"},
		{name: "empty id", op: httpapi.OpCancel, raw: `{"meta":{},"id":""}`, wantErr: acp.CodeInvalid, param: "$.id"},
		{name: "no payload", op: httpapi.OpComplete, raw: `{"meta":{},"id":"a"}`, wantErr: acp.CodeMissing, param: "$.payload"},
		{name: "payload a number", op: httpapi.OpCreate, raw: `{"meta":{},"payload":1}`, wantErr: acp.CodeInvalidType, param: "$.payload"},
		{name: "cancel payload a string", op: httpapi.OpCancel, raw: `{"meta":{},"id":"a","payload":"no"}`, wantErr: acp.CodeInvalidType, param: "$.payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeArgs(tc.op, json.RawMessage(tc.raw))
			if tc.wantErr != "" {
				if err == nil || err.Code != tc.wantErr || err.Param != tc.param || err.Type != acp.InvalidRequest {
					t.Fatalf("error %+v, want %s at %s", err, tc.wantErr, tc.param)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %+v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// The headers a call's meta stands for, and back.
func TestMetaHeaders(t *testing.T) {
	a := args{meta: map[string]string{"api_version": "2026-01-30", "idempotency_key": "k", "signature": "s", "timestamp": "t", "request_id": "r"}}
	want := http.Header{"Api-Version": {"2026-01-30"}, "Idempotency-Key": {"k"}, "Signature": {"s"}, "Timestamp": {"t"}, "Request-Id": {"r"}}
	if h := a.header(); !reflect.DeepEqual(h, want) {
		t.Fatalf("header %v, want %v", h, want)
	}
	if a.version() != acp.V20260130 || (args{}).version() != acp.Latest {
		t.Fatal("version of the arguments")
	}
	for header, field := range map[string]string{"API-Version": "api_version", "idempotency-key": "idempotency_key", "Signature": "signature", "Authorization": ""} {
		if got := metaField(header); got != field {
			t.Errorf("metaField(%s) = %q, want %q", header, got, field)
		}
	}
}

func TestArgumentParam(t *testing.T) {
	for _, tc := range []struct {
		header, param, want string
	}{
		{"", "$.line_items[0].quantity", "$.payload.line_items[0].quantity"},
		{"", "$", "$.payload"},
		{"", "$['odd key']", "$.payload['odd key']"},
		{"", "", ""},
		{"Idempotency-Key", "", "$.meta.idempotency_key"},
		{"API-Version", "", "$.meta.api_version"},
		{"Authorization", "", ""},
	} {
		ans := httpapi.Answer{Err: &acp.Error{Param: tc.param}, Header: tc.header}
		if got := argumentParam(ans).Param; got != tc.want {
			t.Errorf("header %q param %q: %q, want %q", tc.header, tc.param, got, tc.want)
		}
		if ans.Err.Param != tc.param {
			t.Errorf("the answer's error was changed")
		}
	}
}

// FuzzDecodeArgs: any arguments decode or fail with an invalid_request
// error naming an argument; never a panic. What decodes keeps the
// binding's invariants.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"meta":{}}`, `{"meta":{"api_version":"2026-04-17"},"id":"cs_1","payload":{"line_items":[]}}`,
		`{"meta":{"api_version":1},"id":null,"payload":null}`, `{"meta":{"idempotency_key":"\u0000"},"id":"\ud800","payload":{}}`,
		`{"meta":{},"meta":[],"payload":{}}`, `  {"meta":{} , "payload" : { } }  `,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) && strings.TrimSpace(raw) != "" {
			return // the SDK parsed the message: arguments are JSON or absent
		}
		for _, op := range httpapi.Ops {
			a, err := decodeArgs(op, json.RawMessage(raw))
			if err != nil {
				if err.Type != acp.InvalidRequest || !strings.HasPrefix(err.Param, "$") || err.Message == "" {
					t.Fatalf("%s %q: bad error %+v", op, raw, err)
				}
				_ = a.version()
				continue
			}
			if op != httpapi.OpCreate && a.id == "" {
				t.Fatalf("%s %q: no id", op, raw)
			}
			if a.payload != nil && (op == httpapi.OpGet || kind(a.payload) != '{' || !json.Valid(a.payload)) {
				t.Fatalf("%s %q: payload %q", op, raw, a.payload)
			}
			if (op == httpapi.OpCreate || op == httpapi.OpUpdate || op == httpapi.OpComplete) && a.payload == nil {
				t.Fatalf("%s %q: required payload missing", op, raw)
			}
			for k := range a.meta {
				if !slices.ContainsFunc(metaHeaders, func(m struct{ field, header string }) bool { return m.field == k }) {
					t.Fatalf("%s %q: meta field %q kept", op, raw, k)
				}
			}
			_ = a.header()
		}
	})
}
