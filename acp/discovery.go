package acp

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

type discoveryResponse struct {
	Protocol     discoveryProtocol     `json:"protocol"`
	APIBaseURL   string                `json:"api_base_url"`
	Transports   []string              `json:"transports"`
	Capabilities discoveryCapabilities `json:"capabilities"`
}

type discoveryProtocol struct {
	Name              string    `json:"name"`
	Version           Version   `json:"version"`
	SupportedVersions []Version `json:"supported_versions"`
}

type discoveryCapabilities struct {
	Services            []string `json:"services"`
	InterventionTypes   []string `json:"intervention_types"`
	SupportedCurrencies []string `json:"supported_currencies,omitempty"`
}

// Discovery returns the body of /.well-known/acp.json, 2026-04-17's
// DiscoveryResponse: every supported version (oldest first), the checkout
// service, 3-D Secure as the one intervention, and the Codec's currencies
// in lower case. apiBaseURL must be an absolute URL; transports are "rest"
// and/or "mcp".
func (c *Codec) Discovery(apiBaseURL string, transports []string) ([]byte, error) {
	if u, err := url.Parse(apiBaseURL); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("acp discovery: api base URL %q is not an absolute URL", apiBaseURL)
	}
	doc := discoveryResponse{
		Protocol:     discoveryProtocol{Name: "acp", Version: Latest, SupportedVersions: Versions},
		APIBaseURL:   apiBaseURL,
		Transports:   []string{},
		Capabilities: discoveryCapabilities{Services: []string{"checkout"}, InterventionTypes: []string{"3ds"}},
	}
	for _, t := range transports {
		if t != "rest" && t != "mcp" {
			return nil, fmt.Errorf("acp discovery: unknown transport %q (want rest or mcp)", t)
		}
		if !slices.Contains(doc.Transports, t) {
			doc.Transports = append(doc.Transports, t)
		}
	}
	if len(doc.Transports) == 0 {
		return nil, fmt.Errorf("acp discovery: no transport")
	}
	for _, cur := range c.Currencies {
		if !isAlpha3(cur) {
			return nil, fmt.Errorf("acp discovery: currency %q is not a three-letter code", cur)
		}
		if cur = strings.ToLower(cur); !slices.Contains(doc.Capabilities.SupportedCurrencies, cur) {
			doc.Capabilities.SupportedCurrencies = append(doc.Capabilities.SupportedCurrencies, cur)
		}
	}
	return json.Marshal(doc)
}
