package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// lobbyChannel is the joined killmails:lobby channel of a connection.
// Owned by the connection's reader goroutine.
type lobbyChannel struct {
	joinRef json.RawMessage
	subID   string
	systems []int64 // sorted
	chars   []int64 // sorted
	sub     *subscriber
	preload preloadOpts
	// start is the offset after which the channel receives every match
	// (catch-up, then live); preloads skip what it already got.
	start uint64
}

func (ch *lobbyChannel) filter() Filter {
	return Filter{Systems: slices.Clone(ch.systems), Characters: slices.Clone(ch.chars)}
}

// handle routes one inbound frame: heartbeat, join, and the lobby's
// events; a push to a topic that is not joined gets "unmatched topic".
func (c *wsConn) handle(m phxMessage) {
	switch {
	case m.topic == "phoenix" && m.event == evHeartbeat:
		c.reply(m, "ok", struct{}{})
	case m.event == evJoin:
		c.join(m)
	case c.ch == nil || m.topic != lobbyTopic:
		c.replyReason(m, "unmatched topic")
	case m.event == evLeave:
		c.leave(m)
	default:
		c.channelEvent(m)
	}
}

// lobbyEvents are the client events of killmails:lobby (API.md §4.4),
// each in its own method.
var lobbyEvents = map[string]func(*wsConn, phxMessage){
	"subscribe_systems":      (*wsConn).subscribeSystems,
	"unsubscribe_systems":    (*wsConn).unsubscribeSystems,
	"subscribe_characters":   (*wsConn).subscribeCharacters,
	"unsubscribe_characters": (*wsConn).unsubscribeCharacters,
	"get_status":             (*wsConn).getStatus,
}

func (c *wsConn) channelEvent(m phxMessage) {
	fn, ok := lobbyEvents[m.event]
	if !ok {
		c.replyError(m, validationErr("unknown_event", fmt.Sprintf("Unknown event %q", m.event)))
		return
	}
	fn(c, m)
}

// reply queues a phx_reply to m.
func (c *wsConn) reply(m phxMessage, status string, response any) {
	c.q.push(c.replyItem(m, status, response))
}

func (c *wsConn) replyItem(m phxMessage, status string, response any) outItem {
	frame := textFrame(appendPhx(nil, c.vsn, m.joinRef, m.ref, m.topic, evReply, replyPayload(status, response)))
	return outItem{wire: frame, size: len(frame)}
}

func (c *wsConn) replyReason(m phxMessage, reason string) {
	c.reply(m, "error", map[string]string{"reason": reason})
}

func (c *wsConn) replyError(m phxMessage, err *channelError) {
	c.replyReason(m, err.Error())
}

// channelFrame is a push of the joined channel (with its join_ref).
func (c *wsConn) channelFrame(joinRef json.RawMessage, event string, payload []byte) []byte {
	return appendPhx(nil, c.vsn, joinRef, nil, lobbyTopic, event, payload)
}

// join handles phx_join. Only killmails:lobby joins; another killmails:
// subtopic fails as upstream's join crash does. A second join of the
// lobby closes the first channel and runs the new join (Phoenix).
func (c *wsConn) join(m phxMessage) {
	if m.topic != lobbyTopic {
		reason := "unmatched topic"
		if strings.HasPrefix(m.topic, "killmails:") {
			reason = "join crashed"
		}
		c.replyReason(m, reason)
		return
	}
	req, verr := parseJoin(m.payload, &c.hub.cfg)
	if verr == nil {
		verr = c.checkResume(req)
	}
	if verr != nil {
		c.replyError(m, verr)
		return
	}
	if c.ch != nil {
		c.dropChannel(evClose)
	}
	joinRef := m.joinRef
	if string(joinRef) == "null" {
		joinRef = m.ref
	}
	ch := &lobbyChannel{
		joinRef: joinRef, subID: subscriptionID(),
		systems: sortedIDs(req.systems), chars: sortedIDs(req.chars),
		preload: req.preload,
	}
	ch.sub = &subscriber{sink: c}
	c.q.locked(func() { c.startChannel(m, ch, req) })
	c.ch = ch
}

// checkResume refuses a since_offset the store cannot honour.
func (c *wsConn) checkResume(req joinRequest) *channelError {
	if !req.resume {
		return nil
	}
	st := c.hub.st
	switch {
	case req.epoch != "" && req.epoch != st.Epoch():
		return &channelError{"resume", "epoch_mismatch", fmt.Sprintf(
			"since_offset belongs to store epoch %s, this store is %s: join without since_offset", req.epoch, st.Epoch())}
	case req.since > st.Head():
		return &channelError{"resume", "offset_ahead", fmt.Sprintf(
			"since_offset %d is beyond the newest offset %d: join without since_offset", req.since, st.Head())}
	}
	return nil
}

// startChannel registers the channel and queues, in order: the join
// reply, the preload, the catch-up from since_offset. Runs with the queue
// locked, so live killmails queue after them.
func (c *wsConn) startChannel(m phxMessage, ch *lobbyChannel, req joinRequest) {
	pos := c.hub.register(ch.sub, ch.systems, ch.chars)
	ch.start = pos
	if req.resume {
		ch.start = min(req.since, pos)
	}
	resp := map[string]any{
		"subscription_id":       ch.subID,
		"subscribed_systems":    ch.systems,
		"subscribed_characters": ch.chars,
		"status":                "connected",
		"epoch":                 c.hub.st.Epoch(),
		"offset":                pos,
	}
	if req.resume && req.since < c.hub.st.Trimmed() {
		resp["resume_warning"] = (&channelError{"resume", "offset_trimmed", fmt.Sprintf(
			"killmails after since_offset %d up to %d may have been removed by retention", req.since, c.hub.st.Trimmed())}).Error()
	}
	c.q.pushLocked(c.replyItem(m, "ok", resp))
	last := pos
	if req.resume {
		last = req.since
	}
	c.q.pushLocked(outItem{task: func() error { c.lastOffset = last; return nil }})
	if ch.preload.enabled && len(ch.systems) > 0 {
		c.q.pushLocked(c.preloadTask(ch.joinRef, ch.systems, ch.preload, ch.start, nil))
	}
	if req.resume && req.since < pos {
		c.q.pushLocked(c.catchUpTask(req.since, pos, compileFilter(ch.filter(), false)))
	}
}

func subscriptionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// leave handles phx_leave: ok, then phx_close.
func (c *wsConn) leave(m phxMessage) {
	c.reply(m, "ok", struct{}{})
	c.dropChannel(evClose)
}

// dropChannel ends the joined channel and tells the client with event
// (phx_close, or phx_error when the channel failed).
func (c *wsConn) dropChannel(event string) {
	ch := c.ch
	c.ch = nil
	c.hub.unregister(ch.sub)
	frame := textFrame(c.channelFrame(ch.joinRef, event, []byte("{}")))
	c.q.push(outItem{wire: frame, size: len(frame)})
}

func (c *wsConn) subscribeSystems(m phxMessage) {
	ids, err := c.idsField(m, systemRule)
	if err != nil {
		c.replyError(m, err)
		return
	}
	ch := c.ch
	add := missing(ids, ch.systems)
	if len(add) == 0 {
		c.reply(m, "ok", map[string]string{"message": "Already subscribed to all requested systems"})
		return
	}
	if len(ch.systems)+len(add) > c.hub.cfg.MaxSystems {
		c.replyError(m, systemRule.tooMany(c.hub.cfg.MaxSystems))
		return
	}
	before := compileFilter(ch.filter(), false)
	c.q.locked(func() {
		pos := c.hub.update(ch.sub, add, nil, nil, nil)
		ch.systems = sortedIDs(append(ch.systems, add...))
		c.q.pushLocked(c.replyItem(m, "ok", map[string]any{"subscribed_systems": ch.systems}))
		if ch.preload.enabled {
			c.q.pushLocked(c.preloadTask(ch.joinRef, add, ch.preload, pos, &preloadSkip{after: ch.start, got: before}))
		}
	})
}

func (c *wsConn) unsubscribeSystems(m phxMessage) {
	ids, err := c.idsField(m, systemRule)
	if err != nil {
		c.replyError(m, err)
		return
	}
	ch := c.ch
	del := present(ids, ch.systems)
	if len(del) == 0 {
		c.reply(m, "ok", map[string]string{"message": "Not subscribed to any of the requested systems"})
		return
	}
	c.hub.update(ch.sub, nil, del, nil, nil)
	ch.systems = sortedIDs(applyDiff(ch.systems, nil, del))
	c.reply(m, "ok", map[string]any{"subscribed_systems": ch.systems})
}

func (c *wsConn) subscribeCharacters(m phxMessage) {
	ids, err := c.idsField(m, characterRule)
	if err != nil {
		c.replyError(m, err)
		return
	}
	ch := c.ch
	add := missing(ids, ch.chars)
	if len(add) == 0 {
		c.reply(m, "ok", map[string]string{"message": "Already subscribed to all requested characters"})
		return
	}
	if len(ch.chars)+len(add) > c.hub.cfg.MaxCharacters {
		c.replyError(m, characterRule.tooMany(c.hub.cfg.MaxCharacters))
		return
	}
	c.hub.update(ch.sub, nil, nil, add, nil)
	ch.chars = sortedIDs(append(ch.chars, add...))
	c.reply(m, "ok", map[string]any{"subscribed_characters": ch.chars})
}

func (c *wsConn) unsubscribeCharacters(m phxMessage) {
	ids, err := c.idsField(m, characterRule)
	if err != nil {
		c.replyError(m, err)
		return
	}
	ch := c.ch
	del := present(ids, ch.chars)
	if len(del) == 0 {
		c.reply(m, "ok", map[string]string{"message": "Not subscribed to any of the requested characters"})
		return
	}
	c.hub.update(ch.sub, nil, nil, nil, del)
	ch.chars = sortedIDs(applyDiff(ch.chars, nil, del))
	c.reply(m, "ok", map[string]any{"subscribed_characters": ch.chars})
}

func (c *wsConn) getStatus(m phxMessage) {
	ch := c.ch
	c.reply(m, "ok", map[string]any{
		"subscription_id":       ch.subID,
		"subscribed_systems":    ch.systems,
		"subscribed_characters": ch.chars,
		"connected_at":          c.connectedAt,
		"user_id":               c.userID,
	})
}

// idsField reads the id list an event needs; a missing or non-list field
// is an error here (upstream crashed the channel on it).
func (c *wsConn) idsField(m phxMessage, rule idRule) ([]int64, *channelError) {
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(m.payload, &obj)
	ids, ok, err := rule.parse(obj[rule.field], rule.maxFrom(&c.hub.cfg))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, validationErr("invalid_payload", fmt.Sprintf("Payload must contain a %q list", rule.field))
	}
	return ids, nil
}
