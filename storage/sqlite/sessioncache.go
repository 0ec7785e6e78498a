package sqlite

import (
	"bytes"
	"slices"

	"github.com/acp-bridge/bridge"
)

// Decoding a session's JSON body (~2 kB) costs ~20 µs, two thirds of a
// Session read. Decoded sessions are therefore kept by id together with the
// body they came from, and a read uses the decoded copy only when the body
// it just read from the database is byte for byte the same:
//
//   - The database stays the only truth: nothing is invalidated, another
//     process writing the file changes the body and so misses the cache, a
//     purged session is not found by the query whatever the cache holds.
//   - Reads fill the cache (GET of an unchanged session then skips the
//     decoding), and so do Commits: a change's session is stored with the
//     body it was committed as, so the read that starts the next request
//     on it (update after create, complete after update) skips the
//     decoding too. A committed session is cached only when decoding its
//     body would give exactly that session back (cacheableSession): JSON
//     turns an empty omitempty slice into nil and invalid UTF-8 into
//     U+FFFD, and such a session is left to the next read to decode.
//   - At most sessionCacheSize sessions (~5 kB each with their body), CLOCK
//     eviction. Callers get deep copies (cloneSession), which they may
//     change.
const sessionCacheSize = 2048

type cachedSession struct {
	body    []byte
	session bridge.Session
}

type sessionCache = clockCache[*cachedSession]

func newSessionCache(size int) *sessionCache { return newClockCache[*cachedSession](size) }

// lookup returns a copy of the session cached for id if it was decoded from
// body.
func lookupSession(c *sessionCache, id string, body []byte) (bridge.Session, bool) {
	cs, ok, _ := c.get(id)
	if !ok || !bytes.Equal(cs.body, body) {
		return bridge.Session{}, false
	}
	return cloneSession(cs.session), true
}

// cacheableSession reports whether decoding body, the JSON encoding of a
// session, gives that session back exactly (reflect.DeepEqual), so that it
// may stand for body in the cache. The case where it does not: a string
// that is not valid UTF-8, whose
// bad bytes the encoder wrote as the escape \ufffd (a valid U+FFFD is
// written as is, so the escape in body means a bad byte, or the text
// "\ufffd" itself, which is merely not cached). Times must be in UTC, as
// Session.UTC leaves them. A session has no omitempty slice (an empty one
// would decode as nil); TestCacheableSessionCoversFields keeps it so.
func cacheableSession(body []byte) bool {
	return !bytes.Contains(body, []byte(`\ufffd`))
}

// cloneSession returns a copy of s that shares no memory that can be
// changed with it (strings are immutable).
func cloneSession(s bridge.Session) bridge.Session {
	if s.Lines != nil {
		lines := slices.Clone(s.Lines)
		n := 0
		for i := range lines {
			if lines[i].Available != nil {
				n++
			}
		}
		avail := make([]int64, 0, n)
		for i := range lines {
			if p := lines[i].Available; p != nil {
				avail = append(avail, *p)
				lines[i].Available = &avail[len(avail)-1]
			}
		}
		s.Lines = lines
	}
	s.Buyer = clonePtr(s.Buyer)
	s.ShipTo = clonePtr(s.ShipTo)
	s.Contact = clonePtr(s.Contact)
	s.Options = slices.Clone(s.Options)
	s.Messages = slices.Clone(s.Messages)
	s.Links = slices.Clone(s.Links)
	s.Interventions = slices.Clone(s.Interventions)
	s.Auth = clonePtr(s.Auth)
	s.Order = clonePtr(s.Order)
	s.Pending = clonePtr(s.Pending)
	return s
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
