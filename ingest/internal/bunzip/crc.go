package bunzip

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// crcChunk is how many bytes a crcer bit-reverses at a time.
const crcChunk = 4096

// crcer computes bzip2's CRC-32 (polynomial 0x04C11DB7, most significant
// bit first, as in compress/bzip2). That is the IEEE CRC-32 of hash/crc32
// with the bits of every byte, of the running CRC and of the result
// reversed, so it takes that route: hash/crc32 uses carry-less
// multiplication where the CPU has it, and reversing the bits of eight
// bytes takes a few word operations. buf is the reversed bytes.
type crcer struct {
	buf [crcChunk]byte
}

// update returns the CRC of a block continued with p; the CRC of an empty
// block is 0.
func (c *crcer) update(crc uint32, p []byte) uint32 {
	s := bits.Reverse32(crc)
	for len(p) > 0 {
		n := min(len(p), crcChunk)
		src, dst := p[:n], c.buf[:n]
		i := 0
		for ; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(dst[i:], reverseByteBits(binary.LittleEndian.Uint64(src[i:])))
		}
		for ; i < n; i++ {
			dst[i] = bits.Reverse8(src[i])
		}
		s = crc32.Update(s, crc32.IEEETable, dst)
		p = p[n:]
	}
	return bits.Reverse32(s)
}

// reverseByteBits reverses the order of the bits in each byte of w.
func reverseByteBits(w uint64) uint64 {
	const m1, m2, m4 = 0x5555555555555555, 0x3333333333333333, 0x0f0f0f0f0f0f0f0f
	w = w>>1&m1 | w&m1<<1
	w = w>>2&m2 | w&m2<<2
	return w>>4&m4 | w&m4<<4
}
