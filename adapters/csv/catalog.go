package csv

import (
	"bufio"
	"context"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	bridge "github.com/acp-bridge/bridge"
)

// maxVariants caps the rows of one product. Shopify allows 2,048 variants; a
// group far beyond that is almost always a wrong GroupColumn (a column such as
// vendor that is the same on every row), and holding it would make the scan's
// memory grow with the file.
const maxVariants = 10_000

// ctxEvery is how many records pass between context checks: often enough to
// stop within a millisecond, rare enough to cost nothing.
const ctxEvery = 256

// ReadCatalog streams the catalog and emits one record per product: adjacent
// rows with the same GroupColumn value. Record maps hold every named column as
// a string (column name → value as written); the group, id and stock values are
// trimmed of surrounding spaces. Product is a copy of the first row's map.
//
// Rows that cannot be used are reported through skip with their line number
// and left out. An error return means the catalog as a whole could not be
// read (unreachable, no usable header, broken download): the caller keeps its
// last good snapshot. emit's error and ctx's error are returned as they are.
func (a *Adapter) ReadCatalog(ctx context.Context, emit func(bridge.Record) error, skip func(bridge.Problem)) error {
	rc, modified, err := a.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := a.readCatalog(ctx, rc, emit, skip); err != nil {
		return err
	}
	a.mu.Lock()
	a.sourceTime = modified
	a.mu.Unlock()
	return nil
}

// SourceTime is the modification time (file) or Last-Modified (URL) of the
// catalog the last complete ReadCatalog read; zero when unknown.
func (a *Adapter) SourceTime() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sourceTime
}

// header is the catalog's column layout.
type header struct {
	names []string // trimmed; "" for an unnamed column, which is left out of maps
	named int      // how many columns have a name
	group int      // index of GroupColumn
	id    int      // index of IDColumn
	stock int      // index of StockColumn, -1 when absent
	line  int
}

// scan is the state of one ReadCatalog pass.
type scan struct {
	a    *Adapter
	h    header
	emit func(bridge.Record) error
	skip func(bridge.Problem)

	cur  bridge.Record // product being collected; Key "" when none
	seed maphash.Seed
	// groups maps a 64-bit hash of every group value seen to its first
	// line, to tell a product split over the file from a new one without
	// keeping the keys (odds of a false alarm from a collision: about 1 in
	// 30 million for a million products).
	groups  map[uint64]int32
	curIDs  map[string]int // variant ids of cur → their line
	lastVal []string       // per column: previous row's value …
	lastBox []any          // … and its boxed form, reused when equal
}

// newCSVReader reads the adapter's CSV files (the catalog, the status
// file). A byte order mark before a quoted first column would read as a
// bare quote, so it goes before the csv reader sees the bytes; field counts
// are checked by the caller, to say which line and how many.
func newCSVReader(r io.Reader, delim rune) *stdcsv.Reader {
	br := bufio.NewReaderSize(r, 16<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	cr := stdcsv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return cr
}

func (a *Adapter) readCatalog(ctx context.Context, r io.Reader, emit func(bridge.Record) error, skip func(bridge.Problem)) error {
	cr := newCSVReader(r, a.opts.Delimiter)

	h, err := a.readHeader(ctx, cr)
	if err != nil {
		return err
	}
	s := &scan{
		a: a, h: h, emit: emit, skip: skip,
		seed:    maphash.MakeSeed(),
		groups:  make(map[uint64]int32),
		curIDs:  make(map[string]int),
		lastVal: make([]string, len(h.names)),
		lastBox: make([]any, len(h.names)),
	}
	for n := 1; ; n++ {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *stdcsv.ParseError
			if errors.As(err, &pe) {
				// encoding/csv drops the rest of the broken record and
				// resumes at the next line, so the scan can go on.
				s.problem(pe.StartLine, "", parseMessage(pe))
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("csv: read catalog %s: %w", a.source(), err)
		}
		line, _ := cr.FieldPos(0)
		if err := s.row(line, rec); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.flush()
}

func (a *Adapter) readHeader(ctx context.Context, cr *stdcsv.Reader) (header, error) {
	rec, err := cr.Read()
	if err == io.EOF {
		return header{}, fmt.Errorf("csv: catalog %s is empty: it needs a header row naming the columns", a.source())
	}
	if err != nil {
		var pe *stdcsv.ParseError
		if errors.As(err, &pe) {
			return header{}, fmt.Errorf("csv: catalog %s: header row: %s", a.source(), parseMessage(pe))
		}
		if ctx.Err() != nil {
			return header{}, ctx.Err()
		}
		return header{}, fmt.Errorf("csv: read catalog %s: %w", a.source(), err)
	}
	h := header{names: make([]string, len(rec)), group: -1, id: -1, stock: -1}
	h.line, _ = cr.FieldPos(0)
	seen := make(map[string]int, len(rec))
	for i, name := range rec {
		name = strings.TrimSpace(name)
		if !utf8.ValidString(name) {
			return header{}, fmt.Errorf("csv: catalog %s: header row (line %d) is not valid UTF-8 text; save the file with UTF-8 encoding", a.source(), h.line)
		}
		h.names[i] = name
		if name == "" {
			// Spreadsheets add unnamed columns after the last one; their
			// cells carry nothing a mapping could name.
			continue
		}
		if j, dup := seen[name]; dup {
			return header{}, fmt.Errorf("csv: catalog %s: header names column %q twice (columns %d and %d); each column needs its own name", a.source(), name, j+1, i+1)
		}
		seen[name] = i
		h.named++
	}
	var missing []string
	if i, ok := seen[a.opts.GroupColumn]; ok {
		h.group = i
	} else {
		missing = append(missing, strconv.Quote(a.opts.GroupColumn))
	}
	if i, ok := seen[a.opts.IDColumn]; ok {
		h.id = i
	} else if a.opts.IDColumn != a.opts.GroupColumn {
		missing = append(missing, strconv.Quote(a.opts.IDColumn))
	}
	if len(missing) > 0 {
		return header{}, fmt.Errorf("csv: catalog %s: header has no column %s; it has %s (check the delimiter and the group/id column settings)",
			a.source(), strings.Join(missing, " or "), quoteList(rec, 30))
	}
	if i, ok := seen[a.opts.StockColumn]; ok {
		h.stock = i
	} else if !a.noStockLogged.Swap(true) {
		// Once per adapter: it explains every "untracked" in the feed report
		// without repeating on each sync.
		a.log.Info("csv: catalog has no stock column; stock is not tracked",
			"source", a.source(), "stock_column", a.opts.StockColumn)
	}
	return h, nil
}

// row checks one record and adds it to the current product, emitting the
// previous product when this row starts a new one.
func (s *scan) row(line int, rec []string) error {
	h := &s.h
	if allEmpty(rec) {
		// Spreadsheets leave rows of bare delimiters at the end; they are
		// not products, and reporting them would bury real problems.
		return nil
	}
	if len(rec) != len(h.names) {
		s.problem(line, "", fmt.Sprintf("line %d: %d fields, header has %d; a value containing %s must be in double quotes",
			line, len(rec), len(h.names), delimName(s.a.opts.Delimiter)))
		return nil
	}
	for i, v := range rec {
		if !utf8.ValidString(v) {
			s.problem(line, "", fmt.Sprintf("line %d: column %q is not valid UTF-8 text; save the file with UTF-8 encoding",
				line, columnName(h.names, i)))
			return nil
		}
	}
	group := strings.TrimSpace(rec[h.group])
	id := strings.TrimSpace(rec[h.id])
	gcol, icol := s.a.opts.GroupColumn, s.a.opts.IDColumn
	if group == "" {
		s.problem(line, "", fmt.Sprintf("line %d: %s is empty; every row needs the %s of its product", line, gcol, gcol))
		return nil
	}
	if id == "" {
		s.problem(line, group, fmt.Sprintf("line %d: %s is empty; every row needs its own %s", line, icol, icol))
		return nil
	}
	var stock string
	if h.stock >= 0 {
		stock = strings.TrimSpace(rec[h.stock])
		if stock != "" {
			if _, err := strconv.ParseInt(stock, 10, 64); err != nil {
				s.problem(line, group, fmt.Sprintf("line %d: %s %s is not a whole number; leave it empty if stock is not tracked",
					line, s.a.opts.StockColumn, short(stock)))
				return nil
			}
		}
	}

	newGroup := group != s.cur.Key
	gh := maphash.String(s.seed, group)
	if newGroup {
		if first, seen := s.groups[gh]; seen {
			if h.group == h.id {
				// One column is both group and id: a repeat is a reused id.
				s.problem(line, group, fmt.Sprintf("line %d: %s %s is already used on line %d; every row needs its own %s",
					line, icol, short(id), first, icol))
			} else {
				s.problem(line, group, fmt.Sprintf("line %d: rows of product %s must be adjacent, but it already appeared on line %d before other products; sort the file by the %s column",
					line, short(group), first, gcol))
			}
			return nil
		}
	} else {
		if prev, dup := s.curIDs[id]; dup {
			s.problem(line, group, fmt.Sprintf("line %d: %s %s is already used on line %d of the same product; every row needs its own %s",
				line, icol, short(id), prev, icol))
			return nil
		}
		if len(s.cur.Variants) >= maxVariants {
			s.problem(line, group, fmt.Sprintf("line %d: product %s has more than %d rows; check that %s is the column that identifies a product",
				line, short(group), maxVariants, gcol))
			return nil
		}
	}

	if newGroup {
		if err := s.flush(); err != nil {
			return err
		}
		s.groups[gh] = int32(min(line, 1<<31-1))
		s.cur = bridge.Record{Key: group, Line: line}
		clear(s.curIDs)
	}
	s.curIDs[id] = line
	v := make(map[string]any, h.named)
	for i, name := range h.names {
		if name == "" {
			continue
		}
		val := rec[i]
		switch i {
		case h.group:
			val = group
		case h.id:
			val = id
		case h.stock:
			val = stock
		}
		v[name] = s.box(i, val)
	}
	if newGroup {
		s.cur.Product = maps.Clone(v)
	}
	s.cur.Variants = append(s.cur.Variants, v)
	s.cur.VariantLines = append(s.cur.VariantLines, line)
	return nil
}

// box returns val as an interface value. Storing a string in an interface
// allocates; catalogs repeat values down a column (currency, vendor, "true"),
// so reusing the previous row's box when the value is the same saves most of
// those allocations.
func (s *scan) box(col int, val string) any {
	if val == "" {
		return "" // boxing the empty string does not allocate
	}
	if s.lastBox[col] != nil && s.lastVal[col] == val {
		return s.lastBox[col]
	}
	b := any(val)
	s.lastVal[col], s.lastBox[col] = val, b
	return b
}

// flush emits the product being collected, if any.
func (s *scan) flush() error {
	if s.cur.Key == "" {
		return nil
	}
	rec := s.cur
	s.cur = bridge.Record{}
	return s.emit(rec)
}

func (s *scan) problem(line int, key, msg string) {
	// The messages read well on their own ("line 7: …"); Problem carries the
	// line separately and prints it once.
	msg = strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", line))
	s.skip(bridge.Problem{Line: line, Key: strings.ToValidUTF8(key, "\uFFFD"), Message: msg})
}

// parseMessage explains an encoding/csv syntax error to a shop admin.
func parseMessage(pe *stdcsv.ParseError) string {
	where := fmt.Sprintf("line %d, column %d", pe.Line, pe.Column)
	switch {
	case errors.Is(pe.Err, stdcsv.ErrBareQuote):
		return fmt.Sprintf(`line %d: a " appears inside a value that is not in quotes (%s); put the value in double quotes and write each " inside it as ""`,
			pe.StartLine, where)
	case errors.Is(pe.Err, stdcsv.ErrQuote):
		if pe.Line != pe.StartLine {
			// The reader took every line up to pe.Line as part of the value.
			return fmt.Sprintf(`line %d: a quoted value starting on this line is not closed properly (found at %s), so the lines up to there were read as part of it; each " inside a quoted value must be written as "", and the value must end with "`,
				pe.StartLine, where)
		}
		return fmt.Sprintf(`line %d: a quoted value is not closed properly (%s); each " inside a quoted value must be written as ""`,
			pe.StartLine, where)
	}
	return fmt.Sprintf("line %d: %v (%s)", pe.StartLine, pe.Err, where)
}

func allEmpty(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

func columnName(names []string, i int) string {
	if names[i] != "" {
		return names[i]
	}
	return fmt.Sprintf("#%d", i+1)
}

func delimName(d rune) string {
	if d == '\t' {
		return "a tab"
	}
	return fmt.Sprintf("'%c'", d)
}

// short quotes a value for a message, cut to a readable length.
func short(v string) string {
	const limit = 60
	n := 0
	for i := range v {
		if n == limit {
			v = v[:i] + "…"
			break
		}
		n++
	}
	return strconv.Quote(v)
}

// quoteList lists header names for an error, at most n of them.
func quoteList(names []string, n int) string {
	var b strings.Builder
	for i, name := range names {
		if i == n {
			fmt.Fprintf(&b, ", … (%d columns)", len(names))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(short(strings.TrimSpace(name)))
	}
	if len(names) == 0 {
		return "no columns"
	}
	return b.String()
}
