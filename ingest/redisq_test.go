package ingest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fakeupstream.DefaultFixtures(), name))
	require.NoError(t, err)
	return b
}

func (e *r2z2Env) redisq(t *testing.T, cfg ingest.RedisQConfig) *ingest.RedisQ {
	return ingest.NewRedisQ(cfg, upstreamClient(t), e.pipe, e.st, testLogger(t))
}

func TestRedisQRealPackagesThroughRedirect(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	// 130678514's package carries only id and hash, and its body is not
	// among the fixtures: ESI serves a copy of another killmail under its
	// id and hash.
	idOnly := fixture(t, "redisq/package-id-hash-only-130678514.json")
	body := withID(t, fake.Killmails()[40].ESI, 130678514)
	km, err := fakeupstream.ParseKillmail(body, "145c457c34ce9c9e8d67e942e764d8f439b22271")
	require.NoError(t, err)
	fake.Add(km)

	fake.PushRedisQ(fixture(t, "redisq/package-legacy-crest-2017-59704390.json"))
	fake.PushRedisQ(fixture(t, "redisq/package-null.json"))
	fake.PushRedisQ(fixture(t, "redisq/package-full-119455394.json"))
	fake.PushRedisQ([]byte("<html><body>Bad gateway</body></html>"))
	fake.PushRedisQ(idOnly)

	env := newR2Z2Env(t, fake, t.TempDir())
	feed := env.redisq(t, fastRedisQ(fake, env.reg))
	run(t, feed.Run)
	env.waitStored(t, 2)

	assert.Equal(t, map[int64]int{119455394: 1, 130678514: 1}, stored(t, env.st))
	full := storedKillmail(t, env.st, 119455394)
	assert.Equal(t, "d2913bf8250db18456601a8ae061441e89ccadf3", full.Hash)
	require.NotNil(t, full.ZKB)
	assert.InDelta(t, 142572993.92, full.ZKB.TotalValue, 0.001)
	assertEnriched(t, full)
	fetched := storedKillmail(t, env.st, 130678514)
	require.NotNil(t, fetched.ZKB)
	assert.Equal(t, []string{"tz:ru", "cat:6", "#:5+", "pvp", "loc:nullsec", "isk:1b+"}, fetched.ZKB.Labels)
	assertEnriched(t, fetched)

	assert.Equal(t, 1.0, counter(t, env.reg, "wanderer_kills_ingest_garbage_total", map[string]string{"reason": ingest.ReasonLegacyCREST}))
	assert.Equal(t, 1.0, counter(t, env.reg, "wanderer_kills_ingest_garbage_total", map[string]string{"reason": ingest.ReasonHTML}))
	queue, err := env.st.GetKV(context.Background(), ingest.KeyRedisQQueue)
	require.NoError(t, err)
	assert.Regexp(t, `^wanderer_kills_[A-Z2-7]{16}$`, string(queue))
}

func TestRedisQEveryKillmailOnceUnderFaults(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{RedisQBodyEvery: 2, RedisQWait: 50 * time.Millisecond})
	fake.SetFaults(fakeupstream.RedisQ, fakeupstream.Faults{FailRate: 0.2, GarbageRate: 0.2, Delay: time.Millisecond})
	fake.SetFaults(fakeupstream.ESI, fakeupstream.Faults{FailRate: 0.2})
	dir := t.TempDir()
	env := newR2Z2Env(t, fake, dir)
	stop := run(t, env.redisq(t, fastRedisQ(fake, env.reg)).Run)
	fake.Release(20)
	env.waitStored(t, 20)
	require.NoError(t, stop())
	queue, err := env.st.GetKV(context.Background(), ingest.KeyRedisQQueue)
	require.NoError(t, err)
	require.NoError(t, env.st.Close())

	// A restart keeps the queue: what was released meanwhile still comes.
	fake.ReleaseAll()
	env = newR2Z2Env(t, fake, dir)
	again, err := env.st.GetKV(context.Background(), ingest.KeyRedisQQueue)
	require.NoError(t, err)
	assert.Equal(t, queue, again)
	run(t, env.redisq(t, fastRedisQ(fake, env.reg)).Run)
	env.waitStored(t, len(fake.Killmails()))
	fake.ClearFaults()
	run(t, env.pipe.RunEnrichment)
	require.Eventually(t, func() bool { return marks(t, env.st) == 0 }, patience, 5*time.Millisecond)

	for id, n := range stored(t, env.st) {
		assert.Equal(t, 1, n, "killmail %d", id)
		assertEnriched(t, storedKillmail(t, env.st, id))
	}
	assert.Zero(t, fake.Stats().RedisQConflicts, "one request in flight per queue")
}

func TestRedisQConfiguredQueue(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{RedisQWait: 20 * time.Millisecond})
	env := newR2Z2Env(t, fake, t.TempDir())
	cfg := fastRedisQ(fake, env.reg)
	cfg.Queue = "my-queue"
	feed := env.redisq(t, cfg)
	run(t, feed.Run)
	require.Eventually(t, func() bool { return feed.State().State == ingest.StateCaughtUp }, patience, 2*time.Millisecond)
	_, err := env.st.GetKV(context.Background(), ingest.KeyRedisQQueue)
	assert.Error(t, err, "a configured queue id is not persisted")
	fake.Release(1)
	env.waitStored(t, 1)
}

func withID(t *testing.T, body []byte, id int64) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	m["killmail_id"] = id
	return mustJSON(t, m)
}
