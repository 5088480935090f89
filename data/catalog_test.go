package data_test

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/data"
)

func load(t testing.TB) *data.Catalog {
	t.Helper()
	c, err := data.Load()
	require.NoError(t, err)
	return c
}

func TestLoadCounts(t *testing.T) {
	c := load(t)
	assert.Equal(t, 550, c.ShipCount())
	assert.Equal(t, 8437, c.SystemCount())
}

func TestLookups(t *testing.T) {
	c := load(t)
	tests := []struct {
		name string
		id   int64
		ship *data.Ship
		sys  *data.System
	}{
		{name: "rifter", id: 587, ship: &data.Ship{TypeID: 587, GroupID: 25, Name: "Rifter", GroupName: "Frigate"}},
		{name: "capsule", id: 670, ship: &data.Ship{TypeID: 670, GroupID: 29, Name: "Capsule", GroupName: "Capsule"}},
		{name: "jita", id: 30000142, sys: &data.System{ID: 30000142, Name: "Jita", RegionID: 10000002,
			RegionName: "The Forge", ConstellationID: 20000020, Security: 0.945913, SecurityClass: "B"}},
		{name: "void system without class", id: 34000200, sys: &data.System{ID: 34000200, Name: "V-200",
			RegionID: 14000005, RegionName: "VR-05", ConstellationID: 24000025, Security: -0.99}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ship != nil {
				got, ok := c.Ship(tc.id)
				require.True(t, ok)
				assert.Equal(t, *tc.ship, got)
			}
			if tc.sys != nil {
				got, ok := c.System(tc.id)
				require.True(t, ok)
				assert.Equal(t, tc.sys.Name, got.Name)
				assert.Equal(t, tc.sys.RegionName, got.RegionName)
				assert.Equal(t, tc.sys.SecurityClass, got.SecurityClass)
				assert.InDelta(t, tc.sys.Security, got.Security, 1e-6)
			}
		})
	}
	_, ok := c.Ship(0)
	assert.False(t, ok)
	_, ok = c.System(1)
	assert.False(t, ok)
}

// nonShipVictims are the victim types of the fixtures that are not in SDE
// category 6 (structures, deployables, a drone): their names come from
// ESI's type lookup, not from the catalog.
var nonShipVictims = map[int64]string{
	17182: "Warp Scrambling Battery",
	17187: "Photon Scattering Array",
	28351: "Design Laboratory",
	33475: "Mobile Tractor Unit",
	35832: "Astrahus",
	35833: "Fortizar",
	40566: "Termite II",
	46364: "Blood Raiders Stronghold",
}

func TestFixturesResolve(t *testing.T) {
	c := load(t)
	f, err := os.Open("../testdata/fixtures/killmails.jsonl")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	n := 0
	for sc.Scan() {
		var km struct {
			ID       int64 `json:"killmail_id"`
			SystemID int64 `json:"solar_system_id"`
			Victim   struct {
				ShipTypeID int64 `json:"ship_type_id"`
			} `json:"victim"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &km))
		n++
		_, ok := c.System(km.SystemID)
		assert.True(t, ok, "killmail %d: system %d", km.ID, km.SystemID)
		_, ok = c.Ship(km.Victim.ShipTypeID)
		_, structure := nonShipVictims[km.Victim.ShipTypeID]
		assert.True(t, ok != structure, "killmail %d: victim type %d ship=%v", km.ID, km.Victim.ShipTypeID, ok)
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, 88, n)
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := data.Load(); err != nil {
			b.Fatal(err)
		}
	}
}
