package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SlashCommand is a slash command a user types. Empty fields get defaults:
// Command "/contourpose", ChannelID DefaultChannel, UserID DefaultUser, a
// fresh TriggerID, and a ResponseURL served by this server.
type SlashCommand struct {
	Command     string
	Text        string
	UserID      string
	UserName    string
	ChannelID   string
	ChannelName string
	TriggerID   string
	ResponseURL string
}

// BlockAction is a press on an interactive element of a message, delivered
// as a block_actions interactive payload. Empty fields get defaults as for
// SlashCommand. When MessageTS names a message the server holds, the
// payload carries that message (text and blocks) as Slack does.
type BlockAction struct {
	ActionID    string
	BlockID     string
	Value       string
	Text        string // the button's label
	UserID      string
	UserName    string
	ChannelID   string
	MessageTS   string
	TriggerID   string
	ResponseURL string
}

// SendSlashCommand delivers a slash_commands envelope to the connected
// client, waiting for one to connect until ctx ends, and returns the
// envelope id.
func (s *Server) SendSlashCommand(ctx context.Context, cmd SlashCommand) (string, error) {
	id := newEnvelopeID()
	if cmd.Command == "" {
		cmd.Command = "/contourpose"
	}
	cmd.ChannelID = orDefault(cmd.ChannelID, DefaultChannel)
	cmd.UserID = orDefault(cmd.UserID, DefaultUser)
	cmd.UserName = orDefault(cmd.UserName, nameOf(cmd.UserID))
	cmd.ChannelName = orDefault(cmd.ChannelName, nameOf(cmd.ChannelID))
	cmd.TriggerID = orDefault(cmd.TriggerID, newTriggerID())
	cmd.ResponseURL = orDefault(cmd.ResponseURL, s.responseURL(id, cmd.ChannelID, cmd.UserID, ""))
	payload, err := json.Marshal(map[string]any{
		"token":                 VerificationToken,
		"team_id":               TeamID,
		"team_domain":           TeamDomain,
		"channel_id":            cmd.ChannelID,
		"channel_name":          cmd.ChannelName,
		"user_id":               cmd.UserID,
		"user_name":             cmd.UserName,
		"command":               cmd.Command,
		"text":                  cmd.Text,
		"api_app_id":            AppID,
		"is_enterprise_install": "false",
		"response_url":          cmd.ResponseURL,
		"trigger_id":            cmd.TriggerID,
	})
	if err != nil {
		return "", fmt.Errorf("encode slash command: %w", err)
	}
	if err := s.deliver(ctx, &envelope{id: id, kind: "slash_commands", payload: payload}); err != nil {
		return "", err
	}
	return id, nil
}

// SendBlockAction delivers an interactive block_actions envelope to the
// connected client, waiting for one to connect until ctx ends, and returns
// the envelope id.
func (s *Server) SendBlockAction(ctx context.Context, a BlockAction) (string, error) {
	id := newEnvelopeID()
	a.ChannelID = orDefault(a.ChannelID, DefaultChannel)
	a.UserID = orDefault(a.UserID, DefaultUser)
	a.UserName = orDefault(a.UserName, nameOf(a.UserID))
	a.BlockID = orDefault(a.BlockID, "actions")
	a.Text = orDefault(a.Text, a.ActionID)
	a.TriggerID = orDefault(a.TriggerID, newTriggerID())
	a.ResponseURL = orDefault(a.ResponseURL, s.responseURL(id, a.ChannelID, a.UserID, a.MessageTS))

	s.mu.Lock()
	actionTS := s.nextTSLocked()
	message := map[string]any{"type": "message", "ts": a.MessageTS}
	isEphemeral := false
	if m := s.findLocked(a.ChannelID, a.MessageTS); m != nil {
		message = messageJSON(m)
		isEphemeral = m.Ephemeral
	}
	s.mu.Unlock()

	payload, err := json.Marshal(map[string]any{
		"type":       "block_actions",
		"token":      VerificationToken,
		"api_app_id": AppID,
		"user":       map[string]any{"id": a.UserID, "username": a.UserName, "name": a.UserName, "team_id": TeamID},
		"team":       map[string]any{"id": TeamID, "domain": TeamDomain},
		"channel":    map[string]any{"id": a.ChannelID, "name": nameOf(a.ChannelID)},
		"container": map[string]any{
			"type": "message", "message_ts": a.MessageTS, "channel_id": a.ChannelID, "is_ephemeral": isEphemeral,
		},
		"message":      message,
		"trigger_id":   a.TriggerID,
		"response_url": a.ResponseURL,
		"actions": []map[string]any{{
			"type":      "button",
			"action_id": a.ActionID,
			"block_id":  a.BlockID,
			"value":     a.Value,
			"text":      map[string]any{"type": "plain_text", "text": a.Text, "emoji": true},
			"action_ts": actionTS,
		}},
		"state": map[string]any{"values": map[string]any{}},
	})
	if err != nil {
		return "", fmt.Errorf("encode block action: %w", err)
	}
	if err := s.deliver(ctx, &envelope{id: id, kind: "interactive", payload: payload}); err != nil {
		return "", err
	}
	return id, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// nameOf makes a readable name for a fake user or channel id.
func nameOf(id string) string {
	if id == DefaultUser {
		return "alice"
	}
	return "name-" + id
}

func newTriggerID() string {
	return fmt.Sprintf("%d.%d.%s", time.Now().Unix(), 1000000+time.Now().Nanosecond()%1000000, randomHex(16))
}

// SendAppHomeOpened delivers an events_api envelope with an
// app_home_opened event (tab "home") for user, waiting for a client to
// connect until ctx ends, and returns the envelope id.
func (s *Server) SendAppHomeOpened(ctx context.Context, user string) (string, error) {
	id := newEnvelopeID()
	user = orDefault(user, DefaultUser)
	s.mu.Lock()
	ts := s.nextTSLocked()
	s.mu.Unlock()
	payload, err := json.Marshal(map[string]any{
		"token":      VerificationToken,
		"team_id":    TeamID,
		"api_app_id": AppID,
		"type":       "event_callback",
		"event_id":   "Ev" + randomHex(5),
		"event_time": time.Now().Unix(),
		"event": map[string]any{
			"type":     "app_home_opened",
			"user":     user,
			"channel":  "D" + randomHex(4),
			"tab":      "home",
			"event_ts": ts,
		},
	})
	if err != nil {
		return "", fmt.Errorf("encode app_home_opened: %w", err)
	}
	if err := s.deliver(ctx, &envelope{id: id, kind: "events_api", payload: payload}); err != nil {
		return "", err
	}
	return id, nil
}
