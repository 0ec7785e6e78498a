package config

import (
	"strings"
	"testing"
)

func TestStripeThreeDS(t *testing.T) {
	const block = "payments:\n  stripe:\n    three_ds:\n"
	tests := []struct {
		name  string
		yaml  string // the block's keys, indented six spaces
		want  StripeThreeDS
		probs []string // "line: key: message part"
	}{
		{name: "absent: off", yaml: "", want: StripeThreeDS{}},
		{name: "complete, merchant name from merchant.name",
			yaml: "      acquirer_bin: \"400551\"\n      acquirer_country: US\n      acquirer_merchant_id: m_123\n",
			want: StripeThreeDS{AcquirerBIN: "400551", AcquirerCountry: "US", AcquirerMerchantID: "m_123", MerchantName: "Demo Shop"}},
		{name: "own merchant name, 8-digit BIN",
			yaml: "      acquirer_bin: \"40055112\"\n      acquirer_country: GB\n      acquirer_merchant_id: m_123\n      merchant_name: Demo\n",
			want: StripeThreeDS{AcquirerBIN: "40055112", AcquirerCountry: "GB", AcquirerMerchantID: "m_123", MerchantName: "Demo"}},
		{name: "bad values",
			yaml: "      acquirer_bin: \"4005\"\n      acquirer_country: usa\n      acquirer_merchant_id: " + strings.Repeat("x", 36) + "\n      merchant_name: " + strings.Repeat("n", 41) + "\n",
			probs: []string{
				"13: payments.stripe.three_ds.acquirer_bin: \"4005\" is not an acquirer BIN",
				"14: payments.stripe.three_ds.acquirer_country: \"usa\" is not an ISO 3166-1 alpha-2 code",
				"15: payments.stripe.three_ds.acquirer_merchant_id: want 1 to 35 printable characters",
				"16: payments.stripe.three_ds.merchant_name: want 1 to 40 printable characters",
			}},
		{name: "merchant name alone: the acquirer keys are missing",
			yaml: "      merchant_name: Demo\n",
			probs: []string{
				"12: payments.stripe.three_ds.acquirer_bin: required with three_ds",
				"12: payments.stripe.three_ds.acquirer_country: required with three_ds",
				"12: payments.stripe.three_ds.acquirer_merchant_id: required with three_ds",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := minimal
			if tt.yaml != "" {
				yaml += block + tt.yaml
			}
			c, err := Parse("x.yaml", []byte(yaml), env(nil))
			if len(tt.probs) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if c.Payments.Stripe.ThreeDS != tt.want || c.Payments.Stripe.ThreeDS.Enabled() != (tt.want != StripeThreeDS{}) {
					t.Fatalf("three_ds = %+v, want %+v", c.Payments.Stripe.ThreeDS, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no problems reported")
			}
			for _, p := range tt.probs {
				if !strings.Contains(err.Error(), "x.yaml:"+p) {
					t.Errorf("missing %q in:\n%v", p, err)
				}
			}
		})
	}
}

// A merchant.name longer than ACP's 40 characters is cut for the default.
func TestStripeThreeDSLongMerchantName(t *testing.T) {
	long := strings.Repeat("Ä", 39) + " and more"
	yaml := strings.Replace(minimal, "name: Demo Shop", "name: "+long, 1) +
		"payments:\n  stripe:\n    three_ds:\n      acquirer_bin: \"400551\"\n      acquirer_country: US\n      acquirer_merchant_id: m\n"
	c, err := Parse("x.yaml", []byte(yaml), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Payments.Stripe.ThreeDS.MerchantName; got != strings.Repeat("Ä", 39) {
		t.Fatalf("merchant_name = %q, want the first 40 characters without the trailing space", got)
	}
}
