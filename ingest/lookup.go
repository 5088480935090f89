package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sync/singleflight"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Lookup brings one killmail the store lacks on demand: zKillboard for
// its hash (and maybe its body), ESI for the rest, then the pipeline. It
// is safe for concurrent use; concurrent lookups of one id share a fetch.
type Lookup struct {
	zkb  *ZKB
	proc Processor
	km   Killmails
	sf   singleflight.Group
}

// NewLookup builds a Lookup over a zKillboard client, the pipeline and the
// store the pipeline writes to.
func NewLookup(zkb *ZKB, proc Processor, km Killmails) *Lookup {
	return &Lookup{zkb: zkb, proc: proc, km: km}
}

// FetchKillmail returns the stored entry of a killmail, fetching and
// storing it first when the store lacks it. A killmail zKillboard does
// not know, or whose body ESI refuses, fails with an error matching
// ErrNotFound.
func (l *Lookup) FetchKillmail(ctx context.Context, id int64) (store.Entry, error) {
	e, err := l.km.Get(ctx, id)
	if !errors.Is(err, store.ErrNotFound) {
		return e, err
	}
	ch := l.sf.DoChan(strconv.FormatInt(id, 10), func() (any, error) {
		// Detached from the first caller: others may still wait for it.
		return l.fetch(context.WithoutCancel(ctx), id)
	})
	select {
	case <-ctx.Done():
		return store.Entry{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return store.Entry{}, r.Err
		}
		return r.Val.(store.Entry), nil
	}
}

func (l *Lookup) fetch(ctx context.Context, id int64) (store.Entry, error) {
	z, err := l.zkb.Killmail(ctx, id)
	if err != nil {
		return store.Entry{}, err
	}
	res, err := l.proc.Process(ctx, []Item{z.Item()}, nil)
	if err != nil {
		return store.Entry{}, err
	}
	if len(res) == 1 && res[0].Status == store.Rejected {
		return store.Entry{}, fmt.Errorf("ingest: killmail %d: %w: %w", id, ErrNotFound, res[0].Err)
	}
	return l.km.Get(ctx, id)
}
