package esi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// maxNamesBatch is ESI's limit of ids per POST /universe/names/.
const maxNamesBatch = 1000

// nameFlight is one in-flight resolution of a set of ids. names and err
// are written before done is closed and only read after.
type nameFlight struct {
	done  chan struct{}
	names map[int64]Name
	err   error
}

// Names resolves ids to names with POST /universe/names/ (batches of at
// most 1000), serving cached names first and sharing in-flight lookups
// with concurrent callers. Ids ESI does not know are left out of the
// result (and remembered for NegativeTTL): one unknown id makes ESI
// refuse the whole batch with 404, so the batch is split in halves until
// the unknown ids are isolated. On error the map still holds every name
// that was found.
func (c *Client) Names(ctx context.Context, ids []int64) (map[int64]Name, error) {
	c.ensureLoaded(ctx)
	out := make(map[int64]Name, len(ids))
	miss := c.cachedNames(ids, out)
	if len(miss) == 0 {
		return out, nil
	}
	return out, c.resolveNames(ctx, miss, out)
}

// cachedNames copies the cached names of ids into out and returns the
// ids not in the cache, sorted and distinct. Ids ≤ 0 are ignored.
func (c *Client) cachedNames(ids []int64, out map[int64]Name) []int64 {
	var miss []int64
	for _, id := range ids {
		if id <= 0 {
			continue
		}
		if _, ok := out[id]; ok {
			continue
		}
		n, ok := c.cachedName(id)
		switch {
		case !ok:
			miss = append(miss, id)
		case n.Name != "":
			out[id] = n
		}
	}
	slices.Sort(miss)
	return slices.Compact(miss)
}

func (c *Client) cachedName(id int64) (Name, bool) {
	it := c.names.Get(id)
	c.metrics.lookup("name", it != nil)
	if it == nil {
		return Name{}, false
	}
	return it.Value(), true
}

// resolveNames fetches miss (sorted, distinct, not cached) and adds the
// names found to out.
func (c *Client) resolveNames(ctx context.Context, miss []int64, out map[int64]Name) error {
	by, err := c.claimNames(ctx, miss)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range miss {
		f := by[id]
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if n := f.names[id]; n.Name != "" {
			out[id] = n
		}
		if f.err != nil && !slices.Contains(errs, f.err) {
			errs = append(errs, f.err)
		}
	}
	return errors.Join(errs...)
}

// claimNames finds the flight of every id: one already in the air, or a
// new one that this call starts for the rest.
func (c *Client) claimNames(ctx context.Context, ids []int64) (map[int64]*nameFlight, error) {
	by := make(map[int64]*nameFlight, len(ids))
	own := &nameFlight{done: make(chan struct{}), names: map[int64]Name{}}
	var mine []int64
	c.flightMu.Lock()
	for _, id := range ids {
		if f := c.nameFlights[id]; f != nil {
			by[id] = f
			continue
		}
		by[id] = own
		c.nameFlights[id] = own
		mine = append(mine, id)
	}
	c.flightMu.Unlock()
	if len(mine) == 0 {
		return by, nil
	}
	fctx, done, err := c.flightCtx(ctx)
	if err != nil {
		own.err = err
		c.landNames(own, mine)
		return nil, err
	}
	go func() {
		defer done()
		own.err = c.fetchNames(fctx, mine, own.names)
		c.landNames(own, mine)
	}()
	return by, nil
}

// landNames ends a flight: later callers find its names in the cache.
func (c *Client) landNames(f *nameFlight, ids []int64) {
	c.flightMu.Lock()
	for _, id := range ids {
		if c.nameFlights[id] == f {
			delete(c.nameFlights, id)
		}
	}
	c.flightMu.Unlock()
	close(f.done)
}

// fetchNames resolves sorted ids in batches, caching what it learns and
// recording it in into. It returns the first error after trying every
// batch.
func (c *Client) fetchNames(ctx context.Context, ids []int64, into map[int64]Name) error {
	var first error
	for len(ids) > 0 {
		n := min(len(ids), maxNamesBatch)
		if err := c.fetchBatch(ctx, ids[:n], into); err != nil && first == nil {
			first = err
		}
		ids = ids[n:]
	}
	return first
}

// fetchBatch posts one batch of sorted ids; on 404 it splits the batch.
func (c *Client) fetchBatch(ctx context.Context, ids []int64, into map[int64]Name) error {
	var got []Name
	r := request{route: "names", method: http.MethodPost, path: "/universe/names/", body: idsJSON(ids)}
	err := c.call(ctx, r, func(b []byte) error {
		var err error
		got, err = decodeNames(b)
		return err
	})
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		if len(ids) == 1 {
			c.unknownName(ids[0], into)
			return nil
		}
		half := len(ids) / 2
		return errors.Join(c.fetchBatch(ctx, ids[:half], into), c.fetchBatch(ctx, ids[half:], into))
	}
	if err != nil {
		return err
	}
	for _, n := range got {
		if _, asked := slices.BinarySearch(ids, n.ID); asked && n.Name != "" {
			c.storeName(n, c.cfg.NameTTL)
			c.markDirty(n.ID)
			into[n.ID] = n
		}
	}
	for _, id := range ids {
		if _, ok := into[id]; !ok {
			c.unknownName(id, into) // answered without it: ESI does not know it either
		}
	}
	return nil
}

func (c *Client) unknownName(id int64, into map[int64]Name) {
	c.storeName(Name{ID: id}, c.cfg.NegativeTTL)
	into[id] = Name{ID: id}
}

func idsJSON(ids []int64) []byte {
	b := make([]byte, 0, len(ids)*11+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return append(b, ']')
}

// decodeNames decodes a POST /universe/names/ answer: a JSON array of
// {id, name, category}. Ids must be positive.
func decodeNames(b []byte) ([]Name, error) {
	if firstByte(b) != '[' {
		return nil, errors.New("not a JSON array")
	}
	var names []Name
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, err
	}
	for i, n := range names {
		if n.ID <= 0 {
			return nil, fmt.Errorf("entry %d: id %d is not positive", i, n.ID)
		}
	}
	return names, nil
}
