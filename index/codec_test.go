package index_test

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

func TestDocRoundTrip(t *testing.T) {
	docs := append(fixtureDocs(t), fixed()...)
	docs = append(docs,
		index.Doc{Offset: 1},
		index.Doc{
			Offset: 1<<32 - 1, KillmailID: math.MaxInt64, Time: math.MinInt64, System: -1,
			ShipType: math.MinInt64, Characters: []int64{math.MaxInt64, 0, math.MinInt64, -5, 0}, Value: math.Inf(1),
		},
		index.Doc{Offset: math.MaxUint64, Value: -0.5, Alliances: []int64{1}},
	)
	for _, d := range docs {
		orig := slices.Clone(d.Characters)
		b := d.AppendBinary([]byte("prefix"))
		require.Equal(t, orig, d.Characters, "AppendBinary must not reorder the caller's ids")
		d.Characters = sorted(d.Characters)
		d.Corporations = sorted(d.Corporations)
		d.Alliances = sorted(d.Alliances)
		require.Equal(t, "prefix", string(b[:6]))
		got, err := index.DecodeDoc(b[6:])
		require.NoError(t, err)
		assert.Equal(t, d, got)
	}
}

func sorted(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Compact(ids)
}

func TestDocIsCompact(t *testing.T) {
	var total int
	docs := fixtureDocs(t)
	for _, d := range docs {
		total += len(d.AppendBinary(nil))
	}
	// ~4 bytes per id (sorted gaps), a fixed 8-byte value, a few varints.
	t.Logf("fixture docs: %d bytes on average", total/len(docs))
	assert.Less(t, total/len(docs), 110)
}

func TestDecodeDocRejects(t *testing.T) {
	good := fixed()[0].AppendBinary(nil)
	zero := index.Doc{Offset: 1}
	// version, offset, id, time, value:8, system, ship: 14 bytes.
	head := zero.AppendBinary(nil)[:14]
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"empty", nil, index.ErrCorrupt},
		{"unknown version", append([]byte{9}, good[1:]...), index.ErrVersion},
		{"trailing byte", append(good[:len(good):len(good)], 0), index.ErrCorrupt},
		{"overlong varint", append([]byte{1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), index.ErrCorrupt},
		// A list claiming more ids than bytes left must not allocate them.
		{"set out of order", append(head, 2, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0), index.ErrCorrupt},
		{"repeated id", append(head, 2, 2, 0, 0, 0), index.ErrCorrupt},
		{"huge list", append(head, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2), index.ErrCorrupt},
	}
	for n := range len(good) {
		tests = append(tests, struct {
			name string
			in   []byte
			err  error
		}{"truncated", good[:n], index.ErrCorrupt})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := index.DecodeDoc(tt.in)
			assert.ErrorIs(t, err, tt.err)
		})
	}
}

func FuzzDecodeDoc(f *testing.F) {
	for _, d := range append(fixtureDocs(f), fixed()...) {
		f.Add(d.AppendBinary(nil))
	}
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := index.DecodeDoc(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := index.DecodeDoc(d.AppendBinary(nil))
		require.NoError(t, err)
		if !math.IsNaN(d.Value) { // NaN never equals itself
			require.Equal(t, d, again)
		}
	})
}
