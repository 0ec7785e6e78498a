package rowcodec

import "github.com/klauspost/compress/s2"

// Outcomes hold a whole session's JSON (~2–3 kB), a copy of what the
// session row holds: compressed they take a third of the space, so fewer
// bytes reach the WAL (and, on a server, the wire and the replicas) per
// commit. A compressed outcome starts with s2Outcome, a byte JSON never
// starts with; shorter outcomes, and rows written before compression, are
// stored as they are. Both drivers store this one format.
const (
	s2Outcome        = 0x01
	compressOutcomes = 256
)

// PackOutcome encodes an idempotency record's outcome for its column.
func PackOutcome(b []byte) []byte {
	if len(b) < compressOutcomes {
		return b
	}
	buf := make([]byte, 1+s2.MaxEncodedLen(len(b)))
	buf[0] = s2Outcome
	return buf[:1+len(s2.Encode(buf[1:], b))]
}

// UnpackOutcome decodes PackOutcome's bytes (and uncompressed ones).
func UnpackOutcome(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != s2Outcome {
		return b, nil
	}
	return s2.Decode(nil, b[1:])
}
