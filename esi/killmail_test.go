package esi_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

func TestDecodeKillmailFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		km, err := esi.DecodeKillmail(fx.body)
		require.NoError(t, err, "killmail %d", fx.id)
		assert.Equal(t, fx.id, km.KillmailID)
		assert.Equal(t, len(km.Attackers), km.AttackerCount)

		// Every ESI key survives: compare with a plain decode.
		var raw struct {
			System    int64             `json:"solar_system_id"`
			Time      time.Time         `json:"killmail_time"`
			Victim    map[string]any    `json:"victim"`
			Attackers []json.RawMessage `json:"attackers"`
		}
		require.NoError(t, json.Unmarshal(fx.body, &raw))
		assert.Equal(t, raw.System, km.SystemID)
		assert.True(t, raw.Time.Equal(km.KillTime.Time))
		assert.Equal(t, int64(raw.Victim["ship_type_id"].(float64)), km.Victim.ShipTypeID)
		assert.Len(t, km.Attackers, len(raw.Attackers))
		if items, ok := raw.Victim["items"].([]any); ok {
			assert.Len(t, km.Victim.Items, len(items))
		}
	}
}

func TestDecodeKillmailShapes(t *testing.T) {
	const base = `{"killmail_id":56733821,"killmail_time":"2016-10-22T17:13:36Z","solar_system_id":30002976,` +
		`"victim":{"ship_type_id":17812,"damage_taken":5745,"position":{"x":1.5,"y":2,"z":-3}},`
	tests := []struct {
		name   string
		body   string
		check  func(t *testing.T, km *store.Killmail)
		errHas string
		inval  bool
	}{
		{name: "int security status", body: base + `"attackers":[{"damage_done":1,"final_blow":true,"security_status":5}]}`,
			check: func(t *testing.T, km *store.Killmail) { assert.InDelta(t, 5.0, km.Attackers[0].SecurityStatus, 0) }},
		{name: "float security status", body: base + `"attackers":[{"damage_done":1,"final_blow":true,"security_status":-3.1}]}`,
			check: func(t *testing.T, km *store.Killmail) { assert.InDelta(t, -3.1, km.Attackers[0].SecurityStatus, 1e-9) }},
		{name: "eve ref hash", body: base + `"attackers":[],"killmail_hash":"3c7ad3e982520554aad200b6eac9c3773106f4ce"}`,
			check: func(t *testing.T, km *store.Killmail) {
				assert.Equal(t, "3c7ad3e982520554aad200b6eac9c3773106f4ce", km.Hash)
				assert.Equal(t, 30002976, int(km.SystemID))
				assert.Equal(t, store.Position{X: 1.5, Y: 2, Z: -3}, *km.Victim.Position)
			}},
		{name: "moon and war", body: base + `"attackers":[],"moon_id":40000001,"war_id":7}`,
			check: func(t *testing.T, km *store.Killmail) {
				assert.EqualValues(t, 40000001, km.MoonID)
				assert.EqualValues(t, 7, km.WarID)
			}},
		{name: "html", body: "<html><body>502</body></html>", errHas: "not a JSON object"},
		{name: "empty", body: "", errHas: "not a JSON object"},
		{name: "array", body: "[]", errHas: "not a JSON object"},
		{name: "truncated", body: base + `"attackers":[{"damage_do`, errHas: "unexpected end"},
		{name: "string id", body: strings.Replace(base, "56733821", `"56733821"`, 1) + `"attackers":[]}`, errHas: "killmail_id"},
		{name: "string damage", body: base + `"attackers":[{"damage_done":"1"}]}`, errHas: "damage_done"},
		{name: "bool security", body: base + `"attackers":[{"security_status":true}]}`, errHas: "security_status"},
		{name: "bad time", body: strings.Replace(base, "2016-10-22T17:13:36Z", "2016.10.22 17:13", 1) + `"attackers":[]}`, errHas: "kill time"},
		{name: "trailing garbage", body: base + `"attackers":[]}x`, errHas: "invalid character"},
		{name: "no victim", body: `{"killmail_id":1,"killmail_time":"2016-10-22T17:13:36Z","solar_system_id":30002976,"attackers":[]}`, inval: true},
		{name: "no attackers", body: strings.TrimSuffix(base, ",") + `}`, inval: true},
		{name: "future", body: strings.Replace(base, "2016-10-22", "2999-10-22", 1) + `"attackers":[]}`, inval: true},
		{name: "negative character", body: base + `"attackers":[{"character_id":-5}]}`, inval: true},
		{name: "zero id", body: strings.Replace(base, "56733821", "0", 1) + `"attackers":[]}`, inval: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			km, err := esi.DecodeKillmail([]byte(tc.body))
			switch {
			case tc.check != nil:
				require.NoError(t, err)
				tc.check(t, km)
			case tc.inval:
				require.ErrorIs(t, err, store.ErrInvalid)
				var ve *store.ValidationError
				require.ErrorAs(t, err, &ve)
			default:
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.errHas)
				assert.NotErrorIs(t, err, store.ErrInvalid)
			}
		})
	}
}

func TestRawKillmailCopies(t *testing.T) {
	body, err := os.ReadFile(fixtures + "esi/killmail-56733821.json")
	require.NoError(t, err)
	var raw esi.RawKillmail
	require.NoError(t, json.Unmarshal(body, &raw))
	a, b := raw.Killmail(), raw.Killmail()
	require.NotEmpty(t, a.Victim.Items)
	a.Attackers[0].CharacterName = "changed"
	*a.Victim.Items[0].QuantityDropped = 999
	a.Victim.Position.X = 1
	assert.Empty(t, b.Attackers[0].CharacterName)
	assert.NotEqual(t, int64(999), *b.Victim.Items[0].QuantityDropped)
	assert.NotEqual(t, 1.0, b.Victim.Position.X)
}

func FuzzDecodeKillmail(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		if len(fx.body) < 8<<10 {
			f.Add(fx.body)
		}
	}
	f.Add([]byte(`{"killmail_id":1,"killmail_time":"2016-10-22T17:13:36Z","solar_system_id":30002976,"victim":{"ship_type_id":1,"items":[{"items":[{"items":[]}]}]},"attackers":[{"security_status":5}]}`))
	f.Add([]byte("<html>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		km, err := esi.DecodeKillmail(b)
		if err != nil {
			return
		}
		require.NoError(t, km.Validate(time.Now()))
		require.Equal(t, len(km.Attackers), km.AttackerCount)
		out, err := json.Marshal(km)
		require.NoError(t, err)
		var back store.Killmail
		require.NoError(t, json.Unmarshal(out, &back))
		require.Equal(t, km.KillmailID, back.KillmailID)
	})
}

// TestRawOfInvertsKillmail encodes every stored fixture back to ESI's
// shape and decodes it again: nothing is lost or added.
func TestRawOfInvertsKillmail(t *testing.T) {
	for _, f := range loadFixtures(t) {
		km, err := esi.DecodeKillmail(f.body)
		require.NoError(t, err)
		km.Victim.ShipName = "names are not ESI's"
		b, err := json.Marshal(esi.RawOf(km))
		require.NoError(t, err)
		assert.NotContains(t, string(b), "ship_name")
		back, err := esi.DecodeKillmail(b)
		require.NoError(t, err)
		km.Victim.ShipName = ""
		assert.Equal(t, km, back, "killmail %d", km.KillmailID)
	}
}
