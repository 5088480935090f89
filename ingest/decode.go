package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// R2Z2Document is one decoded R2Z2 file (FORMATS.md §2).
type R2Z2Document struct {
	// Sequence is the file's sequence_id; zero when absent.
	Sequence int64
	// UploadedAt is when zKillboard published it; zero when absent.
	UploadedAt time.Time
	Item       Item
}

type r2z2Wire struct {
	KillmailID int64           `json:"killmail_id"`
	Hash       string          `json:"hash"`
	ESI        json.RawMessage `json:"esi"`
	ZKB        *store.ZKB      `json:"zkb"`
	UploadedAt int64           `json:"uploaded_at"`
	SequenceID int64           `json:"sequence_id"`
}

// DecodeR2Z2 decodes an R2Z2 document. A body that is not a well-formed
// document fails with a *GarbageError. The embedded killmail is mapped but
// not validated (the pipeline does that). A document without its esi body
// decodes to an Item with a nil Killmail, to be fetched from ESI.
func DecodeR2Z2(body []byte) (R2Z2Document, error) {
	if err := expectObject(body); err != nil {
		return R2Z2Document{}, err
	}
	var w r2z2Wire
	if err := json.Unmarshal(body, &w); err != nil {
		return R2Z2Document{}, classify(body, err)
	}
	doc := R2Z2Document{Sequence: w.SequenceID}
	if w.UploadedAt > 0 {
		doc.UploadedAt = time.Unix(w.UploadedAt, 0).UTC()
	}
	hash := w.Hash
	if hash == "" && w.ZKB != nil {
		hash = w.ZKB.Hash
	}
	item, err := newItem(w.KillmailID, hash, w.ESI, w.ZKB)
	doc.Item = item
	return doc, err
}

type redisqWire struct {
	Package json.RawMessage `json:"package"`
}

type packageWire struct {
	KillID   int64           `json:"killID"`
	Killmail json.RawMessage `json:"killmail"`
	ZKB      *store.ZKB      `json:"zkb"`
}

// crestProbe spots the pre-ESI (CREST) killmail shape of old packages.
type crestProbe struct {
	KillTime    json.RawMessage `json:"killTime"`
	SolarSystem json.RawMessage `json:"solarSystem"`
	Victim      struct {
		ShipType json.RawMessage `json:"shipType"`
	} `json:"victim"`
}

// DecodeRedisQ decodes a RedisQ answer (FORMATS.md §1). {"package":null}
// decodes to a nil Item and no error. It accepts full packages (with
// "killmail") and id+hash packages (the body is then fetched from ESI).
// Malformed answers and legacy CREST packages fail with a *GarbageError.
// An embedded killmail is mapped but not validated.
func DecodeRedisQ(body []byte) (*Item, error) {
	if err := expectObject(body); err != nil {
		return nil, err
	}
	var w redisqWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, classify(body, err)
	}
	switch {
	case w.Package == nil:
		return nil, garbage(ReasonMissingField, `no "package" key`)
	case bytes.Equal(w.Package, []byte("null")):
		return nil, nil
	}
	if err := expectObject(w.Package); err != nil {
		return nil, err
	}
	var p packageWire
	if err := json.Unmarshal(w.Package, &p); err != nil {
		return nil, classify(w.Package, err)
	}
	if isCREST(p.Killmail) {
		return nil, garbage(ReasonLegacyCREST, fmt.Sprintf("killID %d: pre-ESI (CREST) killmail shape", p.KillID))
	}
	hash := ""
	if p.ZKB != nil {
		hash = p.ZKB.Hash
	}
	item, err := newItem(p.KillID, hash, p.Killmail, p.ZKB)
	if err != nil {
		return nil, err
	}
	return &item, nil
}

func isCREST(raw json.RawMessage) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	var c crestProbe
	if json.Unmarshal(raw, &c) != nil {
		return false
	}
	return c.KillTime != nil || c.SolarSystem != nil || c.Victim.ShipType != nil
}

// decodeBody maps a verbatim ESI killmail body (with or without extra
// keys such as zkb) to the stored shape, without validating it.
func decodeBody(raw json.RawMessage) (*store.Killmail, error) {
	if err := expectObject(raw); err != nil {
		return nil, err
	}
	var rk esi.RawKillmail
	if err := json.Unmarshal(raw, &rk); err != nil {
		return nil, classify(raw, err)
	}
	return rk.Killmail(), nil
}

// newItem checks the announced key and decodes the embedded ESI body, if
// any, into an Item.
func newItem(id int64, hash string, raw json.RawMessage, zkb *store.ZKB) (Item, error) {
	item := Item{KillmailID: id, Hash: hash, ZKB: zkb}
	if id <= 0 {
		return item, garbage(ReasonMissingField, "no positive killmail id")
	}
	hasBody := len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
	switch {
	case hash != "" && !validHash(hash):
		return item, garbage(ReasonBadHash, fmt.Sprintf("killmail %d: hash %s", id, snippet([]byte(hash), 16)))
	case hash == "" && !hasBody:
		return item, garbage(ReasonMissingField, fmt.Sprintf("killmail %d: neither a body nor a hash", id))
	case !hasBody:
		return item, nil
	}
	km, err := decodeBody(raw)
	if err != nil {
		return item, err
	}
	if km.KillmailID != id {
		return item, garbage(ReasonIDMismatch, fmt.Sprintf("announced %d, body is %d", id, km.KillmailID))
	}
	if hash != "" {
		km.Hash = hash
	}
	km.ZKB = zkb
	km.Normalize()
	item.Killmail = km
	return item, nil
}
