package acp

import (
	"testing"

	"github.com/acp-bridge/bridge/internal/acpspec"
)

func benchmarkEncode(b *testing.B, v Version) {
	c := testCodec()
	s := loadSession(b, "ready_shipping") // three lines, shipping selected
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.EncodeSession(v, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSessionLatest(b *testing.B)   { benchmarkEncode(b, Latest) }
func BenchmarkEncodeSession20250929(b *testing.B) { benchmarkEncode(b, V20250929) }

func BenchmarkDecodeCreateLatest(b *testing.B) {
	body, err := acpspec.Example(string(Latest), "examples.agentic_checkout.json", "create_checkout_session_request")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCreate(Latest, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBodyHash(b *testing.B) {
	body, err := acpspec.Example(string(Latest), "examples.agentic_checkout.json", "create_checkout_session_request")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BodyHash(body); err != nil {
			b.Fatal(err)
		}
	}
}
