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
	MoonID        int64         `json:"moon_id"`
	WarID         int64         `json:"war_id"`
	Victim        *RawVictim    `json:"victim"`
	Attackers     []RawAttacker `json:"attackers"`
	Hash          string        `json:"killmail_hash"`
}

// RawVictim is the victim object of an ESI killmail.
type RawVictim struct {
	CharacterID   int64           `json:"character_id"`
	CorporationID int64           `json:"corporation_id"`
	AllianceID    int64           `json:"alliance_id"`
	FactionID     int64           `json:"faction_id"`
	ShipTypeID    int64           `json:"ship_type_id"`
	DamageTaken   int64           `json:"damage_taken"`
	Position      *store.Position `json:"position"`
	Items         []RawItem       `json:"items"`
}

// RawAttacker is one attacker of an ESI killmail. security_status may be
// a JSON integer or float.
type RawAttacker struct {
	CharacterID    int64   `json:"character_id"`
	CorporationID  int64   `json:"corporation_id"`
	AllianceID     int64   `json:"alliance_id"`
	FactionID      int64   `json:"faction_id"`
	ShipTypeID     int64   `json:"ship_type_id"`
	WeaponTypeID   int64   `json:"weapon_type_id"`
	DamageDone     int64   `json:"damage_done"`
	FinalBlow      bool    `json:"final_blow"`
	SecurityStatus float64 `json:"security_status"`
}

// RawItem is one item of the victim; containers nest their contents.
type RawItem struct {
	ItemTypeID        int64     `json:"item_type_id"`
	Flag              int64     `json:"flag"`
	Singleton         int64     `json:"singleton"`
	QuantityDestroyed *int64    `json:"quantity_destroyed"`
	QuantityDropped   *int64    `json:"quantity_dropped"`
	Items             []RawItem `json:"items"`
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
