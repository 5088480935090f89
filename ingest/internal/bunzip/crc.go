package bunzip

import "encoding/binary"

// crcTable holds bzip2's CRC-32 (polynomial 0x04C11DB7, most significant
// bit first, as in compress/bzip2) for slicing by 8: crcTable[k][b] is
// the CRC of byte b followed by k zero bytes.
type crcTable [8][256]uint32

func newCRCTable() *crcTable {
	const poly = 0x04C11DB7
	t := new(crcTable)
	for i := range t[0] {
		crc := uint32(i) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ poly
			} else {
				crc <<= 1
			}
		}
		t[0][i] = crc
	}
	for k := 1; k < 8; k++ {
		for i := range t[k] {
			prev := t[k-1][i]
			t[k][i] = prev<<8 ^ t[0][prev>>24]
		}
	}
	return t
}

// update returns the CRC of a block continued with p; the CRC of an empty
// block is 0.
func (t *crcTable) update(crc uint32, p []byte) uint32 {
	crc = ^crc
	for len(p) >= 8 {
		crc ^= binary.BigEndian.Uint32(p)
		crc = t[7][crc>>24] ^ t[6][crc>>16&0xff] ^ t[5][crc>>8&0xff] ^ t[4][crc&0xff] ^
			t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc>>24)^b] ^ crc<<8
	}
	return ^crc
}
