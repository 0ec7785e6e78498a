package clock

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	var c Clock
	if d := time.Since(c.Now()); d < 0 || d > time.Minute {
		t.Errorf("the zero Clock is %v off the wall clock", d)
	}
	fixed := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	c.Set(func() time.Time { return fixed })
	if !c.Now().Equal(fixed) {
		t.Errorf("Now = %v, want %v", c.Now(), fixed)
	}
	c.Set(nil)
	if c.Now().Equal(fixed) {
		t.Error("Set(nil) kept the fake clock")
	}
}
