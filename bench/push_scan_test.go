package bench

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDeliveries: the frame scan finds the stamped killmails of live
// updates, skips preloads and other events, and falls back to decoding
// when ids and stamps do not pair up.
func TestDeliveries(t *testing.T) {
	frame := func(preload bool, kills ...map[string]any) []byte {
		b, _ := json.Marshal([]any{nil, nil, "killmails:lobby", "killmail_update",
			map[string]any{"system_id": 30000142, "killmails": kills, "preload": preload}})
		return b
	}
	km := func(id int64, labels ...string) map[string]any {
		return map[string]any{"killmail_id": id, "victim": map[string]any{"ship_type_id": 1},
			"zkb": map[string]any{"hash": "ab", "labels": labels}}
	}
	cases := map[string]struct {
		frame []byte
		want  []delivery
	}{
		"one":       {frame(false, km(5, "pvp", SentLabelPrefix+"123")), []delivery{{5, 123}}},
		"two":       {frame(false, km(5, SentLabelPrefix+"1"), km(6, SentLabelPrefix+"2")), []delivery{{5, 1}, {6, 2}}},
		"unstamped": {frame(false, km(5, "pvp")), nil},
		"mixed":     {frame(false, km(4, "pvp"), km(5, SentLabelPrefix+"9")), []delivery{{5, 9}}},
		"preload":   {frame(true, km(5, SentLabelPrefix+"1")), nil},
		"count":     {[]byte(`[null,null,"killmails:lobby","kill_count_update",{"system_id":1,"count":2}]`), nil},
		"garbage":   {[]byte(`"killmail_update" "` + SentLabelPrefix + `1"`), nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, deliveries(tc.frame))
		})
	}
}
