package store_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// requireSameJSON holds AppendJSON to json.Marshal for one killmail.
func requireSameJSON(t testing.TB, km *store.Killmail) {
	t.Helper()
	want, err := json.Marshal(km)
	require.NoError(t, err)
	got, err := km.AppendJSON([]byte("prefix"))
	require.NoError(t, err)
	require.Equal(t, "prefix"+string(want), string(got))
}

func TestAppendJSONEqualsMarshal(t *testing.T) {
	t.Run("fixtures", func(t *testing.T) {
		for _, km := range fixtures(t) {
			km.Normalize()
			requireSameJSON(t, km)
		}
	})
	t.Run("generated", func(t *testing.T) {
		g := generator(t, 7)
		for range 2000 {
			requireSameJSON(t, g.Next())
		}
	})
	t.Run("edge values", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		strs := []string{"", "plain", `quo"te\back`, "<script>&amp;</script>", "tab\tnl\ncr\r\b\f\x00\x1f\x7f",
			"ünïcödé 日本", "\u2028line\u2029para", "bad\xffutf8\xc3", "\xe2\x80"}
		floats := []float64{0, math.Copysign(0, -1), 1, -1.5, 1e-7, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.123, math.MaxFloat64,
			math.SmallestNonzeroFloat64, 0.1 + 0.2, -2.5e-9}
		pick := func() string { return strs[r.IntN(len(strs))] }
		pickF := func() float64 { return floats[r.IntN(len(floats))] }
		q := int64(3)
		for range 500 {
			km := &store.Killmail{
				KillmailID: r.Int64N(1 << 40), KillTime: store.Time{Time: time.Unix(r.Int64N(2e9), 0)},
				SystemID: r.Int64N(1e8), SystemName: pick(), MoonID: r.Int64N(2), WarID: r.Int64N(2) * 99,
				Hash: pick(), AttackerCount: r.IntN(3),
			}
			km.Victim = store.Victim{CharacterID: r.Int64N(2), CorporationID: r.Int64N(2), AllianceID: r.Int64N(2),
				FactionID: r.Int64N(2), ShipTypeID: r.Int64N(3), DamageTaken: r.Int64N(5) - 2}
			km.Victim.Names = store.Names{CharacterName: pick(), CorporationName: pick(), AllianceTicker: pick(), ShipName: pick()}
			if r.IntN(2) == 0 {
				km.Victim.Position = &store.Position{X: pickF(), Y: pickF(), Z: pickF()}
			}
			if r.IntN(2) == 0 {
				km.Victim.Items = []store.Item{{ItemTypeID: 1, QuantityDropped: &q,
					Items: []store.Item{{ItemTypeID: 2, QuantityDestroyed: &q}}}, {Flag: 5}}
			}
			switch r.IntN(3) {
			case 0:
				km.Attackers = nil
			case 1:
				km.Attackers = []store.Attacker{}
			default:
				for range r.IntN(4) + 1 {
					km.Attackers = append(km.Attackers, store.Attacker{CharacterID: r.Int64N(2), ShipTypeID: r.Int64N(2),
						WeaponTypeID: r.Int64N(2), DamageDone: r.Int64N(3), FinalBlow: r.IntN(2) == 0,
						SecurityStatus: pickF(), Names: store.Names{CorporationTicker: pick(), AllianceName: pick()}})
				}
			}
			if r.IntN(2) == 0 {
				km.ZKB = &store.ZKB{LocationID: r.Int64N(2), Hash: pick(), TotalValue: pickF(), FittedValue: pickF(),
					Points: r.Int64N(3), NPC: r.IntN(2) == 0, Labels: []string{pick(), pick()}[:r.IntN(3)]}
			}
			requireSameJSON(t, km)
		}
	})
	t.Run("not a number", func(t *testing.T) {
		km := &store.Killmail{KillmailID: 1, ZKB: &store.ZKB{TotalValue: math.NaN()}}
		_, err := km.AppendJSON(nil)
		require.ErrorContains(t, err, "killmail 1")
	})
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("Jita", "[FOO]", 1.5, int64(30000142))
	f.Add("<&>\u2028\xff", "", 1e-9, int64(-1))
	f.Fuzz(func(t *testing.T, name, ticker string, value float64, id int64) {
		if math.IsNaN(value) || math.IsInf(value, 0) {
			return
		}
		km := &store.Killmail{KillmailID: id, SystemName: name, Attackers: []store.Attacker{{SecurityStatus: value,
			Names: store.Names{AllianceTicker: ticker}}}, ZKB: &store.ZKB{Hash: ticker, TotalValue: value, Labels: []string{name}}}
		km.Victim.Names.CharacterName = name
		requireSameJSON(t, km)
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	g := generator(b, 1)
	kms := make([]*store.Killmail, 1000)
	for i := range kms {
		kms[i] = g.Next()
	}
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := json.Marshal(kms[i%len(kms)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = kms[i%len(kms)].AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
