package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ScenarioPush drives the real binary over loopback: killmails POSTed to
// /api/v1/killmails (push ingest) and delivered to WebSocket clients. It
// runs only when asked for, and needs Options.Binary.
const ScenarioPush = "push"

// PushResult is the push scenario: PushLoad against `wanderer-kills
// serve` started as its own process.
type PushResult struct {
	Clients         int      `json:"clients"`
	Rate            float64  `json:"target_rate"`
	KillmailsPerSec float64  `json:"killmails_per_sec"`
	Accepted        int      `json:"accepted"`
	CommitP50ms     float64  `json:"commit_p50_ms"`
	CommitP99ms     float64  `json:"commit_p99_ms"`
	DeliveryP50ms   float64  `json:"delivery_p50_ms"`
	DeliveryP99ms   float64  `json:"delivery_p99_ms"`
	DeliveredRatio  float64  `json:"delivered_ratio"`
	Errors          []string `json:"errors,omitempty"`
	How             string   `json:"how"`
	Verdict
}

const (
	pushKey = "wanderer-kills-bench"
	// offline is an upstream URL nothing listens on.
	offline = "http://127.0.0.1:1"
)

// runPush starts the binary's serve on a free loopback port with a fresh
// store, pushes with PushLoad and stops it.
func (r *runner) runPush(ctx context.Context) (*PushResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.CommandContext(ctx, r.o.Binary, "serve", "--source", "none", "--port", strconv.Itoa(port),
		"--data-dir", filepath.Join(r.dir, "push-store"), "--api-key", pushKey, "--max-conn-per-ip", "-1",
		// Never reach the real ESI or zKillboard from a benchmark: a closed
		// port fails the name lookups at once and the killmails are stored
		// unenriched.
		"--esi-url", offline, "--zkb-url", offline, "--log-level", "error")
	cmd.Stdout, cmd.Stderr = r.o.Log, r.o.Log
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s serve: %w", r.o.Binary, err)
	}
	stop := func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("bench: %s serve: %w", r.o.Binary, err)
		}
		return nil
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(ctx, base); err != nil {
		return nil, errors.Join(err, stop())
	}
	r.logf("push: %d killmails/s to %s for %s, %d WebSocket clients", r.o.PushRate, base, r.o.PushFor, r.o.PushClients)
	rep, err := PushLoad(ctx, PushConfig{BaseURL: base, APIKey: pushKey, Clients: r.o.PushClients,
		Rate: float64(r.o.PushRate), Duration: r.o.PushFor, Drain: 10 * time.Second, Seed: r.o.Seed + 5})
	if err = errors.Join(err, stop()); err != nil {
		return nil, err
	}
	res := &PushResult{
		Clients: rep.Clients, Rate: float64(r.o.PushRate), KillmailsPerSec: rep.Throughput, Accepted: rep.Accepted,
		CommitP50ms: ms(rep.Commit.P50), CommitP99ms: ms(rep.Commit.P99),
		DeliveryP50ms: ms(rep.Delivery.P50), DeliveryP99ms: ms(rep.Delivery.P99),
		DeliveredRatio: float64(rep.Delivered) / float64(max(rep.Expected, 1)),
		Errors:         rep.Errors,
		How: fmt.Sprintf("the real binary (`serve --source none`) in its own process with a fresh store; bench.PushLoad "+
			"POSTs generated killmails in batches to /api/v1/killmails at %d/s for %s while %d WebSocket clients "+
			"(in the bench process) follow the pushed systems; commit = send → 200 (durable), delivery = send → "+
			"client read, so it includes the HTTP request and the commit; ESI is unreachable on purpose, so no "+
			"names are looked up", r.o.PushRate, r.o.PushFor, rep.Clients),
	}
	res.Verdict = verdict(
		check{figure: "delivery_p99_ms", atMost: true, limit: TargetFanoutP99ms, value: res.DeliveryP99ms},
		check{figure: "delivered_ratio", limit: TargetDeliveredRatio, value: res.DeliveredRatio},
	)
	return res, nil
}

// waitReady polls /readyz until the service answers 200.
func waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s not ready after a minute (last: %v)", base, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
