package feed

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	bridge "github.com/acp-bridge/bridge"
)

var jsonStringSeeds = []string{
	"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "\x00\x01\x1f\x7f", "<b>&amp;</b>",
	"U+2028 \u2028 U+2029 \u2029", "emoji 😀 and 日本語", "bad \xff byte", "truncated \xe2\x82", "\xc0\xaf overlong",
	"surrogate \xed\xa0\x80 half", "\u00a0nbsp",
}

// checkJSONString asserts that appendJSONString writes valid JSON that
// decodes to what encoding/json's encoding of s decodes to.
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	got := appendJSONString(nil, s)
	if !utf8.Valid(got) || !json.Valid(got) {
		t.Fatalf("appendJSONString(%q) = %s: not valid UTF-8 JSON", s, got)
	}
	if bytes.Contains(got, []byte("\u2028")) || bytes.Contains(got, []byte("\u2029")) {
		t.Fatalf("appendJSONString(%q) = %s: raw U+2028/2029", s, got)
	}
	std, _ := json.Marshal(s)
	var a, b string
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(std, &b); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("appendJSONString(%q) decodes to %q; encoding/json gives %q", s, a, b)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range jsonStringSeeds {
		checkJSONString(t, s)
	}
	if got := string(appendJSONString(nil, "a\"b\n\u2028")); got != `"a\"b\n\u2028"` {
		t.Errorf("got %s", got)
	}
	if got := string(appendJSONBytes(nil, []byte("1.2 \"kg\""))); got != `"1.2 \"kg\""` {
		t.Errorf("appendJSONBytes escaped to %s", got)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStringSeeds {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
}

func TestAppendDecimal(t *testing.T) {
	for _, m := range []bridge.Money{
		{Amount: 4999, Currency: "USD"}, {Amount: 5, Currency: "USD"}, {Amount: 0, Currency: "USD"}, {Amount: -5, Currency: "USD"},
		{Amount: -12345, Currency: "USD"}, {Amount: 1500, Currency: "JPY"}, {Amount: -7, Currency: "JPY"}, {Amount: 1250, Currency: "KWD"},
		{Amount: 1, Currency: "KWD"}, {Amount: 999_999_999_999_999, Currency: "USD"}, {Amount: 100, Currency: "XYZ"},
	} {
		if got, want := string(m.AppendString(nil)), m.String(); got != want {
			t.Errorf("AppendString(%+v) = %q, want %q", m, got, want)
		}
	}
}

func TestCSVFieldRoundTrip(t *testing.T) {
	fields := []string{"", "plain", "a,b", `say "hi"`, "multi\nline", " leading", "\ttab", "\u00a0nbsp", "trail ", `\.`, "bad \xff", "日本"}
	var line []byte
	for i, f := range fields {
		if i > 0 {
			line = append(line, ',')
		}
		line = appendCSVField(line, f)
	}
	line = append(line, '\n')
	rec, err := csv.NewReader(bytes.NewReader(line)).Read()
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	for i, f := range fields {
		if want := strings.ToValidUTF8(f, "\uFFFD"); rec[i] != want {
			t.Errorf("field %d read back as %q, want %q", i, rec[i], want)
		}
	}
}

func TestTSVField(t *testing.T) {
	if got := string(appendTSVField(nil, "a\tb\nc\r\"d\"")); got != `a b c "d"` {
		t.Errorf("got %q", got)
	}
}

func TestTruncateRunes(t *testing.T) {
	if got := truncateRunes("héllo", 2); got != "hé" {
		t.Errorf("got %q", got)
	}
	if got := truncateRunes("abc", 5); got != "abc" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("ü", 6000)
	if got := utf8.RuneCountInString(truncateRunes(long, maxDescription)); got != maxDescription {
		t.Errorf("got %d runes", got)
	}
}

func TestSWARScans(t *testing.T) {
	base := "abcdefghijklmnopqrstuvwxyz0123456789"
	for pos := 0; pos < len(base); pos++ {
		for _, c := range []byte{',', '"', '\r', '\n', '\t', '\\', 0x01, 0x1f, 0x80, 0xff} {
			s := base[:pos] + string([]byte{c}) + base[pos+1:]
			wantCSV, wantTSV := -1, -1
			if c == ',' || c == '"' || c == '\r' || c == '\n' {
				wantCSV = pos
			}
			if c == '\t' || c == '\r' || c == '\n' {
				wantTSV = pos
			}
			if got := indexCSVSpecial(s); got != wantCSV {
				t.Errorf("indexCSVSpecial(%q) = %d, want %d", s, got, wantCSV)
			}
			if got := indexTSVSpecial(s); got != wantTSV {
				t.Errorf("indexTSVSpecial(%q) = %d, want %d", s, got, wantTSV)
			}
			checkJSONString(t, s)
		}
	}
	for i := 0; i+8 <= len(base); i++ {
		if jsonSpecial8(load64(base, i)) {
			t.Errorf("jsonSpecial8 flags plain text at %d", i)
		}
	}
}
