package ingest_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// esiKillmail is the ESI wire shape (FORMATS.md §4) plus EVE Ref's
// killmail_hash: what an archive member holds.
type esiKillmail struct {
	KillmailID    int64         `json:"killmail_id"`
	KillmailTime  string        `json:"killmail_time"`
	SolarSystemID int64         `json:"solar_system_id"`
	MoonID        int64         `json:"moon_id,omitempty"`
	WarID         int64         `json:"war_id,omitempty"`
	Victim        esiVictim     `json:"victim"`
	Attackers     []esiAttacker `json:"attackers"`
	Hash          string        `json:"killmail_hash,omitempty"`
}

type esiVictim struct {
	CharacterID   int64           `json:"character_id,omitempty"`
	CorporationID int64           `json:"corporation_id,omitempty"`
	AllianceID    int64           `json:"alliance_id,omitempty"`
	FactionID     int64           `json:"faction_id,omitempty"`
	ShipTypeID    int64           `json:"ship_type_id"`
	DamageTaken   int64           `json:"damage_taken"`
	Position      *store.Position `json:"position,omitempty"`
	Items         []store.Item    `json:"items,omitempty"`
}

type esiAttacker struct {
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

// esiJSON marshals a stored killmail back into an EVE Ref archive member
// (store.Item already has ESI's item keys).
func esiJSON(tb testing.TB, km *store.Killmail) []byte {
	tb.Helper()
	w := esiKillmail{
		KillmailID: km.KillmailID, KillmailTime: km.KillTime.UTC().Format(time.RFC3339),
		SolarSystemID: km.SystemID, MoonID: km.MoonID, WarID: km.WarID, Hash: km.Hash,
		Victim: esiVictim{
			CharacterID: km.Victim.CharacterID, CorporationID: km.Victim.CorporationID,
			AllianceID: km.Victim.AllianceID, FactionID: km.Victim.FactionID,
			ShipTypeID: km.Victim.ShipTypeID, DamageTaken: km.Victim.DamageTaken,
			Position: km.Victim.Position, Items: km.Victim.Items,
		},
		Attackers: make([]esiAttacker, len(km.Attackers)),
	}
	for i, a := range km.Attackers {
		w.Attackers[i] = esiAttacker{
			CharacterID: a.CharacterID, CorporationID: a.CorporationID, AllianceID: a.AllianceID,
			FactionID: a.FactionID, ShipTypeID: a.ShipTypeID, WeaponTypeID: a.WeaponTypeID,
			DamageDone: a.DamageDone, FinalBlow: a.FinalBlow, SecurityStatus: a.SecurityStatus,
		}
	}
	b, err := json.Marshal(w)
	require.NoError(tb, err)
	return b
}

// member is one file of a test archive.
type member struct {
	name string
	body []byte
}

// killmailMember names a killmail's file as EVE Ref does.
func killmailMember(id int64, body []byte) member {
	return member{name: fmt.Sprintf("killmails/%d.json", id), body: body}
}

// writeTar writes members as a tar stream.
func writeTar(tb testing.TB, w io.Writer, members []member) {
	tb.Helper()
	tw := tar.NewWriter(w)
	require.NoError(tb, tw.WriteHeader(&tar.Header{Name: "killmails/", Typeflag: tar.TypeDir, Mode: 0o755}))
	for _, m := range members {
		require.NoError(tb, tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m.body))}))
		_, err := tw.Write(m.body)
		require.NoError(tb, err)
	}
	require.NoError(tb, tw.Close())
}

// bzip2Path finds the bzip2 tool. Go has no bzip2 writer, so archives
// are compressed with it; a machine without it fails the test (Debian's
// base image has it: apt-get install bzip2).
func bzip2Path(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("bzip2")
	if err != nil {
		tb.Fatalf("the bzip2 command is required to build EVE Ref test archives (apt-get install bzip2): %v", err)
	}
	return p
}

// writeArchive writes members as dir/name, a tar.bz2 made with bzip2.
func writeArchive(tb testing.TB, dir, name string, members []member) string {
	tb.Helper()
	return writeArchiveLevel(tb, dir, name, members, "-9")
}

// writeArchiveLevel is writeArchive with bzip2's block size flag ("-1":
// 100 kB blocks, "-9": 900 kB, EVE Ref's).
func writeArchiveLevel(tb testing.TB, dir, name string, members []member, level string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	out, err := os.Create(path)
	require.NoError(tb, err)
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bzip2Path(tb), "-c", level)
	cmd.Stdout, cmd.Stderr = out, &stderr
	in, err := cmd.StdinPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	writeTar(tb, in, members)
	require.NoError(tb, in.Close())
	require.NoError(tb, cmd.Wait(), "bzip2: %s", stderr.String())
	return path
}
