package catalogwriter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// writer is a driver's writer reduced to what Life sees of it.
type writer struct {
	life  Life
	ends  []bool // the committed argument of each end
	began bool
}

func begin(t *testing.T, ctx context.Context, set *Set, fail error) (*writer, error) {
	t.Helper()
	w := &writer{}
	err := w.life.Begin(ctx, "drv", set, func() error { w.began = true; return fail },
		func(committed bool) { w.ends = append(w.ends, committed) })
	return w, err
}

func wantEnds(t *testing.T, w *writer, want ...bool) {
	t.Helper()
	if !slices.Equal(w.ends, want) {
		t.Errorf("end called with %v, want %v", w.ends, want)
	}
}

func TestCommitEnds(t *testing.T) {
	var set Set
	w, err := begin(t, t.Context(), &set, nil)
	if err != nil || !w.began {
		t.Fatal(err)
	}
	if err := w.life.Do(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := w.life.Commit(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	wantEnds(t, w, true)
	w.life.Rollback() // after Commit: nothing
	if err := w.life.Do(func() error { return nil }); err == nil || err.Error() != "drv: catalog writer already committed" {
		t.Errorf("Do after Commit: %v", err)
	}
	wantEnds(t, w, true)
	if len(set.open) != 0 {
		t.Errorf("%d writers still open", len(set.open))
	}
}

// A refused call ends the writer, which then says why.
func TestFailureEnds(t *testing.T) {
	var set Set
	w, _ := begin(t, t.Context(), &set, nil)
	refused := errors.New("duplicate id")
	if err := w.life.Do(func() error { return refused }); err != refused {
		t.Errorf("Do = %v, want the refusal as it is", err)
	}
	wantEnds(t, w, false)
	if err := w.life.Commit(func() error { t.Error("ran after the writer ended"); return nil }); !errors.Is(err, refused) ||
		!strings.HasPrefix(err.Error(), "drv: catalog writer is finished: ") {
		t.Errorf("Commit after a refusal: %v", err)
	}
	wantEnds(t, w, false)
}

// A writer whose context ends is abandoned, even before the AfterFunc
// runs; Close abandons the open writers and refuses new ones.
func TestAbandon(t *testing.T) {
	var set Set
	ctx, cancel := context.WithCancel(t.Context())
	w, _ := begin(t, ctx, &set, nil)
	cancel()
	if err := w.life.Commit(func() error { return nil }); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Commit after its context ended: %v", err)
	}
	wantEnds(t, w, false)

	open, _ := begin(t, t.Context(), &set, nil)
	set.Close("drv")
	wantEnds(t, open, false)
	if err := open.life.Do(func() error { return nil }); err == nil || !strings.Contains(err.Error(), "drv: database closed") {
		t.Errorf("Do after Close: %v", err)
	}
	late, err := begin(t, t.Context(), &set, nil)
	if err == nil || err.Error() != "drv: begin catalog: database closed" || late.began {
		t.Errorf("Begin after Close: %v (began %v)", err, late.began)
	}
	wantEnds(t, late, false)
}

func TestBeginFails(t *testing.T) {
	var set Set
	w, err := begin(t, t.Context(), &set, errors.New("no connection"))
	if err == nil || err.Error() != "drv: begin catalog: no connection" {
		t.Errorf("Begin = %v", err)
	}
	wantEnds(t, w, false)
	if len(set.open) != 0 {
		t.Error("a writer that failed to begin is still open")
	}
}
