package rowcodec

import (
	"encoding/json"
	"fmt"

	"github.com/acp-bridge/bridge"
)

// EncodeFeedPushState is the state column of a push target: the domain
// type's JSON, read and written whole (one row per target, written once
// per push).
func EncodeFeedPushState(s bridge.FeedPushState) (string, error) {
	if s.Target == "" {
		return "", fmt.Errorf("save feed push state: empty target")
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("save feed push state %s: %w", s.Target, err)
	}
	return string(b), nil
}

// DecodeFeedPushState reads a state column back.
func DecodeFeedPushState(target, raw string) (bridge.FeedPushState, error) {
	var s bridge.FeedPushState
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return bridge.FeedPushState{}, fmt.Errorf("feed push state %s: %w", target, err)
	}
	s.Target = target
	return s, nil
}

// CheckPushedProducts refuses records that cannot be written: no target,
// an empty product id, or one id twice in the same call (the drivers
// write a call as one statement batch, where the second would silently
// win).
func CheckPushedProducts(target string, ps []bridge.PushedProduct) error {
	if target == "" {
		return fmt.Errorf("save pushed products: empty target")
	}
	seen := make(map[string]struct{}, len(ps))
	for i, p := range ps {
		if p.ProductID == "" {
			return fmt.Errorf("save pushed products %s: record %d has no product id", target, i)
		}
		if _, dup := seen[p.ProductID]; dup {
			return fmt.Errorf("save pushed products %s: product %q twice", target, p.ProductID)
		}
		seen[p.ProductID] = struct{}{}
	}
	return nil
}
