package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Phoenix channel protocol (API.md §4.1): two serializers chosen by the
// vsn query parameter. V2 frames are arrays
// [join_ref, ref, topic, event, payload]; V1 frames are objects
// {"topic","event","payload","ref"}. Text frames only.
const (
	vsnV1 = 0
	vsnV2 = 1
)

// lobbyTopic is the only joinable topic.
const lobbyTopic = "killmails:lobby"

// Phoenix event names.
const (
	evJoin      = "phx_join"
	evLeave     = "phx_leave"
	evReply     = "phx_reply"
	evClose     = "phx_close"
	evError     = "phx_error"
	evHeartbeat = "heartbeat"
)

var jsonNull = json.RawMessage("null")

// phxMessage is one decoded inbound frame. Refs are kept as raw JSON
// (clients send strings, some send numbers) and echoed back unchanged.
type phxMessage struct {
	joinRef json.RawMessage
	ref     json.RawMessage
	topic   string
	event   string
	payload json.RawMessage
}

var errBadFrame = errors.New("server: malformed channel frame")

// decodePhx decodes a frame of the connection's serializer.
func decodePhx(vsn int, b []byte) (phxMessage, error) {
	if vsn == vsnV2 {
		return decodeV2(b)
	}
	return decodeV1(b)
}

func decodeV2(b []byte) (phxMessage, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil || len(arr) != 5 {
		return phxMessage{}, fmt.Errorf("%w: want [join_ref, ref, topic, event, payload]", errBadFrame)
	}
	m := phxMessage{joinRef: rawOrNull(arr[0]), ref: rawOrNull(arr[1]), payload: arr[4]}
	if json.Unmarshal(arr[2], &m.topic) != nil || json.Unmarshal(arr[3], &m.event) != nil {
		return phxMessage{}, fmt.Errorf("%w: topic and event must be strings", errBadFrame)
	}
	return m, nil
}

func decodeV1(b []byte) (phxMessage, error) {
	var obj struct {
		Topic   *string         `json:"topic"`
		Event   *string         `json:"event"`
		Payload json.RawMessage `json:"payload"`
		Ref     json.RawMessage `json:"ref"`
		JoinRef json.RawMessage `json:"join_ref"`
	}
	if err := json.Unmarshal(b, &obj); err != nil || obj.Topic == nil || obj.Event == nil {
		return phxMessage{}, fmt.Errorf("%w: want {\"topic\",\"event\",\"payload\",\"ref\"}", errBadFrame)
	}
	return phxMessage{
		joinRef: rawOrNull(obj.JoinRef), ref: rawOrNull(obj.Ref),
		topic: *obj.Topic, event: *obj.Event, payload: obj.Payload,
	}, nil
}

func rawOrNull(r json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(r)) == 0 {
		return jsonNull
	}
	return r
}

// appendPhx appends one outbound frame. joinRef and ref are raw JSON
// (nil means null); payload is a JSON value. V1 frames carry no join_ref,
// as Phoenix's V1 serializer does.
func appendPhx(dst []byte, vsn int, joinRef, ref json.RawMessage, topic, event string, payload []byte) []byte {
	if vsn == vsnV2 {
		dst = append(dst, '[')
		dst = append(dst, rawOrNull(joinRef)...)
		dst = append(dst, ',')
		dst = append(dst, rawOrNull(ref)...)
		dst = append(dst, ',')
		dst = appendJSONString(dst, topic)
		dst = append(dst, ',')
		dst = appendJSONString(dst, event)
		dst = append(dst, ',')
		dst = append(dst, payload...)
		return append(dst, ']')
	}
	dst = append(dst, `{"topic":`...)
	dst = appendJSONString(dst, topic)
	dst = append(dst, `,"event":`...)
	dst = appendJSONString(dst, event)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	dst = append(dst, `,"ref":`...)
	dst = append(dst, rawOrNull(ref)...)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	if isPlainASCII(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// replyPayload builds {"status": status, "response": response}.
func replyPayload(status string, response any) []byte {
	resp, err := json.Marshal(response)
	if err != nil {
		resp = []byte("{}")
	}
	b := make([]byte, 0, len(resp)+32)
	b = append(b, `{"status":"`...)
	b = append(b, status...)
	b = append(b, `","response":`...)
	b = append(b, resp...)
	return append(b, '}')
}

// appendUpdatePayload appends a killmail_update payload (API.md §4.3):
// {"system_id","killmails","timestamp","preload","offset"}. kills are
// canonical killmail encodings, used as they are.
func appendUpdatePayload(dst []byte, systemID int64, kills []json.RawMessage, stamp string, preload bool, offset uint64) []byte {
	dst = append(dst, `{"system_id":`...)
	dst = strconv.AppendInt(dst, systemID, 10)
	dst = append(dst, `,"killmails":[`...)
	for i, k := range kills {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, k...)
	}
	dst = append(dst, `],"timestamp":"`...)
	dst = append(dst, stamp...)
	dst = append(dst, `","preload":`...)
	dst = strconv.AppendBool(dst, preload)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, offset, 10)
	return append(dst, '}')
}

// appendCountPayload appends a kill_count_update payload:
// {"system_id","count","timestamp"} with the absolute stored count.
func appendCountPayload(dst []byte, systemID int64, count uint64, stamp string) []byte {
	dst = append(dst, `{"system_id":`...)
	dst = strconv.AppendInt(dst, systemID, 10)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendUint(dst, count, 10)
	dst = append(dst, `,"timestamp":"`...)
	dst = append(dst, stamp...)
	return append(dst, `"}`...)
}
