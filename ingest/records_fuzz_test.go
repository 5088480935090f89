package ingest_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
)

func FuzzDecodeRecord(f *testing.F) {
	for _, line := range bytes.Split(fixture(f, "killmails.jsonl"), []byte("\n"))[:5] {
		f.Add(line)
	}
	f.Add(fixture(f, "r2z2/900002.json"))
	f.Add(fixture(f, "zkb/api-killID-92805575.json"))
	f.Add([]byte(`{"killmail_id":5,"zkb":{"hash":"ab"}}`))
	f.Add([]byte(`{"killmail_id":5,"killmail_hash":"zz","victim":{},"attackers":[]}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		it, err := ingest.DecodeRecord(raw)
		if err != nil {
			if !errors.Is(err, ingest.ErrGarbage) {
				t.Fatalf("error that is not garbage: %v", err)
			}
			return
		}
		checkItem(t, it)
	})
}

func FuzzReadEVERef(f *testing.F) {
	committed, err := os.ReadFile(committedArchive)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(committed)
	f.Add(committed[:len(committed)/2])
	var plain bytes.Buffer
	writeTar(f, &plain, []member{{name: "killmails/1.json", body: []byte(`{}`)}})
	f.Add(plain.Bytes())
	f.Add([]byte("BZh9"))
	f.Fuzz(func(t *testing.T, archive []byte) {
		n := 0
		err := ingest.ReadEVERef(t.Context(), bytes.NewReader(archive), func(rec ingest.Record) error {
			n++
			if rec.Err == nil && rec.Raw == nil {
				t.Fatalf("member %s without contents or error", rec.Name)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ingest.ErrArchive) {
			t.Fatalf("error that is not ErrArchive after %d members: %v", n, err)
		}
	})
}
