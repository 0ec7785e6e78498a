package htmltext

import "testing"

func TestAppendText(t *testing.T) {
	for in, want := range map[string]string{
		"<p>Soft <b>cotton</b> tee.</p>":                       "Soft cotton tee.",
		"A <b>soft</b>, breathable<br>tee":                     "A soft, breathable tee",
		"x<STRONG>y</STRONG>z<span class=a>!</span>":           "xyz!",
		"<li>one</li><li>two</li>":                             "one two",
		"<ul><li>one</li><li>two</li></ul>":                    "one two",
		"a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; &#x41;": `a & b <c> "d" 'e' A`,
		"x&nbsp;y &unknown; & z":                               "x y &unknown; & z",
		"<script>alert(1)</script>shown<style>p{}</style>":     "shown",
		"<SCRIPT type=x>a</Script >b":                          "b",
		"1 < 2 and <3":                                         "1 < 2 and <3",
		"<!-- hidden -->seen":                                  "seen",
		"  lots \n\n of\t space  ":                             "lots of space",
		"<br/>broken <p":                                       "broken",
		"<p>déjà vu</p>":                                       "déjà vu",
	} {
		if got := string(AppendText(nil, in)); got != want {
			t.Errorf("AppendText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainsHTML(t *testing.T) {
	for in, want := range map[string]bool{
		"<p>x</p>": true, "a <br/> b": true, "</div>": true, "<!-- c -->": true,
		"a < b": false, "<3": false, "x <y": false, "plain": false, "a<": false,
	} {
		if got := ContainsHTML(in); got != want {
			t.Errorf("ContainsHTML(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{"plain  text\n": "plain text", "<b>x</b>&amp;y": "x&y", "": ""} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzAppendText(f *testing.F) {
	for _, s := range []string{"<p>a</p>", "a < b", "<script>x</script>y", "&amp;&lt;", "<!--", "<a href='x>'>t</a>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendText(nil, s)
		if len(out) > 3*len(s)+8 {
			t.Fatalf("output grew unreasonably: %d → %d", len(s), len(out))
		}
	})
}
