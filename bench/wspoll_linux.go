package bench

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// pollSet reads many clients' sockets from a few goroutines
// through epoll (level-triggered): a ready socket costs one read, with no
// goroutine to wake and no read that finds nothing. Each socket belongs to
// one epoll instance, served by one goroutine, which owns its scanner.
type pollSet struct {
	eps  []int
	mu   sync.RWMutex
	socs []*polledConn // by slot; a slot is the epoll event's data
	next atomic.Uint32
	stop atomic.Bool
	wg   sync.WaitGroup
}

// polledConn is one client's socket in a pollSet.
type polledConn struct {
	c    *loadClient
	fd   int
	scan connScanner
	once sync.Once
}

// pollers is how many epoll goroutines serve the clients.
const pollers = 2

func newPollSet() (*pollSet, error) {
	p := &pollSet{}
	for range pollers {
		ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("bench: epoll: %w", err)
		}
		p.eps = append(p.eps, ep)
	}
	for _, ep := range p.eps {
		p.wg.Add(1)
		go p.run(ep)
	}
	return p, nil
}

// add moves conn's socket into the set (conn itself is closed) after
// feeding the bytes already read from it (buffered) to scan; the client's
// done closes when the socket ends.
func (p *pollSet) add(c *loadClient, conn net.Conn, buffered []byte, scan connScanner) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return errors.New("bench: not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	cerr := raw.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) })
	if err = errors.Join(cerr, err); err != nil {
		return fmt.Errorf("bench: dup socket: %w", err)
	}
	_ = conn.Close() // the duplicate keeps the socket open
	w := &polledConn{c: c, fd: fd, scan: scan}
	scan.feed(buffered, c.record)
	p.mu.Lock()
	slot := len(p.socs)
	p.socs = append(p.socs, w)
	p.mu.Unlock()
	c.close = func() { _ = syscall.Shutdown(fd, syscall.SHUT_RDWR) }
	ep := p.eps[p.next.Add(1)%uint32(len(p.eps))]
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(slot)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.finish()
		return fmt.Errorf("bench: epoll add: %w", err)
	}
	return nil
}

func (p *pollSet) run(ep int) {
	defer p.wg.Done()
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for !p.stop.Load() {
		n, err := syscall.EpollWait(ep, events, 100)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			p.mu.RLock()
			w := p.socs[ev.Fd]
			p.mu.RUnlock()
			m, err := syscall.Read(w.fd, buf)
			if m > 0 {
				w.scan.feed(buf[:m], w.c.record)
			}
			if w.scan.ended() || m == 0 || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR)) {
				w.finish()
			}
		}
	}
}

// finish closes the socket (which leaves its epoll set) and the client.
func (w *polledConn) finish() {
	w.once.Do(func() {
		_ = syscall.Close(w.fd)
		close(w.c.done)
	})
}

// close stops the pollers; the clients must have finished.
func (p *pollSet) close() {
	p.stop.Store(true)
	p.wg.Wait()
	for _, ep := range p.eps {
		_ = syscall.Close(ep)
	}
}
