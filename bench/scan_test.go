package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// feedSplit feeds stream to feed in random pieces and returns the ids
// found.
func feedSplit(seed uint64, stream []byte, feed func([]byte, func(int64))) []int64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	var ids []int64
	for len(stream) > 0 {
		n := min(len(stream), 1+rng.IntN(700))
		feed(stream[:n], func(id int64) { ids = append(ids, id) })
		stream = stream[n:]
	}
	return ids
}

func TestFrameScanner(t *testing.T) {
	var stream []byte
	var want []int64
	frame := func(payload string) {
		stream = append(stream, 0x81)
		switch n := len(payload); {
		case n <= 125:
			stream = append(stream, byte(n))
		case n <= 0xffff:
			stream = append(stream, 126, byte(n>>8), byte(n))
		default:
			stream = append(stream, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		}
		stream = append(stream, payload...)
	}
	for i, size := range []int{10, 200, 3000, 70000, 0, 5} {
		id := int64(1000 + i)
		want = append(want, id)
		frame(fmt.Sprintf(`[null,null,"killmails:lobby","killmail_update",{"system_id":1,"killmails":[{"killmail_id":%d,"pad":"%s"}]}]`,
			id, strings.Repeat("x", size)))
		frame(`[null,null,"killmails:lobby","kill_count_update",{"system_id":1,"count":3}]`)
	}
	frame("")
	for seed := range uint64(20) {
		s := &frameScanner{}
		assert.Equal(t, want, feedSplit(seed, stream, s.feed), "seed %d", seed)
		assert.False(t, s.ended())
	}
}

func TestSSEScanner(t *testing.T) {
	var body strings.Builder
	var want []int64
	body.WriteString("retry: 2000\n\n: ping\n\n")
	for i, size := range []int{10, 300, 5000, 40000} {
		id := int64(2000 + i)
		want = append(want, id)
		fmt.Fprintf(&body, "id: e-%d\ndata: {\"killmail_id\":%d,\"pad\":\"%s\"}\n\n", i, id, strings.Repeat("y", size))
	}
	// Chunk the body unevenly, with an extension on one chunk.
	var stream []byte
	b := body.String()
	for k := 0; len(b) > 0; k++ {
		n := min(len(b), 1+k*997%6000)
		ext := ""
		if k == 2 {
			ext = ";x=y"
		}
		stream = fmt.Appendf(stream, "%X%s\r\n%s\r\n", n, ext, b[:n])
		b = b[n:]
	}
	stream = append(stream, "0\r\n\r\n"...)
	for seed := range uint64(20) {
		s := &sseScanner{}
		assert.Equal(t, want, feedSplit(seed, stream, s.feed), "seed %d", seed)
		assert.True(t, s.ended())
	}
}
