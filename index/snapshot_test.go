package index_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

func snapshot(t testing.TB, ix *index.Index) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := ix.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	return buf.Bytes()
}

// promoted is an index whose busiest sets are bitmaps, not lists.
func promoted(t testing.TB) *index.Index {
	docs := genDocs(9, 3000, small)
	for i := range docs {
		if i%2 == 0 {
			docs[i].System = 30_000_000
		}
	}
	ix := build(t, docs)
	for off := uint64(1); off < 3000; off += 7 {
		ix.Remove(off)
	}
	return ix
}

func TestSnapshotRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ix   *index.Index
	}{
		{"empty", index.New()},
		{"fixtures", build(t, fixtureDocs(t))},
		{"hand made with removals", func() *index.Index {
			ix := build(t, fixed())
			ix.Remove(5)
			ix.Remove(1)
			return ix
		}()},
		{"bitmaps and lists", promoted(t)},
		{"several blocks", build(t, genDocs(10, 20_000, small))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapshot(t, tt.ix)
			loaded, err := index.ReadIndex(bytes.NewReader(snap))
			require.NoError(t, err)
			assert.Equal(t, tt.ix.Len(), loaded.Len())
			assert.Equal(t, tt.ix.MaxOffset(), loaded.MaxOffset())
			assert.Equal(t, snap, snapshot(t, loaded), "a loaded index writes the same bytes")
			for _, q := range []index.Query{
				{Limit: 10_000},
				{Systems: []int64{1, 30_000_000}, Limit: 10_000},
				{Characters: []int64{500, 2_000_000_001}, Since: start},
			} {
				assert.Equal(t, tt.ix.Search(q), loaded.Search(q))
			}
			// The loaded index is fully usable: add, replace, remove.
			require.NoError(t, loaded.Add(index.Doc{Offset: 1, KillmailID: 7, Time: start, System: 1}))
			loaded.Remove(2)
			assert.Equal(t, int64(7), loaded.Search(index.Query{Systems: []int64{1}, Until: start + 1, Since: start}).Hits[0].KillmailID)
		})
	}
}

func TestReadIndexRejectsCorruption(t *testing.T) {
	snap := snapshot(t, build(t, fixed()))
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(snap) {
			_, err := index.ReadIndex(bytes.NewReader(snap[:n]))
			require.ErrorIs(t, err, index.ErrCorrupt, "truncated to %d bytes", n)
			if n > 5 {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "truncated to %d bytes", n)
			}
		}
	})
	t.Run("every flipped byte", func(t *testing.T) {
		for i := range snap {
			bad := bytes.Clone(snap)
			bad[i] ^= 0x5a
			_, err := index.ReadIndex(bytes.NewReader(bad))
			require.Error(t, err, "byte %d flipped", i)
			require.True(t, errors.Is(err, index.ErrCorrupt) || errors.Is(err, index.ErrVersion), "byte %d: %v", i, err)
		}
	})
	t.Run("newer version", func(t *testing.T) {
		bad := bytes.Clone(snap)
		bad[4] = 2
		_, err := index.ReadIndex(bytes.NewReader(bad))
		require.ErrorIs(t, err, index.ErrVersion)
	})
	t.Run("not a snapshot", func(t *testing.T) {
		_, err := index.ReadIndex(bytes.NewReader([]byte(`{"killmail_id": 1}`)))
		require.ErrorIs(t, err, index.ErrCorrupt)
		assert.Contains(t, err.Error(), "not an index snapshot")
	})
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, io.ErrShortWrite
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriteToReportsErrors(t *testing.T) {
	ix := build(t, fixtureDocs(t))
	_, err := ix.WriteTo(&failingWriter{after: 100})
	require.ErrorIs(t, err, io.ErrShortWrite)
}

func FuzzReadIndex(f *testing.F) {
	f.Add(snapshot(f, index.New()))
	f.Add(snapshot(f, build(f, fixed())))
	f.Add(snapshot(f, build(f, fixtureDocs(f)[:5])))
	f.Add([]byte("WKIX\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Fix the checksum up, so the fuzzer explores the checks behind it.
		if len(b) >= 4 {
			b = binary.LittleEndian.AppendUint32(b[:len(b)-4:len(b)-4], crc32.Checksum(b[:len(b)-4], crc32.MakeTable(crc32.Castagnoli)))
		}
		ix, err := index.ReadIndex(bytes.NewReader(b))
		if err != nil {
			require.True(t, errors.Is(err, index.ErrCorrupt) || errors.Is(err, index.ErrVersion), "%v", err)
			return
		}
		// Whatever loads must be safe to query, change and save.
		for _, q := range []index.Query{{}, {Systems: []int64{1}}, {Characters: []int64{500}, Since: 1}} {
			ix.Search(q)
		}
		for ix.Len() > 0 {
			p := ix.Search(index.Query{Limit: index.MaxLimit})
			require.NotEmpty(t, p.Hits)
			for _, h := range p.Hits {
				ix.Remove(h.Offset)
			}
		}
		var buf bytes.Buffer
		_, err = ix.WriteTo(&buf)
		require.NoError(t, err)
	})
}
