package ingest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/wanderer-industries/wanderer-kills-go/ingest/internal/bunzip"
)

// MaxMemberBytes caps one file of an archive or one JSONL line: a killmail
// of the biggest fights is a few hundred KB, so anything past this is
// damage, not data.
const MaxMemberBytes = 16 << 20

// ErrArchive is matched by errors reading an archive's stream (a
// truncated or corrupted bzip2 or tar): the members before it were read.
var ErrArchive = errors.New("ingest: unreadable archive")

// Record is one killmail as an offline source holds it: a file of an EVE
// Ref archive or a line of a JSONL file.
type Record struct {
	// Name says where it came from: the member's path in the archive
	// ("killmails/123.json") or "line N".
	Name string
	// Raw is the record's bytes; nil when Err is set. The callee may keep
	// it.
	Raw []byte
	// Err is set when the record could not be read on its own (a member
	// larger than MaxMemberBytes); the source goes on after it.
	Err error
}

// ReadEVERef reads an EVE Ref killmail archive (FORMATS.md §6: a
// bzip2-compressed tar of killmails/<id>.json files) as a stream, without
// extracting it, and calls fn with every regular file in archive order.
// An uncompressed tar is accepted too. The bzip2 blocks are decompressed
// in parallel (GOMAXPROCS workers; a few blocks in memory at a time) and
// delivered in order. It stops at the first error of fn and returns it,
// or when ctx ends. A stream that breaks off (truncated, corrupted) gives
// an error matching ErrArchive after the members before the damage were
// delivered.
func ReadEVERef(ctx context.Context, r io.Reader, fn func(Record) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(3)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrArchive, err)
	}
	var stream io.Reader = br
	if bytes.Equal(magic, []byte("BZh")) {
		z := bunzip.NewReader(ctx, br, runtime.GOMAXPROCS(0))
		defer z.Close()
		stream = z
	}
	tr := tar.NewReader(stream)
	for n := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return archiveError(n, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		n++
		rec, err := readMember(tr, hdr)
		if err != nil {
			return archiveError(n-1, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

func readMember(tr *tar.Reader, hdr *tar.Header) (Record, error) {
	rec := Record{Name: hdr.Name}
	if hdr.Size > MaxMemberBytes || hdr.Size < 0 {
		rec.Err = garbage(ReasonTooLarge, fmt.Sprintf("%d bytes", hdr.Size))
		return rec, nil // tar.Next skips the body
	}
	rec.Raw = make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, rec.Raw); err != nil {
		return Record{}, err
	}
	return rec, nil
}

func archiveError(members int, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("stream ends early (truncated?): %w", err)
	}
	return fmt.Errorf("%w after %d members: %w", ErrArchive, members, err)
}
