package bench_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/bench"
	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/server"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const benchKey = "bench-key"

// smallPools keeps the names to look up few, so enrichment (against the
// fake ESI) does not dominate the figures.
var smallPools = bench.GenConfig{Seed: 7, Characters: 50, Corporations: 10, Alliances: 5, FleetFights: -1}

// serveInProcess runs the real service in this process: a store in a
// temp dir, the pipeline enriching from the fake ESI over HTTP, and the
// server with push ingest on, listening on loopback. It returns the base
// URL and the store.
func serveInProcess(t testing.TB) (string, *store.Store) {
	t.Helper()
	fu := fakeupstream.New(t, fakeupstream.Options{})
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	ec := esi.New(nil, esi.Config{BaseURL: fu.ESIURL(), Retries: -1, RatePerSecond: 10000, Burst: 10000}, nil)
	cat, err := data.Load()
	require.NoError(t, err)
	pipe := ingest.NewPipeline(st, ec, esi.NewEnricher(ec, cat), ingest.PipelineConfig{}, nil)
	srv, err := server.New(server.Config{Version: "test", APIKey: benchKey, ShutdownTimeout: 5 * time.Second},
		server.Deps{Store: st, Push: pipe})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	esiDone, served := make(chan struct{}), make(chan error, 1)
	go func() { _ = ec.Run(ctx); close(esiDone) }()
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		<-esiDone
		require.NoError(t, st.Close())
	})
	return "http://" + ln.Addr().String(), st
}

// TestPushLoad: every pushed killmail is accepted, stored, and delivered
// once to every client, with latencies measured.
func TestPushLoad(t *testing.T) {
	base, st := serveInProcess(t)
	cfg := bench.PushConfig{BaseURL: base, APIKey: benchKey, Clients: 3, Systems: 5, Rate: 400, BatchSize: 20,
		Total: 120, Drain: 20 * time.Second, FirstID: 500_000_000, Gen: smallPools}
	rep, err := bench.PushLoad(context.Background(), cfg)
	require.NoError(t, err)
	t.Log(rep)
	assert.Empty(t, rep.Errors)
	assert.Equal(t, 6, rep.Requests)
	assert.Equal(t, 120, rep.Sent)
	assert.Equal(t, 120, rep.Accepted)
	assert.Zero(t, rep.Duplicates+rep.Rejected+rep.Failed+rep.RateLimited)
	assert.Equal(t, 360, rep.Expected)
	assert.Equal(t, 360, rep.Delivered)
	assert.Zero(t, rep.Lost())
	assert.Zero(t, rep.Redelivered)
	assert.Equal(t, 360, rep.Delivery.Count)
	assert.Equal(t, 6, rep.Commit.Count)
	assert.Positive(t, rep.Delivery.P50)
	assert.LessOrEqual(t, rep.Delivery.P50, rep.Delivery.P99)
	assert.EqualValues(t, 120, st.Count())

	// The labels are kept as sent: the stamp is on the stored copy.
	ent, err := st.Get(context.Background(), 500_000_000)
	require.NoError(t, err)
	km, err := ent.Killmail()
	require.NoError(t, err)
	require.NotNil(t, km.ZKB)
	assert.Contains(t, km.ZKB.Labels, "pvp")
	require.Len(t, km.ZKB.Labels, 2)
	assert.Regexp(t, `^wkbench:sent:\d+$`, km.ZKB.Labels[1])

	// The same ids again are duplicates and deliver nothing.
	cfg.Drain = 200 * time.Millisecond
	rep, err = bench.PushLoad(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, 120, rep.Duplicates)
	assert.Zero(t, rep.Accepted)
	assert.Zero(t, rep.Delivered)
}

func TestPushLoadConfig(t *testing.T) {
	for name, cfg := range map[string]bench.PushConfig{
		"no url":       {APIKey: "k"},
		"ws url":       {BaseURL: "ws://127.0.0.1:1", APIKey: "k"},
		"no key":       {BaseURL: "http://127.0.0.1:1"},
		"negative":     {BaseURL: "http://127.0.0.1:1", APIKey: "k", Clients: -1},
		"many systems": {BaseURL: "http://127.0.0.1:1", APIKey: "k", Systems: 10001},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := bench.PushLoad(context.Background(), cfg)
			require.Error(t, err)
		})
	}
	// A service that is not there: the clients cannot connect.
	_, err := bench.PushLoad(context.Background(), bench.PushConfig{BaseURL: "http://127.0.0.1:1", APIKey: "k"})
	require.ErrorContains(t, err, "client 0")
}

// BenchmarkPushLoad pushes b.N killmails to an in-process service with
// 10 WebSocket clients and reports commit and delivery latency (ns/op
// is meaningless: the run is paced).
func BenchmarkPushLoad(b *testing.B) {
	base, _ := serveInProcess(b)
	rep, err := bench.PushLoad(context.Background(), bench.PushConfig{BaseURL: base, APIKey: benchKey, Clients: 10,
		Systems: 50, Rate: 1000, BatchSize: 50, Total: max(b.N, 50), Drain: 30 * time.Second, FirstID: 600_000_000, Gen: smallPools})
	require.NoError(b, err)
	b.Log(rep)
	b.ReportMetric(float64(rep.Lost()), "lost")
	b.ReportMetric(float64(rep.Delivery.P50)/1e6, "p50-ms")
	b.ReportMetric(float64(rep.Delivery.P99)/1e6, "p99-ms")
	b.ReportMetric(float64(rep.Commit.P50)/1e6, "commit-p50-ms")
	b.ReportMetric(rep.Throughput, "kills/s")
}
