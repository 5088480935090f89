package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// crashChild is the writer that TestKill9LosesNoAcceptedWrite kills: the
// test binary re-executed with WK_CRASH_DIR set runs it from TestMain. It
// appends from four goroutines until killed and prints each accepted id
// with its offset.
func crashChild(dir string, round int) {
	s, err := store.Open(context.Background(), store.Config{Dir: dir})
	if err != nil {
		fmt.Println("open-error", err)
		os.Exit(2)
	}
	lines, err := os.ReadFile(fixturePath)
	if err != nil {
		fmt.Println("fixtures", err)
		os.Exit(2)
	}
	var kms []*store.Killmail
	for _, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		km, err := esi.DecodeKillmail([]byte(line))
		if err != nil {
			fmt.Println("fixtures", err)
			os.Exit(2)
		}
		kms = append(kms, km)
	}
	out := bufio.NewWriter(os.Stdout)
	next := int64(round)*1_000_000 + 1
	// Several writers at once, so group commits form; ids are handed out
	// under a lock and each writer reports the ids the store accepted.
	results := make(chan string, 64)
	for w := range 4 {
		go func() {
			r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
			for {
				var batch store.Batch
				ids := make([]int64, 1+r.IntN(5))
				for i := range ids {
					ids[i] = nextID(&next)
					km := *kms[int(ids[i])%len(kms)]
					km.KillmailID = ids[i]
					batch.Killmails = append(batch.Killmails, &km)
				}
				batch.KV = map[string][]byte{fmt.Sprintf("crash/writer/%d", w): []byte(strconv.FormatInt(ids[0], 10))}
				res, err := s.Append(context.Background(), batch)
				if err != nil {
					results <- "error " + err.Error() + "\n"
					return
				}
				var sb strings.Builder
				for i, rr := range res {
					fmt.Fprintf(&sb, "ok %d %d\n", ids[i], rr.Offset)
				}
				results <- sb.String()
			}
		}()
	}
	for line := range results {
		out.WriteString(line)
		out.Flush()
	}
}

var idMu = make(chan struct{}, 1)

func nextID(next *int64) int64 {
	idMu <- struct{}{}
	defer func() { <-idMu }()
	id := *next
	*next++
	return id
}

// TestKill9LosesNoAcceptedWrite runs a child that appends in a loop and
// kills it with SIGKILL at random moments, repeatedly. After each kill the
// store reopens with every write the child reported as accepted, offsets
// dense, and the index agreeing with the log.
func TestKill9LosesNoAcceptedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	accepted := map[int64]uint64{}
	const rounds = 6
	for round := 1; round <= rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "WK_CRASH_DIR="+dir, "WK_CRASH_ROUND="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		reported := make(chan map[int64]uint64, 1)
		writing := make(chan struct{})
		go func() {
			got := map[int64]uint64{}
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var id int64
				var off uint64
				if n, _ := fmt.Sscanf(sc.Text(), "ok %d %d", &id, &off); n == 2 {
					if len(got) == 0 {
						close(writing)
					}
					got[id] = off
				}
			}
			reported <- got
		}()
		// Once the child writes, let it go on for a random while.
		select {
		case <-writing:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: the child wrote nothing in a minute", round)
		}
		time.Sleep(time.Duration(20+r.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		got := <-reported
		require.NotEmpty(t, got, "round %d: the child accepted nothing before the kill", round)
		for id, off := range got {
			accepted[id] = off
		}
		verifyAfterCrash(t, dir, accepted)
	}
}

func verifyAfterCrash(t *testing.T, dir string, accepted map[int64]uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Dir: dir})
	require.NoError(t, err)
	defer s.Close()
	for id, off := range accepted {
		e, err := s.Get(ctx, id)
		require.NoError(t, err, "accepted killmail %d lost", id)
		require.Equal(t, off, e.Offset, "killmail %d moved", id)
	}
	// Dense offsets, every one readable and decodable.
	head := s.Head()
	var count uint64
	bySystem := map[int64]int{}
	for after := uint64(0); ; {
		es, err := s.Read(ctx, after, 500)
		require.NoError(t, err)
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			count++
			require.Equal(t, count, e.Offset, "offsets must be dense")
			km, err := e.Killmail()
			require.NoError(t, err)
			bySystem[km.SystemID]++
			after = e.Offset
		}
	}
	assert.Equal(t, head, count)
	assert.Equal(t, count, s.Count(), "index holds every log entry")
	for sys, n := range bySystem {
		assert.EqualValues(t, n, s.CountSystem(sys), "system %d", sys)
		es, _, err := s.Search(ctx, index.Query{Systems: []int64{sys}, Limit: 10000})
		require.NoError(t, err)
		assert.Len(t, es, n, "system %d", sys)
	}
}
