package bunzip

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// benchInput is the start of the EVE Ref benchmark archive (100k
// generated killmails), which the ingest package's benchmarks build.
func benchInput(b *testing.B) []byte {
	b.Helper()
	path := filepath.Join(os.TempDir(), "wanderer-kills-bench", "killmails-everef-100000-v1.tar.bz2")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Skip("no benchmark archive: run BenchmarkBackfillEVERef100k in ingest first")
	}
	return data[:min(len(data), 4<<20)]
}

// benchBlock is the second block of benchInput after the entropy stage.
func benchBlock(b *testing.B) *block {
	b.Helper()
	e := &entropy{br: newBitReader(bytes.NewReader(benchInput(b)))}
	blk := new(block)
	for range 2 {
		if _, err := e.next(blk); err != nil {
			b.Fatal(err)
		}
	}
	return blk
}

// BenchmarkEntropy measures the sequential stage over four blocks.
func BenchmarkEntropy(b *testing.B) {
	data := benchInput(b)
	blk := new(block)
	for b.Loop() {
		e := &entropy{br: newBitReader(bytes.NewReader(data))}
		n := 0
		for range 4 {
			if _, err := e.next(blk); err != nil {
				b.Fatal(err)
			}
			n += len(blk.bwt)
		}
		b.SetBytes(int64(n))
	}
}

// BenchmarkLink measures the first pass of the inverse BWT.
func BenchmarkLink(b *testing.B) {
	blk := benchBlock(b)
	tt := make([]uint32, len(blk.bwt))
	b.SetBytes(int64(len(blk.bwt)))
	for b.Loop() {
		link(tt, blk.bwt, &blk.counts, blk.runs)
	}
}

// BenchmarkWalk measures the inverse BWT of a block.
func BenchmarkWalk(b *testing.B) {
	blk := benchBlock(b)
	v := new(inverter)
	b.SetBytes(int64(len(blk.bwt)))
	for b.Loop() {
		v.pre = v.walk(blk, v.pre[:0])
	}
}

// BenchmarkInvert measures a worker's whole stage for a block.
func BenchmarkInvert(b *testing.B) {
	blk := benchBlock(b)
	v := new(inverter)
	b.SetBytes(int64(len(blk.bwt)))
	for b.Loop() {
		if err := v.invert(blk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCRC measures the block checksum.
func BenchmarkCRC(b *testing.B) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var c crcer
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.update(0, data)
	}
}
