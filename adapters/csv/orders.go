package csv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

// orderRecord is one line of the orders file: the order as the bridge sees it
// and when it was made durable here.
type orderRecord struct {
	bridge.Order
	WrittenAt time.Time `json:"written_at"`
}

// orderLog is what the adapter knows of the orders file. The file is the
// truth; ids is a cache of it that is brought up to date under the file lock
// before every decision, so a line appended by an earlier, failed attempt is
// seen and not written twice.
type orderLog struct {
	// mu guards what follows up to the queue; a batch holds it from taking
	// the queue to answering its callers, FindOrder while it reads.
	mu   sync.Mutex
	path string
	// ids holds every order id seen in the file (and, after the file was
	// rotated away, those this process saw before), nil until first use.
	ids map[string]struct{}
	// info, end and lines describe the file as last read: its identity, the
	// offset just past its last complete line, and how many lines that is.
	info      os.FileInfo
	end       int64
	lines     int
	dirSynced bool
	// unsynced is set when a catch-up read lines this process has not
	// fsynced (another process's, or an attempt killed between write and
	// fsync): they may sit only in the page cache until an fsync.
	unsynced bool

	// The group commit's queue (see WriteOrder). qmu guards queue and
	// committing only and is never held while waiting, so callers join the
	// queue while a batch holds mu.
	qmu        sync.Mutex
	queue      []*orderReq
	committing bool // a commitOrders goroutine is draining queue
}

// WriteOrder appends o to the orders file as one JSON line (the bridge.Order
// fields plus "written_at") and returns once the line is on disk (fsync).
// Before that it reserves the order's stock, so Stock stops offering units
// the file has promised away. It does not refuse an order for lack of stock:
// the buyer has paid by now, and the shop must learn of the order either way.
//
// Writing an id already in the file returns the same StoreOrder and changes
// nothing (no second line, no second reservation). An incomplete last line
// left by a crash is removed before appending: that write never returned, so
// its order was never acknowledged and will be retried.
//
// WriteOrder is safe for concurrent use, and concurrent calls share the
// work (group commit): they queue, and one goroutine takes whatever is
// queued, writes the new orders in one append with one fsync, and answers
// every caller (see commitBatch). A caller whose ctx ends while it waits gets
// ctx's error at once; its order may still be written with the batch it is
// in, and a retry then finds it written and returns without writing it
// again.
//
// Across processes it takes an advisory lock (flock) on the file and
// re-reads what others appended, so two processes never interleave lines;
// still, run one bridge process per orders file, since reservations and
// idempotency are only as good as every writer's honouring that lock, and
// file systems such as NFS may not.
func (a *Adapter) WriteOrder(ctx context.Context, o bridge.Order) (bridge.StoreOrder, error) {
	if err := validateOrder(o); err != nil {
		return bridge.StoreOrder{}, err
	}
	if a.orders.path == "" {
		return bridge.StoreOrder{}, errors.New("csv: cannot write orders: no orders file is configured (orders_path)")
	}
	if a.reservations == nil {
		return bridge.StoreOrder{}, errors.New("csv: cannot write orders: no reservation store")
	}
	if err := ctx.Err(); err != nil {
		return bridge.StoreOrder{}, err
	}
	r := &orderReq{ctx: ctx, order: o, done: make(chan struct{})}
	l := &a.orders
	l.qmu.Lock()
	l.queue = append(l.queue, r)
	start := !l.committing
	l.committing = true
	l.qmu.Unlock()
	if start {
		go a.commitOrders()
	}
	select {
	case <-r.done:
		if r.err != nil {
			return bridge.StoreOrder{}, r.err
		}
		return bridge.StoreOrder{StoreID: o.ID}, nil
	case <-ctx.Done():
		// Like any failed write, this says nothing of the order: its batch
		// may still write it (see commitBatch). A retry, or FindOrder,
		// settles which it was.
		return bridge.StoreOrder{}, ctx.Err()
	}
}

// maxOrderBatch bounds the orders of one append (about 100 kB of JSON), so
// one batch's write and reservations stay short for the callers queued
// behind it.
const maxOrderBatch = 128

// orderReq is one WriteOrder call waiting for the batch that writes it.
type orderReq struct {
	ctx   context.Context
	order bridge.Order
	err   error // the answer, set before done is closed
	done  chan struct{}
}

// orderGroup is the requests of one batch for one order id: they make one
// line (the first request's order), and all get its outcome.
type orderGroup struct {
	order bridge.Order
	reqs  []*orderReq
}

// answer tells every request of g the outcome of its order. Called once per
// group.
func (g *orderGroup) answer(err error) {
	for _, r := range g.reqs {
		r.err = err
		close(r.done)
	}
}

// commitOrders writes batches until the queue is empty, then ends. It runs
// only while there are orders to write, so an idle adapter keeps no
// goroutine and needs no Close.
func (a *Adapter) commitOrders() {
	l := &a.orders
	for {
		// mu first, the batch second: whatever queues while FindOrder or
		// the previous batch holds mu joins this batch.
		l.mu.Lock()
		batch := l.take()
		if batch == nil {
			l.mu.Unlock()
			return
		}
		a.commitBatch(groupByID(batch))
		l.mu.Unlock()
	}
}

// take removes up to maxOrderBatch requests from the queue. When it is empty
// it records, under the same lock, that nobody drains it any more, so the
// next WriteOrder starts a new commitOrders.
func (l *orderLog) take() []*orderReq {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	n := min(len(l.queue), maxOrderBatch)
	if n == 0 {
		l.committing = false
		l.queue = nil // let a burst's backing array go
		return nil
	}
	batch := slices.Clone(l.queue[:n])
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	return batch
}

// groupByID gathers a batch's requests by order id, in arrival order. The
// first request's order is the one written, as when the calls come one
// after the other (a second call for a written id changes nothing).
func groupByID(batch []*orderReq) []*orderGroup {
	byID := make(map[string]*orderGroup, len(batch))
	groups := make([]*orderGroup, 0, len(batch))
	for _, r := range batch {
		if g := byID[r.order.ID]; g != nil {
			g.reqs = append(g.reqs, r)
			continue
		}
		g := &orderGroup{order: r.order, reqs: []*orderReq{r}}
		byID[r.order.ID] = g
		groups = append(groups, g)
	}
	return groups
}

// commitBatch writes the orders of groups that are not in the file yet and
// answers every group. It holds l.mu, and under the file lock it does once
// for the whole batch what a single write does: catch up on the file, sync
// lines it did not write, repair a partial last line; then it reserves
// every new order's stock, appends all their lines in one write and fsyncs
// once. Nobody hears success before that fsync; if the write or the fsync
// fails, every order of the append fails with it and its lines are taken
// out again (undoAppend), so each caller's retry writes its order afresh.
func (a *Adapter) commitBatch(groups []*orderGroup) {
	l := &a.orders
	// fail answers every group still in groups (the variable, as it is
	// when fail is called).
	fail := func(err error) {
		for _, g := range groups {
			g.answer(err)
		}
	}
	// Ids only ever join the set, so a known id is written whatever the
	// file looks like now (a script may have taken it away).
	if !l.unsynced {
		groups = l.answerKnown(groups)
	}
	if len(groups) == 0 {
		return
	}
	ctx, stop := waitContext(groups)
	defer stop()

	f, created, unlock, err := a.openLocked(ctx)
	if err != nil {
		fail(err)
		return
	}
	defer f.Close()
	defer unlock()
	// The directory entry must be durable before any order counts as written;
	// once per process covers a file created by a run that crashed before.
	if created || !l.dirSynced {
		if err := a.syncDir(filepath.Dir(l.path)); err != nil {
			fail(fmt.Errorf("csv: sync orders directory: %w", err))
			return
		}
		l.dirSynced = true
	}
	size, err := a.catchUp(f)
	if err != nil {
		fail(err)
		return
	}
	if l.unsynced {
		// Make lines this process did not sync durable before trusting
		// them (FindOrder's catch-up may have read them too).
		if err := a.syncFile(f); err != nil {
			fail(fmt.Errorf("csv: sync orders file: %w", err))
			return
		}
		l.unsynced = false
	}
	groups = l.answerKnown(groups)
	// An order whose callers have all left by now is not written: nothing
	// of it is reserved or appended, and their retry writes it. Every other
	// order is written with the batch from here on, whatever its callers do;
	// one that leaves finds it written on retry.
	groups = slices.DeleteFunc(groups, func(g *orderGroup) bool {
		for _, r := range g.reqs {
			if r.ctx.Err() == nil {
				return false
			}
		}
		g.answer(context.Cause(g.reqs[0].ctx))
		return true
	})
	if len(groups) == 0 {
		return
	}
	if size > l.end {
		// Only the byte count and line number: the partial line holds a
		// buyer's name and address.
		a.log.Warn("csv: orders file ends with an incomplete line from an interrupted write; removing it",
			"path", l.path, "line", l.lines+1, "bytes", size-l.end)
		if err := f.Truncate(l.end); err != nil {
			fail(fmt.Errorf("csv: repair orders file: %w", err))
			return
		}
		if err := a.syncFile(f); err != nil {
			fail(fmt.Errorf("csv: repair orders file: %w", err))
			return
		}
	}

	// Reserve before append: an order whose reservation fails is answered
	// with that error and not written.
	reserveErrs := a.reserve(ctx, groups)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // Encode is json.Marshal plus the newline
	written := groups[:0]
	for i, g := range groups {
		err := reserveErrs[i]
		if err == nil {
			if err = enc.Encode(orderRecord{Order: g.order, WrittenAt: a.now().UTC()}); err != nil {
				err = fmt.Errorf("csv: order %q: encode: %w", g.order.ID, err)
			}
		}
		if err != nil {
			g.answer(err)
			continue
		}
		written = append(written, g)
	}
	groups = written
	if len(groups) == 0 {
		return
	}
	// One write call on an O_APPEND file under the lock (the runtime only
	// splits it on a short write, and nobody else writes meanwhile): the
	// lines land whole at the end or, on a crash, as whole lines plus a
	// partial tail. The catch-up after a crash takes whole lines as written
	// (they were never acknowledged, so their orders are retried and found)
	// and removes the tail.
	if _, err := f.Write(buf.Bytes()); err != nil {
		a.undoAppend(f)
		a.failEach(groups, "append", err)
		return
	}
	if err := a.syncFile(f); err != nil {
		// The lines may sit in the page cache without being durable; take
		// them out so the retries write and sync them again instead of
		// trusting them.
		a.undoAppend(f)
		a.failEach(groups, "sync orders file", err)
		return
	}
	for _, g := range groups {
		l.ids[g.order.ID] = struct{}{}
	}
	l.unsynced = false // the fsync covered the whole file
	l.end += int64(buf.Len())
	l.lines += len(groups)
	if st, err := f.Stat(); err == nil {
		l.info = st
	}
	for _, g := range groups {
		g.answer(nil)
	}
}

// answerKnown answers the groups whose order is in the file already and
// returns the others.
func (l *orderLog) answerKnown(groups []*orderGroup) []*orderGroup {
	return slices.DeleteFunc(groups, func(g *orderGroup) bool {
		if _, ok := l.ids[g.order.ID]; ok {
			g.answer(nil)
			return true
		}
		return false
	})
}

// failEach answers every group with err, naming its own order.
func (a *Adapter) failEach(groups []*orderGroup, what string, err error) {
	for _, g := range groups {
		g.answer(fmt.Errorf("csv: order %q: %s: %w", g.order.ID, what, err))
	}
}

// reserve holds the stock of every group's order and returns each one's
// error. The reservations run concurrently, not one after the other: the
// reservation store batches concurrent writes itself (SQLite's group commit),
// so a batch of orders costs it about one commit instead of one each.
//
// A reservation whose append then fails stays: the caller retries the same
// order (Reserve is idempotent by id) or releases it on cancel, and holding
// stock a moment too long is the safe side of overselling.
func (a *Adapter) reserve(ctx context.Context, groups []*orderGroup) []error {
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			res := make([]bridge.Reservation, len(g.order.Lines))
			for j, ln := range g.order.Lines {
				res[j] = bridge.Reservation{VariantID: ln.VariantID, Quantity: ln.Quantity}
			}
			if err := a.reservations.Reserve(ctx, g.order.ID, res); err != nil {
				errs[i] = fmt.Errorf("csv: order %q: reserve stock: %w", g.order.ID, err)
			}
		})
	}
	wg.Wait()
	return errs
}

// waitContext returns the context of a batch's waits (the file lock, the
// reservations): it ends once every caller of groups has stopped waiting,
// and not before, since one caller's deadline must not fail the orders of
// the others. It carries none of the callers' values.
func waitContext(groups []*orderGroup) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var waiting atomic.Int64
	for _, g := range groups {
		waiting.Add(int64(len(g.reqs)))
	}
	var stops []func() bool
	for _, g := range groups {
		for _, r := range g.reqs {
			stops = append(stops, context.AfterFunc(r.ctx, func() {
				if waiting.Add(-1) == 0 {
					cancel()
				}
			}))
		}
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// openLocked opens the orders file and takes its write lock, making sure the
// locked file is still the one at the path: a script that takes the file away
// (lock, rename, process) may have renamed it while we waited for the lock,
// and an order appended to the renamed file would be lost to the script.
func (a *Adapter) openLocked(ctx context.Context) (f *os.File, created bool, unlock func(), err error) {
	for attempt := 0; ; attempt++ {
		f, created, err = openOrders(a.orders.path)
		if err != nil {
			return nil, false, nil, fmt.Errorf("csv: open orders file: %w", err)
		}
		unlock, err = lockFile(ctx, f, true)
		if err != nil {
			f.Close()
			return nil, false, nil, fmt.Errorf("csv: lock orders file %s: %w", a.orders.path, err)
		}
		held, herr := f.Stat()
		now, perr := os.Stat(a.orders.path)
		if herr == nil && perr == nil && os.SameFile(held, now) {
			return f, created, unlock, nil
		}
		unlock()
		f.Close()
		if attempt == 4 {
			return nil, false, nil, fmt.Errorf("csv: orders file %s keeps being replaced while we lock it", a.orders.path)
		}
	}
}

// undoAppend cuts the file back to its last known complete line after a
// failed append. Best effort: if it fails too, the next write's catch-up
// either finds the whole line (and treats the order as written) or a partial
// one (and removes it).
func (a *Adapter) undoAppend(f *os.File) {
	if err := f.Truncate(a.orders.end); err != nil {
		a.log.Warn("csv: could not remove a failed order line", "path", a.orders.path, "error", err)
		return
	}
	_ = a.syncFile(f)
}

// FindOrder returns the StoreOrder of an order in the orders file, or an error
// wrapping bridge.ErrNotFound.
func (a *Adapter) FindOrder(ctx context.Context, orderID string) (bridge.StoreOrder, error) {
	if orderID == "" {
		return bridge.StoreOrder{}, fmt.Errorf("csv: find order: empty id: %w", bridge.ErrNotFound)
	}
	if a.orders.path == "" {
		return bridge.StoreOrder{}, errors.New("csv: cannot find orders: no orders file is configured (orders_path)")
	}
	l := &a.orders
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return bridge.StoreOrder{}, err
	}
	f, err := os.Open(l.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Nothing written yet (or the file was taken away for processing).
	case err != nil:
		return bridge.StoreOrder{}, fmt.Errorf("csv: open orders file: %w", err)
	default:
		defer f.Close()
		unlock, err := lockFile(ctx, f, false)
		if err != nil {
			return bridge.StoreOrder{}, fmt.Errorf("csv: lock orders file %s: %w", l.path, err)
		}
		defer unlock()
		if _, err := a.catchUp(f); err != nil {
			return bridge.StoreOrder{}, err
		}
		if _, ok := l.ids[orderID]; ok && l.unsynced {
			// The line may sit only in the page cache (a writer killed
			// between write and fsync): make it durable before calling the
			// order written, or a power cut could take a paid order away.
			if err := a.syncFile(f); err != nil {
				return bridge.StoreOrder{}, fmt.Errorf("csv: sync orders file: %w", err)
			}
			l.unsynced = false
		}
	}
	if _, ok := l.ids[orderID]; ok {
		return bridge.StoreOrder{StoreID: orderID}, nil
	}
	return bridge.StoreOrder{}, fmt.Errorf("csv: order %q: %w", orderID, bridge.ErrNotFound)
}

// catchUp reads the complete lines appended to f since the last read into
// the id set and returns f's size. A file that was replaced or cut short is
// read again from the start; ids seen before stay known, so an order that a
// script has already taken away is still not written twice by this process.
func (a *Adapter) catchUp(f *os.File) (int64, error) {
	l := &a.orders
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("csv: stat orders file: %w", err)
	}
	size := st.Size()
	switch {
	case l.ids == nil:
		l.ids = make(map[string]struct{})
		l.end, l.lines = 0, 0
	case l.info != nil && (!os.SameFile(l.info, st) || size < l.end):
		a.log.Warn("csv: orders file was replaced or truncated by someone else; reading it again",
			"path", l.path)
		l.end, l.lines = 0, 0
	}
	l.info = st
	if size <= l.end {
		return size, nil
	}
	l.unsynced = true // new complete lines may follow; see orderLog.unsynced
	r := bufio.NewReaderSize(io.NewSectionReader(f, l.end, size-l.end), 64<<10)
	var long []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		if err == io.EOF {
			// Bytes without a newline are an unfinished write: not an order.
			return size, nil
		}
		if err != nil {
			return 0, fmt.Errorf("csv: read orders file: %w", err)
		}
		line := chunk
		if len(long) > 0 {
			long = append(long, chunk...)
			line, long = long, long[:0]
		}
		l.end += int64(len(line))
		l.lines++
		a.noteOrderLine(line, l.lines)
	}
}

func (a *Adapter) noteOrderLine(line []byte, n int) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	var rec struct {
		ID string `json:"id"`
	}
	reason := ""
	if err := json.Unmarshal(line, &rec); err != nil {
		reason = "not a JSON object"
	} else if rec.ID == "" {
		reason = "no order id"
	}
	if reason != "" {
		// Line number and reason only: the line holds buyer details.
		a.log.Warn("csv: skipping unreadable line in orders file", "path", a.orders.path, "line", n, "reason", reason)
		return
	}
	a.orders.ids[rec.ID] = struct{}{}
}

// openOrders opens the orders file for appending, creating it (readable by
// the owner only: it holds buyers' addresses) when missing.
func openOrders(path string) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, false, err
	}
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		return f, false, err
	}
	return f, err == nil, err
}

func validateOrder(o bridge.Order) error {
	if strings.TrimSpace(o.ID) == "" {
		return errors.New("csv: order has no id")
	}
	if len(o.Lines) == 0 {
		return fmt.Errorf("csv: order %q has no lines", o.ID)
	}
	for i, ln := range o.Lines {
		if strings.TrimSpace(ln.VariantID) == "" {
			return fmt.Errorf("csv: order %q line %d has no variant id", o.ID, i+1)
		}
		if ln.Quantity <= 0 {
			return fmt.Errorf("csv: order %q line %d (variant %q): quantity is %d, want 1 or more", o.ID, i+1, ln.VariantID, ln.Quantity)
		}
	}
	return nil
}
