package server

import (
	"encoding/base64"
	"encoding/binary"
	"errors"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// cursorVersion starts every encoded cursor, so the format can change
// without old cursors being misread.
const cursorVersion = 1

// errBadCursor is any cursor this server did not make.
var errBadCursor = errors.New("is not a cursor this server issued")

// encodeCursor makes the opaque next_cursor of /api/v2/killmails: a
// version byte and the index cursor's fields as varints, in unpadded
// base64url.
func encodeCursor(c index.Cursor) string {
	b := []byte{cursorVersion}
	b = binary.AppendVarint(b, c.Time)
	b = binary.AppendVarint(b, c.KillmailID)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reverses encodeCursor and refuses anything else.
func decodeCursor(s string) (index.Cursor, error) {
	if len(s) > 64 {
		return index.Cursor{}, errBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 3 || b[0] != cursorVersion {
		return index.Cursor{}, errBadCursor
	}
	b = b[1:]
	t, n := binary.Varint(b)
	if n <= 0 {
		return index.Cursor{}, errBadCursor
	}
	b = b[n:]
	id, n := binary.Varint(b)
	if n <= 0 || n != len(b) || t <= 0 || id <= 0 {
		return index.Cursor{}, errBadCursor
	}
	return index.Cursor{Time: t, KillmailID: id}, nil
}
