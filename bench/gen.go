// Package bench measures the service end to end (`wanderer-kills bench`)
// and holds the killmail generator that the Go benchmarks share.
package bench

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// corpus is a copy of testdata/fixtures/killmails.jsonl: 88 real ESI
// killmails whose shapes the generator reuses.
//
//go:embed corpus.jsonl
var corpus []byte

// Templates decodes the embedded real killmails.
func Templates() ([]*store.Killmail, error) {
	var out []*store.Killmail
	sc := bufio.NewScanner(bytes.NewReader(corpus))
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		km, err := esi.DecodeKillmail(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("bench: corpus: %w", err)
		}
		out = append(out, km)
	}
	return out, sc.Err()
}

// GenConfig shapes generated killmails. Zero values are defaults.
type GenConfig struct {
	// Seed makes the sequence repeatable.
	Seed uint64
	// Systems is the number of distinct systems. Zero means 7604, every
	// k-space and wormhole system SystemID knows.
	Systems int
	// Characters, Corporations and Alliances size the id pools. Zero
	// means 500k, 50k and 3k.
	Characters, Corporations, Alliances int
	// Start and Span place kill times: uniformly in [Start, Start+Span).
	// Zero means the 60 days before now.
	Start time.Time
	Span  time.Duration
	// Count, when set, is how many killmails the run generates, and kill
	// times follow arrival order instead, as a live store receives them
	// from zKillboard: the i-th killmail happens at about
	// Start + Span·i/Count and is reported a little late (an exponential
	// delay averaging 10 minutes; 2% of killmails up to a day late).
	Count int
	// FirstID is the first killmail id. Zero means 100,000,000.
	FirstID int64
	// FleetFights is the share of killmails that are fleet fights: their
	// attackers (player characters in the template's ships) are grown to
	// 150–500, beyond the largest fixture. Zero means 0.005; negative
	// means none.
	FleetFights float64
}

// Generator makes realistic killmails: each is a real fixture's shape (its
// attackers, items and sizes) with fresh ids, a time in the window, a real
// system drawn with a skewed (Zipf) popularity, and characters,
// corporations and alliances drawn from skewed pools in real id ranges.
// With the defaults the busiest system has about 2% of the kills and the
// busiest 1% of systems about 40%; the busiest pilot is in about 0.3% of
// the fights. A share of killmails (FleetFights) are fleet fights of
// 150–500 attackers. Not safe for concurrent use.
type Generator struct {
	cfg       GenConfig
	templates []*store.Killmail
	r         *rand.Rand
	systems   *rand.Zipf
	chars     *rand.Zipf
	corps     *rand.Zipf
	alliances *rand.Zipf
	nextID    int64
}

// NewGenerator builds a generator over templates (see Templates).
func NewGenerator(templates []*store.Killmail, cfg GenConfig) *Generator {
	if cfg.Systems <= 0 {
		cfg.Systems = KnownSystems
	}
	if cfg.Characters <= 0 {
		cfg.Characters = 500_000
	}
	if cfg.Corporations <= 0 {
		cfg.Corporations = 50_000
	}
	if cfg.Alliances <= 0 {
		cfg.Alliances = 3_000
	}
	if cfg.Span <= 0 {
		cfg.Span = 60 * 24 * time.Hour
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().Add(-cfg.Span)
	}
	if cfg.FirstID <= 0 {
		cfg.FirstID = 100_000_000
	}
	if cfg.FleetFights == 0 {
		cfg.FleetFights = 0.005
	}
	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	// P(rank k) ∝ (v+k)^-s; v flattens the head to real proportions.
	zipf := func(n int, s, v float64) *rand.Zipf { return rand.NewZipf(r, s, v, uint64(n-1)) }
	return &Generator{
		cfg:       cfg,
		templates: templates,
		r:         r,
		systems:   systemZipf(r, cfg.Systems),
		chars:     zipf(cfg.Characters, 1.05, 50),
		corps:     zipf(cfg.Corporations, 1.1, 1),
		alliances: zipf(cfg.Alliances, 1.2, 1),
		nextID:    cfg.FirstID,
	}
}

// systemZipf draws popularity ranks of n systems (see SystemID) as the
// Generator places kills: P(rank k) ∝ (10+k)^-1.1.
func systemZipf(r *rand.Rand, n int) *rand.Zipf { return rand.NewZipf(r, 1.1, 10, uint64(n-1)) }

// PopularSystems draws n distinct systems (without replacement) from the
// popularity the Generator places kills with (default Systems), from a
// sequence seeded by seed: what a client following n systems might pick,
// busy systems more often. n is capped at KnownSystems.
func PopularSystems(seed uint64, n int) []int64 {
	n = min(n, KnownSystems)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	z := systemZipf(r, KnownSystems)
	seen := make(map[uint64]bool, n)
	out := make([]int64, 0, n)
	for len(out) < n {
		if k := z.Uint64(); !seen[k] {
			seen[k] = true
			out = append(out, SystemID(k))
		}
	}
	return out
}

// Real solar system id blocks (data/solar_systems.csv): k-space from
// 30000001 and wormhole space from 31000001, both without gaps.
const (
	kspaceSystems   = 5000
	wormholeSystems = 2604
	// KnownSystems is how many distinct ids SystemID gives.
	KnownSystems = kspaceSystems + wormholeSystems
)

// SystemID maps a popularity rank to a real solar system id: the first
// 5000 ranks are k-space, the next 2604 wormholes; ranks beyond wrap.
func SystemID(rank uint64) int64 {
	rank %= KnownSystems
	if rank < kspaceSystems {
		return 30000001 + int64(rank)
	}
	return 31000001 + int64(rank-kspaceSystems)
}

// CharacterID maps a rank to the modern character id range.
func CharacterID(rank uint64) int64 { return 2112000000 + int64(rank) }

// CorporationID maps a rank to the player corporation id range.
func CorporationID(rank uint64) int64 { return 98000000 + int64(rank) }

// AllianceID maps a rank to the alliance id range.
func AllianceID(rank uint64) int64 { return 99000000 + int64(rank) }

// timeOffset places the next kill time after Start (see GenConfig).
func (g *Generator) timeOffset() time.Duration {
	span := int64(g.cfg.Span)
	if g.cfg.Count <= 0 {
		return time.Duration(g.r.Int64N(span))
	}
	seq := g.nextID - 1 - g.cfg.FirstID // Next has taken this killmail's id
	at := int64(float64(span) * float64(seq) / float64(g.cfg.Count))
	late := time.Duration(g.r.ExpFloat64() * float64(10*time.Minute))
	if g.r.Float64() < 0.02 {
		late = time.Duration(g.r.Int64N(int64(24 * time.Hour)))
	}
	return time.Duration(min(max(at-int64(late), 0), span-1))
}

// Next returns a new killmail. Its attackers and items slices are fresh
// copies; the template is not modified.
func (g *Generator) Next() *store.Killmail {
	t := g.templates[g.r.IntN(len(g.templates))]
	km := *t
	km.KillmailID = g.nextID
	g.nextID++
	km.Hash = fmt.Sprintf("%040x", uint64(km.KillmailID)*0x9e3779b97f4a7c15)
	km.KillTime = store.Time{Time: g.cfg.Start.Add(g.timeOffset()).UTC().Truncate(time.Second)}
	km.SystemID = SystemID(g.systems.Uint64())
	km.SystemName = ""
	km.Victim.CharacterID, km.Victim.CorporationID, km.Victim.AllianceID = g.party(t.Victim.CharacterID != 0)
	n := len(t.Attackers)
	if g.cfg.FleetFights > 0 && n > 0 && g.r.Float64() < g.cfg.FleetFights {
		n = 150 + g.r.IntN(351)
	}
	km.Attackers = make([]store.Attacker, n)
	for i := range km.Attackers {
		a := t.Attackers[i%len(t.Attackers)]
		extra := i >= len(t.Attackers) // a fleet fight's added player
		if extra {
			a.FinalBlow, a.FactionID = false, 0
		}
		a.CharacterID, a.CorporationID, a.AllianceID = g.party(extra || a.CharacterID != 0)
		km.Attackers[i] = a
	}
	value := math.Exp(g.r.NormFloat64()*1.5 + 17) // log-normal around 24m ISK
	km.ZKB = &store.ZKB{Hash: km.Hash, TotalValue: math.Round(value*100) / 100, Points: int64(1 + g.r.IntN(50)),
		Solo: len(km.Attackers) == 1, Labels: []string{"pvp"}}
	km.Normalize()
	return &km
}

// party draws a character, its corporation and (usually) its alliance.
// NPC participants (no character in the template) stay without ids.
func (g *Generator) party(player bool) (char, corp, alliance int64) {
	if !player {
		return 0, 0, 0
	}
	char = CharacterID(g.chars.Uint64())
	// A character's corporation is stable: derive it from the character.
	corp = CorporationID(uint64(char*2654435761) % uint64(g.cfg.Corporations))
	if corp%5 != 0 {
		alliance = AllianceID(uint64(corp*40503) % uint64(g.cfg.Alliances))
	}
	return char, corp, alliance
}
