package ingest

import (
	"context"
	"errors"
	"sync"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// reader calls fn with every record of a source, in order.
type reader func(ctx context.Context, fn func(Record) error) error

// chunk is one batch of a file's records on its way to the store. Chunks
// are decoded in parallel but stored in order, so that the progress of
// each commit (records done from the first) is exact.
type chunk struct {
	recs []Record
	// end is how many records of the file are done once this chunk is.
	end int
	// last says the file ends with this chunk.
	last bool

	items []Item
	names []string // names[i] is where items[i] came from
	tally Tally    // records read and refused by decoding
	ready chan struct{}
}

func (c *chunk) decode() {
	defer close(c.ready)
	for _, rec := range c.recs {
		c.tally.Read++
		if rec.Err != nil {
			c.tally.reject(rec.Name, rec.Err)
			continue
		}
		it, err := DecodeRecord(rec.Raw)
		if err != nil {
			c.tally.reject(rec.Name, err)
			continue
		}
		c.items = append(c.items, it)
		c.names = append(c.names, rec.Name)
	}
	c.recs = nil
}

// fileRun imports one file: a producer reads records into chunks and
// starts their decoding, the caller's goroutine stores them in order.
type fileRun struct {
	b    *Backfill
	key  string
	size int64
	skip int // records done by earlier runs

	decoders sync.WaitGroup
}

func (r *fileRun) run(ctx context.Context, read reader) (Tally, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan *chunk, r.b.cfg.Workers)
	var readErr error
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		defer close(chunks)
		readErr = r.produce(ctx, read, chunks)
	}()
	t := Tally{Skipped: r.skip}
	r.b.count(Tally{Skipped: r.skip})
	storeErr := r.consume(ctx, chunks, &t)
	cancel()
	for range chunks { // unblock the producer after a store failure
	}
	<-produced
	r.decoders.Wait()
	if storeErr != nil {
		return t, storeErr
	}
	return t, readErr
}

// produce reads records into chunks, starts decoding each and sends them
// in order. A broken stream still sends what came before it.
func (r *fileRun) produce(ctx context.Context, read reader, out chan<- *chunk) error {
	n := 0
	c := r.newChunk()
	send := func(last bool) error {
		c.end, c.last = max(n, r.skip), last
		r.decoders.Add(1)
		go func(c *chunk) {
			defer r.decoders.Done()
			c.decode()
		}(c)
		select {
		case out <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		c = r.newChunk()
		return nil
	}
	err := read(ctx, func(rec Record) error {
		n++
		if n <= r.skip {
			return nil
		}
		c.recs = append(c.recs, rec)
		if len(c.recs) < r.b.cfg.Batch {
			return nil
		}
		return send(false)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, ErrArchive) {
		return err
	}
	if serr := send(err == nil); serr != nil {
		return serr
	}
	return err
}

func (r *fileRun) newChunk() *chunk {
	return &chunk{recs: make([]Record, 0, r.b.cfg.Batch), ready: make(chan struct{})}
}

// consume stores the chunks in order, each with the file's progress.
func (r *fileRun) consume(ctx context.Context, in <-chan *chunk, t *Tally) error {
	// A chunk's results are waited for only once the next chunk is
	// queued behind it, so the store commits and indexes one while the
	// Processor prepares the next.
	var queued *queuedChunk
	for c := range in {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, r.finish(queued, t))
		}
		select {
		case <-c.ready:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), r.finish(queued, t))
		}
		var kv map[string][]byte
		if r.key != "" {
			kv = map[string][]byte{r.key: fileProgress{Records: c.end, Done: c.last, Size: r.size}.encode()}
		}
		wait, err := r.b.submit(ctx, c.items, kv)
		if err != nil {
			return errors.Join(err, r.finish(queued, t))
		}
		if err := r.finish(queued, t); err != nil {
			return err
		}
		queued = &queuedChunk{c: c, wait: wait}
	}
	return r.finish(queued, t)
}

// queuedChunk is a chunk submitted to the Processor.
type queuedChunk struct {
	c    *chunk
	wait func() ([]store.Result, error)
}

// finish waits for a queued chunk (nil: none) and counts its results.
func (r *fileRun) finish(q *queuedChunk, t *Tally) error {
	if q == nil {
		return nil
	}
	res, err := q.wait()
	if err != nil {
		return err
	}
	ct := q.c.tally
	ct.results(res, q.c.names)
	t.Add(ct)
	r.b.count(ct)
	return nil
}

// process runs items through the Processor, retrying failures a retry
// may fix (ESI unreachable for a body) with a doubling pause.
func (b *Backfill) process(ctx context.Context, items []Item, kv map[string][]byte) ([]store.Result, error) {
	wait, err := b.submit(ctx, items, kv)
	if err != nil {
		return nil, err
	}
	return wait()
}

// submitter is a Processor that can queue a batch for the store and
// return before its commit (the Pipeline).
type submitter interface {
	Submit(ctx context.Context, items []Item, kv map[string][]byte) (*Submitted, error)
}

// submit queues items with the Processor when it can (see submitter), or
// else processes them, retrying as process says, and returns the wait for
// their results. The retries cover the work before the store's queue
// (fetching bodies, enrichment); a failed wait is not retried.
func (b *Backfill) submit(ctx context.Context, items []Item, kv map[string][]byte) (func() ([]store.Result, error), error) {
	wait := b.cfg.RetryWait
	for attempt := 0; ; attempt++ {
		var (
			done func() ([]store.Result, error)
			err  error
		)
		if sp, ok := b.proc.(submitter); ok {
			var sub *Submitted
			if sub, err = sp.Submit(ctx, items, kv); err == nil {
				done = sub.Wait
			}
		} else {
			var res []store.Result
			if res, err = b.proc.Process(ctx, items, kv); err == nil {
				done = func() ([]store.Result, error) { return res, nil }
			}
		}
		if err == nil || attempt >= b.cfg.Retries || ctx.Err() != nil {
			return done, err
		}
		b.log.WarnContext(ctx, "storing a backfill batch failed; retrying", "items", len(items), "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait *= 2
	}
}
