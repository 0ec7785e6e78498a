package stripe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	stripego "github.com/stripe/stripe-go/v82"
)

// stripe-mock (github.com/stripe/stripe-mock, a Go tool dependency in
// go.mod) validates the shape of the calls it can: the granted-token read,
// the PaymentIntent retrieve, capture, cancel and the 3-D Secure confirm,
// the PaymentMethod read, the refund create and the tax calculation. It cannot validate the SPT create (its
// beta spec wants payment_method_data[type]) nor simulate outcomes; the
// fake covers those. It is built and started once per test run.

var mock struct {
	once sync.Once
	url  string
	err  error
	cmd  *exec.Cmd
	dir  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if mock.cmd != nil && mock.cmd.Process != nil {
		_ = mock.cmd.Process.Kill()
		_ = mock.cmd.Wait()
	}
	if mock.dir != "" {
		_ = os.RemoveAll(mock.dir)
	}
	os.Exit(code)
}

var listenRE = regexp.MustCompile(`Listening for HTTP at address: (\S+)`)

// stripeMock returns the base URL of a running stripe-mock -beta.
func stripeMock(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("stripe-mock contract test skipped with -short")
	}
	mock.once.Do(func() { mock.url, mock.err = startStripeMock() })
	if mock.err != nil {
		t.Fatalf("stripe-mock: %v", mock.err)
	}
	return mock.url
}

func startStripeMock() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build stripe-mock: %w", err)
	}
	dir, err := os.MkdirTemp("", "stripe-mock")
	if err != nil {
		return "", err
	}
	mock.dir = dir
	bin := filepath.Join(dir, "stripe-mock")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/stripe/stripe-mock")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building: %v: %s", err, out)
	}
	// Both listeners on loopback ports the system picks (HTTPS would take
	// the fixed 12112 otherwise).
	cmd := exec.Command(bin, "-beta", "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", err
	}
	mock.cmd = cmd
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	select {
	case addr := <-found:
		return "http://" + addr, nil
	case <-time.After(60 * time.Second):
		return "", fmt.Errorf("no listening address within 60s")
	}
}

func TestStripeMockGrantedTokenRead(t *testing.T) {
	base := stripeMock(t)
	p, err := New(Config{SecretKey: "sk_test_123", APIBase: base})
	if err != nil {
		t.Fatal(err)
	}
	c := &call{p: p, deadline: time.Now().Add(5 * time.Second)}
	tok, err := c.readToken(context.Background(), "spt_123")
	if err != nil {
		t.Fatalf("readToken: %v", err)
	}
	if tok.ID != "spt_123" || tok.Object != "shared_payment.granted_token" || tok.UsageLimits == nil || tok.UsageLimits.Currency == "" {
		t.Errorf("token = %+v", tok)
	}
	// The fixture has no expiry and a large max_amount in usd: usable.
	refusal, err := c.checkToken(context.Background(), "spt_123", "usd", 100)
	if err != nil || refusal != nil {
		t.Errorf("checkToken = %+v, %v", refusal, err)
	}
}

func TestStripeMockPaymentIntentRetrieve(t *testing.T) {
	base := stripeMock(t)
	p, err := New(Config{SecretKey: "sk_test_123", APIBase: base})
	if err != nil {
		t.Fatal(err)
	}
	c := &call{p: p, deadline: time.Now().Add(5 * time.Second)}
	pi, err := c.retrieve(context.Background(), "pi_123")
	if err != nil {
		t.Fatalf("retrieve: %v", err)
	}
	if pi.ID == "" || pi.Status == "" {
		t.Errorf("PaymentIntent = %+v", pi)
	}
	// Through Charge: a continuation maps whatever fixture status comes
	// back without an error.
	res, err := p.Charge(context.Background(), bridge.PaymentRequest{IdempotencyKey: "k", Amount: 100, Currency: "usd", PaymentRef: "pi_123"})
	if err != nil || res.Ref == "" {
		t.Errorf("continuation = %+v, %v", res, err)
	}
}

// stripe-mock validates the calculation request against the spec (a 400
// otherwise); its fixture answer carries its own references, so only the
// request's acceptance and the answer's shape are checked.
// (The fixture has no id: it is nullable in the spec.)
func TestStripeMockTaxCalculation(t *testing.T) {
	base := stripeMock(t)
	p, err := New(Config{SecretKey: "sk_test_123", APIBase: base})
	if err != nil {
		t.Fatal(err)
	}
	for _, inclusive := range []bool{false, true} {
		calc, err := p.rawTaxCalculation(context.Background(), taxQuery(inclusive))
		if err != nil && !errors.Is(err, ErrTaxAnswer) {
			t.Fatalf("inclusive=%v: stripe-mock refused the request: %v", inclusive, err)
		}
		if calc == nil || calc.Object != "tax.calculation" || calc.LineItems == nil {
			t.Errorf("inclusive=%v: calculation = %+v", inclusive, calc)
		}
		// Through CalculateTax: the fixture's references are not ours.
		_, err = p.CalculateTax(context.Background(), taxQuery(inclusive))
		if !errors.Is(err, ErrTaxAnswer) {
			t.Errorf("inclusive=%v: CalculateTax err = %v, want ErrTaxAnswer", inclusive, err)
		}
	}
}

// stripe-mock validates the shape of capture, cancel and refund against
// Stripe's spec (unknown parameters and bad types are a 400, which the
// actions report as ErrPaymentFinal). Its fixture answers do not follow
// state, so only acceptance and the answer's shape are checked here; the
// fake covers behaviour.
func TestStripeMockActions(t *testing.T) {
	base := stripeMock(t)
	p, err := New(Config{SecretKey: "sk_test_123", APIBase: base})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	act := func(key string, amount int64, reason string) bridge.PaymentAction {
		return bridge.PaymentAction{IdempotencyKey: key, OrderID: "ord_1", Ref: "pi_123", Amount: amount, Currency: "usd", Reason: reason}
	}
	tests := []struct {
		name string
		run  func() error
	}{
		{"capture whole", func() error { return p.Capture(ctx, act("ord_1_capture", 0, "")) }},
		{"capture part", func() error { return p.Capture(ctx, act("ord_1_capture_p", 500, "")) }},
		{"release, Stripe's reason", func() error { return p.Release(ctx, act("ord_1_release", 0, "abandoned")) }},
		{"release, own reason", func() error { return p.Release(ctx, act("ord_1_release_o", 0, "store refused the order")) }},
		{"refund whole", func() error {
			id, err := p.Refund(ctx, act("ord_1_refund", 0, ""))
			if err == nil && id == "" {
				err = errors.New("no refund id")
			}
			return err
		}},
		{"refund part, every parameter", func() error {
			id, err := p.Refund(ctx, act("ord_1_refund_p", 250, "requested_by_customer"))
			if err == nil && id == "" {
				err = errors.New("no refund id")
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err != nil {
				t.Fatalf("stripe-mock refused the call: %v", err)
			}
		})
	}

	// The contract test has teeth: a parameter the spec does not know is
	// refused, and reported as a refusal for good.
	t.Run("unknown parameter refused", func(t *testing.T) {
		c := &call{p: p, deadline: time.Now().Add(5 * time.Second)}
		err := c.do(ctx, "refund", func(actx context.Context) error {
			params := &stripego.RefundCreateParams{PaymentIntent: stripego.String("pi_123")}
			params.AddExtra("amount_to_refund", "100")
			params.Context = actx
			_, err := p.client.V1Refunds.Create(actx, params)
			return err
		})
		if err := actionErr(err); !errors.Is(err, bridge.ErrPaymentFinal) {
			t.Fatalf("err = %v, want a refusal for good", err)
		}
	})
}

// stripe-mock validates the continuation's confirm against Stripe's spec:
// payment_method_options[card][three_d_secure] with cryptogram,
// transaction_id and version (required there) and each ECI, and
// error_on_requires_action. Its fixture answers requires_payment_method,
// which the continuation maps to a decline without an error. Seen with
// v0.203.0 -beta: enums and required fields inside three_d_secure are
// enforced (ECI 03, version 9.9.9 or a missing cryptogram are a 400), but
// unknown keys nested under payment_method_options[card] are not (only
// top-level unknown parameters are refused), so the fake checks those.
func TestStripeMockThreeDSConfirm(t *testing.T) {
	base := stripeMock(t)
	td := testThreeDS
	seen := &seenTransport{}
	p, err := New(Config{SecretKey: "sk_test_123", APIBase: base, ThreeDS: &td, HTTPClient: &http.Client{Transport: seen}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, a := range []*bridge.AuthResult{
		authResult("authenticated", "05"), authResult("authenticated", "02"), authResult("attempt_acknowledged", "06"),
		authResult("attempt_acknowledged", "01"), authResult("informational", "07"), authResult("authenticated", ""),
	} {
		t.Run(a.Outcome+" ECI "+a.ECI, func(t *testing.T) {
			res, err := p.Charge(ctx, bridge.PaymentRequest{IdempotencyKey: "ord_1_0_3ds1_" + a.Outcome + a.ECI, Amount: 100, Currency: "usd",
				PaymentRef: "pi_123", Auth: a})
			if err != nil {
				t.Fatalf("stripe-mock refused the confirm: %v", err)
			}
			if res.Ref != "pi_123" || res.Status == "" {
				t.Errorf("result = %+v", res)
			}
			// The answer came from an accepted confirm, not a shortcut.
			if last := seen.last(); last != "POST /v1/payment_intents/pi_123/confirm 200" {
				t.Errorf("last call %q, want the accepted confirm", last)
			}
		})
	}

	// The contract test has teeth: values Stripe's spec does not allow
	// are refused (and reported as a plain error: nothing was charged).
	pre := "payment_method_options[card][three_d_secure]"
	for _, tc := range []struct{ name, key, value string }{
		{"ECI outside the enum", pre + "[electronic_commerce_indicator]", "03"},
		{"unknown version", pre + "[version]", "9.9.9"},
		{"no cryptogram", pre + "[cryptogram]", ""},
		{"unknown top-level parameter", "three_d_secure_result", "x"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			c := &call{p: p, deadline: time.Now().Add(5 * time.Second)}
			err := c.do(ctx, "confirm", func(actx context.Context) error {
				params := &stripego.PaymentIntentConfirmParams{}
				for k, v := range map[string]string{pre + "[cryptogram]": testCryptogram, pre + "[transaction_id]": "f38e6948", pre + "[version]": "2.2.0"} {
					if k != tc.key {
						params.AddExtra(k, v)
					}
				}
				if tc.value != "" {
					params.AddExtra(tc.key, tc.value)
				}
				params.Context = actx
				_, err := p.client.V1PaymentIntents.Confirm(actx, "pi_123", params)
				return err
			})
			var se *Error
			if !errors.As(err, &se) || se.Err.HTTPStatusCode != 400 || errors.Is(err, bridge.ErrPaymentUnavailable) {
				t.Fatalf("err = %v, want stripe-mock's 400", err)
			}
		})
	}

	// The brand lookup's PaymentMethod read: the fixture is a visa card.
	t.Run("PaymentMethod read", func(t *testing.T) {
		c := &call{p: p, deadline: time.Now().Add(5 * time.Second)}
		res, err := c.needsAction(ctx, &stripego.PaymentIntent{ID: "pi_123", Status: stripego.PaymentIntentStatusRequiresAction,
			PaymentMethod: &stripego.PaymentMethod{ID: "pm_123"}})
		if err != nil || res.Challenge == nil || res.Challenge.DirectoryServer != "visa" {
			t.Fatalf("needsAction = %+v, %v; want a visa Challenge", res, err)
		}
	})
}

// seenTransport remembers the last request's method, path and status.
type seenTransport struct {
	mu   sync.Mutex
	call string
}

func (s *seenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		s.call = fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, resp.StatusCode)
		s.mu.Unlock()
	}
	return resp, err
}

func (s *seenTransport) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call
}
