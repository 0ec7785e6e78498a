package feedapi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// spool holds the items a push will send, in a temporary file: the walk
// of the catalog writes them and ends, then the sender reads them back.
// Memory stays at one item (and one batch); the file is removed on Close.
type spool struct {
	f *os.File
	w *bufio.Writer
	r *bufio.Reader
	n int
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "bridge-feedapi-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// add appends it (its json copied out, so the caller may reuse the
// buffer). Layout: uvarint lengths before id, json and retract; the hash
// as 8 bytes; one byte for retracted.
func (s *spool) add(it item) error {
	var hdr [binary.MaxVarintLen64]byte
	put := func(b []byte) {
		_, _ = s.w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(b)))])
		_, _ = s.w.Write(b)
	}
	put([]byte(it.id))
	_, _ = s.w.Write(binary.BigEndian.AppendUint64(hdr[:0], uint64(it.hash)))
	put(it.json)
	put([]byte(it.retract))
	var flag byte
	if it.retracted {
		flag = 1
	}
	if err := s.w.WriteByte(flag); err != nil { // bufio keeps the first error
		return fmt.Errorf("spool: %w", err)
	}
	s.n++
	return nil
}

// rewind ends writing and starts reading from the first item.
func (s *spool) rewind() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.r = bufio.NewReaderSize(s.f, 256<<10)
	return nil
}

// next reads the next item; ok is false after the last.
func (s *spool) next() (it item, ok bool, err error) {
	if s.n == 0 {
		return item{}, false, nil
	}
	get := func() ([]byte, error) {
		n, err := binary.ReadUvarint(s.r)
		if err != nil {
			return nil, err
		}
		b := make([]byte, n)
		_, err = io.ReadFull(s.r, b)
		return b, err
	}
	id, err := get()
	if err != nil {
		return item{}, false, spoolErr(err)
	}
	var h [8]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return item{}, false, spoolErr(err)
	}
	js, err := get()
	if err != nil {
		return item{}, false, spoolErr(err)
	}
	rt, err := get()
	if err != nil {
		return item{}, false, spoolErr(err)
	}
	flag, err := s.r.ReadByte()
	if err != nil {
		return item{}, false, spoolErr(err)
	}
	s.n--
	return item{id: string(id), hash: int64(binary.BigEndian.Uint64(h[:])), json: js, retract: string(rt), retracted: flag == 1}, true, nil
}

func spoolErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the count says an item is left
	}
	return fmt.Errorf("spool: read back: %w", err)
}

// Close removes the file.
func (s *spool) Close() error {
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	return err
}
