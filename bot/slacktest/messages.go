package slacktest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"time"
)

// Message is the current state of a message in a channel.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // the parent's ts for a threaded reply, "" otherwise
	// User is the author (BotUserID for the bot's messages) or, for an
	// ephemeral message, the only user who sees it.
	User      string
	Text      string
	Blocks    json.RawMessage // latest blocks JSON, nil if none
	Ephemeral bool
	Files     []string // ids of files shared by this message
	// Edits counts the chat.update calls and response_url replacements
	// applied to the message.
	Edits int
}

// Messages returns the messages of a channel in ts order, ephemeral ones
// included, each with its latest text and blocks. Deleted messages are gone.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel {
			c := *m
			c.Files = append([]string(nil), m.Files...)
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].TS < out[j].TS })
	return out
}

// findLocked returns the message with that ts in that channel, or nil.
func (s *Server) findLocked(channel, ts string) *Message {
	if ts == "" {
		return nil
	}
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// messageJSON is a message as the Web API and interactive payloads show it.
func messageJSON(m *Message) map[string]any {
	out := map[string]any{"type": "message", "user": m.User, "text": m.Text, "ts": m.TS, "team": TeamID}
	if m.User == BotUserID {
		out["bot_id"] = BotID
		out["app_id"] = AppID
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	return out
}

// content reads text and blocks; blocks must be a JSON array.
func content(req *request) (text string, blocks json.RawMessage, code string) {
	text = req.get("text")
	if b := req.get("blocks"); b != "" {
		var arr []json.RawMessage
		if json.Unmarshal([]byte(b), &arr) != nil {
			return "", nil, "invalid_blocks_format"
		}
		blocks = json.RawMessage(b)
	}
	if text == "" && blocks == nil && req.get("attachments") == "" {
		return "", nil, "no_text"
	}
	return text, blocks, ""
}

// threadLocked checks that thread_ts names a top-level message of the
// channel.
func (s *Server) threadLocked(channel, threadTS string) bool {
	if threadTS == "" {
		return true
	}
	parent := s.findLocked(channel, threadTS)
	return parent != nil && !parent.Ephemeral
}

func (s *Server) postMessageLocked(req *request) result {
	channel := req.get("channel")
	if !isChannelID(channel) {
		return fail("channel_not_found")
	}
	text, blocks, code := content(req)
	if code != "" {
		return fail(code)
	}
	threadTS := req.get("thread_ts")
	if !s.threadLocked(channel, threadTS) {
		return fail("thread_not_found")
	}
	m := &Message{Channel: channel, TS: s.nextTSLocked(), ThreadTS: threadTS, User: BotUserID, Text: text, Blocks: blocks}
	s.messages = append(s.messages, m)
	return ok(map[string]any{"channel": channel, "ts": m.TS, "message": messageJSON(m)})
}

func (s *Server) updateMessageLocked(req *request) result {
	channel := req.get("channel")
	if !isChannelID(channel) {
		return fail("channel_not_found")
	}
	m := s.findLocked(channel, req.get("ts"))
	if m == nil || m.Ephemeral {
		return fail("message_not_found")
	}
	if m.User != BotUserID {
		return fail("cant_update_message")
	}
	text, blocks, code := content(req)
	if code != "" {
		return fail(code)
	}
	m.Text = text
	if blocks != nil {
		m.Blocks = blocks
	}
	m.Edits++
	return ok(map[string]any{"channel": channel, "ts": m.TS, "text": m.Text, "message": messageJSON(m)})
}

func (s *Server) postEphemeralLocked(req *request) result {
	channel := req.get("channel")
	if !isChannelID(channel) {
		return fail("channel_not_found")
	}
	user := req.get("user")
	if user == "" {
		return fail("user_not_in_channel")
	}
	text, blocks, code := content(req)
	if code != "" {
		return fail(code)
	}
	threadTS := req.get("thread_ts")
	if !s.threadLocked(channel, threadTS) {
		return fail("thread_not_found")
	}
	m := &Message{Channel: channel, TS: s.nextTSLocked(), ThreadTS: threadTS, User: user, Text: text, Blocks: blocks, Ephemeral: true}
	s.messages = append(s.messages, m)
	return ok(map[string]any{"message_ts": m.TS})
}

func (s *Server) deleteMessageLocked(req *request) result {
	channel := req.get("channel")
	m := s.findLocked(channel, req.get("ts"))
	if m == nil || m.Ephemeral {
		return fail("message_not_found")
	}
	for i, o := range s.messages {
		if o == m {
			s.messages = append(s.messages[:i:i], s.messages[i+1:]...)
			break
		}
	}
	return ok(map[string]any{"channel": channel, "ts": m.TS})
}

// responseTarget is where a response_url posts: the channel, the user who
// typed or clicked, and the message clicked (for replace_original).
type responseTarget struct {
	channel, user, messageTS string
}

// responseURL makes a response URL for one command or action.
func (s *Server) responseURL(envelopeID, channel, user, messageTS string) string {
	id := randomHex(12)
	s.mu.Lock()
	s.responses[id] = responseTarget{channel: channel, user: user, messageTS: messageTS}
	s.mu.Unlock()
	return s.httpSrv.URL + "/response/" + id + "?envelope=" + url.QueryEscape(envelopeID)
}

// serveResponseURL takes a response_url post: an ephemeral message to the
// user by default, a channel message for response_type in_channel, or a
// replacement or deletion of the clicked message.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	req, err := decodeRequest(r)
	call := Call{Method: "response_url", At: time.Now(), Params: req.params, Body: req.body, Text: req.get("text")}
	if b := req.get("blocks"); b != "" && b != "null" {
		call.Blocks = json.RawMessage(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	t, found := s.responses[r.PathValue("id")]
	res := fail("invalid_arguments")
	if !found {
		res = fail("expired_url")
	} else if err == nil {
		call.Channel = t.channel
		res = s.respondLocked(t, req, call.Blocks)
	}
	call.Status, call.Error = http.StatusOK, res.errCode
	s.calls = append(s.calls, call)
	body := map[string]any{"ok": res.errCode == ""}
	if res.errCode != "" {
		body["error"] = res.errCode
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) respondLocked(t responseTarget, req *request, blocks json.RawMessage) result {
	text := req.get("text")
	if req.get("delete_original") == "true" || req.get("replace_original") == "true" {
		m := s.findLocked(t.channel, t.messageTS)
		if m == nil {
			return fail("message_not_found")
		}
		if req.get("delete_original") == "true" {
			m.Channel = "" // drops it from every channel listing
			return ok(nil)
		}
		m.Text, m.Blocks = text, blocks
		m.Edits++
		return ok(nil)
	}
	if text == "" && blocks == nil {
		return fail("no_text")
	}
	m := &Message{Channel: t.channel, TS: s.nextTSLocked(), ThreadTS: req.get("thread_ts"), Text: text, Blocks: blocks}
	if req.get("response_type") == "in_channel" {
		m.User = BotUserID
	} else {
		m.User, m.Ephemeral = t.user, true
	}
	s.messages = append(s.messages, m)
	return ok(nil)
}
