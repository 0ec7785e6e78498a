// Package htmltext turns the HTML fragments stores keep in product
// descriptions into the plain text feeds require. One implementation serves
// the mapping's strip_html filter and the feed writers, so both agree on what
// a description says.
package htmltext

import (
	"html"
	"strings"
)

// AppendText appends the visible text of an HTML fragment: tags, comments,
// scripts and styles removed, entities decoded, and runs of white space
// collapsed to one space. Flat feeds accept plain text only, and stores often
// keep only an HTML description. It is a forgiving scanner, not a parser: a
// product description is not a document, and a stray '<' stays text.
func AppendText(dst []byte, h string) []byte {
	start := len(dst)
	space := true // suppress leading space
	emit := func(b []byte, c byte) []byte {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
			if !space {
				space = true
				return append(b, ' ')
			}
			return b
		}
		space = false
		return append(b, c)
	}
	for i := 0; i < len(h); {
		c := h[i]
		switch {
		case c == '<' && i+1 < len(h) && isTagStart(h[i+1]):
			if strings.HasPrefix(h[i:], "<!--") {
				end := strings.Index(h[i+4:], "-->")
				if end < 0 {
					i = len(h)
				} else {
					i += 4 + end + 3
				}
				continue
			}
			end := strings.IndexByte(h[i:], '>')
			if end < 0 {
				i = len(h)
				continue
			}
			inside := h[i+1 : i+end]
			name := tagName(inside)
			i += end + 1
			if skip := rawTextEnd(name); skip != "" {
				j := indexFold(h[i:], skip)
				if j < 0 {
					i = len(h)
				} else {
					i += j + len(skip)
					if k := strings.IndexByte(h[i:], '>'); k >= 0 {
						i += k + 1
					}
				}
			}
			// Block tags separate words ("<li>a</li><li>b</li>" is "a b");
			// inline ones do not ("<b>soft</b>, warm" is "soft, warm").
			if !inline[strings.ToLower(tagName(strings.TrimPrefix(inside, "/")))] {
				dst = emit(dst, ' ')
			}
		case c == '&':
			end := strings.IndexByte(h[i:min(len(h), i+12)], ';')
			if end < 0 {
				dst = emit(dst, c)
				i++
				continue
			}
			ent := h[i : i+end+1]
			text := html.UnescapeString(ent)
			if text == ent {
				dst = emit(dst, c)
				i++
				continue
			}
			for j := 0; j < len(text); j++ {
				if text[j] == 0xc2 && j+1 < len(text) && text[j+1] == 0xa0 { // &nbsp;
					dst = emit(dst, ' ')
					j++
					continue
				}
				dst = emit(dst, text[j])
			}
			i += end + 1
		default:
			dst = emit(dst, c)
			i++
		}
	}
	if len(dst) > start && dst[len(dst)-1] == ' ' {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// inline lists the phrasing elements that sit inside a word run.
var inline = map[string]bool{"a": true, "abbr": true, "b": true, "bdi": true, "bdo": true, "cite": true,
	"code": true, "data": true, "dfn": true, "em": true, "i": true, "kbd": true, "mark": true, "q": true,
	"s": true, "samp": true, "small": true, "span": true, "strong": true, "sub": true, "sup": true,
	"time": true, "u": true, "var": true}

func isTagStart(c byte) bool {
	return c == '/' || c == '!' || c == '?' || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

// tagName returns the lower-cased name of the tag whose inside ("p class=x",
// "/div") is given; "" for closing tags and declarations.
func tagName(inside string) string {
	if inside == "" || !(inside[0]|0x20 >= 'a' && inside[0]|0x20 <= 'z') {
		return ""
	}
	n := 0
	for n < len(inside) && (inside[n]|0x20 >= 'a' && inside[n]|0x20 <= 'z' || inside[n] >= '0' && inside[n] <= '9') {
		n++
	}
	return inside[:n]
}

// rawTextEnd returns the closing tag that ends a raw-text element whose
// content is not visible text.
func rawTextEnd(name string) string {
	switch {
	case strings.EqualFold(name, "script"):
		return "</script"
	case strings.EqualFold(name, "style"):
		return "</style"
	}
	return ""
}

// indexFold is strings.Index ignoring ASCII case, for short needles.
func indexFold(s, needle string) int {
	for i := 0; i+len(needle) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return i
		}
	}
	return -1
}

// ContainsHTML reports whether plain text carries markup: a '<' that opens a
// tag ("<p", "</", "<!--", "<br/>") and a '>' after it. "a < b" and "<3"
// are text.
func ContainsHTML(s string) bool {
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 || i+1 >= len(s) {
			return false
		}
		c := s[i+1]
		if c == '/' || c == '!' || (c|0x20 >= 'a' && c|0x20 <= 'z') {
			return strings.IndexByte(s[i+2:], '>') >= 0
		}
		s = s[i+1:]
	}
}

// Text returns the visible text of an HTML fragment (see AppendText).
func Text(h string) string {
	if !strings.ContainsAny(h, "<&") {
		return strings.Join(strings.Fields(h), " ")
	}
	return string(AppendText(nil, h))
}
