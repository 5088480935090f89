package server

import (
	"encoding/json"
	"strconv"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// liveEvent is one killmail on its way out of the tail: decoded once,
// and encoded at most once per wire shape, on first need, so that every
// matching connection gets the same bytes. Its methods run on the tail
// goroutine only; the values they return are immutable and shared.
type liveEvent struct {
	entry store.Entry
	km    *store.Killmail
	epoch string
	stamp string
	count func(system int64) uint64
	// z compresses for permessage-deflate connections (the tail's).
	z *frameDeflater

	// update and countMsg are WebSocket frames by serializer, then
	// uncompressed (0) or compressed (1).
	update   [2][2][]byte
	countMsg [2][2][]byte
	sse      [2][]byte
}

// wsUpdate is the killmail_update frame for a serializer and
// compression.
func (ev *liveEvent) wsUpdate(vsn int, deflate bool) []byte {
	z := b2i(deflate)
	if ev.update[vsn][z] == nil {
		payload := appendUpdatePayload(nil, ev.km.SystemID, []json.RawMessage{ev.entry.JSON}, ev.stamp, false, ev.entry.Offset)
		ev.update[vsn][z] = ev.frame(appendPhx(make([]byte, 0, len(payload)+64), vsn, nil, nil, lobbyTopic, "killmail_update", payload), deflate)
	}
	return ev.update[vsn][z]
}

// wsCount is the kill_count_update frame for a serializer and
// compression.
func (ev *liveEvent) wsCount(vsn int, deflate bool) []byte {
	z := b2i(deflate)
	if ev.countMsg[vsn][z] == nil {
		payload := appendCountPayload(nil, ev.km.SystemID, ev.count(ev.km.SystemID), ev.stamp)
		ev.countMsg[vsn][z] = ev.frame(appendPhx(nil, vsn, nil, nil, lobbyTopic, "kill_count_update", payload), deflate)
	}
	return ev.countMsg[vsn][z]
}

func (ev *liveEvent) frame(msg []byte, deflate bool) []byte {
	if deflate {
		return ev.z.appendFrame(make([]byte, 0, len(msg)/2+16), msg)
	}
	return textFrame(msg)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sseFrame is the SSE event of the killmail for a stream kind.
func (ev *liveEvent) sseFrame(kind sseKind) []byte {
	if ev.sse[kind] == nil {
		ev.sse[kind] = appendSSEKillmail(nil, kind, ev.epoch, ev.entry.Offset, ev.entry.JSON)
	}
	return ev.sse[kind]
}

// resumeID is the SSE id of an offset: "<epoch>-<offset>".
func resumeID(epoch string, offset uint64) string {
	return epoch + "-" + strconv.FormatUint(offset, 10)
}

// appendSSEKillmail appends a killmail event: an id line, the event name
// on the enhanced stream, and the canonical JSON on one data line.
func appendSSEKillmail(dst []byte, kind sseKind, epoch string, offset uint64, js []byte) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, epoch...)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, offset, 10)
	dst = append(dst, '\n')
	if kind == sseEnhanced {
		dst = append(dst, "event: killmail\n"...)
	}
	dst = append(dst, "data: "...)
	dst = append(dst, js...)
	return append(dst, "\n\n"...)
}

// appendSSEEvent appends a named event with a JSON data line.
func appendSSEEvent(dst []byte, name string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte("{}")
	}
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}
