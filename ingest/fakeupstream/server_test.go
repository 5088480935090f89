package fakeupstream_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
)

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, b
}

func TestR2Z2ServesReleasedSequencesOnly(t *testing.T) {
	s := fakeupstream.New(t, fakeupstream.Options{SequenceStep: 2})
	first := s.FirstSequence()
	_, _, b := get(t, s.R2Z2URL()+"/ephemeral/sequence.json")
	assert.JSONEq(t, `{"sequence":900001}`, string(b), "nothing released: the first sequence to come")
	code, _, _ := get(t, s.R2Z2URL()+"/ephemeral/900001.json")
	assert.Equal(t, http.StatusNotFound, code)

	require.Equal(t, 3, s.Release(3))
	code, _, b = get(t, s.R2Z2URL()+"/ephemeral/900003.json")
	require.Equal(t, http.StatusOK, code)
	var doc struct {
		KillmailID int64           `json:"killmail_id"`
		Hash       string          `json:"hash"`
		ESI        json.RawMessage `json:"esi"`
		ZKB        map[string]any  `json:"zkb"`
		Sequence   int64           `json:"sequence_id"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	km := s.Killmails()[2]
	assert.Equal(t, km.ID, doc.KillmailID)
	assert.Equal(t, km.Hash, doc.Hash)
	assert.Equal(t, first+2, doc.Sequence)
	assert.JSONEq(t, string(km.ESI), string(doc.ESI))
	assert.Equal(t, km.Hash, doc.ZKB["hash"])
	_, _, b = get(t, s.R2Z2URL()+"/ephemeral/sequence.json")
	assert.JSONEq(t, `{"sequence":900003}`, string(b), "lags by the step")
	code, _, _ = get(t, s.R2Z2URL()+"/ephemeral/900004.json")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestRedisQRedirectsToObjects(t *testing.T) {
	s := fakeupstream.New(t, fakeupstream.Options{RedisQWait: 10 * time.Millisecond})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(s.RedisQURL() + "?queueID=q1&ttw=1")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusFound, res.StatusCode)
	assert.Equal(t, "/redisq/object.php?objectID=null", res.Header.Get("Location"))

	s.Release(1)
	_, _, b := get(t, s.RedisQURL()+"?queueID=q1&ttw=1")
	var pkg struct {
		Package struct {
			KillID int64          `json:"killID"`
			ZKB    map[string]any `json:"zkb"`
		} `json:"package"`
	}
	require.NoError(t, json.Unmarshal(b, &pkg))
	assert.Equal(t, s.Killmails()[0].ID, pkg.Package.KillID)
	_, _, b = get(t, s.RedisQURL()+"?queueID=q1&ttw=1")
	assert.JSONEq(t, `{"package":null}`, string(b), "each package once per queue")
	_, _, b = get(t, s.RedisQURL()+"?queueID=q2&ttw=1")
	assert.Contains(t, string(b), `"killID"`, "another queue gets its own copy")
	code, _, _ := get(t, s.RedisQURL())
	assert.Equal(t, http.StatusTooManyRequests, code, "queueID is required")
}

func TestZKBAndESIWireRules(t *testing.T) {
	s := fakeupstream.New(t, fakeupstream.Options{})
	km := s.Killmails()[0]
	code, _, _ := get(t, s.ZKBURL()+"/killID/92805575/?x=1")
	assert.Equal(t, http.StatusForbidden, code, "no query string")
	_, _, b := get(t, s.ZKBURL()+"/killID/92805575")
	assert.Contains(t, string(b), `"error"`, "a trailing slash is required")
	_, _, b = get(t, s.ZKBURL()+"/killID/92805575/")
	assert.Contains(t, string(b), "79b46dac66cba1ac120ed180e2b371e24c66c21a")

	code, h, b := get(t, s.ESIURL()+"/killmails/"+itoa(km.ID)+"/"+km.Hash+"/")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "100", h.Get("X-ESI-Error-Limit-Remain"))
	assert.JSONEq(t, string(km.ESI), string(b))
	code, _, _ = get(t, s.ESIURL()+"/killmails/"+itoa(km.ID)+"/0123456789abcdef0123456789abcdef01234567/")
	assert.Equal(t, http.StatusUnprocessableEntity, code)

	res, err := http.Post(s.ESIURL()+"/universe/names/", "application/json", strings.NewReader(`[30000142, 587]`))
	require.NoError(t, err)
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	assert.JSONEq(t, `[{"category":"solar_system","id":30000142,"name":"System 30000142"},
		{"category":"inventory_type","id":587,"name":"Type 587"}]`, string(b))

	s.SetFaults(fakeupstream.ESI, fakeupstream.Faults{ErrorLimited: true})
	code, h, _ = get(t, s.ESIURL()+"/universe/types/587/")
	assert.Equal(t, 420, code)
	assert.Equal(t, "0", h.Get("X-ESI-Error-Limit-Remain"))
	assert.Equal(t, "1", h.Get("X-ESI-Error-Limit-Reset"))
}

func TestServeOnLoopback(t *testing.T) {
	s, err := fakeupstream.NewServer(fakeupstream.Options{})
	require.NoError(t, err)
	ln, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	s.Release(1)
	code, _, _ := get(t, s.R2Z2URL()+"/ephemeral/900001.json")
	assert.Equal(t, http.StatusOK, code)
	cancel()
	require.NoError(t, <-done)
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }
