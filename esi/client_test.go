package esi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
)

func TestKillmail(t *testing.T) {
	fxs := loadFixtures(t)
	fake := newFakeESI(t, fxs)
	c := fake.client(t, esi.Config{})
	ctx := t.Context()
	served := 0
	for _, fx := range fxs {
		if fx.hash == "" {
			continue
		}
		served++
		want, err := esi.DecodeKillmail(fx.body)
		require.NoError(t, err)
		want.Hash = fx.hash
		got, err := c.Killmail(ctx, fx.id, fx.hash)
		require.NoError(t, err, "killmail %d", fx.id)
		assert.Equal(t, want, got)
	}
	assert.Equal(t, 87, served)
	assert.Equal(t, served, fake.requests())

	t.Run("cached copy is the caller's", func(t *testing.T) {
		fx := fxs[0]
		a, err := c.Killmail(ctx, fx.id, fx.hash)
		require.NoError(t, err)
		a.Victim.CharacterName = "mine"
		a.Attackers[0].ShipName = "mine"
		b, err := c.Killmail(ctx, fx.id, fx.hash)
		require.NoError(t, err)
		assert.Empty(t, b.Victim.CharacterName)
		assert.Empty(t, b.Attackers[0].ShipName)
		assert.Equal(t, served, fake.requests())
	})
	t.Run("wrong hash is not found", func(t *testing.T) {
		_, err := c.Killmail(ctx, fxs[0].id, strings.Repeat("0", 40))
		require.ErrorIs(t, err, esi.ErrNotFound)
		var se *esi.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusUnprocessableEntity, se.Code)
		assert.Equal(t, "Unprocessable entity message", se.Body)
	})
	t.Run("malformed hash is refused without a call", func(t *testing.T) {
		n := fake.requests()
		_, err := c.Killmail(ctx, 1, "../../x")
		require.ErrorIs(t, err, esi.ErrNotFound)
		assert.Equal(t, n, fake.requests())
	})
}

func TestHeaders(t *testing.T) {
	fake := newFakeESI(t, loadFixtures(t))
	c := fake.client(t, esi.Config{})
	_, err := c.Names(t.Context(), []int64{30002691})
	require.NoError(t, err)
	c2 := fake.client(t, esi.Config{UserAgent: "custom/1.0 (ops@example.com)"})
	_, err = c2.Corporation(t.Context(), 319218345)
	require.NoError(t, err)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	assert.Equal(t, map[string]int{esi.DefaultUserAgent: 1, "custom/1.0 (ops@example.com)": 1}, fake.agents)
	assert.Equal(t, map[string]int{"application/json": 2}, fake.accepts)
	assert.Contains(t, esi.DefaultUserAgent, "wanderer-kills-go/")
}

func TestNamesSplitsUnknownIDs(t *testing.T) {
	fxs := loadFixtures(t)
	fake := newFakeESI(t, fxs)
	var ids []int64
	for id, cat := range fake.cats {
		if cat == "character" {
			ids = append(ids, id)
		}
	}
	require.Greater(t, len(ids), 1000, "the fixtures name more than one batch of characters")
	bad := []int64{ids[3], ids[700], 2_000_000_001} // two deleted characters and one never seen
	fake.unknown[ids[3]], fake.unknown[ids[700]] = true, true
	ids = append(ids, 2_000_000_001)

	c := fake.client(t, esi.Config{})
	got, err := c.Names(t.Context(), ids)
	require.NoError(t, err)
	assert.Len(t, got, len(ids)-len(bad))
	for _, id := range bad {
		assert.NotContains(t, got, id)
	}
	for _, id := range ids[:10] {
		if !fake.unknown[id] {
			assert.Equal(t, esi.Name{ID: id, Name: fake.name(id), Category: "character"}, got[id])
		}
	}
	first := fake.requests("names")
	t.Logf("%d ids with %d unknown: %d POST /universe/names/", len(ids), len(bad), first)
	assert.Less(t, first, 2+2*3*11, "each unknown id costs about 2·log2(batch) requests")

	// Known and unknown ids are cached: no more requests.
	got2, err := c.Names(t.Context(), append(ids, ids...))
	require.NoError(t, err)
	assert.Equal(t, got, got2)
	assert.Equal(t, first, fake.requests("names"))
	fake.checkNoViolations(t)
}

func TestNamesDecoderAcceptsCCPExample(t *testing.T) {
	fake := newFakeESI(t, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, fixtures+"esi/universe-names-post.json")
	}))
	defer srv.Close()
	_ = fake
	c := esi.New(srv.Client(), esi.Config{BaseURL: srv.URL}, nil)
	got, err := c.Names(t.Context(), []int64{95465499, 30000142})
	require.NoError(t, err)
	assert.Equal(t, map[int64]esi.Name{
		95465499: {ID: 95465499, Name: "CCP Bartender", Category: "character"},
		30000142: {ID: 30000142, Name: "Jita", Category: "solar_system"},
	}, got)
}

func TestEntitiesTypesSystems(t *testing.T) {
	fake := newFakeESI(t, loadFixtures(t))
	c := fake.client(t, esi.Config{})
	ctx := t.Context()
	corp, err := c.Corporation(ctx, 319218345)
	require.NoError(t, err)
	assert.Equal(t, esi.Entity{ID: 319218345, Name: "Corporation 319218345", Ticker: ticker(319218345)}, corp)
	var alliance int64
	for id, cat := range fake.cats {
		if cat == "alliance" {
			alliance = id
			break
		}
	}
	al, err := c.Alliance(ctx, alliance)
	require.NoError(t, err)
	assert.Equal(t, ticker(alliance), al.Ticker)
	name, err := c.Type(ctx, 17182)
	require.NoError(t, err)
	assert.Equal(t, "Inventory_type 17182", name)
	sys, err := c.System(ctx, 30002691)
	require.NoError(t, err)
	assert.Equal(t, esi.System{ID: 30002691, Name: "Solar_system 30002691", ConstellationID: 20000001,
		SecurityStatus: 0.8462923765182495, SecurityClass: "B"}, sys)

	_, err = c.Corporation(ctx, 98_999_999)
	require.ErrorIs(t, err, esi.ErrNotFound)
	_, err = c.Corporation(ctx, 98_999_999) // remembered as unknown
	require.ErrorIs(t, err, esi.ErrNotFound)
	_, err = c.Type(ctx, 99_999)
	require.ErrorIs(t, err, esi.ErrNotFound)

	n := fake.requests()
	for range 3 {
		_, err = c.Corporation(ctx, 319218345)
		require.NoError(t, err)
		_, err = c.Type(ctx, 17182)
		require.NoError(t, err)
		_, err = c.System(ctx, 30002691)
		require.NoError(t, err)
	}
	assert.Equal(t, n, fake.requests(), "cached")
	assert.Equal(t, 6, n)
}

func TestCoalescing(t *testing.T) {
	fake := newFakeESI(t, loadFixtures(t))
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	inner := fake.srv.Config.Handler
	fake.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		inner.ServeHTTP(w, r)
	})
	c := fake.client(t, esi.Config{})

	// A caller that leaves does not fail the flight it started.
	ctx, cancel := context.WithCancel(t.Context())
	leaver := make(chan error, 1)
	go func() { _, err := c.Corporation(ctx, 319218345); leaver <- err }()
	<-arrived
	cancel()
	require.ErrorIs(t, <-leaver, context.Canceled)

	var wg sync.WaitGroup
	results := make(chan esi.Entity, 10)
	for range 10 {
		wg.Go(func() {
			e, err := c.Corporation(t.Context(), 319218345)
			assert.NoError(t, err)
			results <- e
		})
	}
	time.Sleep(20 * time.Millisecond) // let them join the flight; late joiners hit the cache
	close(release)
	wg.Wait()
	close(results)
	for e := range results {
		assert.Equal(t, "Corporation 319218345", e.Name)
	}
	assert.Equal(t, 1, fake.requests("corporation"))

	// Overlapping Names calls ask for each id once.
	var ids []int64
	for id, cat := range fake.cats {
		if cat == "character" && len(ids) < 300 {
			ids = append(ids, id)
		}
	}
	for i := range 6 {
		wg.Go(func() {
			got, err := c.Names(t.Context(), ids[i*30:i*30+120])
			assert.NoError(t, err)
			assert.Len(t, got, 120)
		})
	}
	wg.Wait()
	assert.Equal(t, 1, fake.maxAsked())
}

func TestGarbage(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		errIs  error
		errHas string
	}{
		{name: "html", status: 200, body: "<html><body>oops</body></html>", errIs: esi.ErrBadResponse, errHas: "not a JSON array"},
		{name: "truncated", status: 200, body: `[{"category":"character","id":1,"na`, errIs: esi.ErrBadResponse, errHas: "unexpected end"},
		{name: "wrong type", status: 200, body: `[{"category":"character","id":"1","name":"x"}]`, errIs: esi.ErrBadResponse, errHas: "cannot unmarshal"},
		{name: "bad id", status: 200, body: `[{"category":"character","id":-1,"name":"x"}]`, errIs: esi.ErrBadResponse, errHas: "not positive"},
		{name: "object", status: 200, body: `{"error":"nope"}`, errIs: esi.ErrBadResponse},
		{name: "too big", status: 200, body: "[" + strings.Repeat(" ", 2048) + "]", errIs: esi.ErrBadResponse, errHas: "larger than"},
		{name: "html error page", status: 503, body: "<html>down</html>", errHas: "503 Service Unavailable: <html>down</html>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			c := esi.New(srv.Client(), esi.Config{BaseURL: srv.URL, Retries: -1, MaxBodyBytes: 1024}, nil)
			_, err := c.Names(t.Context(), []int64{1})
			require.Error(t, err)
			if tc.errIs != nil {
				require.ErrorIs(t, err, tc.errIs)
			}
			assert.Contains(t, err.Error(), tc.errHas)
		})
	}
}

func TestTimeout(t *testing.T) {
	fake := newFakeESI(t, loadFixtures(t))
	fake.inject(faultSlow, faultSlow)
	c := fake.client(t, esi.Config{Timeout: 50 * time.Millisecond, Retries: -1})
	_, err := c.Corporation(t.Context(), 319218345)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = c.Alliance(t.Context(), 1685076665)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 2, c.Stats().ConsecutiveTimeouts)
	e, err := c.Corporation(t.Context(), 319218345)
	require.NoError(t, err)
	assert.Equal(t, "Corporation 319218345", e.Name)
	assert.Equal(t, 0, c.Stats().ConsecutiveTimeouts)
}

func TestHolds(t *testing.T) {
	tests := []struct {
		name  string
		fault fault
	}{
		{name: "420 error limited", fault: fault420},
		{name: "429 retry after", fault: fault429},
		{name: "error budget at floor", fault: faultLowBudget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeESI(t, loadFixtures(t))
			fake.inject(tc.fault)
			c := fake.client(t, esi.Config{})
			_, err := c.Corporation(t.Context(), 319218345) // held, then retried
			require.NoError(t, err)
			_, err = c.Corporation(t.Context(), 1172774420)
			require.NoError(t, err)
			want := 3
			if tc.fault == faultLowBudget {
				want = 2 // the first answer was good
			}
			assert.Equal(t, want, fake.requests())
			fake.checkNoViolations(t)
			st := c.Stats()
			assert.Equal(t, 100, st.ErrorBudgetRemaining)
			assert.False(t, st.HeldUntil.IsZero())
		})
	}
	t.Run("a held caller can leave", func(t *testing.T) {
		fake := newFakeESI(t, loadFixtures(t))
		fake.inject(fault420)
		c := fake.client(t, esi.Config{Retries: -1})
		_, err := c.Corporation(t.Context(), 319218345)
		var se *esi.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 420, se.Code)
		assert.Equal(t, time.Second, se.RetryAfter)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		_, err = c.Corporation(ctx, 1172774420)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 1, fake.requests())
	})
}

func TestBreaker(t *testing.T) {
	fake := newFakeESI(t, loadFixtures(t))
	fake.injectEvery(fault502, 1)
	const cooldown = 100 * time.Millisecond
	c := fake.client(t, esi.Config{BreakerFailures: 3, BreakerCooldown: cooldown, Retries: -1})
	ctx := t.Context()
	for i := range 3 {
		_, err := c.Corporation(ctx, int64(1000100+i))
		var se *esi.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusBadGateway, se.Code)
	}
	assert.Equal(t, esi.StateOpen, c.Stats().Breaker.State)
	_, err := c.Corporation(ctx, 319218345)
	require.ErrorIs(t, err, esi.ErrCircuitOpen)
	assert.Equal(t, 3, fake.requests(), "open: fails fast")

	// After the cooldown one probe goes out; it fails and re-opens.
	time.Sleep(cooldown + 20*time.Millisecond)
	_, err = c.Corporation(ctx, 319218345)
	require.NotErrorIs(t, err, esi.ErrCircuitOpen)
	assert.Equal(t, 4, fake.requests())
	_, err = c.Corporation(ctx, 319218345)
	require.ErrorIs(t, err, esi.ErrCircuitOpen)
	assert.Equal(t, esi.StateOpen, c.Stats().Breaker.State)

	// ESI recovers: the next probe closes the breaker.
	fake.clearFaults()
	time.Sleep(cooldown + 20*time.Millisecond)
	e, err := c.Corporation(ctx, 319218345)
	require.NoError(t, err)
	assert.Equal(t, "Corporation 319218345", e.Name)
	assert.Equal(t, esi.StateClosed, c.Stats().Breaker.State)
	assert.Equal(t, 5, fake.requests())
}

func TestMetricsAndStats(t *testing.T) {
	fake := newFakeESI(t, loadFixtures(t))
	reg := prometheus.NewRegistry()
	c := fake.client(t, esi.Config{Registerer: reg})
	ctx := t.Context()
	_, err := c.Corporation(ctx, 319218345)
	require.NoError(t, err)
	_, err = c.Corporation(ctx, 319218345)
	require.NoError(t, err)
	_, err = c.Corporation(ctx, 98_999_999)
	require.ErrorIs(t, err, esi.ErrNotFound)

	got := gather(t, reg)
	assert.Equal(t, map[string]float64{
		`wanderer_kills_esi_requests_total{class="2xx",route="corporation"}`:   1,
		`wanderer_kills_esi_requests_total{class="4xx",route="corporation"}`:   1,
		`wanderer_kills_esi_cache_lookups_total{cache="entity",result="hit"}`:  1,
		`wanderer_kills_esi_cache_lookups_total{cache="entity",result="miss"}`: 2,
		`wanderer_kills_esi_error_limit_remain`:                                100,
		`wanderer_kills_esi_breaker_state`:                                     0,
	}, got)

	st := c.Stats()
	assert.EqualValues(t, 1, st.CacheHits)
	assert.EqualValues(t, 2, st.CacheMisses)
	assert.InDelta(t, 1.0/3, st.HitRate, 1e-9)
	assert.Equal(t, 100, st.ErrorBudgetRemaining)
	assert.Equal(t, esi.StateClosed, st.Breaker.State)
	assert.Equal(t, 10, st.Breaker.Threshold)
	assert.Positive(t, st.CacheEntries)
}

// gather returns the non-zero samples of reg as "name{labels}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if v != 0 || strings.HasSuffix(key, "breaker_state") {
				out[key] = v
			}
		}
	}
	return out
}

func TestRunStops(t *testing.T) {
	fake := newFakeESI(t, loadFixtures(t))
	c := fake.client(t, esi.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	_, err := c.Corporation(t.Context(), 319218345)
	require.NoError(t, err)
	cancel()
	require.NoError(t, <-done)
	_, err = c.Corporation(t.Context(), 1172774420)
	require.True(t, errors.Is(err, esi.ErrClosed), "got %v", err)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, esi.Config{}.Validate())
	require.Error(t, esi.Config{BaseURL: "esi.evetech.net"}.Validate())
	require.Error(t, esi.Config{Timeout: -1}.Validate())
}

// A Run whose context ends at once (serve failing to listen right after
// starting) must still return: ttlcache's janitors lost a Stop that came
// before their Start and kept Run waiting forever.
func TestRunReturnsWhenCancelledAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	for range 200 {
		c := esi.New(srv.Client(), esi.Config{BaseURL: srv.URL}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}
