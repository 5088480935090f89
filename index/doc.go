// Package index is the in-memory search index over the store's write log.
//
// It maps killmail dimensions (solar system, character, corporation,
// alliance, victim ship type and UTC day of the kill) to the set of write-log
// offsets holding them, and answers queries that AND across dimensions and OR
// within one, bounded by kill time and total value, newest first by
// (kill time, killmail id), one page at a time.
//
// The index is pure: it knows offsets, ids, times and values, never JSON. The
// store feeds it one [Doc] per killmail, persists the same Doc next to the
// killmail (see [Doc.AppendBinary]) so the index can be rebuilt after a crash,
// and may save and load whole snapshots with [Index.WriteTo] and [ReadIndex].
//
// Offsets are 32-bit. A set of offsets is a sorted list while it is small
// (most characters appear on a handful of killmails): up to four offsets
// inline in its hash-table slot, then a run of a []uint32 arena; it becomes a
// roaring bitmap once it grows past a thousand. That keeps memory near 260
// bytes per killmail at a million, and apart from the bitmaps the index holds
// no pointers: the garbage collector has next to nothing to scan in it.
package index
