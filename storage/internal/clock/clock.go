// Package clock is the clock a storage driver judges time by where its
// callers pass none (whether an idempotency record expired, whether a
// claim's lock passed, when a hold was made or a job queued). It is the
// wall clock unless a test sets another: a test that gives the checkout
// engine a fake clock gives the store the same one, or the two disagree
// about every expiry.
package clock

import (
	"sync/atomic"
	"time"
)

// Clock is time.Now until Set. The zero value is ready to use, and a Clock
// is safe for concurrent use: Set may be called while others read it.
type Clock struct {
	now atomic.Pointer[func() time.Time]
}

// Set makes now the clock; nil restores time.Now.
func (c *Clock) Set(now func() time.Time) {
	if now == nil {
		c.now.Store(nil)
		return
	}
	c.now.Store(&now)
}

// Now reads the clock.
func (c *Clock) Now() time.Time {
	if f := c.now.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}
