package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/server"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// CPUTime is the CPU time this process has used, user and system (0 if
// the kernel will not say): a steadier figure than wall time on a shared
// machine.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// charsPerSubscriber is how many characters each match subscriber
// follows beside its one system.
const charsPerSubscriber = 5

// runMatch registers subscribers through the real hub API (one system and
// five characters each) and times finding the subscribers of generated
// killmails with the hub's own index.
func (r *runner) runMatch(ctx context.Context) (*MatchResult, error) {
	st, err := store.Open(ctx, store.Config{Dir: filepath.Join(r.dir, "match")})
	if err != nil {
		return nil, err
	}
	res, err := r.match(st)
	return res, errors.Join(err, st.Close())
}

func (r *runner) match(st *store.Store) (*MatchResult, error) {
	hub, err := server.NewHub(st, server.HubConfig{}, nil, nil)
	if err != nil {
		return nil, err
	}
	subs := r.o.MatchSubscribers
	// Characters that fight, drawn from the same skewed pools as the
	// killmails, each followed by one subscriber (a map tracks its own
	// pilots), so that some killmails match by character.
	pool := NewGenerator(r.templates, r.genConfig(r.o.Seed+2))
	seen := make(map[int64]bool)
	var chars []int64
	for len(chars) < subs*charsPerSubscriber {
		for _, c := range pool.Next().Characters() {
			if !seen[c] {
				seen[c] = true
				chars = append(chars, c)
			}
		}
	}
	rnd := rand.New(rand.NewPCG(r.o.Seed, 7))
	rnd.Shuffle(len(chars), func(i, j int) { chars[i], chars[j] = chars[j], chars[i] })
	for i := range subs {
		f := server.Filter{Systems: []int64{SystemID(uint64(i))}, Characters: chars[i*charsPerSubscriber : (i+1)*charsPerSubscriber]}
		hub.Subscribe(f, func(server.Event) {})
	}
	gen := NewGenerator(r.templates, r.genConfig(r.o.Seed+4))
	kms := make([]*store.Killmail, r.o.MatchKillmails)
	lookups := 0
	for i := range kms {
		kms[i] = gen.Next()
		lookups += 2 + len(kms[i].Attackers) // the system, the victim, each attacker
	}
	r.logf("match: %d killmails against %d subscribers", len(kms), subs)
	hub.MatchTime(kms) // warm-up
	var (
		elapsed time.Duration
		matched int
		rounds  int
	)
	cpu0 := CPUTime()
	for rounds == 0 || elapsed < r.o.MatchFor {
		d, m := hub.MatchTime(kms)
		elapsed += d
		matched += m
		rounds++
	}
	cpu := CPUTime() - cpu0
	total := float64(rounds * len(kms))
	res := &MatchResult{
		Subscribers:        subs,
		SystemSubs:         subs,
		CharacterSubs:      subs * charsPerSubscriber,
		Killmails:          len(kms),
		NsPerKillmail:      float64(elapsed.Nanoseconds()) / total,
		CPUNsPerKillmail:   float64(cpu.Nanoseconds()) / total,
		NsPerLookup:        float64(elapsed.Nanoseconds()) / float64(rounds*lookups),
		LookupsPerKillmail: float64(lookups) / float64(len(kms)),
		MatchesPerKillmail: float64(matched) / total,
		How: fmt.Sprintf("%d subscribers registered with server.Hub.Subscribe, each following one system and %d "+
			"characters seen in generated fights; Hub.MatchTime runs the tail's inverted-index match (system, "+
			"victim, every attacker) on %d generated killmails, %d rounds, no decoding or delivery; ns_per_killmail "+
			"is wall time, cpu_ns_per_killmail the process' CPU time over the same rounds",
			subs, charsPerSubscriber, len(kms), rounds),
	}
	res.Verdict = verdict(check{figure: "ns_per_killmail", atMost: true, limit: TargetMatchNs, value: res.NsPerKillmail})
	return res, nil
}
