package storagetest

import (
	"testing"

	"github.com/acp-bridge/bridge"
)

func testEventLog(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	if seen, err := s.EventSeen(ctx, "stripe", "evt_1"); err != nil || seen {
		t.Fatalf("new event: seen=%v err=%v", seen, err)
	}
	for range 2 { // recording twice is fine
		if err := s.RecordEvent(ctx, "stripe", "evt_1"); err != nil {
			t.Fatal(err)
		}
	}
	if seen, err := s.EventSeen(ctx, "stripe", "evt_1"); err != nil || !seen {
		t.Fatalf("recorded event: seen=%v err=%v", seen, err)
	}
	// Sources are apart: the same id from another sender is another event.
	if seen, err := s.EventSeen(ctx, "shopify", "evt_1"); err != nil || seen {
		t.Fatalf("other source: seen=%v err=%v", seen, err)
	}
}
