// Package bunzip decompresses bzip2 streams (concatenated streams
// included) with the blocks' costly last stage spread over workers.
//
// compress/bzip2 decodes a block byte by byte on one core: an EVE Ref
// archive of a busy day takes it about 10 s. Here one goroutine does the
// sequential part of each block (bit parsing, table-driven Huffman
// decoding, move-to-front) and workers do the rest (inverse BWT walked as
// many interleaved chains, run-length decoding, CRC by way of hash/crc32),
// in parallel across blocks; the output keeps the stream's order. Memory
// stays bounded: at most 4×workers+4 blocks (a 900 kB block takes 900 kB
// plus its output) are in flight or kept for reuse, and each worker keeps
// 5 MB of scratch space.
//
// The block format follows compress/bzip2 and the bzip2 reference
// decoder; every block CRC and stream CRC is checked, and a stream that
// breaks off reads as io.ErrUnexpectedEOF after the blocks before the
// break.
package bunzip

import (
	"context"
	"io"
	"sync"
)

// StructuralError reports bzip2 data that is not valid.
type StructuralError string

func structural(s string) error { return StructuralError(s) }

// Error says what is wrong with the data.
func (e StructuralError) Error() string { return "bunzip: invalid bzip2 data: " + string(e) }

// Reader decompresses a bzip2 stream. Its goroutines run until the
// stream ends, fails, or Close is called; Close must be called.
type Reader struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pending chan *block // in stream order, decoded or not
	free    chan *block

	cur  *block
	rest []byte
	err  error
}

// NewReader starts decompressing r with workers goroutines for the
// blocks' last stage (at least 1) and one for the sequential part. Read
// fails with ctx's error once ctx ends.
func NewReader(ctx context.Context, r io.Reader, workers int) *Reader {
	workers = max(workers, 1)
	ctx, cancel := context.WithCancel(ctx)
	z := &Reader{
		ctx:     ctx,
		cancel:  cancel,
		pending: make(chan *block, 2*workers),
		free:    make(chan *block, 2*workers+2),
	}
	jobs := make(chan *block, workers)

	z.wg.Add(1 + workers)
	go func() {
		defer z.wg.Done()
		z.produce(ctx, &entropy{br: newBitReader(r)}, jobs)
	}()
	for range workers {
		go func() {
			defer z.wg.Done()
			inv := new(inverter)
			for b := range jobs {
				b.err = inv.invert(b)
				close(b.done)
			}
		}()
	}
	return z
}

// produce runs the sequential stage, hands each block to a worker and
// queues it for Read, in order. An error is queued as a block of its
// own, after which it stops.
func (z *Reader) produce(ctx context.Context, e *entropy, jobs chan<- *block) {
	defer close(z.pending)
	defer close(jobs)
	for {
		var b *block
		select {
		case b = <-z.free:
		default:
			b = new(block)
		}
		b.done, b.err = make(chan struct{}), nil
		more, err := e.next(b)
		if err != nil || !more {
			if err != nil {
				b.err = err
				close(b.done)
				select {
				case z.pending <- b:
				case <-ctx.Done():
				}
			}
			return
		}
		select {
		case jobs <- b:
		case <-ctx.Done():
			return
		}
		select {
		case z.pending <- b:
		case <-ctx.Done():
			return
		}
	}
}

// Read reads decompressed bytes. A damaged stream's error comes after
// the bytes of the blocks before the damage: io.ErrUnexpectedEOF when the
// input ends early, a StructuralError when it is corrupted.
func (z *Reader) Read(p []byte) (int, error) {
	for len(z.rest) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.next()
	}
	n := copy(p, z.rest)
	z.rest = z.rest[n:]
	return n, nil
}

// next makes the next decoded block current, or sets z.err.
func (z *Reader) next() {
	if z.cur != nil {
		select {
		case z.free <- z.cur:
		default:
		}
		z.cur = nil
	}
	var b *block
	select {
	case b = <-z.pending:
	case <-z.ctx.Done():
		z.err = z.ctx.Err()
		return
	}
	if b == nil {
		z.err = io.EOF
		return
	}
	select {
	case <-b.done:
	case <-z.ctx.Done():
		z.err = z.ctx.Err()
		return
	}
	if b.err != nil {
		z.err = b.err
		return
	}
	z.cur, z.rest = b, b.out
}

// Close stops the goroutines and waits for them. It does not close the
// underlying reader.
func (z *Reader) Close() error {
	z.cancel()
	for range z.pending { // let the producer see ctx or finish
	}
	z.wg.Wait()
	return nil
}
