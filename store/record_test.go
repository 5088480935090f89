package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecordVersions checks that both record versions decode to the same
// entry, that compression shrinks real killmails, and that a damaged
// record is ErrCorrupt, never a panic or wrong bytes.
func TestRecordVersions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "killmails.jsonl"))
	require.NoError(t, err)
	var plain, packed int
	var arena []byte            // shared by the records, as in a batch
	kept := map[string][]byte{} // every compressed record, checked again at the end
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		v1 := append([]byte{recordV1, flagQuiet}, line...)
		var v2 []byte
		v2, arena = compressRecord(v1, arena, 3)
		kept[string(line)] = v2
		require.Equal(t, byte(recordV2), v2[0])
		plain, packed = plain+len(v1), packed+len(v2)
		for _, rec := range [][]byte{v1, v2} {
			e, err := decodeRecord(7, rec)
			require.NoError(t, err)
			assert.Equal(t, uint64(7), e.Offset)
			assert.True(t, e.Quiet)
			assert.True(t, bytes.Equal(line, e.JSON), "the JSON comes back as it was")
		}
		back, err := plainRecord(7, v2)
		require.NoError(t, err)
		assert.Equal(t, v1, back)
		bad := [][]byte{{recordV2, 0, 0xff, 0xff, 0xff}, {9, 0, '{', '}'}, {recordV1}}
		if v2[2] != 0 {
			// A compressed block knows its length; MinLZ stores a block
			// that would not shrink as it is (first byte 0), and Pebble's
			// block checksums, not the record, guard those bytes.
			bad = append(bad, v2[:len(v2)/2])
		}
		for _, bad := range bad {
			_, err := decodeRecord(7, bad)
			require.ErrorIs(t, err, ErrCorrupt, "%x", bad[:min(len(bad), 8)])
		}
	}
	for line, v2 := range kept {
		e, err := decodeRecord(1, v2)
		require.NoError(t, err)
		require.Equal(t, line, string(e.JSON), "a later record's compression left this one intact")
	}
	assert.Less(t, packed, plain/2, "canonical JSON compresses at least 2x")
	t.Logf("88 fixtures: %d bytes plain, %d compressed", plain, packed)
}
