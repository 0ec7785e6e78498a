package csv

import (
	"bytes"
	"context"
	"encoding/binary"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	bridge "github.com/acp-bridge/bridge"
)

// Columns of the order status file, matched by header name (trimmed,
// case-insensitive). The index is the column's place in statusRow cells and
// in the row key, so it must never be reordered: keys would change and rows
// returned before would be returned again.
const (
	colOrderID = iota
	colStatus
	colFulfillmentID
	colCarrier
	colTrackingNumber
	colTrackingURL
	colReason
	colAt
	numStatusCols
)

var statusColumns = [numStatusCols]string{
	colOrderID:        "order_id",
	colStatus:         "status",
	colFulfillmentID:  "fulfillment_id",
	colCarrier:        "carrier",
	colTrackingNumber: "tracking_number",
	colTrackingURL:    "tracking_url",
	colReason:         "reason",
	colAt:             "at",
}

// DefaultFulfillmentID is the fulfillment of a status row without a
// fulfillment_id: every row of an order then describes the same, single
// shipment.
const DefaultFulfillmentID = "ful_1"

// statusMapping is what one status word of the file means: the order's new
// status and, for the words that describe a parcel on its way, the status of
// the order's fulfillment.
type statusMapping struct{ order, fulfillment string }

// statusWords are the statuses the file may give, after normalization (lower
// case, spaces and hyphens as underscores: shops type "Out for delivery").
// Shipment steps keep the order "shipped" and carry the detail on the
// fulfillment, which is where ACP puts it; "delivered" completes the order.
var statusWords = map[string]statusMapping{
	"confirmed":        {bridge.OrderConfirmed, ""},
	"processing":       {bridge.OrderProcessing, ""},
	"shipped":          {bridge.OrderShipped, "shipped"},
	"in_transit":       {bridge.OrderShipped, "in_transit"},
	"out_for_delivery": {bridge.OrderShipped, "out_for_delivery"},
	"delivered":        {bridge.OrderCompleted, "delivered"},
	"completed":        {bridge.OrderCompleted, ""},
	"canceled":         {bridge.OrderCanceled, ""},
	"cancelled":        {bridge.OrderCanceled, ""}, // British spelling, common in shop software
}

// statusSpelling turns "Out for delivery" and "in-transit" into the words
// of statusWords.
var statusSpelling = strings.NewReplacer(" ", "_", "-", "_")

const statusList = "confirmed, processing, shipped, in_transit, out_for_delivery, delivered, completed, canceled"

// Limits on cell values. Ids and tracking details end up in the agent's
// webhooks and on the order page; a value far beyond these is a misaligned
// column (a whole address in the carrier cell), not data.
const (
	maxStatusID     = 200
	maxCarrier      = 100
	maxTracking     = 100
	maxTrackingURL  = 2048
	maxReasonRunes  = 500
	statusRacyAfter = 2 * time.Second // longest mtime granularity in use (FAT: 2s)
	// statusSettle is how long the file must have been left alone before a
	// last line without a newline counts as complete: some exporters never
	// end the file with one, and their last row must not wait forever for
	// the next one.
	statusSettle = time.Minute
)

// errStatusChanged reports that the status file changed while it was read,
// so what was read may mix two versions.
var errStatusChanged = errors.New("the file changed while it was being read")

// statusFile is what the adapter remembers of the order status file between
// polls, so an unchanged file costs one stat and a changed one returns only
// rows not returned before.
type statusFile struct {
	mu   sync.Mutex
	path string
	// info is the file as last read in full; nil before the first read,
	// after a failed one and while the file is missing. recheck is set when
	// that read cannot be the last word on that version of the file: its
	// modification time was so recent that a later write in the same clock
	// tick would not change it, or its unfinished last line was left out.
	info    os.FileInfo
	recheck bool
	// seen holds a 128-bit hash of every row this process has returned or
	// warned about. It only grows (some 20–40 bytes per distinct row), so a
	// row that disappears from the file during a rewrite and comes back is
	// still not returned twice.
	seen map[rowKey]struct{}
	keys keyer
	// reads counts full reads of the file (tests check polls stay cheap).
	reads int
}

// OrderUpdates reads the shop's order status file (Options.OrderStatusPath)
// and returns the updates in rows this process has not returned before, in
// file order. It implements bridge.OrderUpdateSource: after a restart every
// row is returned again, and the caller applies updates idempotently.
//
// The file is a CSV with a header row, in the catalog's delimiter (a UTF-8
// byte order mark is fine). Columns are found by header name, in any order
// and letter case; other columns are ignored:
//
//   - order_id (required): the bridge's order id. Ids the bridge does not know
//     are returned too; the caller decides.
//   - status (required): confirmed, processing, shipped, in_transit,
//     out_for_delivery, delivered, completed or canceled. shipped, in_transit
//     and out_for_delivery make the order "shipped" and set the fulfillment's
//     status to the word; delivered makes the order "completed" with a
//     "delivered" fulfillment; the others set the order's status and carry no
//     fulfillment.
//   - fulfillment_id: which shipment of the order the row is about (default
//     DefaultFulfillmentID, one shipment per order). Give each parcel its own
//     id (the tracking number will do) to report several.
//   - carrier, tracking_number, tracking_url (http or https): the shipment's
//     details. Cells left empty keep what earlier rows of the same shipment
//     in the file said, except that a new tracking number drops an old URL.
//   - reason: why, in words (shown to the buyer; a cancellation's reason).
//   - at: when, as an RFC 3339 time or a date (YYYY-MM-DD, midnight UTC);
//     default: the file's modification time.
//
// A row that cannot be used (no order id, an unknown status, a bad date, a
// wrong number of fields) is skipped and logged with its line number and the
// reason, never its contents beyond the order id; a tracking URL that is not
// http(s), or a carrier or tracking number too long to be one, is left out of
// an otherwise good row, with a warning. Each is logged once per process.
// Repeated rows are returned once.
//
// A missing file is not an error: there is no news yet. The shop may rewrite
// the file at any time: it is read under a shared flock (a shop that takes an
// exclusive one while writing is never read half-way), a last line without a
// newline is left for the next poll unless the file has been left alone for
// a minute, and a read that sees the file change under it is retried. An
// unchanged file (same file, size and modification time) is not read again.
//
// An error means the file could not be read (a header without order_id or
// status, an I/O error); it is returned on every poll until fixed.
// OrderUpdates is safe for concurrent use.
func (a *Adapter) OrderUpdates(ctx context.Context) ([]bridge.OrderUpdate, error) {
	s := &a.status
	if s.path == "" {
		// Not configured: no news, ever. The caller need not poll.
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.info = nil // a file that comes back is read, whatever its stat
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("csv: order status file: %w", err)
	}
	if s.info != nil && !s.recheck && os.SameFile(s.info, st) &&
		s.info.Size() == st.Size() && s.info.ModTime().Equal(st.ModTime()) {
		return nil, nil
	}
	s.info = nil
	// A shop rewriting the file in place without a lock can change it under
	// the read; reading again right away usually finds it whole.
	for attempt := 1; ; attempt++ {
		ups, err := a.readStatusFile(ctx)
		if !errors.Is(err, errStatusChanged) {
			return ups, err
		}
		if attempt == 3 {
			// The next poll tries again; nothing was marked as returned.
			a.log.Warn("csv: order status file keeps changing while it is read; trying again at the next poll",
				"path", s.path)
			return nil, nil
		}
	}
}

// readStatusFile reads the status file once and, when the read saw one whole
// version of it, marks its rows as seen and returns the new ones.
func (a *Adapter) readStatusFile(ctx context.Context) ([]bridge.OrderUpdate, error) {
	s := &a.status
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed since the stat
	}
	if err != nil {
		return nil, fmt.Errorf("csv: open order status file: %w", err)
	}
	defer f.Close()
	unlock, err := lockFile(ctx, f, false)
	if err != nil {
		return nil, fmt.Errorf("csv: lock order status file %s: %w", s.path, err)
	}
	defer unlock()
	before, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("csv: stat order status file: %w", err)
	}
	now := a.now()
	modTime := before.ModTime()
	s.reads++

	type warning struct {
		line    int
		orderID string
		skipped bool
		note    string
	}
	var (
		ups      []bridge.OrderUpdate
		warnings []warning
		// Rows are marked seen only once the read proved whole: a read
		// that is retried or fails must not swallow them.
		fresh = make(map[rowKey]struct{})
	)
	tail, err := readStatus(ctx, f, before.Size(), !modTime.After(now.Add(-statusSettle)), a.opts.Delimiter, modTime, s.keys,
		func(r statusRow) {
			if _, ok := s.seen[r.key]; ok {
				return
			}
			if _, ok := fresh[r.key]; ok {
				return
			}
			fresh[r.key] = struct{}{}
			for _, note := range r.notes {
				warnings = append(warnings, warning{line: r.line, orderID: r.orderID, skipped: r.update == nil, note: note})
			}
			if r.update != nil {
				ups = append(ups, *r.update)
			}
		})
	if err != nil {
		if errors.Is(err, errStatusChanged) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("csv: order status file %s: %w", s.path, err)
	}
	after, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("csv: stat order status file: %w", err)
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(modTime) {
		return nil, errStatusChanged
	}

	if s.seen == nil {
		s.seen = make(map[rowKey]struct{}, len(fresh))
	}
	for k := range fresh {
		s.seen[k] = struct{}{}
	}
	s.info = before
	s.recheck = tail > 0 || modTime.After(now.Add(-statusRacyAfter))
	for _, w := range warnings {
		args := []any{"path", s.path, "line", w.line}
		if w.orderID != "" {
			args = append(args, "order_id", w.orderID)
		}
		args = append(args, "reason", w.note)
		if w.skipped {
			a.log.Warn("csv: skipping a row of the order status file", args...)
		} else {
			a.log.Warn("csv: order status file: leaving a value out of a row", args...)
		}
	}
	if tail > 0 {
		// Only the size: the unfinished line may hold anything.
		a.log.Debug("csv: order status file ends with an unfinished line; reading it once it is complete",
			"path", s.path, "bytes", tail)
	}
	return ups, nil
}

// statusRow is one row of the status file as read.
type statusRow struct {
	line int
	// key identifies the row's content, whatever its line: the cells of the
	// known columns, so reordered columns or a changed unrelated column
	// (a customer's name) do not make a row new.
	key rowKey
	// orderID is the row's order id when it is a valid one: safe to log.
	orderID string
	// update is the row's news; nil for a row that is skipped.
	update *bridge.OrderUpdate
	// notes say why the row is skipped or which values were left out.
	notes []string
}

// readStatus parses the complete lines of one version of a status file of
// size bytes and calls each for every data row (good or bad) and syntax
// error, in file order. A last line without a newline is left out unless
// settled, and its length returned. An error means the file as a whole is
// unusable (no usable header, unreadable) or errStatusChanged when it turned
// out shorter than size.
func readStatus(ctx context.Context, f io.ReaderAt, size int64, settled bool, delim rune, modTime time.Time, keys keyer, each func(statusRow)) (tail int64, err error) {
	end := size
	if !settled {
		if end, err = completeLines(f, size); err != nil {
			return 0, err
		}
	}
	cr := &countingReader{r: io.NewSectionReader(f, 0, end)}
	if err := parseStatus(ctx, cr, delim, modTime, keys, each); err != nil {
		return 0, err
	}
	if cr.n != end {
		// The file was cut short under the read (rewritten in place): the
		// last row read may be a fragment of a longer one.
		return 0, errStatusChanged
	}
	return size - end, nil
}

// completeLines returns the offset just past the last newline among the
// first size bytes of f, reading backwards from the end: only the unfinished
// tail is read twice.
func completeLines(f io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 4<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		n, err := f.ReadAt(b, start)
		if n < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				return 0, errStatusChanged
			}
			return 0, fmt.Errorf("read: %w", err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// parseStatus reads the header and calls each for every row after it. The
// shipments the rows describe are followed through the file, so a
// "delivered" row keeps the tracking number its "shipped" row gave.
func parseStatus(ctx context.Context, r io.Reader, delim rune, modTime time.Time, keys keyer, each func(statusRow)) error {
	cr := newCSVReader(r, delim)

	hdr, err := cr.Read()
	if err == io.EOF {
		return nil // empty, or a header still being written: no news yet
	}
	if err != nil {
		var pe *stdcsv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("header row: %s", parseMessage(pe))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read: %w", err)
	}
	h, err := statusHeader(hdr)
	if err != nil {
		return err
	}
	p := statusParser{
		keys:    keys,
		modTime: modTime.UTC(),
		delim:   delim,
		width:   len(hdr),
		cols:    h,
		fuls:    make(map[string]bridge.Fulfillment),
	}
	for n := 1; ; n++ {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			return ctx.Err()
		}
		if err != nil {
			var pe *stdcsv.ParseError
			if errors.As(err, &pe) {
				// encoding/csv resumes at the next line; the error's place
				// is its key, since the broken text is not at hand.
				msg := parseMessage(pe)
				each(statusRow{
					line:  pe.StartLine,
					key:   keys.key('s', fmt.Sprint(pe.StartLine, pe.Line, pe.Column), pe.Err.Error()),
					notes: []string{strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", pe.StartLine))},
				})
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if row, ok := p.row(line, rec); ok {
			each(row)
		}
	}
}

// statusHeader finds the known columns in the header row: their indexes, -1
// for an absent one.
func statusHeader(rec []string) ([numStatusCols]int, error) {
	var idx [numStatusCols]int
	for i := range idx {
		idx[i] = -1
	}
	for i, name := range rec {
		name = strings.ToLower(strings.TrimSpace(name))
		for c, want := range statusColumns {
			if name != want {
				continue
			}
			if idx[c] >= 0 {
				return idx, fmt.Errorf("header names column %q twice (columns %d and %d); each column needs its own name", want, idx[c]+1, i+1)
			}
			idx[c] = i
		}
	}
	var missing []string
	for _, c := range []int{colOrderID, colStatus} {
		if idx[c] < 0 {
			missing = append(missing, fmt.Sprintf("%q", statusColumns[c]))
		}
	}
	if len(missing) > 0 {
		return idx, fmt.Errorf("header has no column %s; it has %s (check the delimiter)", strings.Join(missing, " or "), quoteList(rec, 30))
	}
	return idx, nil
}

// statusParser turns rows into updates.
type statusParser struct {
	keys    keyer
	modTime time.Time
	delim   rune
	width   int // fields in the header
	cols    [numStatusCols]int
	// fuls is each shipment as the rows so far describe it, by order id and
	// fulfillment id.
	fuls map[string]bridge.Fulfillment
}

// row reads one record; ok is false for a blank row, which is no news and
// no problem (spreadsheets leave rows of bare delimiters at the end).
func (p *statusParser) row(line int, rec []string) (row statusRow, ok bool) {
	if allEmpty(rec) {
		return statusRow{}, false
	}
	row.line = line
	if len(rec) != p.width {
		// The cells are not where the header says, so none is safe to
		// log, not even the one in the order id's place.
		row.key = p.keys.key('n', rec...)
		row.notes = []string{fmt.Sprintf("%d fields, header has %d; a value containing %s must be in double quotes",
			len(rec), p.width, delimName(p.delim))}
		return row, true
	}
	var cells [numStatusCols]string
	for c, i := range p.cols {
		if i < 0 {
			continue
		}
		if !utf8.ValidString(rec[i]) {
			row.key = p.keys.key('u', rec...)
			row.notes = []string{fmt.Sprintf("column %q is not valid UTF-8 text; save the file with UTF-8 encoding", statusColumns[c])}
			return row, true
		}
		cells[c] = strings.TrimSpace(rec[i])
	}
	row.key = p.keys.key('r', cells[:]...)

	orderID := cells[colOrderID]
	if orderID == "" {
		row.notes = []string{"order_id is empty; every row needs the bridge's order id"}
		return row, true
	}
	if !validID(orderID) {
		row.notes = []string{fmt.Sprintf("order_id is not an order id (longer than %d characters, or with control characters)", maxStatusID)}
		return row, true
	}
	row.orderID = orderID
	word := statusSpelling.Replace(strings.ToLower(cells[colStatus]))
	m, known := statusWords[word]
	if !known {
		if cells[colStatus] == "" {
			row.notes = []string{"status is empty; want one of " + statusList}
		} else {
			row.notes = []string{fmt.Sprintf("status %s is not one of %s", short(cells[colStatus]), statusList)}
		}
		return row, true
	}
	at := p.modTime
	if v := cells[colAt]; v != "" {
		t, err := parseStatusTime(v)
		if err != nil {
			row.notes = []string{fmt.Sprintf("at %s is neither an RFC 3339 time (2026-11-27T14:30:00Z) nor a date (2026-11-27)", short(v))}
			return row, true
		}
		at = t
	}
	fulID := cells[colFulfillmentID]
	if fulID == "" {
		fulID = DefaultFulfillmentID
	} else if !validID(fulID) {
		row.notes = []string{fmt.Sprintf("fulfillment_id is not an id (longer than %d characters, or with control characters)", maxStatusID)}
		return row, true
	}

	up := &bridge.OrderUpdate{OrderID: orderID, Status: m.order, Reason: cleanReason(cells[colReason]), At: at}
	if m.fulfillment != "" {
		carrier, tracking, trackURL := cells[colCarrier], cells[colTrackingNumber], cells[colTrackingURL]
		// Tracking details are a convenience for the buyer: a bad one is
		// left out, and the news that the parcel moved still goes out.
		if carrier != "" && !validText(carrier, maxCarrier) {
			row.notes = append(row.notes, fmt.Sprintf("carrier left out: longer than %d characters or with control characters", maxCarrier))
			carrier = ""
		}
		if tracking != "" && !validText(tracking, maxTracking) {
			row.notes = append(row.notes, fmt.Sprintf("tracking_number left out: longer than %d characters or with control characters", maxTracking))
			tracking = ""
		}
		if trackURL != "" && !validTrackingURL(trackURL) {
			// Not the URL itself: a signed tracking link can carry a token.
			row.notes = append(row.notes, "tracking_url left out: not an http:// or https:// URL with a host")
			trackURL = ""
		}
		k := orderID + "\x00" + fulID
		ful := p.fuls[k]
		ful.ID, ful.Type, ful.Status = fulID, "shipping", m.fulfillment
		if carrier != "" {
			ful.Carrier = carrier
		}
		if tracking != "" {
			if tracking != ful.TrackingNumber {
				ful.TrackingURL = "" // the old number's link
			}
			ful.TrackingNumber = tracking
		}
		if trackURL != "" {
			ful.TrackingURL = trackURL
		}
		p.fuls[k] = ful
		up.Fulfillment = &ful
	}
	row.update = up
	return row, true
}

// parseStatusTime reads an RFC 3339 time or a date (midnight UTC: the file
// says nothing of its time zone, and a date is precise to the day anyway).
func parseStatusTime(v string) (time.Time, error) {
	if len(v) == len(time.DateOnly) {
		t, err := time.Parse(time.DateOnly, v)
		return t, err
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func validID(v string) bool { return validText(v, maxStatusID) }

// validText reports whether v is at most limit characters of printable text.
func validText(v string, limit int) bool {
	if utf8.RuneCountInString(v) > limit {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validTrackingURL(v string) bool {
	if len(v) > maxTrackingURL || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return false
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return false
	}
	s := strings.ToLower(u.Scheme)
	return s == "http" || s == "https"
}

// cleanReason makes the reason one line of at most maxReasonRunes
// characters: it is shown to the buyer, and a spreadsheet cell may hold line
// breaks or a whole letter.
func cleanReason(v string) string {
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if utf8.RuneCountInString(v) <= maxReasonRunes {
		return v
	}
	n := 0
	for i := range v {
		if n == maxReasonRunes-1 {
			return v[:i] + "…"
		}
		n++
	}
	return v
}

// rowKey is a 128-bit hash of a row's content: at a million rows the odds
// that two rows share one (and the second is taken for already returned)
// are about 1 in 10^26.
type rowKey [2]uint64

// keyer hashes rows with seeds of its own, so keys are only comparable
// within one process (which is all seen needs) and cannot be aimed at.
type keyer struct{ a, b maphash.Seed }

func newKeyer() keyer { return keyer{maphash.MakeSeed(), maphash.MakeSeed()} }

// key hashes a tag (what kind of row) and the cells, each prefixed with its
// length so that ("ab", "c") and ("a", "bc") differ.
func (k keyer) key(tag byte, cells ...string) rowKey {
	var out rowKey
	for i, seed := range [2]maphash.Seed{k.a, k.b} {
		var h maphash.Hash
		h.SetSeed(seed)
		_ = h.WriteByte(tag)
		var n [binary.MaxVarintLen64]byte
		for _, c := range cells {
			_, _ = h.Write(n[:binary.PutUvarint(n[:], uint64(len(c)))])
			_, _ = h.WriteString(c)
		}
		out[i] = h.Sum64()
	}
	return out
}
