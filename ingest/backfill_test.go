package ingest_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

var update = flag.Bool("update", false, "rewrite the committed test archives")

// committedArchive is a small EVE Ref archive kept under testdata: six
// fixture killmails. TestCommittedArchive rewrites it with -update.
const committedArchive = "testdata/everef/killmails-2026-07-23.tar.bz2"

// committedIDs are the killmails of committedArchive, in archive order.
var committedIDs = []int64{24209201, 4289452, 88336558, 71471486, 63044564, 79274157}

// noNames is the enricher of --no-enrich: killmails keep the names they
// came with.
type noNames struct{}

func (noNames) EnrichMany(context.Context, []*store.Killmail) error { return nil }

// everefMember is a fixture killmail as EVE Ref archives it: the ESI body
// plus killmail_hash and http_last_modified.
func everefMember(km fakeupstream.Killmail) member {
	body := bytes.TrimSuffix(bytes.TrimSpace(km.ESI), []byte("}"))
	body = fmt.Appendf(body, `,"killmail_hash":%q,"http_last_modified":"2026-07-24T00:00:00Z"}`, km.Hash)
	return killmailMember(km.ID, body)
}

// fixtureMembers returns every fixture killmail as an archive member.
func fixtureMembers(t testing.TB) ([]member, []fakeupstream.Killmail) {
	t.Helper()
	kms, err := fakeupstream.LoadKillmails(os.DirFS(fakeupstream.DefaultFixtures()))
	require.NoError(t, err)
	ms := make([]member, len(kms))
	for i, km := range kms {
		ms[i] = everefMember(km)
	}
	return ms, kms
}

func TestCommittedArchive(t *testing.T) {
	if *update {
		ms, kms := fixtureMembers(t)
		var pick []member
		for _, id := range committedIDs {
			for i, km := range kms {
				if km.ID == id {
					pick = append(pick, ms[i])
				}
			}
		}
		writeArchive(t, filepath.Dir(committedArchive), filepath.Base(committedArchive), pick)
	}
	f, err := os.Open(committedArchive)
	require.NoError(t, err)
	defer f.Close()
	var names []string
	require.NoError(t, ingest.ReadEVERef(t.Context(), f, func(rec ingest.Record) error {
		require.NoError(t, rec.Err)
		it, err := ingest.DecodeRecord(rec.Raw)
		require.NoError(t, err, rec.Name)
		require.NotNil(t, it.Killmail)
		assert.Len(t, it.Hash, 40)
		names = append(names, rec.Name)
		return nil
	}))
	var want []string
	for _, id := range committedIDs {
		want = append(want, fmt.Sprintf("killmails/%d.json", id))
	}
	assert.Equal(t, want, names)
}

// backfillEnv is a store, a quiet pipeline and a Backfill over them.
type backfillEnv struct {
	dir  string
	st   *store.Store
	pipe *ingest.Pipeline
	bf   *ingest.Backfill
}

func newBackfillEnv(t *testing.T, dir string, names ingest.Enricher, bodies ingest.Bodies, zkb ingest.History, cfg ingest.BackfillConfig) *backfillEnv {
	t.Helper()
	st := openStore(t, dir)
	pc := fastPipeline(nil)
	pc.Quiet = true
	pipe := ingest.NewPipeline(st, bodies, names, pc, testLogger(t))
	if cfg.RetryWait == 0 {
		cfg.RetryWait = time.Millisecond
	}
	return &backfillEnv{dir: dir, st: st, pipe: pipe, bf: ingest.NewBackfill(pipe, st, zkb, cfg, testLogger(t))}
}

func (e *backfillEnv) everef(t *testing.T, path string) (ingest.Tally, error) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	return e.bf.EVERef(t.Context(), filepath.Base(path), fi.Size(), f)
}

func TestBackfillEVERefTwiceAddsNothing(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	bodies, names := startESI(t, fake)
	ms, kms := fixtureMembers(t)
	path := writeArchive(t, t.TempDir(), "killmails-2026-07-23.tar.bz2", ms)
	env := newBackfillEnv(t, t.TempDir(), names, bodies, nil, ingest.BackfillConfig{Batch: 20})

	first, err := env.everef(t, path)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Read: len(ms), Added: len(ms)}, withoutDetail(first))
	counts := stored(t, env.st)
	assert.Len(t, counts, len(kms))
	e, err := env.st.Get(t.Context(), kms[0].ID)
	require.NoError(t, err)
	assert.True(t, e.Quiet, "backfilled killmails are quiet")
	km := storedKillmail(t, env.st, kms[0].ID)
	assert.Equal(t, kms[0].Hash, km.Hash)
	assertEnriched(t, km)

	second, err := env.everef(t, path)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Skipped: len(ms)}, withoutDetail(second), "a done archive is not read again")

	// Without its progress the archive is read again and adds nothing.
	require.NoError(t, env.st.PutKV(t.Context(), map[string][]byte{ingest.PrefixBackfillEVERef + filepath.Base(path): nil}))
	third, err := env.everef(t, path)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Read: len(ms), Duplicate: len(ms)}, withoutDetail(third))
	assert.Equal(t, uint64(len(kms)), env.st.Head(), "no new offsets")
	assert.Equal(t, ingest.Tally{Read: 2 * len(ms), Added: len(ms), Duplicate: len(ms), Skipped: len(ms)}, withoutDetail(env.bf.Totals()))
}

func TestBackfillCommittedArchive(t *testing.T) {
	env := newBackfillEnv(t, t.TempDir(), noNames{}, nil, nil, ingest.BackfillConfig{})
	tally, err := env.everef(t, committedArchive)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Read: len(committedIDs), Added: len(committedIDs)}, withoutDetail(tally))
	km := storedKillmail(t, env.st, committedIDs[0])
	assert.Empty(t, km.Victim.CharacterName, "no enrichment")
	assert.Equal(t, 0, marks(t, env.st), "--no-enrich leaves no marks for the enrichment pass")
}

// cancelAfter is the pipeline with a fault toggle: it cancels the run
// after n Process calls, as a kill between two commits would.
type cancelAfter struct {
	proc   ingest.Processor
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Process(ctx context.Context, items []ingest.Item, kv map[string][]byte) ([]store.Result, error) {
	res, err := c.proc.Process(ctx, items, kv)
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return res, err
}

func TestBackfillEVERefResumesAfterInterruption(t *testing.T) {
	ms, kms := fixtureMembers(t)
	path := writeArchive(t, t.TempDir(), "killmails-2026-07-24.tar.bz2", ms)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	env := newBackfillEnv(t, t.TempDir(), noNames{}, nil, nil, ingest.BackfillConfig{})

	const batch = 10
	ctx, cancel := context.WithCancel(t.Context())
	stop := &cancelAfter{proc: env.pipe, n: 3, cancel: cancel}
	bf := ingest.NewBackfill(stop, env.st, nil, ingest.BackfillConfig{Batch: batch, Workers: 2}, nil)
	first, err := bf.EVERef(ctx, filepath.Base(path), fi.Size(), f)
	require.ErrorIs(t, err, context.Canceled)
	done := first.Added
	assert.GreaterOrEqual(t, done, 3*batch, "three commits before the interruption")
	assert.Less(t, done, len(ms))
	assert.Zero(t, done%batch, "whole batches")
	assert.Equal(t, done, int(env.st.Count()))

	second, err := env.everef(t, path)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Read: len(ms) - done, Added: len(ms) - done, Skipped: done}, withoutDetail(second))
	counts := stored(t, env.st)
	assert.Len(t, counts, len(kms))
	for id, n := range counts {
		assert.Equal(t, 1, n, "killmail %d stored once", id)
	}
	assert.Equal(t, uint64(len(kms)), env.st.Head())
}

func TestBackfillCorruptArchives(t *testing.T) {
	ms, _ := fixtureMembers(t)
	dir := t.TempDir()
	future := replaceJSON(t, string(ms[1].body), "killmail_time", `"2999-01-01T00:00:00Z"`)
	bad := []member{
		ms[0],
		{name: "killmails/html.json", body: []byte("<html><body>502</body></html>")},
		{name: "killmails/cut.json", body: ms[2].body[:len(ms[2].body)/2]},
		{name: "killmails/1.json", body: []byte(future)},
		{name: "killmails/novictim.json", body: []byte(`{"killmail_id":5,"killmail_time":"2020-01-01T00:00:00Z","solar_system_id":30000142,"attackers":[]}`)},
		ms[3],
	}
	mixed := writeArchive(t, dir, "killmails-2026-07-25.tar.bz2", bad)

	// A multi-block bzip2 (100k blocks) cut in the middle: the members of
	// the whole blocks before the cut are read, the rest is reported.
	full := writeArchiveLevel(t, dir, "full.tar.bz2", ms, "-1")
	raw, err := os.ReadFile(full)
	require.NoError(t, err)
	truncated := filepath.Join(dir, "killmails-2026-07-26.tar.bz2")
	require.NoError(t, os.WriteFile(truncated, raw[:len(raw)*2/3], 0o644))
	notArchive := filepath.Join(dir, "killmails-2026-07-27.tar.bz2")
	require.NoError(t, os.WriteFile(notArchive, []byte("BZh9 this is not bzip2"), 0o644))

	env := newBackfillEnv(t, t.TempDir(), noNames{}, nil, nil, ingest.BackfillConfig{Batch: 4})
	tally, err := env.everef(t, mixed)
	require.NoError(t, err)
	assert.Equal(t, 6, tally.Read)
	assert.Equal(t, 2, tally.Added)
	assert.Equal(t, 4, tally.Rejected)
	assert.Equal(t, map[string]int{"html": 1, "truncated": 1, "invalid killmail_time": 1, "missing_field": 1}, tally.Reasons)
	assert.Contains(t, tally.Examples["html"][0], "killmails/html.json")

	tally, err = env.everef(t, truncated)
	require.ErrorIs(t, err, ingest.ErrArchive)
	assert.Positive(t, tally.Read, "the members before the damage are read")
	assert.Less(t, tally.Read, len(ms))
	assert.Equal(t, tally.Read, tally.Added+tally.Duplicate)

	_, err = env.everef(t, notArchive)
	require.ErrorIs(t, err, ingest.ErrArchive)

	// The broken archives did not stop the good one after them.
	tally, err = env.everef(t, full)
	require.NoError(t, err)
	assert.Equal(t, len(ms), tally.Read)
	assert.Len(t, stored(t, env.st), len(ms))
}

func TestBackfillJSONL(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	bodies, _ := startESI(t, fake)
	kms := fake.Killmails()
	doc, ok := fake.R2Z2Document(kms[1].ID, 900001)
	require.True(t, ok)
	var lines []string
	lines = append(lines, string(kms[0].ESI), "", string(doc))
	lines = append(lines, fmt.Sprintf(`{"killmail_id":%d,"zkb":{"hash":%q,"totalValue":10}}`, kms[2].ID, kms[2].Hash))
	lines = append(lines, fmt.Sprintf(`{"killmail_id":%d,"zkb":{"hash":%q}}`, kms[3].ID, strings.Repeat("0", 40)))
	lines = append(lines, "not json", `{"killmail_id": 1,`, `{nope}`)
	path := filepath.Join(t.TempDir(), "history.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))

	env := newBackfillEnv(t, t.TempDir(), noNames{}, bodies, nil, ingest.BackfillConfig{Batch: 2})
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	tally, err := env.bf.JSONL(t.Context(), "history.jsonl", int64(len(lines)), f)
	require.NoError(t, err)
	assert.Equal(t, 7, tally.Read)
	assert.Equal(t, 3, tally.Added)
	assert.Equal(t, map[string]int{"refused_by_esi": 1, "wrong_type": 1, "truncated": 1, "syntax": 1}, tally.Reasons)
	assert.Contains(t, tally.Examples["wrong_type"][0], "line 6")
	assert.Contains(t, tally.Examples["syntax"][0], "line 8")
	km := storedKillmail(t, env.st, kms[2].ID)
	require.NotNil(t, km.ZKB, "the zkb block of the line is kept")
	assert.Equal(t, 10.0, km.ZKB.TotalValue)

	_, err = f.Seek(0, 0)
	require.NoError(t, err)
	again, err := env.bf.JSONL(t.Context(), "history.jsonl", int64(len(lines)), f)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Skipped: 7}, withoutDetail(again))

	// Standard input keeps no progress but adds nothing either.
	stdin, err := env.bf.JSONL(t.Context(), "", 0, strings.NewReader(strings.Join(lines[:3], "\n")))
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Read: 2, Duplicate: 2}, withoutDetail(stdin))
}

// addDay copies fixture bodies under new ids onto one UTC day, so that
// the fake's zKillboard history has a day of n killmails.
func addDay(t *testing.T, fake *fakeupstream.Server, day time.Time, n int) []fakeupstream.Killmail {
	t.Helper()
	src := fake.Killmails()
	var out []fakeupstream.Killmail
	for i := range n {
		id := int64(200_000_000 + i)
		body := string(src[i%len(src)].ESI)
		body = replaceJSON(t, body, "killmail_id", fmt.Sprint(id))
		body = replaceJSON(t, body, "killmail_time", fmt.Sprintf("%q", day.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
		km, err := fakeupstream.ParseKillmail([]byte(body), "")
		require.NoError(t, err)
		fake.Add(km)
		out = append(out, km)
	}
	return out
}

// replaceJSON replaces the value of a top-level scalar key in a compact
// JSON object.
func replaceJSON(t *testing.T, body, key, value string) string {
	t.Helper()
	i := strings.Index(body, `"`+key+`":`)
	require.GreaterOrEqual(t, i, 0, key)
	start := i + len(key) + 3
	end := start + strings.IndexAny(body[start:], ",}")
	return body[:start] + value + body[end:]
}

func TestBackfillZKBDay(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	bodies, names := startESI(t, fake)
	day := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	kms := addDay(t, fake, day, 25)
	zkb := ingest.NewZKB(ingest.ZKBConfig{URL: fake.ZKBURL(), RatePerSecond: 1000}, upstreamClient(t), nil)
	cfg := ingest.BackfillConfig{FetchBatch: 10, ZKBBlocks: true}
	env := newBackfillEnv(t, t.TempDir(), names, bodies, zkb, cfg)

	// Three of the day's killmails are stored already, without zkb: they
	// get their block (updated in place).
	its := make([]ingest.Item, 3)
	for i := range its {
		its[i] = ingest.Item{KillmailID: kms[i].ID, Hash: kms[i].Hash}
	}
	_, err := env.pipe.Process(t.Context(), its, nil)
	require.NoError(t, err)

	tally, err := env.bf.ZKBDay(t.Context(), day.Add(5*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Read: 25, Added: 22, Updated: 3}, withoutDetail(tally))
	for _, km := range kms {
		got := storedKillmail(t, env.st, km.ID)
		require.NotNil(t, got.ZKB, "killmail %d has its zkb block", km.ID)
		assert.Equal(t, km.Hash, got.Hash)
	}
	assertEnriched(t, storedKillmail(t, env.st, kms[4].ID))
	done, err := env.st.GetKV(t.Context(), ingest.PrefixBackfillZKB+"20260701")
	require.NoError(t, err)
	assert.JSONEq(t, `{"done":true,"killmails":25}`, string(done))

	requests := fake.Stats().Requests
	again, err := env.bf.ZKBDay(t.Context(), day)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Skipped: 25}, withoutDetail(again))
	assert.Equal(t, requests, fake.Stats().Requests, "a done day asks nobody")
}

func TestBackfillZKBDayResumesWithoutAskingAgain(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	bodies, _ := startESI(t, fake)
	day := time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC)
	kms := addDay(t, fake, day, 12)
	zkb := ingest.NewZKB(ingest.ZKBConfig{URL: fake.ZKBURL(), RatePerSecond: 1000}, upstreamClient(t), nil)
	env := newBackfillEnv(t, t.TempDir(), noNames{}, bodies, zkb, ingest.BackfillConfig{FetchBatch: 5})

	ctx, cancel := context.WithCancel(t.Context())
	stop := &cancelAfter{proc: env.pipe, n: 1, cancel: cancel}
	bf := ingest.NewBackfill(stop, env.st, zkb, ingest.BackfillConfig{FetchBatch: 5}, nil)
	_, err := bf.ZKBDay(ctx, day)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 5, int(env.st.Count()))

	before := fake.Stats().Requests[fakeupstream.ESI]
	tally, err := env.bf.ZKBDay(t.Context(), day)
	require.NoError(t, err)
	assert.Equal(t, ingest.Tally{Read: 12, Added: 7, Duplicate: 5}, withoutDetail(tally))
	assert.Equal(t, 7, fake.Stats().Requests[fakeupstream.ESI]-before, "only the missing bodies are fetched")
	assert.Len(t, stored(t, env.st), len(kms))
}

func TestBackfillZKBDayNotOverStaysOpen(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	bodies, _ := startESI(t, fake)
	day := time.Date(2026, 7, 3, 0, 0, 0, 0, time.UTC)
	addDay(t, fake, day, 2)
	zkb := ingest.NewZKB(ingest.ZKBConfig{URL: fake.ZKBURL(), RatePerSecond: 1000}, upstreamClient(t), nil)
	now := func() time.Time { return day.Add(20 * time.Hour) }
	env := newBackfillEnv(t, t.TempDir(), noNames{}, bodies, zkb, ingest.BackfillConfig{Now: now})
	tally, err := env.bf.ZKBDay(t.Context(), day)
	require.NoError(t, err)
	assert.Equal(t, 2, tally.Added)
	_, err = env.st.GetKV(t.Context(), ingest.PrefixBackfillZKB+"20260703")
	require.ErrorIs(t, err, store.ErrNotFound, "today is not marked done")
}

// withoutDetail drops the reasons and examples for comparisons of counts.
func withoutDetail(t ingest.Tally) ingest.Tally {
	t.Reasons, t.Examples = nil, nil
	return t
}
