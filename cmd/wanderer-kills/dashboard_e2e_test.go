package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
)

// chromiumPath is Debian's chromium, which `make test` installs.
const chromiumPath = "/usr/bin/chromium"

// dashState is what the dashboard shows, read from its DOM.
type dashState struct {
	Stored     string   `json:"stored"`
	Rate       string   `json:"rate"`
	FeedSource string   `json:"feedSource"`
	Conn       string   `json:"conn"`
	KillsConn  string   `json:"killsConn"`
	IDs        []int64  `json:"ids"`
	Links      []string `json:"links"`
	Overflow   bool     `json:"overflow"`
}

const dashProbe = `(() => {
  const text = (id) => document.getElementById(id).textContent;
  const rows = [...document.querySelectorAll("#kills-body tr")];
  return {
    stored: text("stored"),
    rate: text("rate"),
    feedSource: text("feed-source"),
    conn: document.getElementById("conn").dataset.state,
    killsConn: document.getElementById("kills-conn").dataset.state,
    ids: rows.map((tr) => Number(tr.dataset.id)),
    links: rows.map((tr) => tr.querySelector("a.kill-link").getAttribute("href")),
    overflow: document.documentElement.scrollWidth > window.innerWidth,
  };
})()`

// browser is a headless chromium tab and what its console said.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	bad []string // console errors and uncaught exceptions
}

// newBrowser starts Debian's chromium headless, in a new profile, with the
// background traffic of a desktop browser turned off.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the dashboard browser test needs Debian's chromium at %s (%v): `make test` installs it "+
			"(make test-deps; by hand: apt-get update && apt-get install -y chromium)", chromiumPath, err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, // --headless (with --hide-scrollbars, --mute-audio)
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	b := &browser{ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				b.mu.Lock()
				b.bad = append(b.bad, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.bad)
}

// state reads the page.
func (b *browser) state(t *testing.T) dashState {
	t.Helper()
	st, err := chromedp.Run(b.ctx, chromedp.Evaluate[dashState](dashProbe))
	require.NoError(t, err)
	return st
}

// waitFor polls the page until cond holds.
func (b *browser) waitFor(t *testing.T, what string, cond func(dashState) bool) dashState {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		st := b.state(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard never showed %s; last state %+v; console: %v", what, st, b.consoleErrors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot writes a PNG of the whole page.
func (b *browser) screenshot(t *testing.T, path string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// stillScheme emulates prefers-color-scheme, and reduced motion so that
// no highlight is caught mid-fade ("" resets both).
func stillScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var features []*emulation.MediaFeature
		if scheme != "" {
			features = []*emulation.MediaFeature{
				{Name: "prefers-color-scheme", Value: scheme},
				{Name: "prefers-reduced-motion", Value: "reduce"},
			}
		}
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return err
	})
}

func idsOf(kms []fakeupstream.Killmail) []int64 {
	ids := make([]int64, len(kms))
	for i, km := range kms {
		ids[i] = km.ID
	}
	return ids
}

func sameIDs(a, b []int64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestDashboardInBrowser loads the dashboard of the real binary in
// headless chromium while the fake R2Z2 releases killmails: the count,
// the rate and the latest list follow without a reload, each row links
// to its killmail, the page fits a phone, and the console stays clean.
// WK_DASHBOARD_SCREENSHOT=path also writes the README's screenshot
// (light; path-dark.png and path-phone.png beside it) with every fixture
// loaded.
func TestDashboardInBrowser(t *testing.T) {
	b := newBrowser(t)
	up := fakeupstream.New(t, fakeupstream.Options{})
	all := idsOf(up.Killmails())
	up.Release(5)
	p := startServe(t, filepath.Join(t.TempDir(), "store"), up, "--r2z2-start", strconv.FormatInt(up.FirstSequence(), 10))
	require.Eventually(t, func() bool { return p.stored(t) == 5 }, 60*time.Second, 50*time.Millisecond)

	require.NoError(t, chromedp.Do(b.ctx, chromedp.Navigate(p.base+"/dashboard")))
	st := b.waitFor(t, "the 5 stored killmails, both streams live", func(s dashState) bool {
		return s.Stored == "5" && len(s.IDs) == 5 && s.Conn == "live" && s.KillsConn == "live"
	})
	assert.True(t, sameIDs(all[:5], st.IDs), "the stored ones, from /api/v2/killmails: %v", st.IDs)
	assert.Equal(t, "r2z2", st.FeedSource)

	// Ten more upstream: the page follows without a reload.
	up.Release(10)
	st = b.waitFor(t, "15 killmails stored and listed", func(s dashState) bool {
		return s.Stored == "15" && len(s.IDs) == 15
	})
	assert.True(t, sameIDs(all[5:15], st.IDs[:10]), "the new ones arrived live, on top: %v", st.IDs)
	assert.True(t, sameIDs(all[:15], st.IDs))
	st = b.waitFor(t, "an ingest rate", func(s dashState) bool { return s.Rate != "0" && s.Rate != "n/a" && s.Rate != "—" })
	rate, err := strconv.Atoi(st.Rate)
	require.NoError(t, err, "rate %q", st.Rate)
	assert.Positive(t, rate)

	// Each row links to its killmail, which the API serves.
	require.Len(t, st.Links, len(st.IDs))
	for i, id := range st.IDs {
		assert.Equal(t, fmt.Sprintf("/api/v1/killmail/%d", id), st.Links[i])
	}
	res, err := http.Get(p.base + st.Links[0])
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)

	b.screenshot(t, filepath.Join(t.TempDir(), "dashboard.png"))

	// A phone: nothing wider than the screen.
	require.NoError(t, chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)))
	b.waitFor(t, "a layout that fits 390 px", func(s dashState) bool { return !s.Overflow })
	require.NoError(t, chromedp.Do(b.ctx, chromedp.EmulateViewport(1280, 900)))

	if path := os.Getenv("WK_DASHBOARD_SCREENSHOT"); path != "" {
		up.ReleaseAll()
		b.waitFor(t, "every fixture stored", func(s dashState) bool {
			return s.Stored == strconv.Itoa(len(all)) && len(s.IDs) == 20
		})
		base := strings.TrimSuffix(path, filepath.Ext(path))
		require.NoError(t, chromedp.Do(b.ctx, stillScheme("light")))
		b.screenshot(t, path)
		require.NoError(t, chromedp.Do(b.ctx, stillScheme("dark")))
		b.screenshot(t, base+"-dark.png")
		require.NoError(t, chromedp.Do(b.ctx, stillScheme("light"), chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)))
		b.screenshot(t, base+"-phone.png")
		require.NoError(t, chromedp.Do(b.ctx, stillScheme(""), chromedp.EmulateViewport(1280, 900)))
	}
	assert.Empty(t, b.consoleErrors(), "console errors or exceptions (a CSP violation shows here)")
}
