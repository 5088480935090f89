package server

import (
	"sync"
	"sync/atomic"
)

// outItem is one message queued for a connection: wire bytes shared by
// every connection it was matched for, or bytes of this connection alone,
// or a task the writer runs in order (catch-up, preload). For a
// WebSocket the bytes are whole frames; for SSE, whole events.
type outItem struct {
	wire []byte
	// also follows wire and is sent even when wire is skipped (the
	// kill_count_update after a killmail_update).
	also []byte
	// offset is the write-log offset wire carries (0 for none). The
	// writer skips killmails at or below the last offset it sent, so
	// catch-up and live never repeat one.
	offset uint64
	size   int
	task   func() error
}

// closeKind says why a connection is being closed.
type closeKind int

const (
	// closeGone: the peer went away or the transport failed. Nothing more
	// is written.
	closeGone closeKind = iota + 1
	// closeSlow: the queue passed its byte budget; the connection is
	// closed with a "slow consumer" reason and may resume.
	closeSlow
	// closeShutdown: the server is stopping; queued messages are flushed
	// first.
	closeShutdown
)

// outQueue is a connection's bounded outbound queue. The hub's tail
// enqueues (never blocking); the connection's writer drains. Past its
// byte budget the queue drops what it holds and closes as slow.
type outQueue struct {
	mu      sync.Mutex
	items   []outItem
	bytes   int
	limit   int
	closing closeKind
	// state mirrors closing for lock-free reads by the writer.
	state atomic.Int32
	// onOverflow runs once, under mu, when the budget is exceeded: it
	// unblocks a writer stuck on a client that does not read.
	onOverflow func()
	wake       chan struct{}
	// spawn, when set, replaces wake: a writer goroutine is started when
	// there is something to write and none runs (running, under mu), and
	// it ends once the queue is empty (idle). An idle connection then has
	// no writer goroutine and no writer stack.
	spawn   func()
	running bool
}

func newOutQueue(limit int) *outQueue {
	return &outQueue{limit: limit, wake: make(chan struct{}, 1)}
}

// signal wakes the writer. Called with mu held.
func (q *outQueue) signal() {
	if q.spawn != nil {
		if !q.running {
			q.running = true
			go q.spawn()
		}
		return
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// spawnWriters switches the queue to transient writers running fn, and
// starts one at once when something is already queued or closing.
func (q *outQueue) spawnWriters(fn func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.spawn = fn
	if len(q.items) > 0 || q.closing != 0 {
		q.signal()
	}
}

// idle ends a transient writer's turn when nothing is left to write: it
// reports true (and the next push starts another writer) unless items or
// a close came in meanwhile.
func (q *outQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 || q.closing != 0 {
		return false
	}
	q.running = false
	return true
}

// push enqueues it unless the queue is closing. It reports whether this
// push overflowed the budget (the queue is then closing as slow).
func (q *outQueue) push(it outItem) (overflowed bool) {
	q.mu.Lock()
	overflowed = q.pushLocked(it)
	q.mu.Unlock()
	return overflowed
}

// pushLocked is push with q.mu held (see locked).
func (q *outQueue) pushLocked(it outItem) (overflowed bool) {
	if q.closing != 0 {
		return false
	}
	if q.limit > 0 && q.bytes+it.size > q.limit {
		q.closeLocked(closeSlow)
		if q.onOverflow != nil {
			q.onOverflow()
		}
		return true
	}
	q.items = append(q.items, it)
	q.bytes += it.size
	q.signal()
	return false
}

// locked runs fn with the queue locked, so that what fn registers
// elsewhere and what it pushes happen atomically with respect to the tail.
func (q *outQueue) locked(fn func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	fn()
}

// close starts closing with kind; the first reason wins. Slow and gone
// drop what is queued; shutdown lets the writer flush it.
func (q *outQueue) close(kind closeKind) {
	q.mu.Lock()
	q.closeLocked(kind)
	q.mu.Unlock()
}

func (q *outQueue) closeLocked(kind closeKind) {
	if q.closing != 0 {
		return
	}
	q.closing = kind
	q.state.Store(int32(kind))
	if kind != closeShutdown {
		clear(q.items)
		q.items, q.bytes = nil, 0
	}
	q.signal()
}

// abandoned reports whether queued messages are no longer wanted (slow or
// gone; a shutdown still flushes). Lock-free, for the writer's loop.
func (q *outQueue) abandoned() bool {
	k := closeKind(q.state.Load())
	return k == closeSlow || k == closeGone
}

// kind returns how the queue is closing (0 while open).
func (q *outQueue) kind() closeKind { return closeKind(q.state.Load()) }

// take hands the writer everything queued and the closing state, and
// keeps spare (emptied) as the next backing array.
func (q *outQueue) take(spare []outItem) ([]outItem, closeKind) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items, q.bytes = spare[:0], 0
	return items, q.closing
}

// size returns the bytes queued.
func (q *outQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// recycle clears a drained batch and keeps it for reuse when small, so an
// idle connection holds no large array and no stale message.
func recycle(batch []outItem) []outItem {
	clear(batch)
	if cap(batch) > 16 {
		return nil
	}
	return batch[:0]
}
