package rowcodec

import (
	"encoding/json"

	"github.com/acp-bridge/bridge"
)

// EncodeCatalogInfo is a snapshot's description as stored, SyncedAt in
// UTC.
func EncodeCatalogInfo(info bridge.CatalogInfo) ([]byte, error) {
	info.SyncedAt = info.SyncedAt.UTC()
	return json.Marshal(info)
}

// DecodeCatalogInfo reads EncodeCatalogInfo's bytes, SyncedAt in UTC.
func DecodeCatalogInfo(data []byte) (bridge.CatalogInfo, error) {
	var info bridge.CatalogInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return bridge.CatalogInfo{}, err
	}
	info.SyncedAt = info.SyncedAt.UTC()
	return info, nil
}
