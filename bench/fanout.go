package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wanderer-industries/wanderer-kills-go/server"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// loadDriver talks to a client load (child process or goroutine).
type loadDriver struct {
	enc  *json.Encoder
	dec  *json.Decoder
	in   io.Closer
	wait func() error
}

// startLoad starts the client load: the ClientCommand as a child
// process, or ServeClientLoad in a goroutine when there is none.
func (r *runner) startLoad(ctx context.Context) (*loadDriver, error) {
	if len(r.o.ClientCommand) == 0 {
		reqR, reqW := io.Pipe()
		repR, repW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := ServeClientLoad(ctx, reqR, repW)
			_ = repW.CloseWithError(io.EOF)
			done <- err
		}()
		stop := context.AfterFunc(ctx, func() { _ = reqW.Close() })
		return &loadDriver{enc: json.NewEncoder(reqW), dec: json.NewDecoder(repR), in: reqW,
			wait: func() error { stop(); return <-done }}, nil
	}
	cmd := exec.CommandContext(ctx, r.o.ClientCommand[0], r.o.ClientCommand[1:]...)
	cmd.Stderr = r.o.Log
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: client load: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: client load: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start client load: %w", err)
	}
	return &loadDriver{enc: json.NewEncoder(in), dec: json.NewDecoder(out), in: in, wait: cmd.Wait}, nil
}

func (d *loadDriver) call(req loadRequest) (loadReply, error) {
	var rep loadReply
	if err := d.enc.Encode(req); err != nil {
		return rep, fmt.Errorf("bench: client load: %w", err)
	}
	if err := d.dec.Decode(&rep); err != nil {
		return rep, fmt.Errorf("bench: client load: %w", err)
	}
	return rep, nil
}

// stop closes the clients and ends the load.
func (d *loadDriver) stop() error {
	_, err := d.call(loadRequest{Op: "close"})
	_ = d.in.Close()
	if werr := d.wait(); err == nil {
		err = werr
	}
	return err
}

// liveServer is the real server, in-process, on a loopback port, over a
// store of its own.
type liveServer struct {
	st   *store.Store
	reg  *prometheus.Registry
	addr string
	stop func() error
}

func startServer(ctx context.Context, dir string) (*liveServer, error) {
	st, err := store.Open(ctx, store.Config{Dir: dir})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	srv, err := server.New(server.Config{Registry: reg, Live: server.HubConfig{
		MaxConnPerIP: -1, MaxSSEConnections: -1, IdleTimeout: time.Hour,
	}}, server.Deps{Store: st})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	return &liveServer{st: st, reg: reg, addr: ln.Addr().String(), stop: func() error {
		cancel()
		err := <-served
		return errors.Join(err, st.Close())
	}}, nil
}

// subscriptions reads the server's live subscriptions gauge.
func (s *liveServer) subscriptions() int {
	return int(s.gauge("wanderer_kills_live_subscriptions"))
}

// gauge reads one of the server's gauges (-1 when absent).
func (s *liveServer) gauge(name string) float64 {
	mfs, err := s.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// waitTail waits until the hub has delivered everything committed, so
// that killmails of one step cannot reach the clients of the next (they
// would be counted as arrivals of the wrong step).
func (s *liveServer) waitTail(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		tail := s.gauge("wanderer_kills_live_tail_offset")
		if tail < 0 {
			return errors.New("bench: the server has no live_tail_offset gauge")
		}
		if uint64(tail) >= s.st.Head() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: the hub's tail is stuck behind offset %d", s.st.Head())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitSubscriptions waits until the server holds n subscriptions.
func (s *liveServer) waitSubscriptions(ctx context.Context, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := s.subscriptions()
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: server holds %d subscriptions, want %d", got, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// heapBytes is the heap and goroutine stacks in use after a full GC.
func heapBytes() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// runFanout measures delivery from commit to client read at each client
// count of steps, over one transport.
func (r *runner) runFanout(ctx context.Context, transport string, steps []int) (*FanoutResult, error) {
	srv, err := startServer(ctx, filepath.Join(r.dir, "fanout-"+transport))
	if err != nil {
		return nil, err
	}
	load, err := r.startLoad(ctx)
	if err != nil {
		return nil, errors.Join(err, srv.stop())
	}
	res, err := r.fanoutSteps(ctx, srv, load, transport, steps)
	err = errors.Join(err, load.stop(), srv.stop())
	return res, err
}

func (r *runner) fanoutSteps(ctx context.Context, srv *liveServer, load *loadDriver, transport string, steps []int) (*FanoutResult, error) {
	gen := NewGenerator(r.templates, GenConfig{Seed: r.o.Seed + 3, FirstID: 500_000_000})
	sub := r.subscription()
	aud := newAudience(sub)
	base := heapBytes()
	res := &FanoutResult{KillmailsPerSec: float64(r.o.PublishRate), Model: sub.describe()}
	if sub.Model == FanoutModelMap {
		res.SystemsPerClient = sub.PerClient
	}
	for _, n := range steps {
		if err := srv.waitTail(ctx); err != nil {
			return nil, err
		}
		t0 := time.Now()
		rep, err := load.call(loadRequest{Op: "connect", Addr: srv.addr, Transport: transport, Clients: n, Sub: sub})
		if err != nil {
			return nil, err
		}
		aud.join(rep.Joined)
		if aud.clients != rep.Clients {
			return nil, fmt.Errorf("bench: %s: %d clients open, %d accounted for", transport, rep.Clients, aud.clients)
		}
		if rep.Clients == 0 {
			return nil, fmt.Errorf("bench: %s: no client connected: %s", transport, rep.Err)
		}
		if rep.Failed > 0 {
			r.logf("%s: %d of %d clients failed to connect (%s); going on with %d", transport, rep.Failed, n, rep.Err, rep.Clients)
		}
		if err := srv.waitSubscriptions(ctx, rep.Clients); err != nil {
			return nil, err
		}
		step := FanoutStep{Clients: rep.Clients, ConnectSeconds: time.Since(t0).Seconds()}
		step.BytesPerClient = float64(heapBytes()-base) / float64(rep.Clients)
		cpu0 := CPUTime()
		pub, err := publish(ctx, srv.st, gen, sub.publishSystem(), r.o.PublishRate, r.o.PublishFor)
		if err != nil {
			return nil, err
		}
		step.Published = len(pub.commits)
		expect := aud.expect(pub.perSystem)
		step.Expected = expect
		step.Reach = float64(expect) / float64(max(1, step.Published*rep.Clients))
		got, err := load.call(loadRequest{Op: "collect", Commits: pub.commits, Expect: expect, WaitMs: 10_000})
		if err != nil {
			return nil, err
		}
		h := got.Hist
		step.Deliveries = got.Deliveries
		if got.Deliveries > 0 {
			// The collect's wait for the expected deliveries is idle time;
			// the client load's CPU counts from the connect's reply.
			step.ServerCPUus = float64((CPUTime() - cpu0).Microseconds()) / float64(got.Deliveries)
			step.ClientCPUus = (got.CPUSeconds - rep.CPUSeconds) * 1e6 / float64(got.Deliveries)
		}
		step.DeliveredRatio = 1 // nothing owed, nothing missed
		if expect > 0 {
			step.DeliveredRatio = float64(got.Deliveries) / float64(expect)
		}
		// Deliveries a second at the publish rate.
		step.DeliveriesPerSec = float64(got.Deliveries) * float64(r.o.PublishRate) / float64(max(1, step.Published))
		step.P50ms, step.P90ms, step.P99ms = ms(h.Quantile(0.50)), ms(h.Quantile(0.90)), ms(h.Quantile(0.99))
		step.Maxms = ms(h.Max())
		res.Steps = append(res.Steps, step)
		r.logf("%s (%s): %d clients: p50 %.1f ms, p99 %.1f ms, delivered %.4f of %d (%.0f/s, %.2f%% of clients per kill), "+
			"%.0f B/client, CPU µs/delivery server %.2f client %.2f",
			transport, sub.Model, step.Clients, step.P50ms, step.P99ms, step.DeliveredRatio, expect, step.DeliveriesPerSec,
			100*step.Reach, step.BytesPerClient, step.ServerCPUus, step.ClientCPUus)
	}
	last := res.Steps[len(res.Steps)-1]
	res.Clients, res.DeliveryP50ms, res.DeliveryP99ms, res.DeliveryMaxms = last.Clients, last.P50ms, last.P99ms, last.Maxms
	res.DeliveredRatio, res.BytesPerClient = last.DeliveredRatio, last.BytesPerClient
	res.DeliveriesPerSec, res.ClientReach = last.DeliveriesPerSec, last.Reach
	return res, nil
}

// subscription is the run's fan-out model.
func (r *runner) subscription() subscription {
	if r.o.FanoutModel == FanoutModelBroadcast {
		return subscription{Model: FanoutModelBroadcast}
	}
	return subscription{Model: FanoutModelMap, PerClient: r.o.SystemsPerClient, Seed: r.o.Seed + 7}
}

// published is what publish committed: each killmail's commit time (unix
// ns) by id, and the killmails per system.
type published struct {
	commits   map[int64]int64
	perSystem map[int64]int
}

// publish appends rate killmails a second for d, one synced commit each,
// in the Generator's systems or, when system is set, all in that one.
func publish(ctx context.Context, st *store.Store, gen *Generator, system int64, rate int, d time.Duration) (published, error) {
	n := max(1, int(d.Seconds()*float64(rate)))
	pub := published{commits: make(map[int64]int64, n), perSystem: map[int64]int{}}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for range n {
		select {
		case <-ctx.Done():
			return pub, ctx.Err()
		case <-tick.C:
		}
		km := gen.Next()
		if system != 0 {
			km.SystemID = system
		}
		if _, err := st.Append(ctx, store.Batch{Killmails: []*store.Killmail{km}}); err != nil {
			return pub, err
		}
		pub.commits[km.KillmailID] = time.Now().UnixNano()
		pub.perSystem[km.SystemID]++
	}
	return pub, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
