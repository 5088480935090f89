package esi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// RawKillmail is ESI's GET /killmails/{id}/{hash}/ body as sent, plus the
// killmail_hash key that EVE Ref archives add. Absent optional ids are
// zero. A decoded RawKillmail is never modified, so it can be shared.
type RawKillmail struct {
	KillmailID    int64         `json:"killmail_id"`
	KillmailTime  store.Time    `json:"killmail_time"`
	SolarSystemID int64         `json:"solar_system_id"`
	MoonID        int64         `json:"moon_id,omitempty"`
	WarID         int64         `json:"war_id,omitempty"`
	Victim        *RawVictim    `json:"victim"`
	Attackers     []RawAttacker `json:"attackers"`
	Hash          string        `json:"killmail_hash,omitempty"`
}

// RawVictim is the victim object of an ESI killmail.
type RawVictim struct {
	CharacterID   int64           `json:"character_id,omitempty"`
	CorporationID int64           `json:"corporation_id,omitempty"`
	AllianceID    int64           `json:"alliance_id,omitempty"`
	FactionID     int64           `json:"faction_id,omitempty"`
	ShipTypeID    int64           `json:"ship_type_id"`
	DamageTaken   int64           `json:"damage_taken"`
	Position      *store.Position `json:"position,omitempty"`
	Items         []RawItem       `json:"items,omitempty"`
}

// RawAttacker is one attacker of an ESI killmail. security_status may be
// a JSON integer or float.
type RawAttacker struct {
	CharacterID    int64   `json:"character_id,omitempty"`
	CorporationID  int64   `json:"corporation_id,omitempty"`
	AllianceID     int64   `json:"alliance_id,omitempty"`
	FactionID      int64   `json:"faction_id,omitempty"`
	ShipTypeID     int64   `json:"ship_type_id,omitempty"`
	WeaponTypeID   int64   `json:"weapon_type_id,omitempty"`
	DamageDone     int64   `json:"damage_done"`
	FinalBlow      bool    `json:"final_blow"`
	SecurityStatus float64 `json:"security_status"`
}

// RawItem is one item of the victim; containers nest their contents.
type RawItem struct {
	ItemTypeID        int64     `json:"item_type_id"`
	Flag              int64     `json:"flag"`
	Singleton         int64     `json:"singleton"`
	QuantityDestroyed *int64    `json:"quantity_destroyed,omitempty"`
	QuantityDropped   *int64    `json:"quantity_dropped,omitempty"`
	Items             []RawItem `json:"items,omitempty"`
}

// DecodeKillmail decodes a verbatim ESI killmail body (or an EVE Ref
// archive file, which adds killmail_hash) into the stored shape,
// normalized and validated against the current time. JSON that is not an
// object of the right types fails with a decode error naming the field;
// a killmail with missing or implausible values fails with a
// *store.ValidationError (errors.Is store.ErrInvalid).
func DecodeKillmail(data []byte) (*store.Killmail, error) {
	raw, err := decodeRaw(data)
	if err != nil {
		return nil, err
	}
	km := raw.Killmail()
	if err := km.Validate(time.Now()); err != nil {
		return nil, err
	}
	return km, nil
}

// decodeRaw decodes and checks the keys ESI always sends.
func decodeRaw(data []byte) (*RawKillmail, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("esi: decode killmail: not a JSON object (starts %s)", snippet(data, 16))
	}
	var raw RawKillmail
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("esi: decode killmail: %w", err)
	}
	if raw.Victim == nil {
		return nil, &store.ValidationError{Field: "victim", Reason: "is required"}
	}
	if raw.Attackers == nil {
		return nil, &store.ValidationError{Field: "attackers", Reason: "is required"}
	}
	return &raw, nil
}

// Killmail maps the ESI body to a new, normalized store.Killmail that
// shares nothing with r (solar_system_id becomes SystemID). It does not
// validate.
func (r *RawKillmail) Killmail() *store.Killmail {
	km := &store.Killmail{
		KillmailID: r.KillmailID,
		KillTime:   r.KillmailTime,
		SystemID:   r.SolarSystemID,
		MoonID:     r.MoonID,
		WarID:      r.WarID,
		Hash:       r.Hash,
		Attackers:  make([]store.Attacker, len(r.Attackers)),
	}
	if v := r.Victim; v != nil {
		km.Victim = store.Victim{
			CharacterID:   v.CharacterID,
			CorporationID: v.CorporationID,
			AllianceID:    v.AllianceID,
			FactionID:     v.FactionID,
			ShipTypeID:    v.ShipTypeID,
			DamageTaken:   v.DamageTaken,
			Items:         mapItems(v.Items),
		}
		if v.Position != nil {
			p := *v.Position
			km.Victim.Position = &p
		}
	}
	for i, a := range r.Attackers {
		km.Attackers[i] = store.Attacker{
			CharacterID:    a.CharacterID,
			CorporationID:  a.CorporationID,
			AllianceID:     a.AllianceID,
			FactionID:      a.FactionID,
			ShipTypeID:     a.ShipTypeID,
			WeaponTypeID:   a.WeaponTypeID,
			DamageDone:     a.DamageDone,
			FinalBlow:      a.FinalBlow,
			SecurityStatus: a.SecurityStatus,
		}
	}
	km.Normalize()
	return km
}

// RawOf returns the ESI body of a stored killmail, the inverse of
// RawKillmail.Killmail: ESI's keys and absent optional ids, without the
// names enrichment added. Marshalled, it is what ESI (with EVE Ref's
// killmail_hash) would serve. It shares nothing with km.
func RawOf(km *store.Killmail) *RawKillmail {
	v := km.Victim
	r := &RawKillmail{
		KillmailID:    km.KillmailID,
		KillmailTime:  km.KillTime,
		SolarSystemID: km.SystemID,
		MoonID:        km.MoonID,
		WarID:         km.WarID,
		Hash:          km.Hash,
		Victim: &RawVictim{
			CharacterID: v.CharacterID, CorporationID: v.CorporationID, AllianceID: v.AllianceID,
			FactionID: v.FactionID, ShipTypeID: v.ShipTypeID, DamageTaken: v.DamageTaken,
			Items: rawItems(v.Items),
		},
		Attackers: make([]RawAttacker, len(km.Attackers)),
	}
	if v.Position != nil {
		p := *v.Position
		r.Victim.Position = &p
	}
	for i, a := range km.Attackers {
		r.Attackers[i] = RawAttacker{
			CharacterID: a.CharacterID, CorporationID: a.CorporationID, AllianceID: a.AllianceID,
			FactionID: a.FactionID, ShipTypeID: a.ShipTypeID, WeaponTypeID: a.WeaponTypeID,
			DamageDone: a.DamageDone, FinalBlow: a.FinalBlow, SecurityStatus: a.SecurityStatus,
		}
	}
	return r
}

func rawItems(items []store.Item) []RawItem {
	if len(items) == 0 {
		return nil
	}
	out := make([]RawItem, len(items))
	for i, it := range items {
		out[i] = RawItem{
			ItemTypeID:        it.ItemTypeID,
			Flag:              it.Flag,
			Singleton:         it.Singleton,
			QuantityDestroyed: copyInt(it.QuantityDestroyed),
			QuantityDropped:   copyInt(it.QuantityDropped),
			Items:             rawItems(it.Items),
		}
	}
	return out
}

func mapItems(items []RawItem) []store.Item {
	if len(items) == 0 {
		return nil
	}
	out := make([]store.Item, len(items))
	for i, it := range items {
		out[i] = store.Item{
			ItemTypeID:        it.ItemTypeID,
			Flag:              it.Flag,
			Singleton:         it.Singleton,
			QuantityDestroyed: copyInt(it.QuantityDestroyed),
			QuantityDropped:   copyInt(it.QuantityDropped),
			Items:             mapItems(it.Items),
		}
	}
	return out
}

func copyInt(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// snippet quotes the start of a body for error messages.
func snippet(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}
