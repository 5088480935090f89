package bunzip

import (
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compress runs the bzip2 tool (Go has no bzip2 writer); a machine
// without it fails the test (apt-get install bzip2).
func compress(tb testing.TB, data []byte, level string) []byte {
	tb.Helper()
	path, err := exec.LookPath("bzip2")
	if err != nil {
		tb.Fatalf("the bzip2 command is required (apt-get install bzip2): %v", err)
	}
	cmd := exec.Command(path, "-c", level)
	cmd.Stdin = bytes.NewReader(data)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(tb, cmd.Run(), "bzip2: %s", stderr.String())
	return out.Bytes()
}

// referenceReads says whether the bzip2 tool decompresses compressed.
func referenceReads(tb testing.TB, compressed []byte) bool {
	tb.Helper()
	path, err := exec.LookPath("bzip2")
	require.NoError(tb, err)
	cmd := exec.Command(path, "-dc")
	cmd.Stdin = bytes.NewReader(compressed)
	return cmd.Run() == nil
}

// decode reads all of compressed with workers workers.
func decode(tb testing.TB, compressed io.Reader, workers int) ([]byte, error) {
	tb.Helper()
	z := NewReader(tb.Context(), compressed, workers)
	defer z.Close()
	return io.ReadAll(z)
}

// stdDecode is compress/bzip2's reading of compressed.
func stdDecode(compressed []byte) ([]byte, error) {
	return io.ReadAll(bzip2.NewReader(bytes.NewReader(compressed)))
}

// samples are inputs that exercise the run-length stages and the block
// boundaries.
func samples(tb testing.TB) map[string][]byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var runs bytes.Buffer
	for _, n := range []int{1, 3, 4, 5, 8, 255, 258, 259, 260, 263, 264, 1000, 5000} {
		runs.Write(bytes.Repeat([]byte{byte(n)}, n))
		runs.WriteByte('x')
	}
	killmails, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "fixtures", "killmails.jsonl"))
	require.NoError(tb, err)
	return map[string][]byte{
		"empty":     nil,
		"one byte":  []byte("a"),
		"four same": []byte("aaaa"),
		"runs":      runs.Bytes(),
		"zeros":     make([]byte, 3_000_000),
		"periodic":  bytes.Repeat([]byte("ab"), 600_000),
		"random":    random,
		"killmails": bytes.Repeat(killmails, 3),
		"text":      []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 20_000)),
	}
}

func TestReaderMatchesCompressBzip2(t *testing.T) {
	for name, data := range samples(t) {
		for _, level := range []string{"-1", "-9"} {
			t.Run(name+level, func(t *testing.T) {
				compressed := compress(t, data, level)
				want, err := stdDecode(compressed)
				require.NoError(t, err)
				require.Equal(t, len(data), len(want))
				for _, workers := range []int{1, 3} {
					got, err := decode(t, bytes.NewReader(compressed), workers)
					require.NoError(t, err)
					require.True(t, bytes.Equal(want, got), "%d workers: output differs", workers)
				}
				got, err := decode(t, iotest.OneByteReader(bytes.NewReader(compressed)), 2)
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, got), "read a byte at a time")
			})
		}
	}
}

func TestReaderConcatenatedStreams(t *testing.T) {
	s := samples(t)
	a, b := compress(t, s["text"], "-1"), compress(t, s["runs"], "-9")
	got, err := decode(t, io.MultiReader(bytes.NewReader(a), bytes.NewReader(b)), 2)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(append(append([]byte(nil), s["text"]...), s["runs"]...), got))

	_, err = decode(t, io.MultiReader(bytes.NewReader(a), strings.NewReader("junk")), 2)
	var se StructuralError
	assert.ErrorAs(t, err, &se, "trailing garbage")
}

func TestReaderDamagedStreams(t *testing.T) {
	data := samples(t)["killmails"]
	compressed := compress(t, data, "-1") // several 100 kB blocks
	tests := []struct {
		name    string
		damage  func([]byte) []byte
		wantErr func(error) bool
	}{
		{"cut in a later block", func(b []byte) []byte { return b[:len(b)*2/3] }, isEOF},
		{"cut in the first block", func(b []byte) []byte { return b[:100] }, isEOF},
		{"cut in the header", func(b []byte) []byte { return b[:3] }, isEOF},
		{"cut before the stream CRC", func(b []byte) []byte { return b[:len(b)-2] }, isEOF},
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0x55; return b }, isStructural},
		{"not bzip2", func([]byte) []byte { return []byte("BZh9 this is not bzip2") }, isStructural},
		{"bad level", func(b []byte) []byte { b[3] = '0'; return b }, isStructural},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			damaged := tt.damage(bytes.Clone(compressed))
			got, err := decode(t, bytes.NewReader(damaged), 2)
			require.Error(t, err)
			assert.True(t, tt.wantErr(err), "error %v", err)
			assert.True(t, bytes.HasPrefix(data, got), "what came before the damage is the data's start")
			_, stdErr := stdDecode(damaged)
			assert.Error(t, stdErr, "compress/bzip2 refuses it too")
		})
	}
}

func isEOF(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }

func isStructural(err error) bool {
	var se StructuralError
	return errors.As(err, &se)
}

func TestReaderDeliversBlocksBeforeDamage(t *testing.T) {
	data := samples(t)["killmails"]
	compressed := compress(t, data, "-1")
	got, err := decode(t, bytes.NewReader(compressed[:len(compressed)*2/3]), 2)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Greater(t, len(got), 100_000, "whole blocks before the cut are read")
}

func TestReaderStopsWithContext(t *testing.T) {
	compressed := compress(t, samples(t)["text"], "-1")
	ctx, cancel := context.WithCancel(t.Context())
	z := NewReader(ctx, bytes.NewReader(compressed), 2)
	_, err := z.Read(make([]byte, 10))
	require.NoError(t, err)
	cancel()
	_, err = io.ReadAll(z)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, z.Close())
	require.NoError(t, z.Close(), "Close twice is harmless")

	// Closing before the end stops the goroutines too.
	z = NewReader(t.Context(), bytes.NewReader(compressed), 2)
	_, err = z.Read(make([]byte, 10))
	require.NoError(t, err)
	require.NoError(t, z.Close())
}

func TestCRC(t *testing.T) {
	var c crcer
	// CRC-32/BZIP2's check value.
	assert.Equal(t, uint32(0xFC891918), c.update(0, []byte("123456789")))
	data := make([]byte, 3*crcChunk+13)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, n := range []int{0, 1, 7, 8, 9, 100, crcChunk - 1, crcChunk, crcChunk + 1, len(data)} {
		assert.Equal(t, bitwiseCRC(data[:n]), c.update(0, data[:n]), "%d bytes", n)
	}
	assert.Equal(t, c.update(0, data), c.update(c.update(0, data[:13]), data[13:]), "in pieces")
}

// bitwiseCRC is bzip2's CRC of p computed a bit at a time.
func bitwiseCRC(p []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range p {
		crc ^= uint32(b) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return ^crc
}

func FuzzReader(f *testing.F) {
	s := samples(f)
	f.Add(compress(f, s["runs"], "-1"))
	f.Add(compress(f, s["one byte"], "-9"))
	f.Add(compress(f, []byte("hello, hello, hello, hello"), "-9"))
	f.Add([]byte("BZh9"))
	f.Fuzz(func(t *testing.T, compressed []byte) {
		got, err := decode(t, bytes.NewReader(compressed), 2)
		want, stdErr := stdDecode(compressed)
		if stdErr == nil && err != nil {
			// compress/bzip2 is laxer than the reference decoder
			// about damaged code lengths; the bzip2 tool decides.
			require.False(t, referenceReads(t, compressed), "the bzip2 tool reads what failed with %v", err)
		}
		if stdErr == nil && err == nil {
			require.True(t, bytes.Equal(want, got), "output differs from compress/bzip2")
		}
		if err == nil {
			require.NoError(t, stdErr, "compress/bzip2 refuses what was read")
		}
	})
}

func TestUnRLE(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 200 {
		src := make([]byte, n)
		for i := range src {
			if i > 0 && rng.IntN(3) > 0 {
				src[i] = src[i-1] // runs of every length
			} else {
				src[i] = byte(rng.IntN(3))
			}
		}
		assert.Equal(t, string(naiveUnRLE(src)), string(unRLE(nil, src)), "%x", src)
	}
}

// naiveUnRLE undoes bzip2's initial run-length coding a byte at a time.
func naiveUnRLE(src []byte) []byte {
	var out []byte
	same := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		if same > 0 && c == out[len(out)-1] {
			same++
		} else {
			same = 1
		}
		out = append(out, c)
		if same == 4 && i+1 < len(src) {
			i++
			out = append(out, bytes.Repeat([]byte{c}, int(src[i]))...)
			same = 0
		}
	}
	return out
}
