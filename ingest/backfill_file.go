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
	for c := range in {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-c.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		var kv map[string][]byte
		if r.key != "" {
			kv = map[string][]byte{r.key: fileProgress{Records: c.end, Done: c.last, Size: r.size}.encode()}
		}
		res, err := r.b.process(ctx, c.items, kv)
		if err != nil {
			return err
		}
		ct := c.tally
		ct.results(res, c.names)
		t.Add(ct)
		r.b.count(ct)
	}
	return nil
}

// process runs items through the Processor, retrying failures a retry
// may fix (ESI unreachable for a body) with a doubling pause.
func (b *Backfill) process(ctx context.Context, items []Item, kv map[string][]byte) ([]store.Result, error) {
	wait := b.cfg.RetryWait
	for attempt := 0; ; attempt++ {
		res, err := b.proc.Process(ctx, items, kv)
		if err == nil || attempt >= b.cfg.Retries || ctx.Err() != nil {
			return res, err
		}
		b.log.WarnContext(ctx, "storing a backfill batch failed; retrying", "items", len(items), "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait *= 2
	}
}
