package fakeupstream

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// Killmail is one killmail the fake knows: its ESI body verbatim and the
// key ESI serves it under.
type Killmail struct {
	ID   int64
	Hash string
	// ESI is the body GET /killmails/{id}/{hash}/ answers.
	ESI json.RawMessage
	// Time, SystemID and Attackers are read from the body.
	Time      time.Time
	SystemID  int64
	Attackers int
}

// esiShape is the part of an ESI body the fake reads to index names.
type esiShape struct {
	KillmailID   int64     `json:"killmail_id"`
	KillmailTime time.Time `json:"killmail_time"`
	SystemID     int64     `json:"solar_system_id"`
	Victim       struct {
		party
		Items []esiItem `json:"items"`
	} `json:"victim"`
	Attackers []party `json:"attackers"`
}

type party struct {
	CharacterID   int64 `json:"character_id"`
	CorporationID int64 `json:"corporation_id"`
	AllianceID    int64 `json:"alliance_id"`
	FactionID     int64 `json:"faction_id"`
	ShipTypeID    int64 `json:"ship_type_id"`
	WeaponTypeID  int64 `json:"weapon_type_id"`
}

type esiItem struct {
	TypeID int64     `json:"item_type_id"`
	Items  []esiItem `json:"items"`
}

// ParseKillmail reads the fields the fake needs from an ESI body. hash is
// the killmail hash; empty means a made-up but stable one.
func ParseKillmail(body []byte, hash string) (Killmail, error) {
	var s esiShape
	if err := json.Unmarshal(body, &s); err != nil {
		return Killmail{}, fmt.Errorf("fakeupstream: parse killmail: %w", err)
	}
	if s.KillmailID <= 0 {
		return Killmail{}, fmt.Errorf("fakeupstream: parse killmail: no killmail_id")
	}
	if hash == "" {
		hash = FakeHash(s.KillmailID)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return Killmail{}, fmt.Errorf("fakeupstream: parse killmail: %w", err)
	}
	return Killmail{
		ID: s.KillmailID, Hash: hash, ESI: compact.Bytes(),
		Time: s.KillmailTime.UTC(), SystemID: s.SystemID, Attackers: len(s.Attackers),
	}, nil
}

// FakeHash is the hash the fake gives a killmail whose source has none:
// 40 hex digits derived from the id.
func FakeHash(id int64) string {
	sum := sha1.Sum([]byte("fakeupstream:" + strconv.FormatInt(id, 10)))
	return hex.EncodeToString(sum[:])
}

// DefaultFixtures returns the project's testdata/fixtures directory, found
// from this source file's location.
func DefaultFixtures() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "fixtures")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "fixtures")
}

// LoadKillmails reads killmails.jsonl and the hashes of killmails-index.csv
// from a fixtures directory, in file order (ascending id).
func LoadKillmails(fsys fs.FS) ([]Killmail, error) {
	hashes, err := loadHashes(fsys)
	if err != nil {
		return nil, err
	}
	f, err := fsys.Open("killmails.jsonl")
	if err != nil {
		return nil, fmt.Errorf("fakeupstream: %w", err)
	}
	defer f.Close()
	var out []Killmail
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var id struct {
			ID int64 `json:"killmail_id"`
		}
		if err := json.Unmarshal(line, &id); err != nil {
			return nil, fmt.Errorf("fakeupstream: killmails.jsonl: %w", err)
		}
		km, err := ParseKillmail(line, hashes[id.ID])
		if err != nil {
			return nil, err
		}
		out = append(out, km)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fakeupstream: killmails.jsonl: %w", err)
	}
	return out, nil
}

func loadHashes(fsys fs.FS) (map[int64]string, error) {
	f, err := fsys.Open("killmails-index.csv")
	if err != nil {
		return nil, fmt.Errorf("fakeupstream: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	out := make(map[int64]string)
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fakeupstream: killmails-index.csv: %w", err)
		}
		if first || len(rec) < 2 {
			continue
		}
		id, err := strconv.ParseInt(rec[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("fakeupstream: killmails-index.csv: %w", err)
		}
		out[id] = rec[1]
	}
}

// readFixture reads one fixture file.
func readFixture(fsys fs.FS, name string) ([]byte, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("fakeupstream: %w", err)
	}
	return b, nil
}

// osFS opens a fixtures directory on disk.
func osFS(dir string) fs.FS { return os.DirFS(dir) }

// Categories of /universe/names/.
const (
	CategoryCharacter   = "character"
	CategoryCorporation = "corporation"
	CategoryAlliance    = "alliance"
	CategoryFaction     = "faction"
	CategoryType        = "inventory_type"
	CategorySystem      = "solar_system"
)

// Name is the name the fake ESI gives an entity: "<Category> <id>", the
// same from every endpoint, so tests can predict enriched fields.
func Name(category string, id int64) string {
	switch category {
	case CategoryCharacter:
		return "Character " + strconv.FormatInt(id, 10)
	case CategoryCorporation:
		return "Corporation " + strconv.FormatInt(id, 10)
	case CategoryAlliance:
		return "Alliance " + strconv.FormatInt(id, 10)
	case CategoryFaction:
		return "Faction " + strconv.FormatInt(id, 10)
	case CategoryType:
		return "Type " + strconv.FormatInt(id, 10)
	case CategorySystem:
		return "System " + strconv.FormatInt(id, 10)
	}
	return "Entity " + strconv.FormatInt(id, 10)
}

// Ticker is the ticker the fake gives a corporation ("C" and the last four
// digits of its id) or an alliance ("A" and the same).
func Ticker(category string, id int64) string {
	prefix := "C"
	if category == CategoryAlliance {
		prefix = "A"
	}
	return fmt.Sprintf("%s%04d", prefix, id%10000)
}

// categories maps every id seen in the killmails to its category.
type categories map[int64]string

func (c categories) addKillmail(body []byte) {
	var s esiShape
	if json.Unmarshal(body, &s) != nil {
		return
	}
	c.set(s.SystemID, CategorySystem)
	c.addParty(s.Victim.party)
	for _, a := range s.Attackers {
		c.addParty(a)
	}
	c.addItems(s.Victim.Items)
}

func (c categories) addParty(p party) {
	c.set(p.CharacterID, CategoryCharacter)
	c.set(p.CorporationID, CategoryCorporation)
	c.set(p.AllianceID, CategoryAlliance)
	c.set(p.FactionID, CategoryFaction)
	c.set(p.ShipTypeID, CategoryType)
	c.set(p.WeaponTypeID, CategoryType)
}

func (c categories) addItems(items []esiItem) {
	for _, it := range items {
		c.set(it.TypeID, CategoryType)
		c.addItems(it.Items)
	}
}

func (c categories) set(id int64, category string) {
	if id > 0 {
		if _, ok := c[id]; !ok {
			c[id] = category
		}
	}
}

// of returns the category of an id, guessing from CCP's id ranges when the
// killmails never mentioned it.
func (c categories) of(id int64) string {
	if cat, ok := c[id]; ok {
		return cat
	}
	switch {
	case id >= 500000 && id < 1000000:
		return CategoryFaction
	case id >= 1000000 && id < 2000000:
		return CategoryCorporation
	case id >= 30000000 && id < 33000000:
		return CategorySystem
	case id < 500000:
		return CategoryType
	case id >= 98000000 && id < 99000000:
		return CategoryCorporation
	case id >= 99000000 && id < 100000000:
		return CategoryAlliance
	}
	return CategoryCharacter
}

// zkbBlock is the zKillboard block the fake attaches to a killmail. The
// values are made up but stable; href points at the fake ESI when esiBase
// is set.
func zkbBlock(km Killmail, esiBase string) map[string]any {
	total := float64(km.ID%100000)*1000 + 0.5
	z := map[string]any{
		"locationID":     40000000 + km.ID%1000000,
		"hash":           km.Hash,
		"fittedValue":    total * 0.8,
		"droppedValue":   math.Round(total*0.3*100) / 100,
		"destroyedValue": math.Round(total*0.7*100) / 100,
		"totalValue":     total,
		"points":         1 + km.ID%20,
		"npc":            false,
		"solo":           km.Attackers == 1,
		"awox":           false,
		"labels":         []string{"pvp"},
	}
	if esiBase != "" {
		z["attackerCount"] = km.Attackers
		z["href"] = fmt.Sprintf("%s/killmails/%d/%s/", esiBase, km.ID, km.Hash)
	}
	return z
}
