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

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// esiJSON marshals a stored killmail back into an EVE Ref archive member:
// the ESI body with killmail_hash.
func esiJSON(tb testing.TB, km *store.Killmail) []byte {
	tb.Helper()
	b, err := json.Marshal(esi.RawOf(km))
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
