package ingest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
)

func TestDecodeR2Z2Fixtures(t *testing.T) {
	tests := []struct {
		file     string
		id       int64
		seq      int64
		attack   int
		hash     string
		location int64
	}{
		{"r2z2/900001.json", 435341, 900001, 4, "cea7da03d815cbe8d5db3d135ed6f7e3a6ec2e60", 50000001},
		{"r2z2/900002.json", 103735737, 900002, 7, "3fad4d92ffb177409df71562f3d8c41fd47fe917", 50000001},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			doc, err := ingest.DecodeR2Z2(fixture(t, tc.file))
			require.NoError(t, err)
			assert.Equal(t, tc.seq, doc.Sequence)
			assert.Equal(t, time.Unix(1769000000, 0).UTC(), doc.UploadedAt)
			it := doc.Item
			assert.Equal(t, tc.id, it.KillmailID)
			assert.Equal(t, tc.hash, it.Hash)
			require.NotNil(t, it.Killmail)
			require.NotNil(t, it.ZKB)
			assert.Equal(t, tc.location, it.ZKB.LocationID)
			km := it.Killmail
			assert.Equal(t, tc.id, km.KillmailID)
			assert.Equal(t, tc.attack, km.AttackerCount)
			assert.Equal(t, tc.hash, km.Hash)
			assert.Same(t, it.ZKB, km.ZKB)
			assert.NoError(t, km.Validate(time.Now()))
		})
	}
}

func TestDecodeR2Z2Garbage(t *testing.T) {
	tests := []struct {
		name, body, reason string
	}{
		{"empty", "", ingest.ReasonEmpty},
		{"blank", " \n ", ingest.ReasonEmpty},
		{"html", "<html><body>502 Bad Gateway</body></html>", ingest.ReasonHTML},
		{"truncated", `{"killmail_id":435341,"hash":"cea7da03d815cbe8d5db3d135ed6f7e3a6ec2e60","esi":{"attackers":[`, ingest.ReasonTruncated},
		{"syntax", `{"killmail_id":435341,,}`, ingest.ReasonSyntax},
		{"array", `[1,2,3]`, ingest.ReasonWrongType},
		{"string id", `{"killmail_id":"435341","hash":"ab"}`, ingest.ReasonWrongType},
		{"zkb not an object", `{"killmail_id":435341,"hash":"ab","zkb":7}`, ingest.ReasonWrongType},
		{"esi not an object", `{"killmail_id":435341,"hash":"ab","esi":[1]}`, ingest.ReasonWrongType},
		{"bad kill time", `{"killmail_id":5,"hash":"ab","esi":{"killmail_id":5,"killmail_time":"yesterday"}}`, ingest.ReasonWrongType},
		{"no id", `{"hash":"ab"}`, ingest.ReasonMissingField},
		{"no hash no body", `{"killmail_id":5}`, ingest.ReasonMissingField},
		{"odd hash", `{"killmail_id":5,"hash":"../../x"}`, ingest.ReasonBadHash},
		{"other killmail", `{"killmail_id":5,"hash":"ab","esi":{"killmail_id":6,"killmail_time":"2020-01-01T00:00:00Z"}}`, ingest.ReasonIDMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ingest.DecodeR2Z2([]byte(tc.body))
			var ge *ingest.GarbageError
			require.ErrorAs(t, err, &ge)
			assert.Equal(t, tc.reason, ge.Reason, "err: %v", err)
			assert.ErrorIs(t, err, ingest.ErrGarbage)
		})
	}
}

func TestDecodeR2Z2WithoutBody(t *testing.T) {
	doc, err := ingest.DecodeR2Z2([]byte(`{"killmail_id":5,"hash":"AB12","esi":null,"zkb":{"hash":"ab12"},"sequence_id":9}`))
	require.NoError(t, err)
	assert.Nil(t, doc.Item.Killmail)
	assert.Equal(t, "AB12", doc.Item.Hash)

	doc, err = ingest.DecodeR2Z2([]byte(`{"killmail_id":5,"zkb":{"hash":"ab12"}}`))
	require.NoError(t, err)
	assert.Equal(t, "ab12", doc.Item.Hash, "the zkb hash stands in")
}

func TestDecodeRedisQFixtures(t *testing.T) {
	item, err := ingest.DecodeRedisQ(fixture(t, "redisq/package-null.json"))
	require.NoError(t, err)
	assert.Nil(t, item)

	item, err = ingest.DecodeRedisQ(fixture(t, "redisq/package-full-119455394.json"))
	require.NoError(t, err)
	require.NotNil(t, item.Killmail)
	assert.Equal(t, int64(119455394), item.Killmail.KillmailID)
	assert.Equal(t, "d2913bf8250db18456601a8ae061441e89ccadf3", item.Killmail.Hash)
	assert.InDelta(t, 142572993.92, item.ZKB.TotalValue, 0.001)

	item, err = ingest.DecodeRedisQ(fixture(t, "redisq/package-id-hash-only-130678514.json"))
	require.NoError(t, err)
	assert.Nil(t, item.Killmail)
	assert.Equal(t, int64(130678514), item.KillmailID)
	assert.Equal(t, "145c457c34ce9c9e8d67e942e764d8f439b22271", item.Hash)

	_, err = ingest.DecodeRedisQ(fixture(t, "redisq/package-legacy-crest-2017-59704390.json"))
	var ge *ingest.GarbageError
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, ingest.ReasonLegacyCREST, ge.Reason)
}

func TestDecodeRedisQGarbage(t *testing.T) {
	tests := []struct {
		name, body, reason string
	}{
		{"empty", "", ingest.ReasonEmpty},
		{"html", "<!DOCTYPE html><html></html>", ingest.ReasonHTML},
		{"no package", `{"listeners":3,"objects":9}`, ingest.ReasonMissingField},
		{"package string", `{"package":"yes"}`, ingest.ReasonWrongType},
		{"truncated", `{"package":{"killID":12`, ingest.ReasonTruncated},
		{"no hash", `{"package":{"killID":12,"zkb":{"totalValue":1}}}`, ingest.ReasonMissingField},
		{"no id", `{"package":{"zkb":{"hash":"ab"}}}`, ingest.ReasonMissingField},
		{"killmail of another", `{"package":{"killID":12,"killmail":{"killmail_id":13},"zkb":{"hash":"ab"}}}`, ingest.ReasonIDMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ingest.DecodeRedisQ([]byte(tc.body))
			var ge *ingest.GarbageError
			require.ErrorAs(t, err, &ge)
			assert.Equal(t, tc.reason, ge.Reason, "err: %v", err)
		})
	}
}

func TestDecodeZKBErrorObject(t *testing.T) {
	_, err := ingest.DecodeZKB([]byte(`{"error":"Invalid or unsupported modifier"}`))
	require.Error(t, err)
	assert.False(t, errors.Is(err, ingest.ErrGarbage))
	assert.Contains(t, err.Error(), "unsupported modifier")
}

// checkItem states what every decoded item promises.
func checkItem(t *testing.T, it ingest.Item) {
	if it.KillmailID <= 0 {
		t.Fatalf("decoded item without a positive id: %+v", it)
	}
	if it.Killmail == nil && it.Hash == "" {
		t.Fatalf("decoded item %d has neither body nor hash", it.KillmailID)
	}
	if it.Killmail != nil {
		if it.Killmail.KillmailID != it.KillmailID {
			t.Fatalf("body %d under id %d", it.Killmail.KillmailID, it.KillmailID)
		}
		if it.Killmail.AttackerCount != len(it.Killmail.Attackers) {
			t.Fatalf("killmail %d not normalized", it.KillmailID)
		}
		// Validation may fail, but never panic.
		_ = it.Killmail.Validate(time.Now())
	}
}

func FuzzDecodeR2Z2(f *testing.F) {
	for _, name := range []string{"r2z2/900001.json", "r2z2/900002.json", "r2z2/sequence.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"killmail_id":5,"hash":"ab","esi":null}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := ingest.DecodeR2Z2(body)
		if err != nil {
			if !errors.Is(err, ingest.ErrGarbage) {
				t.Fatalf("error that is not garbage: %v", err)
			}
			return
		}
		checkItem(t, doc.Item)
	})
}

func FuzzDecodeRedisQ(f *testing.F) {
	for _, name := range []string{
		"redisq/package-null.json", "redisq/package-full-119455394.json",
		"redisq/package-id-hash-only-130678514.json", "redisq/package-legacy-crest-2017-59704390.json",
	} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		item, err := ingest.DecodeRedisQ(body)
		if err != nil {
			if !errors.Is(err, ingest.ErrGarbage) {
				t.Fatalf("error that is not garbage: %v", err)
			}
			return
		}
		if item != nil {
			checkItem(t, *item)
		}
	})
}

func FuzzDecodeZKB(f *testing.F) {
	for _, name := range []string{"zkb/api-killID-92805575.json", "zkb/api-killID-131632081.json"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		es, err := ingest.DecodeZKB(body)
		if err != nil {
			return
		}
		for _, e := range es {
			checkItem(t, e.Item())
		}
	})
}
