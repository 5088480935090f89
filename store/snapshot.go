package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// The index snapshot lets a cleanly closed store open in a fraction of a
// second instead of rebuilding the index from every doc (seconds per
// million killmails). Close writes it; Open loads it when it matches the
// store (same epoch, same head) and then deletes it, so a store that
// crashes later never trusts a stale snapshot: it rebuilds instead.
const (
	snapshotName  = "index.snapshot"
	snapshotMagic = "WKIXSNAP1\n"
)

var errNoSnapshot = errors.New("store: no usable index snapshot")

func (s *Store) snapshotPath() string { return filepath.Join(s.cfg.Dir, snapshotName) }

// writeSnapshot saves the index and the id set for the next open. It
// writes a temporary file, syncs it and renames it into place.
func (s *Store) writeSnapshot() error {
	if s.cfg.FS != nil {
		return nil // in-memory stores (tests) have no directory of their own
	}
	tmp := s.snapshotPath() + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = s.encodeSnapshot(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.snapshotPath())
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: snapshot: %w", err)
	}
	return nil
}

func (s *Store) encodeSnapshot(w io.Writer) error {
	var hdr bytes.Buffer
	hdr.WriteString(snapshotMagic)
	hdr.WriteByte(byte(len(s.epoch)))
	hdr.WriteString(s.epoch)
	hdr.Write(binary.BigEndian.AppendUint64(nil, s.Head()))
	known, err := s.known.ToBytes()
	if err != nil {
		return err
	}
	hdr.Write(binary.BigEndian.AppendUint64(nil, uint64(len(known))))
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	if _, err := w.Write(known); err != nil {
		return err
	}
	_, err = s.ix.WriteTo(w)
	return err
}

// loadSnapshot reads the snapshot if it belongs to this store at its
// current head, and removes the file either way.
func (s *Store) loadSnapshot(head uint64) (*index.Index, *roaring.Bitmap, error) {
	if s.cfg.FS != nil {
		return nil, nil, errNoSnapshot
	}
	path := s.snapshotPath()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, errNoSnapshot
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: snapshot: %w", err)
	}
	defer func() {
		f.Close()
		if err := os.Remove(path); err != nil {
			s.log.Warn("could not remove the index snapshot; the next open will check it again", "err", err)
		}
	}()
	r := bufio.NewReaderSize(f, 1<<20)
	ix, known, err := s.decodeSnapshot(r, head)
	if err != nil {
		s.log.Warn("index snapshot not used; rebuilding from the log", "reason", err)
		return nil, nil, errNoSnapshot
	}
	return ix, known, nil
}

func (s *Store) decodeSnapshot(r *bufio.Reader, head uint64) (*index.Index, *roaring.Bitmap, error) {
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return nil, nil, errors.New("not a snapshot of this version")
	}
	n, err := r.ReadByte()
	if err != nil {
		return nil, nil, err
	}
	epoch := make([]byte, n)
	var fixed [16]byte
	if _, err := io.ReadFull(r, epoch); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, nil, err
	}
	if string(epoch) != s.epoch {
		return nil, nil, fmt.Errorf("epoch %q, store %q", epoch, s.epoch)
	}
	if h := binary.BigEndian.Uint64(fixed[:8]); h != head {
		return nil, nil, fmt.Errorf("taken at head %d, store head %d", h, head)
	}
	size := binary.BigEndian.Uint64(fixed[8:])
	if size > 1<<32 {
		return nil, nil, errors.New("id set too large")
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, nil, err
	}
	known := roaring.New()
	if err := known.UnmarshalBinary(buf); err != nil {
		return nil, nil, fmt.Errorf("id set: %w", err)
	}
	ix, err := index.ReadIndex(r)
	if err != nil {
		return nil, nil, err
	}
	if ix.MaxOffset() > head {
		return nil, nil, fmt.Errorf("index reaches offset %d beyond head %d", ix.MaxOffset(), head)
	}
	return ix, known, nil
}
