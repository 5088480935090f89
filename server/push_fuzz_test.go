package server

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPushBody: splitting and decoding a push body never panics, and
// every item that decodes carries a body and a key (hash or zkb block).
func FuzzPushBody(f *testing.F) {
	lines, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "killmails.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(lines))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for i := 0; i < 3 && sc.Scan(); i++ {
		line := bytes.Clone(sc.Bytes())
		f.Add(line, false)
		f.Add(append([]byte(`[`), append(line, `]`...)...), false)
		f.Add(append(bytes.TrimSuffix(line, []byte("}")), `,"killmail_hash":"ab12"}`...), true)
	}
	for _, name := range []string{"900001.json", "900002.json"} {
		doc, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "r2z2", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc, false)
	}
	f.Add([]byte("{}\n\n[]\n42\n"), true)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		raws, err := splitPush(body, ndjson)
		if err != nil {
			return
		}
		if len(raws) == 0 {
			t.Fatal("no items and no error")
		}
		for i, raw := range raws {
			it, err := decodePush(raw)
			if err != nil {
				_ = rejectedItem(i, it.KillmailID, raw, err)
				continue
			}
			if it.Killmail == nil || (it.Hash == "" && it.ZKB == nil) {
				t.Fatalf("item %d decoded without a body or a key: %+v", i, it)
			}
		}
	})
}
