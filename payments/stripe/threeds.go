package stripe

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
	stripego "github.com/stripe/stripe-go/v82"
)

// ThreeDS is the acquirer's side of 3-D Secure: what an agent's 3DS server
// needs to authenticate the buyer with the card's directory server (ACP
// 2026-04-17 authentication_metadata.acquirer_details). Stripe is the
// acquirer; the values come from Stripe (the account's 3DS acquirer
// details), not from the card.
type ThreeDS struct {
	// AcquirerBIN is the acquirer's BIN, 6 to 8 digits.
	AcquirerBIN string
	// AcquirerCountry is the acquirer's ISO 3166-1 alpha-2 country (US).
	AcquirerCountry string
	// AcquirerMerchantID is the merchant id the acquirer assigned (at most
	// 35 characters, ACP's limit).
	AcquirerMerchantID string
	// MerchantName is the name the issuer shows the buyer during the
	// challenge (at most 40 characters, ACP's limit).
	MerchantName string
}

var (
	binRE     = regexp.MustCompile(`^[0-9]{6,8}$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// check refuses acquirer details an agent's 3DS server could not use: the
// challenge would fail at the directory server, after the buyer was asked
// to authenticate.
func (t ThreeDS) check() error {
	switch {
	case !binRE.MatchString(t.AcquirerBIN):
		return fmt.Errorf("stripe: 3-D Secure acquirer BIN %q is not 6 to 8 digits", t.AcquirerBIN)
	case !countryRE.MatchString(t.AcquirerCountry):
		return fmt.Errorf("stripe: 3-D Secure acquirer country %q is not an ISO 3166-1 alpha-2 code such as US", t.AcquirerCountry)
	case !printable(t.AcquirerMerchantID, 35):
		return errors.New("stripe: 3-D Secure acquirer merchant id must be 1 to 35 printable characters without surrounding spaces")
	case !printable(t.MerchantName, 40):
		return errors.New("stripe: 3-D Secure merchant name must be 1 to 40 printable characters without surrounding spaces")
	}
	return nil
}

func printable(s string, maxRunes int) bool {
	if s == "" || s != strings.TrimSpace(s) || utf8.RuneCountInString(s) > maxRunes || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// Directory servers ACP 2026-04-17 knows (authentication_metadata.directory_server).
const (
	dsVisa       = "visa"
	dsMastercard = "mastercard"
	dsAmex       = "american_express"
)

// directoryServers maps Stripe's card brands (card.brand, and
// card.display_brand's spellings) to ACP's directory servers. Brands
// without one of ACP's directory servers (discover, jcb, unionpay,
// cartes_bancaires, …) get no challenge: the agent could not run 3-D
// Secure for them.
var directoryServers = map[string]string{
	"visa": dsVisa, "mastercard": dsMastercard, "amex": dsAmex, "american_express": dsAmex,
}

// cardBrand is what Stripe says about the card behind a payment.
type cardBrand struct {
	Brand        string `json:"brand"`
	DisplayBrand string `json:"display_brand"`
}

// known reports whether the brand is named at all ("unknown" is Stripe's
// word for not knowing).
func (b cardBrand) known() bool {
	return (b.Brand != "" && b.Brand != "unknown") || (b.DisplayBrand != "" && b.DisplayBrand != "other")
}

// directoryServer is ACP's directory server for the brand; "" when ACP has
// none for it. The network brand comes first: display_brand follows the
// buyer's choice on co-badged cards, which may be a local scheme.
func (b cardBrand) directoryServer() string {
	if ds := directoryServers[strings.ToLower(b.Brand)]; ds != "" {
		return ds
	}
	return directoryServers[strings.ToLower(b.DisplayBrand)]
}

// needsAction answers a PaymentIntent waiting for 3-D Secure. With
// acquirer details configured and a card brand ACP has a directory server
// for, the answer carries the Challenge the engine turns into
// authentication_required; otherwise it has none, and the engine asks the
// agent for another payment method (the behaviour before 3-D Secure was
// mapped).
func (c *call) needsAction(ctx context.Context, pi *stripego.PaymentIntent) (bridge.PaymentResult, error) {
	res := bridge.PaymentResult{Status: bridge.PaymentRequiresAction, Ref: pi.ID}
	td := c.p.threeDS
	if td == nil {
		return res, nil
	}
	ds, err := c.directoryServer(ctx, pi)
	switch {
	case err != nil:
		return bridge.PaymentResult{}, err
	case ds == "":
		return res, nil
	}
	res.Challenge = &bridge.AuthChallenge{
		AcquirerBIN:        td.AcquirerBIN,
		AcquirerCountry:    td.AcquirerCountry,
		AcquirerMerchantID: td.AcquirerMerchantID,
		MerchantName:       td.MerchantName,
		DirectoryServer:    ds,
		// The continuation confirms this PaymentIntent.
		PaymentRef: pi.ID,
	}
	return res, nil
}

// directoryServer finds the card brand of the PaymentIntent's payment
// method: from the PaymentIntent when Stripe expanded it, else from the
// granted token read at the start of this call (its
// payment_method_details), else by reading the PaymentMethod. A brand ACP
// has no directory server for gives "". A PaymentMethod Stripe will not
// show (another account's, removed) gives "" too — no challenge, as
// before — while a failure worth retrying is returned (wrapping
// bridge.ErrPaymentUnavailable): the engine's retry replays the create and
// asks again.
func (c *call) directoryServer(ctx context.Context, pi *stripego.PaymentIntent) (string, error) {
	if pm := pi.PaymentMethod; pm != nil && pm.Card != nil {
		if b := (cardBrand{Brand: string(pm.Card.Brand), DisplayBrand: pm.Card.DisplayBrand}); b.known() {
			return b.directoryServer(), nil
		}
	}
	if c.tokenCard != nil && c.tokenCard.known() {
		return c.tokenCard.directoryServer(), nil
	}
	if pi.PaymentMethod == nil || !idRE.MatchString(pi.PaymentMethod.ID) {
		return "", nil
	}
	var pm *stripego.PaymentMethod
	err := c.do(ctx, "read the PaymentMethod", func(actx context.Context) error {
		params := &stripego.PaymentMethodRetrieveParams{}
		params.Context = actx
		params.Headers = c.p.headers()
		var err error
		pm, err = c.p.client.V1PaymentMethods.Retrieve(actx, pi.PaymentMethod.ID, params)
		return err
	})
	switch {
	case errors.Is(err, bridge.ErrPaymentUnavailable):
		return "", err
	case err != nil || pm == nil || pm.Card == nil:
		return "", nil
	}
	return cardBrand{Brand: string(pm.Card.Brand), DisplayBrand: pm.Card.DisplayBrand}.directoryServer(), nil
}

// authenticatedOutcomes are the ACP outcomes that carry a cryptogram for
// the authorization (outcome_details is required with them).
var authenticatedOutcomes = map[string]bool{"authenticated": true, "attempt_acknowledged": true, "informational": true}

// ECIs are the Electronic Commerce Indicators ACP and Stripe both accept,
// spelled the same in both (two digits): 05/06/07 Visa, Amex and others
// (authenticated / attempted / not authenticated), 02/01 Mastercard
// (authenticated / attempted).
var ecis = map[string]bool{"01": true, "02": true, "05": true, "06": true, "07": true}

var (
	// threeDSVersionRE is a 3-D Secure protocol version (1.0.2, 2.2.0, …).
	// Stripe lists the versions it knows but lets newer ones through, so
	// only the shape is checked here.
	threeDSVersionRE = regexp.MustCompile(`^[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}$`)
)

// notAuthenticated is the decline for an ACP outcome that carries no
// authentication, in words for the buyer. Nothing is sent to Stripe: the
// PaymentIntent stays in requires_action, which holds no money, and can
// no longer be confirmed once the token expires; the engine's next
// attempt creates a new one under a new key.
func notAuthenticated(ref, outcome string) bridge.PaymentResult {
	switch outcome {
	case "abandoned", "canceled":
		return declined(ref, "authentication_abandoned", "The buyer did not finish authenticating with the card issuer.")
	case "not_supported", "internal_error", "processing_error":
		return declined(ref, "authentication_unavailable", "3-D Secure could not be completed with the card issuer.")
	}
	// denied, rejected, and anything ACP may add later.
	return declined(ref, "authentication_failed", "The card issuer did not authenticate the buyer.")
}

// importParams turns the agent's authentication result into Stripe's
// payment_method_options[card][three_d_secure]; it returns a decline when
// the result lacks what Stripe requires (cryptogram, transaction_id,
// version) or has values neither ACP nor Stripe allow, so the buyer hears
// why instead of the bridge forwarding a request Stripe refuses.
// ares_trans_status, exemption_indicator and requestor_challenge_indicator
// are left out: ACP does not carry them, and guessing the ARes status from
// the final outcome would be wrong after a challenge (ARes C).
func importParams(ref string, a *bridge.AuthResult) (*stripego.PaymentIntentPaymentMethodOptionsCardThreeDSecureParams, *bridge.PaymentResult) {
	incomplete := func() (*stripego.PaymentIntentPaymentMethodOptionsCardThreeDSecureParams, *bridge.PaymentResult) {
		res := declined(ref, "authentication_incomplete", "The card issuer's 3-D Secure result is incomplete or malformed.")
		return nil, &res
	}
	eci := strings.TrimSpace(a.ECI)
	if len(eci) == 1 {
		// Some 3DS servers drop the leading zero.
		eci = "0" + eci
	}
	switch {
	case a.Cryptogram == "" || len(a.Cryptogram) > 5000 || a.TransactionID == "" || len(a.TransactionID) > 5000:
		return incomplete()
	case !threeDSVersionRE.MatchString(a.Version):
		return incomplete()
	case eci != "" && !ecis[eci]:
		return incomplete()
	}
	p := &stripego.PaymentIntentPaymentMethodOptionsCardThreeDSecureParams{
		Cryptogram:    stripego.String(a.Cryptogram),
		TransactionID: stripego.String(a.TransactionID),
		Version:       stripego.String(a.Version),
	}
	if eci != "" {
		p.ElectronicCommerceIndicator = stripego.String(eci)
	}
	return p, nil
}

// continueAfterAction continues a PaymentIntent that asked for 3-D Secure
// (r.PaymentRef), with the agent's result (r.Auth):
//
//   - an authenticated outcome with a cryptogram confirms the
//     PaymentIntent with it, under the request's Idempotency-Key, and maps
//     the outcome as a charge does — except that still needing action is
//     a decline (authentication_failed);
//   - an outcome without authentication (denied, rejected, abandoned, …)
//     is declined at once, in words, without a call (see
//     notAuthenticated);
//   - no result, or an authenticated outcome without a cryptogram (ACP
//     2026-01-16 did not require one), only reads the PaymentIntent: paid
//     if it already is (authenticated elsewhere), else declined.
func (c *call) continueAfterAction(ctx context.Context, r bridge.PaymentRequest) (bridge.PaymentResult, error) {
	if !idRE.MatchString(r.PaymentRef) {
		return declined(r.PaymentRef, "payment_intent_unexpected_state", "This payment cannot be continued; start again."), nil
	}
	a := r.Auth
	switch {
	case a == nil, authenticatedOutcomes[a.Outcome] && a.Cryptogram == "":
		return c.settle(ctx, r.PaymentRef)
	case !authenticatedOutcomes[a.Outcome]:
		return notAuthenticated(r.PaymentRef, a.Outcome), nil
	}
	tds, refusal := importParams(r.PaymentRef, a)
	if refusal != nil {
		return *refusal, nil
	}
	// The cryptogram authorizes this payment: kept out of errors and logs
	// like the token.
	c.secrets = append(c.secrets, a.Cryptogram)
	params := &stripego.PaymentIntentConfirmParams{
		PaymentMethodOptions: &stripego.PaymentIntentPaymentMethodOptionsParams{
			Card: &stripego.PaymentIntentPaymentMethodOptionsCardParams{ThreeDSecure: tds},
		},
		// Stripe's guide for imported results: fail rather than start a
		// 3-D Secure of Stripe's own, which no one could show the buyer.
		ErrorOnRequiresAction: stripego.Bool(true),
	}
	params.IdempotencyKey = stripego.String(r.IdempotencyKey)
	var pi *stripego.PaymentIntent
	err := c.do(ctx, "confirm the PaymentIntent with the 3-D Secure result", func(actx context.Context) error {
		params.Context = actx
		params.Headers = c.p.headers()
		var err error
		pi, err = c.p.client.V1PaymentIntents.Confirm(actx, r.PaymentRef, params)
		return err
	})
	if err == nil {
		return c.intentResult(ctx, pi, afterAuth)
	}
	var se *stripego.Error
	switch {
	case errors.Is(err, bridge.ErrPaymentUnavailable):
		return bridge.PaymentResult{}, err
	case errors.As(err, &se) && se.Type == stripego.ErrorTypeCard:
		res := c.cardDecline(se)
		if res.Ref == "" {
			res.Ref = r.PaymentRef
		}
		if res.DeclineCode == string(stripego.ErrorCodeAuthenticationRequired) {
			res = authFailed(res.Ref)
		}
		return res, nil
	case errors.As(err, &se) && (se.Code == stripego.ErrorCodePaymentIntentUnexpectedState || se.Type == stripego.ErrorTypeIdempotency):
		// The PaymentIntent cannot be confirmed (any more), or the key was
		// used with another result by an attempt whose answer was lost:
		// the PaymentIntent's own state tells how the payment ended.
		return c.settle(ctx, r.PaymentRef)
	}
	return bridge.PaymentResult{}, err
}

// settle reads the PaymentIntent and maps its state after 3-D Secure.
func (c *call) settle(ctx context.Context, ref string) (bridge.PaymentResult, error) {
	pi, err := c.retrieve(ctx, ref)
	if err != nil {
		return bridge.PaymentResult{}, err
	}
	return c.intentResult(ctx, pi, afterAuth)
}

func authFailed(ref string) bridge.PaymentResult {
	return declined(ref, "authentication_failed", "The card issuer could not authenticate the buyer.")
}
