package config

import (
	"maps"
	"strings"
)

// The production configs the tests build: prodHead (mode, server,
// merchant) + a store + prodCommerce (Stripe with its handler, one API key,
// fulfillment zones), with prodEnv's variables.
const (
	prodHead = `
mode: production
server:
  public_url: https://bridge.shop.example
merchant:
  name: Demo Shop
  url: https://shop.example
  country: US
  return_policy_url: https://shop.example/returns
`
	prodCSVStore = `store:
  csv:
    path: catalog.csv
`
	prodCommerce = `payments:
  provider: stripe
  stripe:
    secret_key: ${STRIPE_KEY}
    webhook_secret: ${STRIPE_WHSEC}
  handler:
    merchant_id: acct_123
acp:
  api_keys:
    - name: openai
      key: ${ACP_KEY}
fulfillment:
  zones: []
`
)

// prodEnv is the environment prodCommerce needs, with more.
func prodEnv(more map[string]string) map[string]string {
	e := map[string]string{"STRIPE_KEY": "sk_test_123", "STRIPE_WHSEC": "whsec_123", "ACP_KEY": strings.Repeat("k", 32)}
	maps.Copy(e, more)
	return e
}
