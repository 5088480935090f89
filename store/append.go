package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// Batch is one atomic write: killmails to append and key-value pairs to
// set in the same commit (a feed's cursor beside the killmails it brought).
type Batch struct {
	Killmails []*Killmail
	// KV is written in the same commit; a nil value deletes the key.
	KV map[string][]byte
	// Quiet marks the killmails as not for live feeds (backfill of old
	// kills). They are stored and indexed like the others.
	Quiet bool
}

// Status says what Append did with one killmail.
type Status int

// The outcomes of appending one killmail.
const (
	// Added: a new killmail at a new offset.
	Added Status = iota + 1
	// Duplicate: the id was stored already and this copy adds nothing.
	Duplicate
	// Updated: the id was stored already; this richer copy replaced it at
	// the same offset.
	Updated
	// Rejected: the killmail failed validation; Result.Err says why.
	Rejected
)

// String names the status for logs and JSON.
func (s Status) String() string {
	switch s {
	case Added:
		return "added"
	case Duplicate:
		return "duplicate"
	case Updated:
		return "updated"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// Result is the outcome for one killmail of a Batch, in the same order.
type Result struct {
	Offset uint64
	Status Status
	// Err is set for Rejected: a *ValidationError.
	Err error
}

// op is one unit of work for the writer goroutine.
type op struct {
	ctx context.Context
	// append
	batch   Batch
	prep    []prepared
	results []Result
	// custom mutations (update, retention) run alone
	apply func(b *pebble.Batch) (after func(), err error)

	err  error
	done chan struct{}
}

type prepared struct {
	km *Killmail
	// rec is the log record (see newRecord) and stored its compressed
	// form written to Pebble; the writer sets the flags of both.
	rec, stored []byte
	doc         index.Doc
}

// Append validates, deduplicates and durably writes a batch. It returns
// once the commit is synced: from then on the killmails are readable,
// indexed and visible to tail readers. Validation failures do not fail the
// batch; they come back as Rejected results. The error is for the commit
// itself (or ctx, or a closed store), in which case nothing was written.
func (s *Store) Append(ctx context.Context, b Batch) ([]Result, error) {
	p, err := s.Submit(ctx, b)
	if err != nil {
		return nil, err
	}
	return p.Wait()
}

// Pending is a batch Submit queued for the writer.
type Pending struct{ o *op }

// Wait blocks until the batch's commit is synced and indexed (or failed)
// and returns what Append would.
func (p *Pending) Wait() ([]Result, error) {
	<-p.o.done
	if p.o.err != nil {
		return nil, p.o.err
	}
	return p.o.results, nil
}

// Submit validates and encodes b, as Append does, and queues it for the
// writer, then returns without waiting for the commit: a caller can
// prepare its next batch while this one commits. Batches submitted one
// after another (each Submit returned before the next starts) commit in
// that order, into one sequential WAL, so a progress cursor in a later
// batch's KV is never durable without the killmails of an earlier one
// (Pebble treats a failed WAL write as fatal: there is no later commit
// after a lost one). Submit blocks only while the writer's queue is full;
// its error means nothing was queued. Once queued, a batch is committed
// even if ctx ends.
func (s *Store) Submit(ctx context.Context, b Batch) (*Pending, error) {
	o := &op{ctx: ctx, batch: b, results: make([]Result, len(b.Killmails)), done: make(chan struct{})}
	now := s.cfg.Now()
	o.prep = make([]prepared, len(b.Killmails))
	var arena []byte // the batch's compressed records
	for i, km := range b.Killmails {
		km.Normalize()
		if err := km.Validate(now); err != nil {
			o.results[i] = Result{Status: Rejected, Err: err}
			continue
		}
		rec, err := newRecord(km)
		if err != nil {
			o.results[i] = Result{Status: Rejected, Err: err}
			continue
		}
		var stored []byte
		stored, arena = compressRecord(rec, arena, len(b.Killmails)-i-1)
		o.prep[i] = prepared{km: km, rec: rec, stored: stored, doc: docOf(km)}
	}
	if err := s.enqueue(ctx, o); err != nil {
		return nil, err
	}
	return &Pending{o}, nil
}

// Update replaces the stored copy of a killmail in place (same offset),
// for enrichment that completes later, and writes kv in the same commit.
// The killmail id must match the one stored at offset. What the stored
// copy has and km lacks (a zkb block, a hash, names) is kept, so an update
// racing a richer copy never loses what that copy brought.
func (s *Store) Update(ctx context.Context, offset uint64, km *Killmail, kv map[string][]byte) error {
	km.Normalize()
	if err := km.Validate(s.cfg.Now()); err != nil {
		return err
	}
	o := &op{ctx: ctx, done: make(chan struct{})}
	o.apply = func(b *pebble.Batch) (func(), error) {
		cur, err := s.offsetOf(km.KillmailID)
		if err != nil {
			return nil, err
		}
		if cur != offset {
			return nil, fmt.Errorf("store: update offset %d: killmail %d is at offset %d", offset, km.KillmailID, cur)
		}
		old, err := s.At(ctx, offset)
		if err != nil {
			return nil, err
		}
		oldKM, err := old.Killmail()
		if err != nil {
			return nil, err
		}
		merged := km.mergedWith(oldKM)
		rec, err := newRecord(merged)
		if err != nil {
			return nil, err
		}
		doc := docOf(merged)
		doc.Offset = offset
		var flags byte
		if old.Quiet {
			flags = flagQuiet
		}
		if err := dropStaleTime(b, oldKM, merged); err != nil {
			return nil, err
		}
		stored, _ := compressRecord(rec, nil, 0)
		rec[1], stored[1] = flags, flags
		if err := putRecords(b, []prepared{{km: merged, rec: rec, stored: stored, doc: doc}}); err != nil {
			return nil, err
		}
		if err := putKV(b, kv); err != nil {
			return nil, err
		}
		return func() {
			s.indexAdd(doc)
			s.recent.put(offset, rec)
		}, nil
	}
	return s.submit(ctx, o)
}

// submit queues o and waits for it.
func (s *Store) submit(ctx context.Context, o *op) error {
	if err := s.enqueue(ctx, o); err != nil {
		return err
	}
	// Once queued, the op runs to completion; waiting for it keeps the
	// caller's view honest even when ctx ends meanwhile.
	<-o.done
	return o.err
}

// enqueue hands o to the writer.
func (s *Store) enqueue(ctx context.Context, o *op) error {
	if s.closed.Load() {
		return ErrClosed
	}
	select {
	case s.ops <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return ErrClosed
	}
}

// writer is the single goroutine that mutates the store. It merges queued
// appends into one synced commit (group commit) and hands each committed
// group to the indexer goroutine, so that indexing one group overlaps the
// commit of the next.
func (s *Store) writer() {
	idxDone := make(chan struct{})
	go s.indexer(idxDone)
	defer func() {
		close(s.indexed)
		<-idxDone
		close(s.done)
	}()
	for {
		var first *op
		select {
		case first = <-s.ops:
		case <-s.stop:
			s.drain()
			return
		}
		s.run(first)
	}
}

// indexDepth bounds the applied groups waiting for their WAL sync and the
// indexer. The writer applies the next groups while earlier ones sync
// (Pebble folds their syncs into one), so a few in flight keep both the
// writer and the disk busy; more would only add latency.
const indexDepth = 4

// committed is an applied group on its way to the indexer, which waits for
// its WAL sync (batch.SyncWait) before indexing and publishing it.
type committed struct {
	batch *pebble.Batch
	group []*op
	docs  []index.Doc
	// recs are the records written, by offset, for the recent cache.
	recs []offsetRecord
	// head is the new highest offset, or 0 when the group added none.
	head uint64
}

// offsetRecord is a record written at an offset.
type offsetRecord struct {
	off uint64
	rec []byte
}

// indexer waits for each applied group's WAL sync, in commit order, then
// indexes and publishes it: head advances, callers return and tail readers
// wake only once a group's killmails are both durable and indexed.
func (s *Store) indexer(done chan<- struct{}) {
	defer close(done)
	for c := range s.indexed {
		err := c.batch.SyncWait()
		c.batch.Close()
		if err != nil {
			// Pebble treats a failed WAL write or sync as fatal, so this
			// is not expected; should it happen, these killmails may not
			// be durable and the writer has moved past them: fail them
			// and every later write rather than publish any of them.
			s.fail(fmt.Errorf("store: commit: %w", err))
		}
		if err := s.failed(); err != nil {
			for _, o := range c.group {
				o.err = err
				close(o.done)
			}
			s.inflight.Done()
			continue
		}
		for _, d := range c.docs {
			s.indexAdd(d)
		}
		for _, r := range c.recs {
			s.recent.put(r.off, r.rec)
		}
		if c.head != 0 {
			s.head.Store(c.head)
		}
		for _, o := range c.group {
			close(o.done)
		}
		if c.head != 0 {
			s.notify()
		}
		s.inflight.Done()
	}
}

// fail marks the store as taking no more writes because of err; the first
// failure is kept.
func (s *Store) fail(err error) {
	if s.broken.CompareAndSwap(nil, &err) {
		s.log.Error("commit failed; the store takes no more writes", "err", err)
	}
}

// failed returns the failure recorded by fail, or nil.
func (s *Store) failed() error {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// drain finishes the ops queued before Close.
func (s *Store) drain() {
	for {
		select {
		case o := <-s.ops:
			s.run(o)
		default:
			return
		}
	}
}

func (s *Store) run(first *op) {
	if first.apply != nil {
		s.runCustom(first)
		return
	}
	group := []*op{first}
	n := len(first.prep)
collect:
	for n < s.cfg.MaxBatch {
		select {
		case o := <-s.ops:
			if o.apply != nil {
				s.commitAppends(group)
				s.runCustom(o)
				return
			}
			group = append(group, o)
			n += len(o.prep)
		default:
			break collect
		}
	}
	s.commitAppends(group)
}

func (s *Store) runCustom(o *op) {
	defer close(o.done)
	// A custom op reads and re-indexes what earlier groups wrote: let the
	// indexer catch up first.
	s.inflight.Wait()
	if err := s.failed(); err != nil {
		o.err = err
		return
	}
	b := s.db.NewBatch()
	defer b.Close()
	after, err := o.apply(b)
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		o.err = err
		return
	}
	if after != nil {
		after()
	}
}

// commitAppends writes a group of append ops in one synced batch. On a
// commit failure every op of the group fails and the offsets handed out
// are taken back, so the log stays dense.
func (s *Store) commitAppends(group []*op) {
	if err := s.failed(); err != nil {
		for _, o := range group {
			o.err = err
			close(o.done)
		}
		return
	}
	// Sized for the group up front: a batch grows by doubling otherwise,
	// copying itself each time.
	size, n := 0, 0
	for _, o := range group {
		for i := range o.prep {
			size += len(o.prep[i].stored) + batchOverhead
		}
		n += len(o.prep)
	}
	b := s.db.NewBatchWithSize(size)
	next := s.next
	// pending holds the ids written earlier in this group; the map is the
	// writer's, kept from group to group.
	pending := s.pending
	clear(pending)
	c := &committed{group: group}
	var err error
	writes := make([]prepared, 0, n)
	for _, o := range group {
		if err = s.stageAppend(b, o, &next, pending, c, &writes); err != nil {
			break
		}
		if err = putKV(b, o.batch.KV); err != nil {
			break
		}
	}
	if err == nil {
		err = putRecords(b, writes)
	}
	if err == nil && next != s.next {
		err = b.Set(keyHead, binary.BigEndian.AppendUint64(nil, next-1), nil)
	}
	applyErr := false
	if err == nil {
		// Applied (visible to the writer's own reads) but not yet synced:
		// the indexer waits for the sync before anything is published, so
		// the writer can stage the next group meanwhile.
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
		applyErr = err != nil
	}
	if err != nil {
		err = fmt.Errorf("store: commit: %w", err)
		if applyErr {
			// Pebble may hold the batch in its commit queue: it is not
			// closed, and the store takes no more writes.
			s.fail(err)
		} else {
			b.Close()
		}
		for _, o := range group {
			o.err = err
			close(o.done)
		}
		return
	}
	c.batch = b
	// The dedup state moves on now, for the next group; the index, head
	// and callers follow on the indexer once the group is durable.
	for _, d := range c.docs {
		s.remember(d.KillmailID)
	}
	if next != s.next {
		c.head = next - 1
	}
	s.next = next
	s.inflight.Add(1)
	s.indexed <- c
}

func (s *Store) stageAppend(b *pebble.Batch, o *op, next *uint64, pending map[int64]*Result, c *committed, writes *[]prepared) error {
	var flags byte
	if o.batch.Quiet {
		flags = flagQuiet
	}
	for i := range o.prep {
		p := &o.prep[i]
		res := &o.results[i]
		if p.km == nil {
			continue // rejected before queueing
		}
		if prev, ok := pending[p.km.KillmailID]; ok {
			// The same id twice in one group: the first copy wins.
			*res = Result{Offset: prev.Offset, Status: Duplicate}
			continue
		}
		off, old, err := s.existing(p.km.KillmailID)
		if err != nil {
			return err
		}
		switch {
		case old == nil:
			off = *next
			*next++
			res.Status = Added
		case p.km.richer(old):
			res.Status = Updated
			if err := dropStaleTime(b, old, p.km); err != nil {
				return err
			}
		default:
			*res = Result{Offset: off, Status: Duplicate}
			pending[p.km.KillmailID] = res
			continue
		}
		res.Offset = off
		p.doc.Offset = off
		p.rec[1], p.stored[1] = flags, flags
		*writes = append(*writes, *p)
		pending[p.km.KillmailID] = res
		c.docs = append(c.docs, p.doc)
		c.recs = append(c.recs, offsetRecord{off, p.rec})
	}
	return nil
}

// existing returns the offset and decoded copy of a stored killmail, or a
// nil copy when the id is new.
func (s *Store) existing(id int64) (uint64, *Killmail, error) {
	if id > 0 && id <= math.MaxUint32 && !s.known.Contains(uint32(id)) {
		return 0, nil, nil // certainly new: no read needed
	}
	off, err := s.offsetOf(id)
	if errors.Is(err, ErrNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	e, err := s.At(context.Background(), off)
	if err != nil {
		return 0, nil, err
	}
	km, err := e.Killmail()
	if err != nil {
		return 0, nil, err
	}
	return off, km, nil
}

// batchOverhead is what a record adds to a batch beside its stored bytes:
// its doc (about 150 bytes) and four keys with their headers and values.
const batchOverhead = 256

// putRecords writes the keys of records whose flags and offsets are set:
// the log record, the index doc, the id and the time key of each. Pebble
// inserts a batch into its memtable in batch order, and an insert next to
// the one before it reuses that one's search, so the keys go in class by
// class rather than record by record: log records and docs in the order
// of their offsets as handed out (ascending but for a replaced copy's),
// then the id keys and the time keys sorted.
func putRecords(b *pebble.Batch, ps []prepared) error {
	type idKeyed struct {
		unix, id int64
		off      uint64
	}
	ids := make([]idKeyed, len(ps))
	var key [17]byte
	var val []byte
	for i := range ps {
		p := &ps[i]
		off := p.doc.Offset
		ids[i] = idKeyed{p.km.KillTime.Unix(), p.km.KillmailID, off}
		if err := b.Set(putU64Key(key[:], prefixLog, off), p.stored, nil); err != nil {
			return err
		}
	}
	for i := range ps {
		val = ps[i].doc.AppendBinary(val[:0])
		if err := b.Set(putU64Key(key[:], prefixDoc, ps[i].doc.Offset), val, nil); err != nil {
			return err
		}
	}
	slices.SortFunc(ids, func(a, b idKeyed) int { return cmp.Compare(a.id, b.id) })
	for _, k := range ids {
		val = binary.BigEndian.AppendUint64(val[:0], k.off)
		if err := b.Set(putU64Key(key[:], prefixID, uint64(k.id)), val, nil); err != nil {
			return err
		}
	}
	slices.SortFunc(ids, func(a, b idKeyed) int { return cmp.Or(cmp.Compare(a.unix, b.unix), cmp.Compare(a.id, b.id)) })
	for _, k := range ids {
		val = binary.BigEndian.AppendUint64(val[:0], k.off)
		if err := b.Set(putTimeKey(key[:], k.unix, k.id), val, nil); err != nil {
			return err
		}
	}
	return nil
}

// dropStaleTime deletes the old time key when a replacement copy of a
// killmail carries another kill time.
func dropStaleTime(b *pebble.Batch, old, km *Killmail) error {
	if old.KillTime.Equal(km.KillTime.Time) {
		return nil
	}
	return b.Delete(timeKey(old.KillTime.Unix(), old.KillmailID), nil)
}

// remember adds an id to the set of stored ids. Writer-owned.
func (s *Store) remember(id int64) {
	if id > 0 && id <= math.MaxUint32 {
		s.known.Add(uint32(id))
	}
}

func (s *Store) indexAdd(d index.Doc) {
	if err := s.ix.Add(d); err != nil {
		// Only an offset beyond 2^32 fails; the data is stored regardless
		// and the log stays the source of truth.
		s.log.Error("index add failed", "offset", d.Offset, "err", err)
	}
}

func putKV(b *pebble.Batch, kv map[string][]byte) error {
	for k, v := range kv {
		var err error
		if v == nil {
			err = b.Delete(kvKey(k), nil)
		} else {
			err = b.Set(kvKey(k), v, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// docOf extracts what the index knows of a killmail. Offset is set later.
// Its id lists are sorted sets, so the doc's encodings (for Pebble and for
// the index) need no sorted copy of their own.
func docOf(km *Killmail) index.Doc {
	return index.Doc{
		KillmailID:   km.KillmailID,
		Time:         km.KillTime.Unix(),
		System:       km.SystemID,
		ShipType:     km.Victim.ShipTypeID,
		Characters:   km.Characters(),
		Corporations: km.Corporations(),
		Alliances:    km.Alliances(),
		Value:        km.TotalValue(),
	}
}
