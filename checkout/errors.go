package checkout

import "fmt"

// Kind classifies an engine error; the front doors turn it into a status
// code and the protocol's error type.
type Kind string

// Error kinds.
const (
	// KindInvalid: the request cannot be processed as sent (400).
	KindInvalid Kind = "invalid"
	// KindNotFound: no such session for this caller (404).
	KindNotFound Kind = "not_found"
	// KindNotAllowed: the session's state forbids the operation (405 on
	// cancel, as ACP says; 409 elsewhere).
	KindNotAllowed Kind = "not_allowed"
	// KindIdemConflict: the key was used with another body (422 from
	// 2026-04-17, 409 before).
	KindIdemConflict Kind = "idempotency_conflict"
	// KindInFlight: the key's first request is still running (409 +
	// Retry-After).
	KindInFlight Kind = "idempotency_in_flight"
	// KindConflict: another request changed the session at the same time
	// (409); retrying is safe.
	KindConflict Kind = "conflict"
	// KindUnavailable: a dependency failed; retry later (503, never stored).
	KindUnavailable Kind = "unavailable"
	// KindInternal: a bug or a storage failure (500, never stored).
	KindInternal Kind = "internal"
)

// Error is an engine error for the caller. Code is the protocol code
// ("requires_3ds", "session_not_open"…), Param an RFC 9535 JSONPath into the
// canonical request.
type Error struct {
	Kind    Kind   `json:"kind"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s/%s: %s", e.Kind, e.Code, e.Message) }

// Stored reports whether an idempotent request that failed this way is
// answered the same on a retry. Server-side failures are not: a retry is a
// fresh attempt.
func (e *Error) Stored() bool {
	switch e.Kind {
	case KindUnavailable, KindInternal, KindInFlight, KindConflict, KindIdemConflict:
		return false
	}
	return true
}

func errorf(k Kind, code, param, format string, a ...any) *Error {
	return &Error{Kind: k, Code: code, Param: param, Message: fmt.Sprintf(format, a...)}
}
