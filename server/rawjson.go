package server

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// The killmail routes write their bodies from trusted pieces: killmails
// go out exactly as the store encoded them, without the re-validation
// json.Marshal gives every json.RawMessage (a tenth of a list request's
// time). Only server-made ASCII (timestamps, cursors, numbers) is
// spliced in.

// writeKillList writes {"data":{"kills":[…],"timestamp":T,"cached":C},"timestamp":T}.
func writeKillList(w http.ResponseWriter, kills []json.RawMessage, cached bool) {
	ts := nowStamp()
	b := make([]byte, 0, rawSize(kills)+128)
	b = append(b, `{"data":{"kills":`...)
	b = appendRawList(b, kills)
	b = append(b, `,"timestamp":"`+ts+`","cached":`...)
	b = strconv.AppendBool(b, cached)
	b = append(b, `},"timestamp":"`+ts+`"}`...)
	writeBody(w, http.StatusOK, b)
}

// writeQueryPage writes {"data":{"killmails":[…],"next_cursor":C|null,"count":N},"timestamp":T}.
func writeQueryPage(w http.ResponseWriter, kills []json.RawMessage, next string) {
	b := make([]byte, 0, rawSize(kills)+160)
	b = append(b, `{"data":{"killmails":`...)
	b = appendRawList(b, kills)
	b = append(b, `,"next_cursor":`...)
	if next == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, `"`+next+`"`...) // base64url: nothing to escape
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(len(kills)), 10)
	b = append(b, `},"timestamp":"`+nowStamp()+`"}`...)
	writeBody(w, http.StatusOK, b)
}

// writeRawData writes {"data":<raw>,"timestamp":T}.
func writeRawData(w http.ResponseWriter, raw json.RawMessage) {
	b := make([]byte, 0, len(raw)+64)
	b = append(b, `{"data":`...)
	b = append(b, raw...)
	b = append(b, `,"timestamp":"`+nowStamp()+`"}`...)
	writeBody(w, http.StatusOK, b)
}

func appendRawList(b []byte, items []json.RawMessage) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

func rawSize(items []json.RawMessage) int {
	n := 0
	for _, it := range items {
		n += len(it) + 1
	}
	return n
}

// writeBody writes a ready JSON body with the original's content type.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
