// Package syncbuf is a byte buffer safe for concurrent writers, for tests
// that capture logs or a child process's output while it still writes.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes under a lock; its zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
