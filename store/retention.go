package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// retentionChunk bounds the killmails deleted per commit, so retention
// never holds the writer for long.
const retentionChunk = 1000

// ApplyRetention deletes every killmail whose kill time is before cutoff,
// with its index entries, in chunks of one commit each. It walks only the
// expired part of the time keys, never the whole store. It returns how
// many killmails it deleted.
func (s *Store) ApplyRetention(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		n, err := s.retainChunk(ctx, cutoff)
		total += n
		if err != nil || n < retentionChunk {
			return total, err
		}
	}
}

type expired struct {
	timeKey []byte
	offset  uint64
	id      int64
}

func (s *Store) retainChunk(ctx context.Context, cutoff time.Time) (int, error) {
	victims, err := s.expiredChunk(ctx, cutoff)
	if err != nil || len(victims) == 0 {
		return 0, err
	}
	o := &op{ctx: ctx, done: make(chan struct{})}
	o.apply = func(b *pebble.Batch) (func(), error) {
		trimmed := s.Trimmed()
		for _, v := range victims {
			for _, k := range [][]byte{v.timeKey, logKey(v.offset), docKey(v.offset), idKey(v.id)} {
				if err := b.Delete(k, nil); err != nil {
					return nil, err
				}
			}
			trimmed = max(trimmed, v.offset)
		}
		if err := b.Set(keyTrimmed, binary.BigEndian.AppendUint64(nil, trimmed), nil); err != nil {
			return nil, err
		}
		return func() {
			for _, v := range victims {
				s.ix.Remove(v.offset)
				s.recent.drop(v.offset)
				if v.id > 0 && v.id <= math.MaxUint32 {
					s.known.Remove(uint32(v.id))
				}
			}
			s.trimmed.Store(trimmed)
		}, nil
	}
	if err := s.submit(ctx, o); err != nil {
		return 0, fmt.Errorf("store: retention: %w", err)
	}
	return len(victims), nil
}

func (s *Store) expiredChunk(ctx context.Context, cutoff time.Time) ([]expired, error) {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{prefixTime},
		UpperBound: timeKey(max(cutoff.Unix(), 0), 0),
	})
	if err != nil {
		return nil, fmt.Errorf("store: retention scan: %w", err)
	}
	defer it.Close()
	var out []expired
	for ok := it.First(); ok && len(out) < retentionChunk; ok = it.Next() {
		k := it.Key()
		out = append(out, expired{
			timeKey: append([]byte(nil), k...),
			offset:  binary.BigEndian.Uint64(it.Value()),
			id:      int64(binary.BigEndian.Uint64(k[9:])),
		})
	}
	return out, it.Error()
}
