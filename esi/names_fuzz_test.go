package esi

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzDecodeNames(f *testing.F) {
	b, err := os.ReadFile("../testdata/fixtures/esi/universe-names-post.json")
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"id":1,"name":"x","category":"character"},{"id":"2"}]`))
	f.Add([]byte(`{"error":"Ensure all IDs are valid before resolving."}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		names, err := decodeNames(b)
		if err != nil {
			require.Nil(t, names)
			return
		}
		for _, n := range names {
			require.Positive(t, n.ID)
		}
	})
}
