package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// BenchmarkWebhookDeliveries100Receivers: 100 subscriptions, each on its
// own system with its own local receiver. b.N killmails spread over the
// systems are appended in chunks of 100; the clock stops when every
// receiver has acknowledged its share. kills/s is killmails delivered
// (acknowledged) per second, posts/s the POSTs; the receivers decode
// each body.
func BenchmarkWebhookDeliveries100Receivers(b *testing.B) {
	const receivers = 100
	e := newLiveEnv(b, "", "", fastHooks(func(c *WebhookConfig) { c.BatchWindow = 5 * time.Millisecond }))
	var kills, posts atomic.Int64
	for i := range receivers {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var p struct {
				Kills []json.RawMessage `json:"kills"`
			}
			body, _ := io.ReadAll(r.Body)
			if json.Unmarshal(body, &p) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			posts.Add(1)
			kills.Add(int64(len(p.Kills)))
			w.WriteHeader(http.StatusNoContent)
		}))
		b.Cleanup(srv.Close)
		_, _, err := e.srv.webhooks.Create(context.Background(), WebhookRequest{
			SubscriberID: "bench", SystemIDs: []int64{int64(30000001 + i)}, CallbackURL: srv.URL,
		})
		require.NoError(b, err)
	}
	fx := liveFixtures(b)
	now := time.Now()
	kms := make([]*store.Killmail, b.N)
	for i := range kms {
		kms[i] = killIn(fx[i%len(fx)], int64(20_000_000+i), int64(30000001+i%receivers), now)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(kms); i += 100 {
		_, err := e.st.Append(context.Background(), store.Batch{Killmails: kms[i:min(i+100, len(kms))]})
		require.NoError(b, err)
	}
	for kills.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "kills/s")
	b.ReportMetric(float64(posts.Load())/elapsed.Seconds(), "posts/s")
}

// BenchmarkWebhookBacklog100Receivers: 100 subscriptions, each on its
// own system and receiver, whose cursors are b.N killmails behind when the
// server starts (as after downtime). They catch up from the store,
// sharing the decodes. kills/s is killmails acknowledged per second,
// from the server's start to the last acknowledgement.
func BenchmarkWebhookBacklog100Receivers(b *testing.B) {
	const receivers = 100
	dir := b.TempDir()
	st, err := store.Open(context.Background(), store.Config{Dir: dir})
	require.NoError(b, err)
	fx := liveFixtures(b)
	now := time.Now()
	for i := 0; i < b.N; i += 1000 {
		kms := make([]*store.Killmail, 0, 1000)
		for j := i; j < min(i+1000, b.N); j++ {
			kms = append(kms, killIn(fx[j%len(fx)], int64(20_000_000+j), int64(30000001+j%receivers), now))
		}
		_, err := st.Append(context.Background(), store.Batch{Killmails: kms})
		require.NoError(b, err)
	}
	var kills atomic.Int64
	kv := map[string][]byte{}
	for i := range receivers {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var p struct {
				Kills []json.RawMessage `json:"kills"`
			}
			body, _ := io.ReadAll(r.Body)
			if json.Unmarshal(body, &p) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			kills.Add(int64(len(p.Kills)))
			w.WriteHeader(http.StatusNoContent)
		}))
		b.Cleanup(srv.Close)
		rec := subRecord{ID: randomToken(16), SubscriberID: "bench", SystemIDs: []int64{int64(30000001 + i)},
			CharacterIDs: []int64{}, CallbackURL: srv.URL, Secret: "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(32)),
			CreatedAt: nowStamp(), UpdatedAt: nowStamp()}
		kv[webhookSubPrefix+rec.ID] = recordJSON(rec)
		kv[webhookCursorPrefix+rec.ID] = recordJSON(cursorRecord{})
	}
	require.NoError(b, st.PutKV(context.Background(), kv))
	require.NoError(b, st.Close())
	b.ResetTimer()
	start := time.Now()
	newLiveEnv(b, dir, "", fastHooks(func(c *WebhookConfig) { c.BatchWindow = 5 * time.Millisecond }))
	for kills.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "kills/s")
	b.StopTimer()
}

// BenchmarkWebhookMatchDecode compares the full decode with the sparse one
// a catch-up uses to match each entry it reads.
func BenchmarkWebhookMatchDecode(b *testing.B) {
	fx := liveFixtures(b)
	raws := make([][]byte, len(fx))
	for i, km := range fx {
		raws[i], _ = json.Marshal(km)
	}
	b.Run("full", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := (store.Entry{JSON: raws[i%len(raws)]}).Killmail(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sparse", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := decodeMatchFields(raws[i%len(raws)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
