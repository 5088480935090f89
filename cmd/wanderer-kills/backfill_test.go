package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// committedArchive is ingest's small EVE Ref archive: six fixtures.
var committedArchive = filepath.Join("..", "..", "ingest", "testdata", "everef", "killmails-2026-07-23.tar.bz2")

func noEnv(string) string { return "" }

// backfill runs `backfill` in-process and returns its stdout and error.
func backfill(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"backfill", "--progress-interval", "10ms"}, args...), noEnv, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	return stdout.String(), err
}

func openTestStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// fixtureLines returns the first n fixture killmails, one JSON per line.
func fixtureLines(t *testing.T, n int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fakeupstream.DefaultFixtures(), "killmails.jsonl"))
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")[:n]
}

func TestBackfillArchivesAndJSONL(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "store")
	raw, err := os.ReadFile(committedArchive)
	require.NoError(t, err)
	truncated := filepath.Join(dir, "killmails-2026-07-24.tar.bz2")
	require.NoError(t, os.WriteFile(truncated, raw[:len(raw)/2], 0o644))
	jsonl := filepath.Join(dir, "extra.jsonl")
	lines := append(fixtureLines(t, 10), "<html>oops</html>")
	require.NoError(t, os.WriteFile(jsonl, []byte(strings.Join(lines, "\n")), 0o644))

	out, err := backfill(t, "--data-dir", data, "--no-enrich", "--everef", committedArchive, truncated, "--jsonl", jsonl)
	require.NoError(t, err, "a broken archive does not fail the run")
	assert.Contains(t, out, "new 15,")
	assert.Contains(t, out, "duplicate 1,")
	assert.Contains(t, out, "rejected 1,")
	assert.Contains(t, out, "killmails-2026-07-24.tar.bz2")
	assert.Contains(t, out, "FAILED: ingest: unreadable archive")
	assert.Contains(t, out, "html: 1")
	assert.Contains(t, out, "extra.jsonl line 11")

	out, err = backfill(t, "--data-dir", data, "--no-enrich", "--everef", committedArchive, truncated, "--jsonl", jsonl)
	require.NoError(t, err)
	assert.Contains(t, out, "read 0 (0/s), new 0, updated 0, duplicate 0, rejected 0, skipped (done before) 17", "the second run adds nothing")

	st := openTestStore(t, data)
	assert.EqualValues(t, 15, st.Count(), "one of the ten lines repeats one of the archive's killmails")
	assert.EqualValues(t, 15, st.Head())
	e, err := st.Get(t.Context(), 24209201)
	require.NoError(t, err)
	assert.True(t, e.Quiet, "not for live subscribers without --notify")
}

func TestBackfillNotifyStoresLoud(t *testing.T) {
	data := t.TempDir()
	_, err := backfill(t, "--data-dir", data, "--no-enrich", "--notify", "--everef", committedArchive)
	require.NoError(t, err)
	st := openTestStore(t, data)
	e, err := st.Get(t.Context(), 24209201)
	require.NoError(t, err)
	assert.False(t, e.Quiet)
}

func TestBackfillStandardInput(t *testing.T) {
	data := t.TempDir()
	var stdout bytes.Buffer
	f := backfillFlags{storeFlags: storeFlags{dataDir: data}, jsonl: fileList{"-"}, noEnrich: true, batch: 2,
		zkbRate: 1, enrichTimeout: time.Second, progressEvery: time.Second,
		zkbURL: "http://127.0.0.1:1", esiURL: "http://127.0.0.1:1"}
	st := openTestStore(t, data)
	stdin := strings.NewReader(strings.Join(fixtureLines(t, 3), "\n"))
	require.NoError(t, f.run(t.Context(), st, stdin, &stdout, io.Discard, nil))
	assert.Contains(t, stdout.String(), "standard input")
	assert.EqualValues(t, 3, st.Count())
}

func TestBackfillZKBHistory(t *testing.T) {
	up := fakeupstream.New(t, fakeupstream.Options{})
	data := t.TempDir()
	args := []string{"--data-dir", data, "--zkb-history", "2026-07-23:20260725", "--zkb-url", up.ZKBURL(),
		"--esi-url", up.ESIURL(), "--zkb-rate", "100"}
	out, err := backfill(t, args...)
	require.NoError(t, err)
	assert.Contains(t, out, "new 4,")
	assert.Contains(t, out, "2026-07-24 (zKillboard)")

	out, err = backfill(t, args...)
	require.NoError(t, err)
	assert.Contains(t, out, "skipped (done before) 4")

	st := openTestStore(t, data)
	require.EqualValues(t, 4, st.Count())
	err = st.Scan(t.Context(), time.Date(2026, 7, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 26, 0, 0, 0, 0, time.UTC),
		func(e store.Entry) bool {
			km, err := e.Killmail()
			require.NoError(t, err)
			assert.NotNil(t, km.ZKB, "killmail %d has its zkb block", km.KillmailID)
			assert.NotEmpty(t, km.Victim.ShipName, "enriched")
			if id := km.Victim.CorporationID; id > 0 {
				assert.Equal(t, fakeupstream.Name(fakeupstream.CategoryCorporation, id), km.Victim.CorporationName, "enriched by ESI")
			}
			return true
		})
	require.NoError(t, err)
}

func TestBackfillRefusesAHeldStore(t *testing.T) {
	t.Run("this process", func(t *testing.T) {
		data := t.TempDir()
		openTestStore(t, data)
		_, err := backfill(t, "--data-dir", data, "--everef", committedArchive)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the store in "+data+" is held by another process")
	})
	t.Run("a running serve", func(t *testing.T) {
		up := fakeupstream.New(t, fakeupstream.Options{})
		data := filepath.Join(t.TempDir(), "store")
		startServe(t, data, up, "--source", "none")
		_, err := backfill(t, "--data-dir", data, "--everef", committedArchive)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the store in "+data+" is held by another process")
	})
}

func TestBackfillNothingReadable(t *testing.T) {
	out, err := backfill(t, "--data-dir", t.TempDir(), "--everef", filepath.Join(t.TempDir(), "missing.tar.bz2"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing could be read")
	assert.Contains(t, out, "FAILED")
}

// writeGeneratedArchive writes n killmails (the smallest fixture under
// fresh ids) as an EVE Ref archive with the bzip2 tool.
func writeGeneratedArchive(t *testing.T, path string, n int) {
	t.Helper()
	bz, err := exec.LookPath("bzip2")
	require.NoError(t, err, "the bzip2 command is required to build test archives (apt-get install bzip2)")
	base := fixtureLines(t, 13)[12] // killmail 24209201, 339 bytes
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for i := range n {
		id := 300_000_000 + i
		body := strings.Replace(base, `"killmail_id":24209201`, fmt.Sprintf(`"killmail_id":%d`, id), 1)
		require.NotEqual(t, base, body)
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("killmails/%d.json", id), Mode: 0o644, Size: int64(len(body))}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	cmd := exec.Command(bz, "-c", "-1")
	cmd.Stdin = &tarball
	out, err := cmd.Output()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, out, 0o644))
}

// TestBackfillKill9Resumes runs the real binary, kills it with SIGKILL
// once it has committed some batches, and runs it again: every killmail
// is stored once and the totals add up.
func TestBackfillKill9Resumes(t *testing.T) {
	const n = 4000
	dir := t.TempDir()
	archive := filepath.Join(dir, "killmails-2026-01-01.tar.bz2")
	writeGeneratedArchive(t, archive, n)
	data := filepath.Join(dir, "store")
	args := []string{"backfill", "--data-dir", data, "--no-enrich", "--batch", "20", "--workers", "1",
		"--progress-interval", "5ms", "--log-format", "json", "--everef", archive}

	cmd := exec.Command(binary(t), args...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			New int    `json:"new"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "backfill progress" && line.New > 0 {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
			break
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	_ = cmd.Wait()
	require.True(t, killed, "the backfill ended before it could be killed")

	raw, err := exec.Command(binary(t), args...).Output()
	require.NoError(t, err)
	out := string(raw)
	var skipped, added int
	_, err = fmt.Sscanf(out[strings.Index(out, "skipped (done before)"):], "skipped (done before) %d", &skipped)
	require.NoError(t, err, out)
	_, err = fmt.Sscanf(out[strings.Index(out, "new "):], "new %d", &added)
	require.NoError(t, err, out)
	assert.Positive(t, skipped, "the second run resumed: %s", out)
	assert.Equal(t, n, skipped+added, "%s", out)

	st := openTestStore(t, data)
	assert.EqualValues(t, n, st.Count())
	assert.EqualValues(t, n, st.Head(), "nothing stored twice")
}

func TestBackfillFlags(t *testing.T) {
	now := time.Date(2026, 7, 30, 12, 0, 0, 0, time.UTC)
	t.Run("file lists", func(t *testing.T) {
		got, err := expandLists([]string{"--everef", "a", "b", "--no-enrich", "-jsonl", "-", "c", "--batch", "5"})
		require.NoError(t, err)
		assert.Equal(t, []string{"--everef", "a", "--everef", "b", "--no-enrich", "-jsonl", "-", "-jsonl", "c", "--batch", "5"}, got)
		_, err = expandLists([]string{"--everef", "--no-enrich"})
		require.ErrorContains(t, err, "--everef needs at least one file")
	})
	t.Run("days", func(t *testing.T) {
		days, err := parseDays("2026-07-28:20260730", now)
		require.NoError(t, err)
		require.Len(t, days, 3)
		assert.Equal(t, time.Date(2026, 7, 29, 0, 0, 0, 0, time.UTC), days[1])
	})
	cases := map[string]struct {
		args []string
		want string
	}{
		"no source":     {nil, "nothing to import"},
		"bad day":       {[]string{"--zkb-history", "July 4th"}, "not a day"},
		"future":        {[]string{"--zkb-history", "2999-01-01"}, "in the future"},
		"backwards":     {[]string{"--zkb-history", "2026-07-02:2026-07-01"}, "TO is before FROM"},
		"batch":         {[]string{"--everef", "x", "--batch", "0"}, "--batch"},
		"stray":         {[]string{"--no-enrich", "x.tar.bz2"}, "unexpected argument"},
		"empty --jsonl": {[]string{"--jsonl"}, "needs at least one file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := backfill(t, append([]string{"--data-dir", t.TempDir()}, c.args...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestBackfillHelpListsEnvironment(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"backfill", "--help"}, noEnv, &out, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, s := range []string{"-everef", "-jsonl", "-zkb-history", "[WK_DATA_DIR]", "[WK_BACKFILL_NO_ENRICH]",
		"[WK_BACKFILL_NOTIFY]", "[WK_BACKFILL_BATCH]", "[WK_ESI_URL]", "[WK_ZKB_URL]", "[WK_ZKB_RATE]"} {
		assert.Contains(t, out.String(), s)
	}
}

func TestMeterLine(t *testing.T) {
	tally := ingest.Tally{Read: 500, Added: 490, Duplicate: 8, Rejected: 2, Skipped: 100}
	half := func() (float64, bool) { return 0.5, true }
	assert.Equal(t, "[############------------]  50%  500 read  490 new  8 dup  2 rejected  50/s  (100 done before)  ETA 10s",
		meterLine(tally, half, 10*time.Second))
	unknown := func() (float64, bool) { return 0, false }
	assert.Equal(t, "500 read  490 new  8 dup  2 rejected  250/s  (100 done before)", meterLine(tally, unknown, 2*time.Second))
}
