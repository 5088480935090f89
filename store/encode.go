package store

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the canonical JSON of km to dst: byte for byte what
// json.Marshal(km) writes (same keys, order, omissions, escaping and
// number formats), without reflection. The store writes every record
// through it; a test holds it equal to json.Marshal. It fails only on a
// NaN or infinite float, as json.Marshal does.
func (km *Killmail) AppendJSON(dst []byte) ([]byte, error) {
	e := jsonAppender{b: dst}
	e.raw(`{"killmail_id":`)
	e.int(km.KillmailID)
	e.raw(`,"kill_time":"`)
	e.b = km.KillTime.UTC().AppendFormat(e.b, TimeLayout)
	e.raw(`","system_id":`)
	e.int(km.SystemID)
	e.optString(`,"solar_system_name":`, km.SystemName)
	e.optInt(`,"moon_id":`, km.MoonID)
	e.optInt(`,"war_id":`, km.WarID)
	e.raw(`,"victim":`)
	e.victim(&km.Victim)
	e.raw(`,"attackers":`)
	if km.Attackers == nil {
		e.raw("null")
	} else {
		e.b = append(e.b, '[')
		for i := range km.Attackers {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.attacker(&km.Attackers[i])
		}
		e.b = append(e.b, ']')
	}
	if km.ZKB != nil {
		e.raw(`,"zkb":`)
		e.zkb(km.ZKB)
	}
	e.raw(`,"attacker_count":`)
	e.int(int64(km.AttackerCount))
	e.optString(`,"killmail_hash":`, km.Hash)
	e.b = append(e.b, '}')
	if e.err != nil {
		return dst, fmt.Errorf("store: encode killmail %d: %w", km.KillmailID, e.err)
	}
	return e.b, nil
}

// sizeHint is a generous estimate of the JSON's length, so that encoding
// allocates once: enriched attackers take about 250 bytes, items 80.
func (km *Killmail) sizeHint() int {
	return 768 + 256*len(km.Attackers) + 80*countItems(km.Victim.Items)
}

// jsonAppender appends JSON to b; the first unencodable value sticks in
// err.
type jsonAppender struct {
	b   []byte
	err error
}

func (e *jsonAppender) raw(s string) { e.b = append(e.b, s...) }

func (e *jsonAppender) int(v int64) { e.b = appendInt(e.b, v) }

// appendInt appends v in decimal, as strconv.AppendInt(b, v, 10) does,
// but writes the digits in place: a killmail has a few hundred ids and
// counts, and strconv's copy out of its own buffer showed in profiles.
func appendInt(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = -u
	}
	n := 1
	for x := u; x >= 10; x /= 10 {
		n++
	}
	at := len(b)
	b = slices.Grow(b, n)[:at+n]
	i := at + n
	for u >= 100 {
		q := u / 100
		r := (u - q*100) * 2
		i -= 2
		b[i], b[i+1] = digitPairs[r], digitPairs[r+1]
		u = q
	}
	if u >= 10 {
		b[i-2], b[i-1] = digitPairs[u*2], digitPairs[u*2+1]
	} else {
		b[i-1] = byte('0' + u)
	}
	return b
}

const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

func (e *jsonAppender) optInt(key string, v int64) {
	if v != 0 {
		e.raw(key)
		e.int(v)
	}
}

func (e *jsonAppender) optString(key, v string) {
	if v != "" {
		e.raw(key)
		e.b = appendJSONString(e.b, v)
	}
}

func (e *jsonAppender) bool(v bool) {
	if v {
		e.raw("true")
	} else {
		e.raw("false")
	}
}

// float formats like encoding/json: ES6 number formatting, exponents
// only beyond [1e-6, 1e21), without zero padding.
func (e *jsonAppender) float(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		if e.err == nil {
			e.err = fmt.Errorf("unsupported value %v", f)
		}
		e.raw("0")
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	e.b = strconv.AppendFloat(e.b, f, format, -1, 64)
	if format == 'e' {
		if n := len(e.b); n >= 4 && e.b[n-4] == 'e' && e.b[n-3] == '-' && e.b[n-2] == '0' {
			e.b[n-2] = e.b[n-1]
			e.b = e.b[:n-1]
		}
	}
}

func (e *jsonAppender) victim(v *Victim) {
	e.b = append(e.b, '{')
	// The first key has no comma: strip it from whichever comes first.
	mark := len(e.b)
	e.optInt(`,"character_id":`, v.CharacterID)
	e.optInt(`,"corporation_id":`, v.CorporationID)
	e.optInt(`,"alliance_id":`, v.AllianceID)
	e.optInt(`,"faction_id":`, v.FactionID)
	e.raw(`,"ship_type_id":`)
	e.int(v.ShipTypeID)
	e.b = append(e.b[:mark], e.b[mark+1:]...)
	e.raw(`,"damage_taken":`)
	e.int(v.DamageTaken)
	if p := v.Position; p != nil {
		e.raw(`,"position":{"x":`)
		e.float(p.X)
		e.raw(`,"y":`)
		e.float(p.Y)
		e.raw(`,"z":`)
		e.float(p.Z)
		e.b = append(e.b, '}')
	}
	if len(v.Items) > 0 {
		e.raw(`,"items":`)
		e.items(v.Items)
	}
	e.names(&v.Names)
	e.b = append(e.b, '}')
}

func (e *jsonAppender) attacker(a *Attacker) {
	e.b = append(e.b, '{')
	mark := len(e.b)
	e.optInt(`,"character_id":`, a.CharacterID)
	e.optInt(`,"corporation_id":`, a.CorporationID)
	e.optInt(`,"alliance_id":`, a.AllianceID)
	e.optInt(`,"faction_id":`, a.FactionID)
	e.optInt(`,"ship_type_id":`, a.ShipTypeID)
	e.optInt(`,"weapon_type_id":`, a.WeaponTypeID)
	e.raw(`,"damage_done":`)
	e.int(a.DamageDone)
	e.b = append(e.b[:mark], e.b[mark+1:]...)
	e.raw(`,"final_blow":`)
	e.bool(a.FinalBlow)
	e.raw(`,"security_status":`)
	e.float(a.SecurityStatus)
	e.names(&a.Names)
	e.b = append(e.b, '}')
}

func (e *jsonAppender) names(n *Names) {
	e.optString(`,"character_name":`, n.CharacterName)
	e.optString(`,"corporation_name":`, n.CorporationName)
	e.optString(`,"corporation_ticker":`, n.CorporationTicker)
	e.optString(`,"alliance_name":`, n.AllianceName)
	e.optString(`,"alliance_ticker":`, n.AllianceTicker)
	e.optString(`,"ship_name":`, n.ShipName)
}

func (e *jsonAppender) items(items []Item) {
	e.b = append(e.b, '[')
	for i := range items {
		it := &items[i]
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.raw(`{"item_type_id":`)
		e.int(it.ItemTypeID)
		e.raw(`,"flag":`)
		e.int(it.Flag)
		e.raw(`,"singleton":`)
		e.int(it.Singleton)
		if it.QuantityDestroyed != nil {
			e.raw(`,"quantity_destroyed":`)
			e.int(*it.QuantityDestroyed)
		}
		if it.QuantityDropped != nil {
			e.raw(`,"quantity_dropped":`)
			e.int(*it.QuantityDropped)
		}
		if len(it.Items) > 0 {
			e.raw(`,"items":`)
			e.items(it.Items)
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ']')
}

func (e *jsonAppender) zkb(z *ZKB) {
	e.b = append(e.b, '{')
	if z.LocationID != 0 {
		e.raw(`"locationID":`)
		e.int(z.LocationID)
		e.b = append(e.b, ',')
	}
	e.raw(`"hash":`)
	e.b = appendJSONString(e.b, z.Hash)
	e.raw(`,"fittedValue":`)
	e.float(z.FittedValue)
	e.raw(`,"droppedValue":`)
	e.float(z.DroppedValue)
	e.raw(`,"destroyedValue":`)
	e.float(z.DestroyedValue)
	e.raw(`,"totalValue":`)
	e.float(z.TotalValue)
	e.raw(`,"points":`)
	e.int(z.Points)
	e.raw(`,"npc":`)
	e.bool(z.NPC)
	e.raw(`,"solo":`)
	e.bool(z.Solo)
	e.raw(`,"awox":`)
	e.bool(z.Awox)
	if len(z.Labels) > 0 {
		e.raw(`,"labels":[`)
		for i, l := range z.Labels {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = appendJSONString(e.b, l)
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does by default: HTML
// characters, control characters, U+2028/U+2029 escaped, invalid UTF-8
// replaced by \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
