package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Killmail is one killmail as this service stores and serves it: the ESI
// body, the zKillboard block and the names added by enrichment. Its JSON
// encoding is the canonical wire shape of API.md §3.1: keys whose value is
// unset are omitted, kill_time is printed to the second with a Z suffix, the
// ESI solar_system_id is renamed system_id, and attacker_count is added.
//
// A Killmail is a plain value: it is safe to read from many goroutines, and
// the owner of a pointer is whoever made it.
type Killmail struct {
	KillmailID int64 `json:"killmail_id"`
	// KillTime is ESI's killmail_time, always UTC.
	KillTime Time  `json:"kill_time"`
	SystemID int64 `json:"system_id"`
	// SystemName is added by enrichment from the embedded SDE data.
	SystemName    string     `json:"solar_system_name,omitempty"`
	MoonID        int64      `json:"moon_id,omitempty"`
	WarID         int64      `json:"war_id,omitempty"`
	Victim        Victim     `json:"victim"`
	Attackers     []Attacker `json:"attackers"`
	ZKB           *ZKB       `json:"zkb,omitempty"`
	AttackerCount int        `json:"attacker_count"`
	// Hash is the killmail hash that, with the id, is the ESI key. It is
	// kept even when there is no zkb block (EVE Ref archives carry it).
	Hash string `json:"killmail_hash,omitempty"`
}

// Victim is the losing side of a killmail. Entity ids are zero when ESI
// omitted them (structures have no character, many corporations no
// alliance); zero ids are omitted from JSON.
type Victim struct {
	CharacterID   int64     `json:"character_id,omitempty"`
	CorporationID int64     `json:"corporation_id,omitempty"`
	AllianceID    int64     `json:"alliance_id,omitempty"`
	FactionID     int64     `json:"faction_id,omitempty"`
	ShipTypeID    int64     `json:"ship_type_id"`
	DamageTaken   int64     `json:"damage_taken"`
	Position      *Position `json:"position,omitempty"`
	Items         []Item    `json:"items,omitempty"`
	Names
}

// Attacker is one participant on the winning side of a killmail. NPC
// attackers carry only a faction and a ship type.
type Attacker struct {
	CharacterID    int64   `json:"character_id,omitempty"`
	CorporationID  int64   `json:"corporation_id,omitempty"`
	AllianceID     int64   `json:"alliance_id,omitempty"`
	FactionID      int64   `json:"faction_id,omitempty"`
	ShipTypeID     int64   `json:"ship_type_id,omitempty"`
	WeaponTypeID   int64   `json:"weapon_type_id,omitempty"`
	DamageDone     int64   `json:"damage_done"`
	FinalBlow      bool    `json:"final_blow"`
	SecurityStatus float64 `json:"security_status"`
	Names
}

// Names are the flat name and ticker fields that enrichment adds to the
// victim and to each attacker. Existing clients read exactly these keys.
type Names struct {
	CharacterName     string `json:"character_name,omitempty"`
	CorporationName   string `json:"corporation_name,omitempty"`
	CorporationTicker string `json:"corporation_ticker,omitempty"`
	AllianceName      string `json:"alliance_name,omitempty"`
	AllianceTicker    string `json:"alliance_ticker,omitempty"`
	ShipName          string `json:"ship_name,omitempty"`
}

// count returns how many name fields are set; it measures how enriched a
// copy is.
func (n Names) count() int {
	c := 0
	for _, s := range [...]string{n.CharacterName, n.CorporationName, n.CorporationTicker,
		n.AllianceName, n.AllianceTicker, n.ShipName} {
		if s != "" {
			c++
		}
	}
	return c
}

// Position is the victim's position in space, in metres.
type Position struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	Z float64 `json:"z"`
}

// Item is one item of the victim's ship. Containers hold nested items.
type Item struct {
	ItemTypeID        int64  `json:"item_type_id"`
	Flag              int64  `json:"flag"`
	Singleton         int64  `json:"singleton"`
	QuantityDestroyed *int64 `json:"quantity_destroyed,omitempty"`
	QuantityDropped   *int64 `json:"quantity_dropped,omitempty"`
	Items             []Item `json:"items,omitempty"`
}

// ZKB is zKillboard's block about a killmail. Keys are camelCase as
// zKillboard sends them; href is not part of the canonical shape.
type ZKB struct {
	LocationID     int64    `json:"locationID,omitempty"`
	Hash           string   `json:"hash"`
	FittedValue    float64  `json:"fittedValue"`
	DroppedValue   float64  `json:"droppedValue"`
	DestroyedValue float64  `json:"destroyedValue"`
	TotalValue     float64  `json:"totalValue"`
	Points         int64    `json:"points"`
	NPC            bool     `json:"npc"`
	Solo           bool     `json:"solo"`
	Awox           bool     `json:"awox"`
	Labels         []string `json:"labels,omitempty"`
}

// TimeLayout is how kill times are printed: seconds precision, UTC, Z.
const TimeLayout = "2006-01-02T15:04:05Z"

// Time is a kill time that encodes as TimeLayout and decodes any RFC 3339
// time (ESI's killmail_time included).
type Time struct{ time.Time }

// MarshalJSON prints the time in UTC to the second.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("kill time: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("kill time: %w", err)
	}
	t.Time = v.UTC().Truncate(time.Second)
	return nil
}

// ValidationError says which field of a killmail is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return "invalid killmail: " + e.Field + ": " + e.Reason
}

// ErrInvalid is matched by every *ValidationError through errors.Is.
var ErrInvalid = errors.New("store: invalid killmail")

// Is makes errors.Is(err, ErrInvalid) true for validation errors.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Limits on plausible values. EVE started in 2003; anything before is not
// a killmail. Ids are positive and fit the ranges CCP hands out.
var (
	earliestKill = time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)
	// futureSlack tolerates clocks that run a little ahead of ours.
	futureSlack = time.Hour
)

const (
	maxAttackers = 10000
	maxItems     = 100000
)

// Validate checks that a killmail has its required fields and sane values.
// now is the current time; kills more than an hour after it are rejected.
// The error is a *ValidationError naming the first bad field.
func (k *Killmail) Validate(now time.Time) error {
	bad := func(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }
	switch {
	case k.KillmailID <= 0:
		return bad("killmail_id", "must be a positive integer")
	case k.KillTime.IsZero():
		return bad("killmail_time", "is required")
	case k.KillTime.Before(earliestKill):
		return bad("killmail_time", "is before 2003")
	case k.KillTime.After(now.Add(futureSlack)):
		return bad("killmail_time", "is in the future")
	case k.SystemID <= 0 || k.SystemID > 50_000_000:
		return bad("solar_system_id", "must be a positive system id")
	case k.MoonID < 0:
		return bad("moon_id", "must be positive")
	case k.WarID < 0:
		return bad("war_id", "must be positive")
	case k.Victim.ShipTypeID <= 0:
		return bad("victim.ship_type_id", "must be a positive type id")
	case k.Victim.DamageTaken < 0:
		return bad("victim.damage_taken", "must not be negative")
	case len(k.Attackers) > maxAttackers:
		return bad("attackers", fmt.Sprintf("more than %d attackers", maxAttackers))
	}
	if err := checkIDs("victim", k.Victim.CharacterID, k.Victim.CorporationID, k.Victim.AllianceID, k.Victim.FactionID); err != nil {
		return err
	}
	for i := range k.Attackers {
		a := &k.Attackers[i]
		if a.CharacterID >= 0 && a.CorporationID >= 0 && a.AllianceID >= 0 && a.FactionID >= 0 &&
			a.ShipTypeID >= 0 && a.WeaponTypeID >= 0 && a.DamageDone >= 0 {
			continue // the usual case: no field name to format
		}
		field := fmt.Sprintf("attackers[%d]", i)
		if err := checkIDs(field, a.CharacterID, a.CorporationID, a.AllianceID, a.FactionID); err != nil {
			return err
		}
		if a.ShipTypeID < 0 || a.WeaponTypeID < 0 {
			return bad(field+".ship_type_id", "must not be negative")
		}
		return bad(field+".damage_done", "must not be negative")
	}
	if n := countItems(k.Victim.Items); n > maxItems {
		return bad("victim.items", fmt.Sprintf("more than %d items", maxItems))
	}
	if k.ZKB != nil && k.ZKB.TotalValue < 0 {
		return bad("zkb.totalValue", "must not be negative")
	}
	return nil
}

func checkIDs(prefix string, character, corporation, alliance, faction int64) error {
	for _, f := range [...]struct {
		name string
		v    int64
	}{{"character_id", character}, {"corporation_id", corporation}, {"alliance_id", alliance}, {"faction_id", faction}} {
		if f.v < 0 {
			return &ValidationError{Field: prefix + "." + f.name, Reason: "must be positive"}
		}
	}
	return nil
}

func countItems(items []Item) int {
	n := len(items)
	for _, it := range items {
		n += countItems(it.Items)
	}
	return n
}

// Normalize fills the derived fields: attacker_count, a non-nil attackers
// list, and the hash from the zkb block when only that carries it.
func (k *Killmail) Normalize() {
	if k.Attackers == nil {
		k.Attackers = []Attacker{}
	}
	k.AttackerCount = len(k.Attackers)
	if k.Hash == "" && k.ZKB != nil {
		k.Hash = k.ZKB.Hash
	}
}

// Characters returns the distinct character ids of the victim and the
// attackers, ascending.
func (k *Killmail) Characters() []int64 {
	return k.idSet(k.Victim.CharacterID, func(a *Attacker) int64 { return a.CharacterID })
}

// Corporations returns the distinct corporation ids of the victim and the
// attackers, ascending.
func (k *Killmail) Corporations() []int64 {
	return k.idSet(k.Victim.CorporationID, func(a *Attacker) int64 { return a.CorporationID })
}

// Alliances returns the distinct alliance ids of the victim and the
// attackers, ascending.
func (k *Killmail) Alliances() []int64 {
	return k.idSet(k.Victim.AllianceID, func(a *Attacker) int64 { return a.AllianceID })
}

// idSet returns victim and the attackers' ids picked by pick, sorted,
// without repeats or zeros: one sort, even for fleet fights of hundreds.
func (k *Killmail) idSet(victim int64, pick func(*Attacker) int64) []int64 {
	out := make([]int64, 0, 1+len(k.Attackers))
	if victim > 0 {
		out = append(out, victim)
	}
	for i := range k.Attackers {
		if id := pick(&k.Attackers[i]); id > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TotalValue is zkb.totalValue, or 0 without a zkb block.
func (k *Killmail) TotalValue() float64 {
	if k.ZKB == nil {
		return 0
	}
	return k.ZKB.TotalValue
}

// NameCount returns how many name fields enrichment has filled in.
func (k *Killmail) NameCount() int {
	n := k.Victim.count()
	for i := range k.Attackers {
		n += k.Attackers[i].count()
	}
	if k.SystemName != "" {
		n++
	}
	return n
}

// richer reports whether k carries information that old lacks: a zkb block
// or more names. A richer copy replaces the stored one at its offset.
func (k *Killmail) richer(old *Killmail) bool {
	if k.ZKB != nil && old.ZKB == nil {
		return true
	}
	if k.Hash != "" && old.Hash == "" {
		return true
	}
	return k.NameCount() > old.NameCount()
}

// mergedWith returns a copy of k that keeps what old has and k lacks: the
// zkb block, the hash, the system name and, per participant at the same
// position, the names.
func (k *Killmail) mergedWith(old *Killmail) *Killmail {
	m := *k
	if m.ZKB == nil {
		m.ZKB = old.ZKB
	}
	if m.Hash == "" {
		m.Hash = old.Hash
	}
	if m.SystemName == "" {
		m.SystemName = old.SystemName
	}
	m.Victim.Names = m.Victim.Names.or(old.Victim.Names)
	if len(m.Attackers) == len(old.Attackers) {
		m.Attackers = append([]Attacker(nil), m.Attackers...)
		for i := range m.Attackers {
			m.Attackers[i].Names = m.Attackers[i].Names.or(old.Attackers[i].Names)
		}
	}
	return &m
}

// or fills each empty name of n from o.
func (n Names) or(o Names) Names {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	return Names{
		CharacterName:     pick(n.CharacterName, o.CharacterName),
		CorporationName:   pick(n.CorporationName, o.CorporationName),
		CorporationTicker: pick(n.CorporationTicker, o.CorporationTicker),
		AllianceName:      pick(n.AllianceName, o.AllianceName),
		AllianceTicker:    pick(n.AllianceTicker, o.AllianceTicker),
		ShipName:          pick(n.ShipName, o.ShipName),
	}
}
