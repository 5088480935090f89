package ingest

import (
	"strconv"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// maxScanDepth bounds the nesting of items (containers in containers)
// the scanner follows; deeper bodies go to encoding/json.
const maxScanDepth = 16

// scanRecord decodes an ESI killmail body in its plain form, the form of
// EVE Ref's members, into w without reflection: ESI's keys (and
// killmail_hash) each at most once, no nulls, integers written as
// integers, strings of plain ASCII. Anything else (other keys, escapes,
// R2Z2 and zKillboard shapes, bad syntax) reports false, and the record
// goes to encoding/json, which gives the same result or the error: the
// scanner is only a shortcut for the common case, never a second
// opinion.
func scanRecord(raw []byte, w *recordWire) bool {
	s := scanner{b: raw}
	rk := &w.RawKillmail
	var seen uint32
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "killmail_id":
			return s.once(&seen, 0) && s.int(&rk.KillmailID)
		case "killmail_time":
			lit, ok := s.str()
			return ok && s.once(&seen, 1) && rk.KillmailTime.UnmarshalJSON(lit) == nil
		case "solar_system_id":
			return s.once(&seen, 2) && s.int(&rk.SolarSystemID)
		case "moon_id":
			return s.once(&seen, 3) && s.int(&rk.MoonID)
		case "war_id":
			return s.once(&seen, 4) && s.int(&rk.WarID)
		case "victim":
			rk.Victim = new(esi.RawVictim)
			return s.once(&seen, 5) && s.victim(rk.Victim)
		case "attackers":
			rk.Attackers = make([]esi.RawAttacker, 0, 8)
			return s.once(&seen, 6) && s.array(func() bool {
				rk.Attackers = append(rk.Attackers, esi.RawAttacker{})
				return s.attacker(&rk.Attackers[len(rk.Attackers)-1])
			})
		case "killmail_hash":
			return s.text(&rk.Hash) && s.once(&seen, 7)
		case "zkb":
			w.ZKB = new(store.ZKB)
			return s.once(&seen, 8) && s.zkb(w.ZKB)
		}
		return false
	})
	s.space()
	return ok && s.i == len(s.b)
}

// zkb reads zKillboard's block as it comes beside an ESI body (the
// zKillboard API's and the bench's JSONL shape); href is read and dropped,
// as encoding/json drops it.
func (s *scanner) zkb(z *store.ZKB) bool {
	var seen uint32
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "locationID":
			return s.once(&seen, 0) && s.int(&z.LocationID)
		case "hash":
			return s.text(&z.Hash) && s.once(&seen, 1)
		case "fittedValue":
			return s.once(&seen, 2) && s.float(&z.FittedValue)
		case "droppedValue":
			return s.once(&seen, 3) && s.float(&z.DroppedValue)
		case "destroyedValue":
			return s.once(&seen, 4) && s.float(&z.DestroyedValue)
		case "totalValue":
			return s.once(&seen, 5) && s.float(&z.TotalValue)
		case "points":
			return s.once(&seen, 6) && s.int(&z.Points)
		case "npc":
			return s.once(&seen, 7) && s.bool(&z.NPC)
		case "solo":
			return s.once(&seen, 8) && s.bool(&z.Solo)
		case "awox":
			return s.once(&seen, 9) && s.bool(&z.Awox)
		case "href":
			_, ok := s.str()
			return ok && s.once(&seen, 10)
		case "labels":
			z.Labels = []string{}
			return s.once(&seen, 11) && s.array(func() bool {
				var l string
				ok := s.text(&l)
				z.Labels = append(z.Labels, l)
				return ok
			})
		}
		return false
	})
}

func (s *scanner) victim(v *esi.RawVictim) bool {
	var seen uint32
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "character_id":
			return s.once(&seen, 0) && s.int(&v.CharacterID)
		case "corporation_id":
			return s.once(&seen, 1) && s.int(&v.CorporationID)
		case "alliance_id":
			return s.once(&seen, 2) && s.int(&v.AllianceID)
		case "faction_id":
			return s.once(&seen, 3) && s.int(&v.FactionID)
		case "ship_type_id":
			return s.once(&seen, 4) && s.int(&v.ShipTypeID)
		case "damage_taken":
			return s.once(&seen, 5) && s.int(&v.DamageTaken)
		case "position":
			v.Position = new(store.Position)
			return s.once(&seen, 6) && s.position(v.Position)
		case "items":
			v.Items = make([]esi.RawItem, 0, 8)
			return s.once(&seen, 7) && s.items(&v.Items, 1)
		}
		return false
	})
}

func (s *scanner) position(p *store.Position) bool {
	var seen uint32
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "x":
			return s.once(&seen, 0) && s.float(&p.X)
		case "y":
			return s.once(&seen, 1) && s.float(&p.Y)
		case "z":
			return s.once(&seen, 2) && s.float(&p.Z)
		}
		return false
	})
}

func (s *scanner) attacker(a *esi.RawAttacker) bool {
	var seen uint32
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "character_id":
			return s.once(&seen, 0) && s.int(&a.CharacterID)
		case "corporation_id":
			return s.once(&seen, 1) && s.int(&a.CorporationID)
		case "alliance_id":
			return s.once(&seen, 2) && s.int(&a.AllianceID)
		case "faction_id":
			return s.once(&seen, 3) && s.int(&a.FactionID)
		case "ship_type_id":
			return s.once(&seen, 4) && s.int(&a.ShipTypeID)
		case "weapon_type_id":
			return s.once(&seen, 5) && s.int(&a.WeaponTypeID)
		case "damage_done":
			return s.once(&seen, 6) && s.int(&a.DamageDone)
		case "final_blow":
			return s.once(&seen, 7) && s.bool(&a.FinalBlow)
		case "security_status":
			return s.once(&seen, 8) && s.float(&a.SecurityStatus)
		}
		return false
	})
}

func (s *scanner) items(items *[]esi.RawItem, depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	return s.array(func() bool {
		*items = append(*items, esi.RawItem{})
		return s.item(&(*items)[len(*items)-1], depth)
	})
}

func (s *scanner) item(it *esi.RawItem, depth int) bool {
	var seen uint32
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "item_type_id":
			return s.once(&seen, 0) && s.int(&it.ItemTypeID)
		case "flag":
			return s.once(&seen, 1) && s.int(&it.Flag)
		case "singleton":
			return s.once(&seen, 2) && s.int(&it.Singleton)
		case "quantity_destroyed":
			it.QuantityDestroyed = new(int64)
			return s.once(&seen, 3) && s.int(it.QuantityDestroyed)
		case "quantity_dropped":
			it.QuantityDropped = new(int64)
			return s.once(&seen, 4) && s.int(it.QuantityDropped)
		case "items":
			it.Items = make([]esi.RawItem, 0, 4)
			return s.once(&seen, 5) && s.items(&it.Items, depth+1)
		}
		return false
	})
}

// scanner reads the JSON subset scanRecord accepts; every method reports
// false for anything outside it.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c, after white space.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// once marks key number k of an object seen; false when it was.
func (s *scanner) once(seen *uint32, k uint) bool {
	if *seen&(1<<k) != 0 {
		return false
	}
	*seen |= 1 << k
	return true
}

// object reads an object, calling field for each key with the scanner
// on its value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		lit, ok := s.str()
		if !ok || !s.next(':') || !field(lit[1:len(lit)-1]) {
			return false
		}
		if !s.next(',') {
			return s.next('}')
		}
	}
}

// array reads an array, calling elem with the scanner on each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.next(',') {
			return s.next(']')
		}
	}
}

// str reads a string of printable ASCII without escapes and returns it
// with its quotes.
func (s *scanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i - 1
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start:s.i], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// text reads a string (see str) into v, without its quotes.
func (s *scanner) text(v *string) bool {
	lit, ok := s.str()
	if ok {
		*v = string(lit[1 : len(lit)-1])
	}
	return ok
}

// int reads an integer written without fraction or exponent, of at most
// 18 digits (so it cannot overflow).
func (s *scanner) int(v *int64) bool {
	s.space()
	b, i := s.b, s.i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var u int64
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		if i-start == 18 {
			return false
		}
		u = u*10 + int64(b[i]-'0')
	}
	if i == start || b[start] == '0' && i-start > 1 || i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return false
	}
	s.i = i
	if neg {
		u = -u
	}
	*v = u
	return true
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// float reads a JSON number as strconv.ParseFloat (so encoding/json)
// does: exactly, with one division when the digits fit a float64's
// mantissa and there is no exponent.
func (s *scanner) float(v *float64) bool {
	s.space()
	b, i := s.b, s.i
	start := i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	var mant uint64
	digits, intStart := 0, i
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		mant = mant*10 + uint64(b[i]-'0')
		digits++
	}
	if i == intStart || b[intStart] == '0' && i-intStart > 1 {
		return false
	}
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		fracStart := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			digits++
		}
		if frac = i - fracStart; frac == 0 {
			return false
		}
	}
	exp := i < len(b) && (b[i] == 'e' || b[i] == 'E')
	if exp {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		expStart := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == expStart {
			return false
		}
	}
	s.i = i
	if !exp && digits <= 15 && frac < len(pow10) {
		f := float64(mant) / pow10[frac]
		if neg {
			f = -f
		}
		*v = f
		return true
	}
	f, err := strconv.ParseFloat(string(b[start:i]), 64)
	*v = f
	return err == nil
}

func (s *scanner) bool(v *bool) bool {
	s.space()
	switch rest := s.b[s.i:]; {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*v, s.i = true, s.i+4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*v, s.i = false, s.i+5
	default:
		return false
	}
	return true
}
