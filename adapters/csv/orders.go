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
	"strings"
	"sync"
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
// WriteOrder is safe for concurrent use. Across processes it takes an
// advisory lock (flock) on the file and re-reads what others appended, so two
// processes never interleave lines; still, run one bridge process per orders
// file, since reservations and idempotency are only as good as every writer's
// honouring that lock, and file systems such as NFS may not.
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
	l := &a.orders
	l.mu.Lock()
	defer l.mu.Unlock()
	// Ids only ever join the set, so a known id is written whatever the file
	// looks like now (a script may have taken it away).
	if _, ok := l.ids[o.ID]; ok && !l.unsynced {
		return bridge.StoreOrder{StoreID: o.ID}, nil
	}
	if err := ctx.Err(); err != nil {
		return bridge.StoreOrder{}, err
	}

	f, created, unlock, err := a.openLocked(ctx)
	if err != nil {
		return bridge.StoreOrder{}, err
	}
	defer f.Close()
	defer unlock()
	// The directory entry must be durable before any order counts as written;
	// once per process covers a file created by a run that crashed before.
	if created || !l.dirSynced {
		if err := a.syncDir(filepath.Dir(l.path)); err != nil {
			return bridge.StoreOrder{}, fmt.Errorf("csv: sync orders directory: %w", err)
		}
		l.dirSynced = true
	}
	size, err := a.catchUp(f)
	if err != nil {
		return bridge.StoreOrder{}, err
	}
	if l.unsynced {
		// Make lines this process did not sync durable before trusting
		// them (FindOrder's catch-up may have read them too).
		if err := a.syncFile(f); err != nil {
			return bridge.StoreOrder{}, fmt.Errorf("csv: sync orders file: %w", err)
		}
		l.unsynced = false
	}
	if _, ok := l.ids[o.ID]; ok {
		return bridge.StoreOrder{StoreID: o.ID}, nil
	}
	if size > l.end {
		// Only the byte count and line number: the partial line holds a
		// buyer's name and address.
		a.log.Warn("csv: orders file ends with an incomplete line from an interrupted write; removing it",
			"path", l.path, "line", l.lines+1, "bytes", size-l.end)
		if err := f.Truncate(l.end); err != nil {
			return bridge.StoreOrder{}, fmt.Errorf("csv: repair orders file: %w", err)
		}
		if err := a.syncFile(f); err != nil {
			return bridge.StoreOrder{}, fmt.Errorf("csv: repair orders file: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return bridge.StoreOrder{}, err
	}

	res := make([]bridge.Reservation, len(o.Lines))
	for i, ln := range o.Lines {
		res[i] = bridge.Reservation{VariantID: ln.VariantID, Quantity: ln.Quantity}
	}
	// A reservation whose append then fails stays: the caller retries the
	// same order (Reserve is idempotent by id) or releases it on cancel, and
	// holding stock a moment too long is the safe side of overselling.
	if err := a.reservations.Reserve(ctx, o.ID, res); err != nil {
		return bridge.StoreOrder{}, fmt.Errorf("csv: order %q: reserve stock: %w", o.ID, err)
	}

	buf, err := json.Marshal(orderRecord{Order: o, WrittenAt: a.now().UTC()})
	if err != nil {
		return bridge.StoreOrder{}, fmt.Errorf("csv: order %q: encode: %w", o.ID, err)
	}
	buf = append(buf, '\n')
	// One write call on an O_APPEND file under the lock: the line lands whole
	// at the end or, on a crash, as a partial tail the next write removes.
	if _, err := f.Write(buf); err != nil {
		a.undoAppend(f)
		return bridge.StoreOrder{}, fmt.Errorf("csv: order %q: append: %w", o.ID, err)
	}
	if err := a.syncFile(f); err != nil {
		// The line may sit in the page cache without being durable; take it
		// out so a retry writes and syncs it again instead of trusting it.
		a.undoAppend(f)
		return bridge.StoreOrder{}, fmt.Errorf("csv: order %q: sync orders file: %w", o.ID, err)
	}
	l.ids[o.ID] = struct{}{}
	l.unsynced = false // the fsync covered the whole file
	l.end += int64(len(buf))
	l.lines++
	if st, err := f.Stat(); err == nil {
		l.info = st
	}
	return bridge.StoreOrder{StoreID: o.ID}, nil
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
