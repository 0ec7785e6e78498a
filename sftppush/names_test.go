package sftppush

import (
	"path"
	"testing"

	"github.com/acp-bridge/bridge/feed"
)

func TestShardNames(t *testing.T) {
	for _, tc := range []struct {
		f    feed.Format
		i, n int
		want string
	}{
		{feed.FormatOpenAIJSONL, 1, 1, "openai.jsonl.gz"},
		{feed.FormatOpenAIJSONL, 2, 3, "openai-part-002.jsonl.gz"},
		{feed.FormatACP, 1, 2, "acp/products-part-001.jsonl.gz"},
		{feed.FormatSeedJSON, 12, 1200, "feed-part-012.json"},
		{feed.FormatOpenAICSV, 1000, 1200, "openai-part-1000.csv.gz"},
	} {
		got := shardName(tc.f, tc.i, tc.n)
		if got != tc.want {
			t.Errorf("shardName(%s, %d, %d) = %s, want %s", tc.f, tc.i, tc.n, got, tc.want)
		}
		_, base := path.Split(got)
		if !isShardOf(tc.f, base) {
			t.Errorf("isShardOf(%s, %s) = false for its own shard", tc.f, base)
		}
	}
}

// TestStale: only this format's files and this bridge's temporary files
// are removed from the remote folder; anything else there stays.
func TestStale(t *testing.T) {
	formats := []feed.Format{feed.FormatOpenAIJSONL, feed.FormatACP}
	for _, tc := range []struct {
		base string
		want bool
	}{
		{"openai.jsonl.gz", true},
		{"openai-part-007.jsonl.gz", true},
		{".openai-part-007.jsonl.gz.0123456789abcdef.part", true},
		{".openai.jsonl.gz.0123456789abcdef.part", true},
		{"products-part-002.jsonl.gz", true}, // acp/, listed for FormatACP
		{"metadata.json", true},
		{"openai.csv.gz", false},
		{"openai-part-x01.jsonl.gz", false},
		{"openai-part-01.jsonl.gz", false},
		{"readme.txt", false},
		{".bashrc", false},
		{"openai.jsonl.gz.bak", false},
		// Names that look like temporary files but are not this bridge's
		// (no dot before ".part", no hash): kept, and no panic.
		{".x.part", false},
		{"..part", false},
		{".part", false},
		{"..part.part", false},
		{".openai.jsonl.gz.part", false},
		{".openai.jsonl.gz.0123456789ABCDEF.part", false},
		{".openai.jsonl.gz.xyz.part", false},
	} {
		if got := stale(formats, tc.base); got != tc.want {
			t.Errorf("stale(%q) = %v, want %v", tc.base, got, tc.want)
		}
	}
}
