package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// ReadJSONL reads one record per line (blank lines are skipped but
// counted in the names, "line N", so that N is the line number) and calls
// fn with each. It stops at the first error of fn, or when ctx ends. A
// line longer than MaxMemberBytes ends the read with an error matching
// ErrArchive.
func ReadJSONL(ctx context.Context, r io.Reader, fn func(Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxMemberBytes)
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		rec := Record{Name: fmt.Sprintf("line %d", line), Raw: bytes.Clone(raw)}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrArchive, err)
	}
	return nil
}

// recordWire reads every shape a record may have in one pass: a verbatim
// ESI body (EVE Ref adds killmail_hash), the same with zKillboard's zkb
// block (the zKillboard API's full shape), or an R2Z2 document.
type recordWire struct {
	esi.RawKillmail
	DocHash string          `json:"hash"`
	ESI     json.RawMessage `json:"esi"`
	ZKB     *store.ZKB      `json:"zkb"`
}

// DecodeRecord decodes one offline record into a pipeline item: an ESI
// killmail body (with or without killmail_hash and zkb), an R2Z2
// document, or a {killmail_id, zkb} entry whose body the pipeline fetches
// from ESI. The killmail is mapped, not validated (the pipeline does
// that). Anything else fails with a *GarbageError.
func DecodeRecord(raw []byte) (Item, error) {
	if err := expectObject(raw); err != nil {
		return Item{}, err
	}
	var w recordWire
	if !scanRecord(raw, &w) {
		w = recordWire{}
		if err := json.Unmarshal(raw, &w); err != nil {
			return Item{}, classify(raw, err)
		}
	}
	hash := w.Hash
	if hash == "" {
		hash = w.DocHash
	}
	if hash == "" && w.ZKB != nil {
		hash = w.ZKB.Hash
	}
	switch {
	case len(w.ESI) > 0 && !bytes.Equal(w.ESI, []byte("null")):
		return newItem(w.KillmailID, hash, w.ESI, w.ZKB)
	case w.Victim == nil && w.Attackers == nil:
		return newItem(w.KillmailID, hash, nil, w.ZKB)
	case w.Victim == nil:
		return Item{}, garbage(ReasonMissingField, fmt.Sprintf("killmail %d: no victim", w.KillmailID))
	}
	return bodyItem(&w.RawKillmail, hash, w.ZKB)
}

// bodyItem turns a decoded ESI body into an item.
func bodyItem(rk *esi.RawKillmail, hash string, zkb *store.ZKB) (Item, error) {
	if rk.KillmailID <= 0 {
		return Item{}, garbage(ReasonMissingField, "no positive killmail_id")
	}
	if hash != "" && !validHash(hash) {
		return Item{}, garbage(ReasonBadHash, fmt.Sprintf("killmail %d: hash %s", rk.KillmailID, snippet([]byte(hash), 16)))
	}
	km := rk.Killmail()
	km.Hash = hash
	km.ZKB = zkb
	km.Normalize()
	return Item{KillmailID: km.KillmailID, Hash: hash, Killmail: km, ZKB: zkb}, nil
}
