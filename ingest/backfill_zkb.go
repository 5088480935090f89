package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// dayProgress is the value under a day's progress key.
type dayProgress struct {
	Done      bool `json:"done"`
	Killmails int  `json:"killmails"`
}

// ZKBDay imports one UTC day of zKillboard history: the day's id → hash
// map from zKillboard, each body from ESI (through the Processor, under
// the ESI client's limits) and, with ZKBBlocks, each zkb block from
// zKillboard. Killmails already stored (with a zkb block when one is
// wanted) are not asked for again, so an interrupted day resumes quickly.
// The day is marked done in the commit of its last batch, unless it is
// not over yet or some zkb blocks could not be fetched.
func (b *Backfill) ZKBDay(ctx context.Context, day time.Time) (Tally, error) {
	if b.zkb == nil {
		return Tally{}, errors.New("ingest: backfill: no zKillboard client")
	}
	day = day.UTC().Truncate(24 * time.Hour)
	key := PrefixBackfillZKB + day.Format("20060102")
	var prog dayProgress
	if ok, err := b.progress(ctx, key, &prog); err != nil {
		return Tally{}, err
	} else if ok && prog.Done {
		t := Tally{Skipped: prog.Killmails}
		b.count(t)
		return t, nil
	}
	hashes, err := b.zkb.History(ctx, day)
	if err != nil {
		return Tally{}, fmt.Errorf("ingest: zkillboard history of %s: %w", day.Format(time.DateOnly), err)
	}
	ids := make([]int64, 0, len(hashes))
	for id := range hashes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	run := &dayRun{b: b, hashes: hashes, over: !day.Add(24 * time.Hour).After(b.cfg.Now())}
	t, err := run.run(ctx, ids, key)
	if err == nil && !run.over {
		b.log.InfoContext(ctx, "day not over; not marking it done", "day", day.Format(time.DateOnly))
	}
	return t, err
}

// dayRun imports one day's killmails in batches.
type dayRun struct {
	b      *Backfill
	hashes map[int64]string
	over   bool // the day has ended: it can be marked done
	// missingZKB says some zkb blocks could not be fetched: the day stays
	// open so that a later run fills them in.
	missingZKB bool
}

func (r *dayRun) run(ctx context.Context, ids []int64, key string) (Tally, error) {
	var t Tally
	for start := 0; start == 0 || start < len(ids); start += r.b.cfg.FetchBatch {
		part := ids[start:min(start+r.b.cfg.FetchBatch, len(ids))]
		items, ct, err := r.items(ctx, part)
		if err != nil {
			return t, err
		}
		var kv map[string][]byte
		if start+len(part) == len(ids) && r.over && !r.missingZKB {
			kv = map[string][]byte{key: mustJSON(dayProgress{Done: true, Killmails: len(ids)})}
		}
		res, err := r.b.process(ctx, items, kv)
		if err != nil {
			return t, err
		}
		names := make([]string, len(items))
		for i, it := range items {
			names[i] = "killmail " + strconv.FormatInt(it.KillmailID, 10)
		}
		ct.results(res, names)
		t.Add(ct)
		r.b.count(ct)
	}
	return t, nil
}

// items turns ids into pipeline items, leaving out (as duplicates) the
// killmails the store already has in full.
func (r *dayRun) items(ctx context.Context, ids []int64) ([]Item, Tally, error) {
	var t Tally
	items := make([]Item, 0, len(ids))
	for _, id := range ids {
		t.Read++
		have, err := r.stored(ctx, id)
		if err != nil {
			return nil, t, err
		}
		if have {
			t.Duplicate++
			continue
		}
		it := Item{KillmailID: id, Hash: r.hashes[id]}
		if r.b.cfg.ZKBBlocks && !r.missingZKB {
			if it, err = r.withZKB(ctx, it); err != nil {
				return nil, t, err
			}
		}
		items = append(items, it)
	}
	return items, t, nil
}

// stored reports whether the store has the killmail, with a zkb block
// when one is wanted.
func (r *dayRun) stored(ctx context.Context, id int64) (bool, error) {
	e, err := r.b.st.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !r.b.cfg.ZKBBlocks {
		return true, nil
	}
	km, err := e.Killmail()
	if err != nil {
		return false, nil // unreadable: store a fresh copy
	}
	return km.ZKB != nil, nil
}

// withZKB adds zKillboard's block (and body, when the answer has it) to
// an item. A killmail zKillboard does not know goes on without one. When
// zKillboard cannot answer even after the retries, the rest of the day
// goes on without blocks (no more asking a struggling or blocking
// upstream) and the day stays open for a later run to fill them in.
func (r *dayRun) withZKB(ctx context.Context, it Item) (Item, error) {
	wait := r.b.cfg.RetryWait
	for attempt := 0; ; attempt++ {
		e, err := r.b.zkb.Killmail(ctx, it.KillmailID)
		switch {
		case err == nil:
			z := e.Item()
			if z.Hash == "" {
				z.Hash = it.Hash
			}
			return z, nil
		case errors.Is(err, ErrNotFound):
			return it, nil
		case ctx.Err() != nil:
			return it, ctx.Err()
		case attempt >= r.b.cfg.Retries:
			r.missingZKB = true
			r.b.log.WarnContext(ctx, "no zkb block; storing the killmail without one", "killmail_id", it.KillmailID, "err", err)
			return it, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return it, err
		}
		wait *= 2
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ingest: encode %T: %v", v, err))
	}
	return b
}
