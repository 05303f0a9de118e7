package slacktest_test

import (
	"testing"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/bot/slacktest"
)

func TestBlockActionCarriesTheMessage(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	h := start(t, srv, nil)
	const ch = "C0TEST001"

	stop := slack.NewButtonBlockElement("stop", "14", slack.NewTextBlockObject(slack.PlainTextType, "Stop", false, false))
	_, ts, err := h.api.PostMessageContext(ctx, ch, slack.MsgOptionText("#14 training", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("card-actions", stop)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := srv.SendBlockAction(ctx, slacktest.BlockAction{
		ActionID: "stop", BlockID: "card-actions", Value: "14", Text: "Stop", UserID: "U0BOB0001", ChannelID: ch, MessageTS: ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	evt := h.next(t, ctx)
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("event data %T", evt.Data)
	}
	if evt.Request.EnvelopeID != id || cb.Type != slack.InteractionTypeBlockActions {
		t.Fatalf("envelope %s type %q", evt.Request.EnvelopeID, cb.Type)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("actions = %+v", cb.ActionCallback)
	}
	act := cb.ActionCallback.BlockActions[0]
	if act.ActionID != "stop" || act.BlockID != "card-actions" || act.Value != "14" || act.Text.Text != "Stop" || act.ActionTs == "" {
		t.Errorf("action = %+v", act)
	}
	if cb.User.ID != "U0BOB0001" || cb.Channel.ID != ch || cb.Team.ID != slacktest.TeamID {
		t.Errorf("user %q channel %q team %q", cb.User.ID, cb.Channel.ID, cb.Team.ID)
	}
	if cb.Message.Timestamp != ts || cb.Message.Text != "#14 training" || len(cb.Message.Blocks.BlockSet) != 1 ||
		cb.Container.MessageTs != ts || cb.Container.ChannelID != ch {
		t.Errorf("message = %+v, container = %+v", cb.Message.Msg, cb.Container)
	}
	if err := h.smc.Ack(*evt.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}

	// The response URL answers the presser privately, then replaces the card.
	if _, _, err := h.api.PostMessageContext(ctx, ch, slack.MsgOptionText("only Alice or an admin can stop #14", false),
		slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.api.PostMessageContext(ctx, ch, slack.MsgOptionText("#14 stopping", false),
		slack.MsgOptionReplaceOriginal(cb.ResponseURL)); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages(ch)
	if len(msgs) != 2 {
		t.Fatalf("messages = %+v", msgs)
	}
	if msgs[0].TS != ts || msgs[0].Text != "#14 stopping" || msgs[0].Edits != 1 {
		t.Errorf("card = %+v", msgs[0])
	}
	if !msgs[1].Ephemeral || msgs[1].User != "U0BOB0001" || msgs[1].Text != "only Alice or an admin can stop #14" {
		t.Errorf("reply = %+v", msgs[1])
	}
}

func TestSlashCommandResponseURL(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	h := start(t, srv, nil)

	if _, err := srv.SendSlashCommand(ctx, slacktest.SlashCommand{Text: "gpus"}); err != nil {
		t.Fatal(err)
	}
	evt := h.next(t, ctx)
	cmd := evt.Data.(slack.SlashCommand)
	if cmd.ChannelID != slacktest.DefaultChannel || cmd.UserID != slacktest.DefaultUser || cmd.Command != "/contourpose" {
		t.Errorf("defaults: %+v", cmd)
	}
	tests := []struct {
		responseType string
		ephemeral    bool
	}{
		{slack.ResponseTypeEphemeral, true},
		{slack.ResponseTypeInChannel, false},
	}
	for _, tt := range tests {
		if _, _, err := h.api.PostMessageContext(ctx, cmd.ChannelID, slack.MsgOptionText("gpu table "+tt.responseType, false),
			slack.MsgOptionResponseURL(cmd.ResponseURL, tt.responseType)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages(slacktest.DefaultChannel)
	if len(msgs) != 2 {
		t.Fatalf("messages = %+v", msgs)
	}
	for i, tt := range tests {
		m := msgs[i]
		if m.Ephemeral != tt.ephemeral || m.Text != "gpu table "+tt.responseType {
			t.Errorf("%s: %+v", tt.responseType, m)
		}
	}
	if msgs[0].User != slacktest.DefaultUser || msgs[1].User != slacktest.BotUserID {
		t.Errorf("users %q %q", msgs[0].User, msgs[1].User)
	}
	calls := srv.Calls()
	if last := calls[len(calls)-1]; last.Method != "response_url" || last.Channel != slacktest.DefaultChannel {
		t.Errorf("last call = %+v", last)
	}
}
