package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// docVersion is the first byte of every encoded Doc.
const docVersion = 1

// ErrCorrupt reports an encoded Doc or a snapshot that cannot be decoded.
var ErrCorrupt = errors.New("index: corrupt data")

// ErrVersion reports an encoded Doc or a snapshot written in a format this
// binary does not know (usually by a newer one).
var ErrVersion = errors.New("index: unknown format version")

// Doc is what the index knows of one killmail. The store persists it too,
// one record per offset, so that the index can be rebuilt from it.
type Doc struct {
	// Offset is the write-log offset: at least 1 and below 1<<32.
	Offset     uint64
	KillmailID int64
	// Time is the kill time in unix seconds.
	Time int64
	// System is the solar system id.
	System int64
	// ShipType is the victim's ship type id.
	ShipType int64
	// Characters are the distinct victim and attacker character ids.
	Characters []int64
	// Corporations are the distinct victim and attacker corporation ids.
	Corporations []int64
	// Alliances are the distinct victim and attacker alliance ids.
	Alliances []int64
	// Value is zKillboard's totalValue, 0 when unknown.
	Value float64
}

// AppendBinary appends the compact encoding of d to b and returns the
// extended slice. The first byte is the codec version; integers are
// (zigzag) varints, Value is 8 little-endian bytes, and the id lists are
// written as sets: DecodeDoc returns them sorted ascending, without repeats.
func (d *Doc) AppendBinary(b []byte) []byte {
	b = append(b, docVersion)
	b = binary.AppendUvarint(b, d.Offset)
	b = binary.AppendVarint(b, d.KillmailID)
	b = binary.AppendVarint(b, d.Time)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(d.Value))
	return appendDims(b, d)
}

// DecodeDoc decodes a Doc encoded by AppendBinary. It rejects truncated,
// oversized or trailing input with an error wrapping ErrCorrupt, and an
// unknown codec version with ErrVersion.
func DecodeDoc(b []byte) (Doc, error) {
	if len(b) == 0 {
		return Doc{}, fmt.Errorf("%w: empty doc", ErrCorrupt)
	}
	if b[0] != docVersion {
		return Doc{}, fmt.Errorf("%w: doc version %d", ErrVersion, b[0])
	}
	dec := decoder{b: b[1:]}
	d := Doc{
		Offset:     dec.uvarint(),
		KillmailID: dec.varint(),
		Time:       dec.varint(),
		Value:      math.Float64frombits(dec.fixed64()),
	}
	d.System = dec.varint()
	d.ShipType = dec.varint()
	d.Characters = dec.int64s()
	d.Corporations = dec.int64s()
	d.Alliances = dec.int64s()
	if dec.err == nil && len(dec.b) > 0 {
		dec.fail("trailing bytes after doc")
	}
	if dec.err != nil {
		return Doc{}, dec.err
	}
	return d, nil
}

// The dimensions of a Doc, in their encoded order.
const (
	dimSystem = iota
	dimShip
	dimCharacter
	dimCorporation
	dimAlliance
	numDims
)

// appendDims appends the dimension part of d: what Remove needs to find
// every set holding an offset. Id lists are sets: they are written sorted
// and without repeats, as a first varint then uvarint gaps.
func appendDims(b []byte, d *Doc) []byte {
	b = binary.AppendVarint(b, d.System)
	b = binary.AppendVarint(b, d.ShipType)
	for _, l := range [...][]int64{d.Characters, d.Corporations, d.Alliances} {
		b = appendSet(b, l)
	}
	return b
}

func appendSet(b []byte, ids []int64) []byte {
	if len(ids) == 0 {
		return append(b, 0)
	}
	sorted := ids
	if !increasing(ids) {
		var stack [64]int64
		sorted = append(stack[:0], ids...)
		slices.Sort(sorted)
		sorted = slices.Compact(sorted)
	}
	b = binary.AppendUvarint(b, uint64(len(sorted)))
	b = binary.AppendVarint(b, sorted[0])
	for i := 1; i < len(sorted); i++ {
		b = binary.AppendUvarint(b, uint64(sorted[i])-uint64(sorted[i-1]))
	}
	return b
}

// increasing reports whether ids is sorted ascending without repeats, as
// the store's docs come: then appendSet needs no sorted copy.
func increasing(ids []int64) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			return false
		}
	}
	return true
}

// walkDims calls fn (when not nil) for every dimension value encoded at the
// start of b and returns the length of the encoding.
func walkDims(b []byte, fn func(dim int, v int64)) (int, error) {
	dec := decoder{b: b}
	for dim := range numDims {
		if dim < dimCharacter {
			if v := dec.varint(); dec.err == nil && fn != nil {
				fn(dim, v)
			}
			continue
		}
		n := dec.count()
		var v int64
		for j := range n {
			v = dec.next(j, v)
			if dec.err != nil {
				break
			}
			if fn != nil {
				fn(dim, v)
			}
		}
	}
	if dec.err != nil {
		return 0, dec.err
	}
	return len(b) - len(dec.b), nil
}

// decoder reads varints from a byte slice; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, msg)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail("truncated fixed64")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// count reads the length of a list whose items take at least one byte
// each, so a corrupt length cannot exceed what is left of the input.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("list longer than its input")
		return 0
	}
	return int(n)
}

// bytes reads n raw bytes without copying them.
func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// next reads the j-th id of a sorted set whose previous id is prev.
func (d *decoder) next(j int, prev int64) int64 {
	if j == 0 {
		return d.varint()
	}
	v := int64(uint64(prev) + d.uvarint())
	if v <= prev {
		d.fail("set out of order or repeated")
	}
	return v
}

func (d *decoder) int64s() []int64 {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]int64, n)
	var v int64
	for j := range out {
		v = d.next(j, v)
		out[j] = v
	}
	if d.err != nil {
		return nil
	}
	return out
}
