//go:build !linux

package bench

import (
	"errors"
	"net"
)

// pollSet is Linux-only; elsewhere each client reads in its own
// goroutine.
type pollSet struct{}

func newPollSet() (*pollSet, error) { return nil, errors.New("bench: no epoll here") }

func (*pollSet) add(*loadClient, net.Conn, []byte, connScanner) error {
	return errors.New("bench: no epoll here")
}

func (*pollSet) close() {}
