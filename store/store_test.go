package store_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const fixturePath = "../testdata/fixtures/killmails.jsonl"

// fixtureLines returns the raw ESI bodies of the real fixtures.
func fixtureLines(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open(fixturePath)
	require.NoError(t, err)
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, 88)
	return out
}

func fixtures(t testing.TB) []*store.Killmail {
	t.Helper()
	var out []*store.Killmail
	for _, line := range fixtureLines(t) {
		km, err := esi.DecodeKillmail(line)
		require.NoError(t, err)
		out = append(out, km)
	}
	return out
}

func openStore(t testing.TB, dir string, mut ...func(*store.Config)) *store.Store {
	t.Helper()
	cfg := store.Config{Dir: dir}
	for _, m := range mut {
		m(&cfg)
	}
	s, err := store.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// expectedShape turns a raw ESI body into the canonical shape of API.md
// §3.1 by plain map edits, independently of the store's types.
func expectedShape(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	kt, err := time.Parse(time.RFC3339, m["killmail_time"].(string))
	require.NoError(t, err)
	m["kill_time"] = kt.UTC().Format("2006-01-02T15:04:05Z")
	delete(m, "killmail_time")
	m["system_id"] = m["solar_system_id"]
	delete(m, "solar_system_id")
	att, _ := m["attackers"].([]any)
	if att == nil {
		att = []any{}
	}
	m["attackers"] = att
	m["attacker_count"] = float64(len(att))
	victim := m["victim"].(map[string]any)
	if items, ok := victim["items"].([]any); ok && len(items) == 0 {
		delete(victim, "items") // empty lists are omitted like nulls
	}
	return m
}

func TestRoundTripEveryFixture(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	lines := fixtureLines(t)
	for _, line := range lines {
		km, err := esi.DecodeKillmail(line)
		require.NoError(t, err)
		res, err := s.Append(ctx, store.Batch{Killmails: []*store.Killmail{km}})
		require.NoError(t, err)
		require.Equal(t, store.Added, res[0].Status, "killmail %d", km.KillmailID)

		e, err := s.Get(ctx, km.KillmailID)
		require.NoError(t, err)
		assert.Equal(t, res[0].Offset, e.Offset)
		want, err := json.Marshal(expectedShape(t, line))
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(e.JSON), "killmail %d", km.KillmailID)

		back, err := e.Killmail()
		require.NoError(t, err)
		again, err := json.Marshal(back)
		require.NoError(t, err)
		assert.JSONEq(t, string(e.JSON), string(again), "decode/encode is stable for %d", km.KillmailID)
	}
	assert.EqualValues(t, len(lines), s.Count())
	assert.EqualValues(t, len(lines), s.Head())
}

func TestKillTimePrintedToTheSecond(t *testing.T) {
	km := &store.Killmail{KillmailID: 1, SystemID: 30000142, Victim: store.Victim{ShipTypeID: 587}}
	require.NoError(t, json.Unmarshal([]byte(`"2024-01-01T12:00:00.123+02:00"`), &km.KillTime))
	km.Normalize()
	b, err := json.Marshal(km)
	require.NoError(t, err)
	assert.JSONEq(t, `{"killmail_id":1,"kill_time":"2024-01-01T10:00:00Z","system_id":30000142,
		"victim":{"ship_type_id":587,"damage_taken":0},"attackers":[],"attacker_count":0}`, string(b))
}

func TestDedupAndRicherCopy(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	kms := fixtures(t)
	first := kms[3]
	res, err := s.Append(ctx, store.Batch{Killmails: []*store.Killmail{first}})
	require.NoError(t, err)
	off := res[0].Offset

	// The same id again, alone and twice within one batch.
	dup := *first
	res, err = s.Append(ctx, store.Batch{Killmails: []*store.Killmail{&dup, &dup}})
	require.NoError(t, err)
	for _, r := range res {
		assert.Equal(t, store.Duplicate, r.Status)
		assert.Equal(t, off, r.Offset)
	}
	assert.EqualValues(t, 1, s.Count())
	assert.EqualValues(t, 1, s.Head(), "a duplicate takes no offset")

	// A richer copy (zkb block and names) replaces it at the same offset.
	rich := *first
	rich.ZKB = &store.ZKB{Hash: "abc", TotalValue: 1e9, Labels: []string{"pvp"}}
	rich.Victim.ShipName = "Rifter"
	res, err = s.Append(ctx, store.Batch{Killmails: []*store.Killmail{&rich}})
	require.NoError(t, err)
	assert.Equal(t, store.Updated, res[0].Status)
	assert.Equal(t, off, res[0].Offset)
	e, err := s.Get(ctx, first.KillmailID)
	require.NoError(t, err)
	got, err := e.Killmail()
	require.NoError(t, err)
	assert.Equal(t, "Rifter", got.Victim.ShipName)
	assert.InDelta(t, 1e9, got.TotalValue(), 0)
	assert.EqualValues(t, 1, s.Count())

	// The index follows the update: min_value now finds it.
	found, _, err := s.Search(ctx, index.Query{MinValue: 5e8})
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, off, found[0].Offset)
}

func TestRejectsBadKillmailNamingTheField(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	kms := fixtures(t)
	good := kms[0]
	_, err := s.Append(ctx, store.Batch{Killmails: []*store.Killmail{good}})
	require.NoError(t, err)

	future := *kms[1]
	future.KillTime = store.Time{Time: time.Now().Add(48 * time.Hour)}
	negative := *kms[2]
	negative.Victim.CharacterID = -5
	noShip := *kms[4]
	noShip.Victim.ShipTypeID = 0
	noID := *kms[5]
	noID.KillmailID = -1
	noTime := *kms[6]
	noTime.KillTime = store.Time{}
	badAttacker := *kms[7]
	badAttacker.Attackers = slices.Clone(badAttacker.Attackers)
	badAttacker.Attackers[0].DamageDone = -1

	cases := []struct {
		km    *store.Killmail
		field string
	}{
		{&future, "killmail_time"},
		{&negative, "victim.character_id"},
		{&noShip, "victim.ship_type_id"},
		{&noID, "killmail_id"},
		{&noTime, "killmail_time"},
		{&badAttacker, "attackers[0].damage_done"},
	}
	batch := store.Batch{}
	for _, c := range cases {
		batch.Killmails = append(batch.Killmails, c.km)
	}
	res, err := s.Append(ctx, batch)
	require.NoError(t, err)
	for i, c := range cases {
		assert.Equal(t, store.Rejected, res[i].Status)
		var ve *store.ValidationError
		require.ErrorAs(t, res[i].Err, &ve)
		assert.Equal(t, c.field, ve.Field)
		assert.ErrorIs(t, res[i].Err, store.ErrInvalid)
	}
	// Nothing stored is affected.
	assert.EqualValues(t, 1, s.Count())
	assert.EqualValues(t, 1, s.Head())
	e, err := s.Get(ctx, good.KillmailID)
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.Offset)
	_, err = s.Get(ctx, kms[2].KillmailID)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func TestReadTailAndChanged(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	kms := fixtures(t)
	changed := s.Changed()
	_, err := s.Append(ctx, store.Batch{Killmails: kms[:10]})
	require.NoError(t, err)
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not closed by a commit")
	}
	var seen []uint64
	after := uint64(0)
	for {
		es, err := s.Read(ctx, after, 3)
		require.NoError(t, err)
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			seen = append(seen, e.Offset)
			after = e.Offset
		}
	}
	assert.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, seen)

	// Quiet (backfilled) entries are marked.
	_, err = s.Append(ctx, store.Batch{Killmails: kms[10:12], Quiet: true})
	require.NoError(t, err)
	es, err := s.Read(ctx, 10, 10)
	require.NoError(t, err)
	require.Len(t, es, 2)
	assert.True(t, es[0].Quiet)
}

func TestKVInSameBatchAndAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	kms := fixtures(t)
	_, err := s.Append(ctx, store.Batch{Killmails: kms[:2], KV: map[string][]byte{"ingest/r2z2/sequence": []byte("900002")}})
	require.NoError(t, err)
	require.NoError(t, s.PutKV(ctx, map[string][]byte{"webhook/a": []byte("1"), "webhook/b": []byte("2")}))
	v, err := s.GetKV(ctx, "ingest/r2z2/sequence")
	require.NoError(t, err)
	assert.Equal(t, "900002", string(v))
	var keys []string
	require.NoError(t, s.ScanKV(ctx, "webhook/", func(k string, _ []byte) error { keys = append(keys, k); return nil }))
	assert.Equal(t, []string{"webhook/a", "webhook/b"}, keys)
	require.NoError(t, s.PutKV(ctx, map[string][]byte{"webhook/a": nil}))
	_, err = s.GetKV(ctx, "webhook/a")
	assert.ErrorIs(t, err, store.ErrNotFound)

	// Survives reopen, with the epoch.
	epoch := s.Epoch()
	require.NoError(t, s.Close())
	s2 := openStore(t, dir)
	v, err = s2.GetKV(ctx, "webhook/b")
	require.NoError(t, err)
	assert.Equal(t, "2", string(v))
	assert.Equal(t, epoch, s2.Epoch())
	assert.EqualValues(t, 2, s2.Count())
}

func TestUpdateInPlace(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	kms := fixtures(t)
	res, err := s.Append(ctx, store.Batch{Killmails: kms[:3], KV: map[string][]byte{"ingest/unenriched/2": {}}})
	require.NoError(t, err)
	km := *kms[1]
	km.Victim.ShipName = "Named later"
	require.NoError(t, s.Update(ctx, res[1].Offset, &km, map[string][]byte{"ingest/unenriched/2": nil}))
	e, err := s.At(ctx, res[1].Offset)
	require.NoError(t, err)
	got, err := e.Killmail()
	require.NoError(t, err)
	assert.Equal(t, "Named later", got.Victim.ShipName)
	assert.EqualValues(t, 3, s.Head(), "an update takes no offset")
	_, err = s.GetKV(ctx, "ingest/unenriched/2")
	assert.ErrorIs(t, err, store.ErrNotFound)

	// The offset must hold that killmail.
	err = s.Update(ctx, res[0].Offset, &km, nil)
	assert.Error(t, err)

	// An update racing a richer copy keeps what that copy brought.
	rich := *kms[2]
	rich.ZKB = &store.ZKB{Hash: "h", TotalValue: 42}
	out, err := s.Append(ctx, store.Batch{Killmails: []*store.Killmail{&rich}})
	require.NoError(t, err)
	require.Equal(t, store.Updated, out[0].Status)
	late := *kms[2]
	late.Victim.ShipName = "Late name"
	require.NoError(t, s.Update(ctx, res[2].Offset, &late, nil))
	e, err = s.At(ctx, res[2].Offset)
	require.NoError(t, err)
	got, err = e.Killmail()
	require.NoError(t, err)
	assert.Equal(t, "Late name", got.Victim.ShipName)
	require.NotNil(t, got.ZKB)
	assert.InDelta(t, 42, got.ZKB.TotalValue, 0)
}

func TestTimeOrderedScan(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	kms := fixtures(t)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(kms), func(i, j int) { kms[i], kms[j] = kms[j], kms[i] })
	_, err := s.Append(ctx, store.Batch{Killmails: kms})
	require.NoError(t, err)
	var times []time.Time
	require.NoError(t, s.Scan(ctx, time.Time{}, time.Time{}, func(e store.Entry) bool {
		km, err := e.Killmail()
		require.NoError(t, err)
		times = append(times, km.KillTime.Time)
		return true
	}))
	require.Len(t, times, len(kms))
	assert.True(t, sort.SliceIsSorted(times, func(i, j int) bool { return times[i].Before(times[j]) }))

	// A bounded window.
	since := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	want := 0
	for _, km := range kms {
		if !km.KillTime.Before(since) && km.KillTime.Before(until) {
			want++
		}
	}
	got := 0
	require.NoError(t, s.Scan(ctx, since, until, func(store.Entry) bool { got++; return true }))
	assert.Equal(t, want, got)
}

func TestRetentionDeletesDataAndIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	kms := fixtures(t)
	_, err := s.Append(ctx, store.Batch{Killmails: kms})
	require.NoError(t, err)
	cutoff := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var old, kept []*store.Killmail
	for _, km := range kms {
		if km.KillTime.Before(cutoff) {
			old = append(old, km)
		} else {
			kept = append(kept, km)
		}
	}
	require.NotEmpty(t, old)
	require.NotEmpty(t, kept)
	n, err := s.ApplyRetention(ctx, cutoff)
	require.NoError(t, err)
	assert.Equal(t, len(old), n)
	assert.EqualValues(t, len(kept), s.Count())
	for _, km := range old {
		_, err := s.Get(ctx, km.KillmailID)
		assert.ErrorIs(t, err, store.ErrNotFound)
		assert.Zero(t, countIn(t, s, index.Query{Systems: []int64{km.SystemID}, Until: cutoff.Unix()}))
	}
	for _, km := range kept {
		_, err := s.Get(ctx, km.KillmailID)
		assert.NoError(t, err)
	}
	assert.NotZero(t, s.Trimmed())
	head := s.Head()

	// Index entries stay gone after a reopen, and offsets are never reused.
	require.NoError(t, s.Close())
	s2 := openStore(t, dir)
	assert.EqualValues(t, len(kept), s2.Count())
	assert.Equal(t, head, s2.Head())
	res, err := s2.Append(ctx, store.Batch{Killmails: []*store.Killmail{old[0]}})
	require.NoError(t, err)
	assert.Equal(t, head+1, res[0].Offset)
}

func countIn(t *testing.T, s *store.Store, q index.Query) int {
	t.Helper()
	q.Limit = 10000
	es, _, err := s.Search(context.Background(), q)
	require.NoError(t, err)
	return len(es)
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	s := openStore(t, t.TempDir())
	require.NoError(t, s.Close())
	_, err := s.Append(context.Background(), store.Batch{Killmails: fixtures(t)[:1]})
	assert.ErrorIs(t, err, store.ErrClosed)
	assert.NoError(t, s.Close(), "Close is idempotent")
}

func TestSecondOpenOfTheSameDirFails(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	_, err := store.Open(context.Background(), store.Config{Dir: dir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Base(dir))
}

func TestCanceledContext(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Get(ctx, 1)
	assert.True(t, errors.Is(err, context.Canceled))
}
