package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/minio/minlz"
)

const (
	prefixLog  = 'l'
	prefixDoc  = 'i'
	prefixID   = 'k'
	prefixTime = 't'
	prefixKV   = 'c'
)

var (
	keySchema  = []byte("m/schema")
	keyEpoch   = []byte("m/epoch")
	keyHead    = []byte("m/head")
	keyTrimmed = []byte("m/trimmed")
)

func u64Key(prefix byte, v uint64) []byte { return putU64Key(make([]byte, 9), prefix, v) }

// putU64Key writes the key of v under prefix into buf (at least 9 bytes)
// and returns it.
func putU64Key(buf []byte, prefix byte, v uint64) []byte {
	buf[0] = prefix
	binary.BigEndian.PutUint64(buf[1:9], v)
	return buf[:9]
}

func logKey(off uint64) []byte { return u64Key(prefixLog, off) }
func docKey(off uint64) []byte { return u64Key(prefixDoc, off) }

// parseLogKey returns the offset of a log key, or 0 for another key.
func parseLogKey(k []byte) uint64 {
	if len(k) != 9 || k[0] != prefixLog {
		return 0
	}
	return binary.BigEndian.Uint64(k[1:])
}
func idKey(id int64) []byte { return u64Key(prefixID, uint64(id)) }

// timeKey orders by kill time then id. Kill times are after 2003, so the
// unix seconds are positive and sort as unsigned.
func timeKey(unix int64, id int64) []byte { return putTimeKey(make([]byte, 17), unix, id) }

// putTimeKey writes timeKey(unix, id) into buf (at least 17 bytes) and
// returns it.
func putTimeKey(buf []byte, unix, id int64) []byte {
	buf[0] = prefixTime
	binary.BigEndian.PutUint64(buf[1:9], uint64(unix))
	binary.BigEndian.PutUint64(buf[9:17], uint64(id))
	return buf[:17]
}

func kvKey(key string) []byte {
	k := make([]byte, 0, 2+len(key))
	return append(append(k, prefixKV, '/'), key...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func readUint(db *pebble.DB, key []byte) (uint64, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read %s: %w", key, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %s has %d bytes", ErrCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (s *Store) metaUint(key []byte) (uint64, error) { return readUint(s.db, key) }

func (s *Store) metaString(key []byte) (string, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: read %s: %w", key, err)
	}
	defer closer.Close()
	return string(v), nil
}

// Record encoding: one version byte, one flags byte, then the canonical
// killmail JSON, plain (version 1) or as one MinLZ block (version 2). JSON
// is the wire shape, so reads serve the bytes as they are; decoding is
// only needed to match or edit. New records are written as version 2:
// JSON compresses 3-4x, which cuts the bytes through the WAL, the
// memtable and flushes by as much, for 5-8 µs of CPU a record here: less
// than Pebble then saves. Records held in memory (the recent cache) stay
// version 1, ready to serve.
const (
	recordV1  = 1
	recordV2  = 2
	flagQuiet = 1 << 0
)

// newRecord encodes km as a version 1 log record with no flags set: the
// version byte, the flags byte, then the canonical JSON.
func newRecord(km *Killmail) ([]byte, error) {
	return km.AppendJSON(append(make([]byte, 0, km.sizeHint()), recordV1, 0))
}

// compressRecord returns the version 2 form of a version 1 record. It is
// written into arena's spare capacity, or into a fresh arena when that is
// short, and the arena comes back for the next record: the records of a
// batch share a few allocations instead of one each (and no copy). more
// is how many records will follow this one into the arena; a fresh arena
// leaves room for them at a typical ratio. The returned slice's capacity
// ends with it, so appending to it never touches a neighbour.
func compressRecord(rec, arena []byte, more int) (stored, grown []byte) {
	need := 2 + minlz.MaxEncodedLen(len(rec)-2)
	if need < 0 {
		return rec, arena // too large to compress; validation prevents it
	}
	if cap(arena)-len(arena) < need {
		// JSON records shrink to about a quarter; a third leaves slack.
		arena = make([]byte, 0, need+min(more*(need/3), arenaSize))
	}
	start := len(arena)
	arena = append(arena, recordV2, rec[1])
	// AppendEncoded fails only for blocks over minlz.MaxBlockSize (8 MiB);
	// validation caps a killmail far below that. With room reserved
	// above, it writes in place.
	out, err := minlz.AppendEncoded(arena, rec[2:], minlz.LevelFastest)
	if err != nil {
		return rec, arena[:start]
	}
	return out[start:len(out):len(out)], out
}

// arenaSize caps the room a fresh compressRecord arena keeps for the
// records that follow.
const arenaSize = 128 << 10

// plainRecord returns the version 1 form of a stored record of either
// version, in a slice of its own: b may be Pebble's buffer.
func plainRecord(off uint64, b []byte) ([]byte, error) {
	if len(b) < 3 {
		return nil, fmt.Errorf("%w: offset %d: short record", ErrCorrupt, off)
	}
	switch b[0] {
	case recordV1:
		return append([]byte(nil), b...), nil
	case recordV2:
		n, err := minlz.DecodedLen(b[2:])
		if err != nil {
			return nil, fmt.Errorf("%w: offset %d: %w", ErrCorrupt, off, err)
		}
		out := make([]byte, 2, 2+n)
		out[0], out[1] = recordV1, b[1]
		out, err = minlz.AppendDecoded(out, b[2:])
		if err != nil {
			return nil, fmt.Errorf("%w: offset %d: %w", ErrCorrupt, off, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: offset %d: record version %d", ErrCorrupt, off, b[0])
}

// decodeRecord returns the entry of a record of either version, with a
// copy of its JSON.
func decodeRecord(off uint64, b []byte) (Entry, error) {
	plain, err := plainRecord(off, b)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Offset: off, Quiet: plain[1]&flagQuiet != 0, JSON: plain[2:]}, nil
}
