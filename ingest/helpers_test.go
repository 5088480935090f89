package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// patience bounds every wait for the feeds to catch up.
const patience = 30 * time.Second

// testLogger logs to the test output when -v and WK_TEST_LOG are set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// upstreamClient is the HTTP client of every test: short timeouts, no
// shared keep-alive state between tests.
func upstreamClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// startESI runs an ESI client against the fake, tuned for fast tests.
func startESI(t testing.TB, fake *fakeupstream.Server) (*esi.Client, *esi.Enricher) {
	t.Helper()
	c := esi.New(upstreamClient(t), esi.Config{
		BaseURL:         fake.ESIURL(),
		Timeout:         2 * time.Second,
		RatePerSecond:   2000,
		Burst:           100,
		Retries:         1,
		RetryBackoff:    2 * time.Millisecond,
		BreakerFailures: 1000,
		BreakerCooldown: 20 * time.Millisecond,
		NegativeTTL:     time.Millisecond,
	}, testLogger(t))
	run(t, c.Run)
	return c, esi.NewEnricher(c, nil)
}

// run starts fn in a goroutine and stops it (cancel and wait) when the
// test ends or when the returned func is called.
func run(t testing.TB, fn func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func fastPipeline(reg prometheus.Registerer) ingest.PipelineConfig {
	return ingest.PipelineConfig{
		FetchTimeout:   3 * time.Second,
		EnrichTimeout:  500 * time.Millisecond,
		EnrichInterval: 20 * time.Millisecond,
		Registerer:     reg,
	}
}

func fastR2Z2(fake *fakeupstream.Server, reg prometheus.Registerer) ingest.R2Z2Config {
	return ingest.R2Z2Config{
		URL:              fake.R2Z2URL(),
		Start:            fake.FirstSequence(),
		RatePerSecond:    2000,
		NotFoundWait:     5 * time.Millisecond,
		BlockedWait:      10 * time.Millisecond,
		BackoffMin:       time.Millisecond,
		BackoffMax:       10 * time.Millisecond,
		StallAfter:       time.Hour,
		SequenceInterval: time.Hour,
		Timeout:          2 * time.Second,
		UserAgent:        "wanderer-kills-go tests",
		Registerer:       reg,
	}
}

func fastRedisQ(fake *fakeupstream.Server, reg prometheus.Registerer) ingest.RedisQConfig {
	return ingest.RedisQConfig{
		URL:           fake.RedisQURL(),
		TTW:           1,
		RatePerSecond: 2000,
		BackoffMin:    time.Millisecond,
		BackoffMax:    10 * time.Millisecond,
		BlockedWait:   10 * time.Millisecond,
		Timeout:       3 * time.Second,
		Registerer:    reg,
	}
}

// stored returns how many times each killmail id appears in the log.
func stored(t *testing.T, st *store.Store) map[int64]int {
	t.Helper()
	out := make(map[int64]int)
	var after uint64
	for {
		es, err := st.Read(context.Background(), after, 500)
		require.NoError(t, err)
		if len(es) == 0 {
			return out
		}
		for _, e := range es {
			km, err := e.Killmail()
			require.NoError(t, err)
			out[km.KillmailID]++
			after = e.Offset
		}
	}
}

func storedKillmail(t *testing.T, st *store.Store, id int64) *store.Killmail {
	t.Helper()
	e, err := st.Get(context.Background(), id)
	require.NoError(t, err)
	km, err := e.Killmail()
	require.NoError(t, err)
	return km
}

// marks counts the killmails waiting for names.
func marks(t *testing.T, st *store.Store) int {
	t.Helper()
	n := 0
	require.NoError(t, st.ScanKV(context.Background(), ingest.PrefixUnenriched, func(string, []byte) error {
		n++
		return nil
	}))
	return n
}

func cursor(t *testing.T, st *store.Store) string {
	t.Helper()
	b, err := st.GetKV(context.Background(), ingest.KeyR2Z2Sequence)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}

// assertEnriched checks every name the fake ESI can give.
func assertEnriched(t *testing.T, km *store.Killmail) {
	t.Helper()
	assert.Equal(t, fakeupstream.Name(fakeupstream.CategorySystem, km.SystemID), km.SystemName, "killmail %d system", km.KillmailID)
	v := km.Victim
	assertNames(t, km.KillmailID, "victim", v.Names, v.CharacterID, v.CorporationID, v.AllianceID, v.ShipTypeID)
	for i, a := range km.Attackers {
		assertNames(t, km.KillmailID, "attacker "+string(rune('0'+i%10)), a.Names, a.CharacterID, a.CorporationID, a.AllianceID, a.ShipTypeID)
	}
}

func assertNames(t *testing.T, id int64, who string, n store.Names, char, corp, alliance, ship int64) {
	t.Helper()
	want := store.Names{}
	if char > 0 {
		want.CharacterName = fakeupstream.Name(fakeupstream.CategoryCharacter, char)
	}
	if corp > 0 {
		want.CorporationName = fakeupstream.Name(fakeupstream.CategoryCorporation, corp)
		want.CorporationTicker = fakeupstream.Ticker(fakeupstream.CategoryCorporation, corp)
	}
	if alliance > 0 {
		want.AllianceName = fakeupstream.Name(fakeupstream.CategoryAlliance, alliance)
		want.AllianceTicker = fakeupstream.Ticker(fakeupstream.CategoryAlliance, alliance)
	}
	if ship > 0 {
		want.ShipName = fakeupstream.Name(fakeupstream.CategoryType, ship)
	}
	assert.Equal(t, want, n, "killmail %d %s", id, who)
}

// counter sums a counter's series in reg whose labels include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := make(map[string]string)
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}
