package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
)

// progress tracks how much of the work is done, for the ETA: bytes of the
// files (standard input is unknown), then whole days of history.
type progress struct {
	totalBytes int64
	files      int
	days       int
	doneBytes  atomic.Int64 // bytes of the finished files
	cur        atomic.Int64 // bytes read of the current file
	doneDays   atomic.Int64
}

func newProgress(everef, jsonl []string, days int) *progress {
	p := &progress{days: days}
	for _, path := range slices.Concat(everef, jsonl) {
		if path == "-" {
			continue
		}
		if fi, err := os.Stat(path); err == nil {
			p.totalBytes += fi.Size()
			p.files++
		}
	}
	return p
}

// reader counts what is read from r as the current file's progress.
func (p *progress) reader(r io.Reader) io.Reader {
	p.cur.Store(0)
	return &countingReader{r: r, n: &p.cur}
}

func (p *progress) fileDone(size int64) {
	p.doneBytes.Add(size)
	p.cur.Store(0)
}

func (p *progress) dayDone() { p.doneDays.Add(1) }

// fraction returns the share of the work done, and whether it is known.
// Files and days weigh by their count.
func (p *progress) fraction() (float64, bool) {
	var sum, parts float64
	if p.totalBytes > 0 {
		f := float64(p.doneBytes.Load()+p.cur.Load()) / float64(p.totalBytes)
		sum += min(f, 1) * float64(p.files)
		parts += float64(p.files)
	}
	if p.days > 0 {
		sum += float64(p.doneDays.Load())
		parts += float64(p.days)
	}
	if parts == 0 {
		return 0, false
	}
	return sum / parts, true
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startMeter shows progress until the returned stop is called: a bar
// redrawn in place about four times a second when w is a terminal, else
// a log line every `every`. stop waits for the meter's goroutine.
func startMeter(ctx context.Context, w io.Writer, every time.Duration, totals func() ingest.Tally,
	frac func() (float64, bool), log *slog.Logger) (stop func()) {
	tty := isTerminal(w)
	if tty {
		every = 250 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				if tty {
					fmt.Fprintf(w, "\r%s\n", meterLine(totals(), frac, time.Since(start)))
				}
				return
			case <-t.C:
			}
			if tty {
				fmt.Fprintf(w, "\r%s\x1b[K", meterLine(totals(), frac, time.Since(start)))
			} else {
				logProgress(log, totals(), frac, time.Since(start))
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// barWidth is the width of the bar, in characters.
const barWidth = 24

// meterLine is the terminal progress line: bar, percent, counts, rate
// and ETA when the total is known.
func meterLine(t ingest.Tally, frac func() (float64, bool), elapsed time.Duration) string {
	var b strings.Builder
	f, known := frac()
	if known {
		done := min(max(int(f*barWidth), 0), barWidth)
		fmt.Fprintf(&b, "[%s%s] %3.0f%%  ", strings.Repeat("#", done), strings.Repeat("-", barWidth-done), f*100)
	}
	fmt.Fprintf(&b, "%d read  %d new  %d dup  %d rejected  %.0f/s", t.Read, t.Added, t.Duplicate, t.Rejected, rate(t.Read, elapsed))
	if t.Skipped > 0 {
		fmt.Fprintf(&b, "  (%d done before)", t.Skipped)
	}
	if known {
		fmt.Fprintf(&b, "  ETA %s", eta(f, elapsed))
	}
	return b.String()
}

// logProgress is the progress line for logs.
func logProgress(log *slog.Logger, t ingest.Tally, frac func() (float64, bool), elapsed time.Duration) {
	attrs := []any{"read", t.Read, "new", t.Added, "updated", t.Updated, "duplicate", t.Duplicate,
		"rejected", t.Rejected, "skipped", t.Skipped, "per_second", int(rate(t.Read, elapsed))}
	if f, ok := frac(); ok {
		attrs = append(attrs, "percent", int(f*100), "eta", eta(f, elapsed))
	}
	log.Info("backfill progress", attrs...)
}

func rate(n int, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(n) / elapsed.Seconds()
}

// eta extrapolates the time left from the share done so far.
func eta(f float64, elapsed time.Duration) string {
	if f <= 0 {
		return "?"
	}
	if f >= 1 {
		return "0s"
	}
	left := time.Duration(float64(elapsed) * (1 - f) / f)
	return left.Round(time.Second).String()
}

// writeSummary prints the totals, one line per source and the rejected
// records by reason with a few examples.
func writeSummary(w io.Writer, results []sourceResult, total ingest.Tally, elapsed time.Duration) {
	fmt.Fprintf(w, "backfill done in %s: read %d (%.0f/s), new %d, updated %d, duplicate %d, rejected %d, skipped (done before) %d\n",
		elapsed.Round(time.Millisecond), total.Read, rate(total.Read, elapsed), total.Added, total.Updated,
		total.Duplicate, total.Rejected, total.Skipped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range results {
		t := r.tally
		fmt.Fprintf(tw, "  %s\tread %d\tnew %d\tupdated %d\tduplicate %d\trejected %d\tskipped %d\t%s\n",
			r.name, t.Read, t.Added, t.Updated, t.Duplicate, t.Rejected, t.Skipped, failure(r.err))
	}
	_ = tw.Flush()
	if total.Rejected == 0 {
		return
	}
	fmt.Fprintln(w, "rejected records by reason:")
	reasons := make([]string, 0, len(total.Reasons))
	for r := range total.Reasons {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, reason := range reasons {
		fmt.Fprintf(w, "  %s: %d\n", reason, total.Reasons[reason])
		shown := 0
		for _, r := range results {
			for _, ex := range r.tally.Examples[reason] {
				if shown < 3 {
					fmt.Fprintf(w, "    %s %s\n", r.name, ex)
					shown++
				}
			}
		}
	}
}

func failure(err error) string {
	if err == nil {
		return ""
	}
	return "FAILED: " + err.Error()
}
