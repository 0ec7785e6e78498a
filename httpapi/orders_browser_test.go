package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// chromiumBinary finds a Chromium to drive: Debian names it chromium,
// Ubuntu and older packages chromium-browser.
func chromiumBinary() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// dumpDOM loads url in headless Chromium and returns the DOM after parsing
// (what a buyer's browser builds from the page, not the bytes sent) and
// Chromium's log, which carries the page's console messages, Content
// Security Policy violations among them.
func dumpDOM(t *testing.T, bin, url string) (dom, log string) {
	t.Helper()
	// A fresh profile and HOME per run: no state shared between runs or
	// with the machine's user, and nothing written outside the temp dir.
	dir, err := os.MkdirTemp("", "orderpage-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// Best effort: Chromium's helpers may still be writing to the profile
	// for a moment after the browser exits, which must not fail the test.
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless=new", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--enable-logging=stderr", "--v=0",
		"--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Chromium's child processes can hold the output pipes after a kill;
	// WaitDelay keeps a hung browser from hanging the test beyond the
	// timeout.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	t.Logf("chromium rendered %s in %v", url, time.Since(start).Round(time.Millisecond))
	return stdout.String(), stderr.String()
}

// TestOrderPageInBrowser renders the status page in a real browser: the
// DOM Chromium builds must show the order (and the CSP must not block the
// page's own style), a wrong token must show nothing of it, and hostile
// order data must stay text.
func TestOrderPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("headless Chromium takes about a second a page; skipped under -short")
	}
	bin := chromiumBinary()
	if bin == "" {
		t.Skip("chromium not installed: apt-get install chromium")
	}

	orders := orderStore()
	hostile := sampleOrder()
	hostile.ID, hostile.Token = "ord_hostile", "feedfacefeedfacefeedface"
	hostile.Lines[0].Title = `<img src="/x.png" onerror="document.body.dataset.pwned=1">Sock`
	hostile.Lines[1].Title = `<script>document.body.dataset.pwned=2</script>`
	hostile.Fulfillments[0].TrackingURL = "javascript:document.body.dataset.pwned=3"
	hostile.Fulfillments[0].Carrier = `<a href="https://evil.example/">click</a>`
	orders[hostile.ID] = hostile
	srv := httptest.NewServer(New(Config{Logger: quietLogger(&bytes.Buffer{}), Orders: orders, MerchantName: shopName}))
	defer srv.Close()

	orderData := []string{sampleID, "Trail Runner Sock", "Merino Beanie", "UPS", "1Z999AA10123456784", "$6,551.87", "Refunded", "shipped"}
	tests := []struct {
		name    string
		path    string
		want    []string
		notWant []string
	}{
		{"right token", pageURL(sampleID, sampleToken), []string{
			"<h1>Demo Outfitters</h1>",
			`<strong id="status">shipped</strong>`,
			"<td>3 ×</td><td>Trail Runner Sock", "· 2 shipped", "· removed", "· 1 removed",
			`<a href="https://www.ups.com/track?tracknum=1Z999AA10123456784&amp;x=1" rel="noopener noreferrer">1Z999AA10123456784</a>`,
			`id="total">$6,551.87</td>`,
			"Refunded $12.00 on 2 March 2026",
			"<li>1 March 2026: received</li><li>3 March 2026: shipped</li>",
		}, personal},
		{"wrong token", pageURL(sampleID, "000000000000000000000000"), []string{"Order not found."}, orderData},
		{"no token", "/orders/" + sampleID, []string{"Order not found."}, orderData},
		{"pre-payment order", pageURL("ord_pre0", "aaaaaaaaaaaaaaaaaaaaaaa0"), []string{"Order not found."}, orderData},
		{"hostile data", pageURL(hostile.ID, hostile.Token), []string{
			`&lt;img src="/x.png" onerror="document.body.dataset.pwned=1"&gt;Sock`,
			`&lt;script&gt;document.body.dataset.pwned=2&lt;/script&gt;`,
			`Carrier: &lt;a href="https://evil.example/"&gt;click&lt;/a&gt;`,
			"Tracking number: 1Z999AA10123456784</p>",
		}, []string{"<img", "<script", "data-pwned", "javascript:", `<a href="https://evil.example/"`}},
	}
	start := time.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dom, log := dumpDOM(t, bin, srv.URL+tt.path)
			if !strings.Contains(dom, "</html>") {
				t.Fatalf("no page in the DOM dump:\n%s\n%s", dom, log)
			}
			for _, w := range tt.want {
				if !strings.Contains(dom, w) {
					t.Errorf("DOM lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(dom, w) {
					t.Errorf("DOM shows %q", w)
				}
			}
			// A violation would mean either the policy blocks the page's
			// own style or hostile data tried to load or run something.
			if strings.Contains(log, "Content Security Policy") {
				t.Errorf("CSP violation:\n%s", log)
			}
			if t.Failed() {
				t.Log(dom)
			}
		})
	}
	t.Logf("%d pages in %v", len(tests), time.Since(start).Round(time.Millisecond))
}

// TestOrderPageInBrowserCSPLogged makes sure the CSP check above can fail:
// Chromium logs a violation on stderr where the test looks for it.
func TestOrderPageInBrowserCSPLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("headless Chromium takes about a second a page; skipped under -short")
	}
	bin := chromiumBinary()
	if bin == "" {
		t.Skip("chromium not installed: apt-get install chromium")
	}
	o := sampleOrder()
	o.SetStatus(day0(5), bridge.OrderCompleted, "")
	h := New(Config{Logger: quietLogger(&bytes.Buffer{}), Orders: memOrders{o.ID: o}, MerchantName: shopName})
	// The same page under a policy that forbids inline style.
	srv := httptest.NewServer(cspOverride{h, "default-src 'none'; style-src 'none'"})
	defer srv.Close()
	dom, log := dumpDOM(t, bin, srv.URL+pageURL(o.ID, o.Token))
	if !strings.Contains(dom, `<strong id="status">delivered</strong>`) {
		t.Fatalf("page not rendered:\n%s", dom)
	}
	if !strings.Contains(log, "Content Security Policy") {
		t.Fatalf("no CSP violation in Chromium's log; the browser test's CSP check would not see one either:\n%s", log)
	}
}

// cspOverride serves h with another Content-Security-Policy.
type cspOverride struct {
	h   http.Handler
	csp string
}

func (c cspOverride) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.h.ServeHTTP(cspWriter{w, c.csp}, r)
}

type cspWriter struct {
	http.ResponseWriter
	csp string
}

func (w cspWriter) WriteHeader(code int) {
	w.Header().Set("Content-Security-Policy", w.csp)
	w.ResponseWriter.WriteHeader(code)
}
