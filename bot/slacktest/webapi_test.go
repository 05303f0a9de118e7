package slacktest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/bot/slacktest"
)

var tsPattern = regexp.MustCompile(`^[0-9]{10}\.[0-9]{6}$`)

func section(text string) slack.MsgOption {
	return slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil))
}

// TestConversation is the life of a job card as the bot will live it: a
// slash command, its ack, a card, an edit, a thread reply, an ephemeral, a
// picture in the thread and the App Home.
func TestConversation(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	h := start(t, srv, nil)
	const ch, user = "C0TEST001", "U0BOB0001"

	id, err := srv.SendSlashCommand(ctx, slacktest.SlashCommand{Text: "train obj1", ChannelID: ch, UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	evt := h.next(t, ctx)
	if err := h.smc.Ack(*evt.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}

	api := h.api
	_, ts, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("#1 obj1 queued", false), section("*#1* obj1 · queued"))
	if err != nil || !tsPattern.MatchString(ts) {
		t.Fatalf("post: ts %q, %v", ts, err)
	}
	_, _, _, err = api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("#1 obj1 training", false), section("*#1* obj1 · training"))
	if err != nil {
		t.Fatal(err)
	}
	_, replyTS, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("epoch 1/150", false), slack.MsgOptionTS(ts))
	if err != nil || replyTS <= ts {
		t.Fatalf("reply: ts %q after %q, %v", replyTS, ts, err)
	}
	ephTS, err := api.PostEphemeralContext(ctx, ch, user, slack.MsgOptionText("only you see this", false))
	if err != nil || ephTS <= replyTS {
		t.Fatalf("ephemeral: ts %q, %v", ephTS, err)
	}
	picture := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000)
	file, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader: bytes.NewReader(picture), FileSize: len(picture), Filename: "loss.png",
		Title: "loss curve", Channel: ch, ThreadTimestamp: ts, InitialComment: "loss curve of #1",
	})
	if err != nil || file.Title != "loss curve" || !strings.HasPrefix(file.ID, "F") {
		t.Fatalf("upload: %+v, %v", file, err)
	}
	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "running: #1", false, false), nil, nil)}}}
	view, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: home})
	if err != nil || view.ID == "" || view.Type != slack.VTHomeTab {
		t.Fatalf("views.publish: %+v, %v", view, err)
	}

	msgs := srv.Messages(ch)
	if len(msgs) != 4 {
		t.Fatalf("messages = %+v", msgs)
	}
	card, reply, eph, share := msgs[0], msgs[1], msgs[2], msgs[3]
	if card.TS != ts || card.Text != "#1 obj1 training" || card.Edits != 1 || !strings.Contains(string(card.Blocks), "training") ||
		card.User != slacktest.BotUserID || card.ThreadTS != "" {
		t.Errorf("card = %+v", card)
	}
	if reply.TS != replyTS || reply.ThreadTS != ts || reply.Text != "epoch 1/150" {
		t.Errorf("reply = %+v", reply)
	}
	if !eph.Ephemeral || eph.User != user || eph.TS != ephTS {
		t.Errorf("ephemeral = %+v", eph)
	}
	if share.ThreadTS != ts || !slices.Equal(share.Files, []string{file.ID}) || share.Text != "loss curve of #1" {
		t.Errorf("file share = %+v", share)
	}
	ups := srv.Uploads()
	if len(ups) != 1 || ups[0].Filename != "loss.png" || ups[0].Title != "loss curve" || ups[0].Channel != ch ||
		ups[0].ThreadTS != ts || !bytes.Equal(ups[0].Bytes, picture) {
		t.Errorf("uploads = %+v", ups)
	}
	views := srv.Views()
	if len(views) != 1 || views[0].UserID != user || !strings.Contains(string(views[0].View), "running: #1") {
		t.Errorf("views = %+v", views)
	}

	var methods []string
	for _, c := range srv.Calls() {
		if c.Status != 200 || c.Error != "" {
			t.Errorf("call %s: %d %s", c.Method, c.Status, c.Error)
		}
		if c.Params.Get("token") != "" {
			t.Errorf("call %s records the token", c.Method)
		}
		methods = append(methods, c.Method)
	}
	want := []string{"apps.connections.open", "chat.postMessage", "chat.update", "chat.postMessage", "chat.postEphemeral",
		"files.getUploadURLExternal", "upload", "files.completeUploadExternal", "views.publish"}
	if !slices.Equal(methods, want) {
		t.Errorf("calls = %q, want %q", methods, want)
	}
	post := srv.Calls()[1]
	if post.Channel != ch || post.Text != "#1 obj1 queued" || !json.Valid(post.Blocks) {
		t.Errorf("recorded post = %+v", post)
	}
}

func TestRateLimitNext(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	api := newAPI(srv)
	srv.RateLimitNext("chat.postMessage", 2, 3*time.Second)
	for i := range 2 {
		_, _, err := api.PostMessageContext(ctx, "C0TEST001", slack.MsgOptionText("hi", false))
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second {
			t.Fatalf("post %d: %v, want a rate limit of 3s", i, err)
		}
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0TEST001", "1.000000", slack.MsgOptionText("x", false)); err == nil ||
		err.Error() != "message_not_found" {
		t.Fatalf("other methods are not limited: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0TEST001", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("third post: %v", err)
	}
	var statuses []int
	for _, c := range srv.Calls() {
		if c.Method == "chat.postMessage" {
			statuses = append(statuses, c.Status)
		}
	}
	if !slices.Equal(statuses, []int{429, 429, 200}) {
		t.Errorf("statuses = %v", statuses)
	}
	if got := len(srv.Messages("C0TEST001")); got != 1 {
		t.Errorf("%d messages after two refused posts and one good one", got)
	}
}

func TestWebAPIErrors(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	api := newAPI(srv)
	_, ts, err := api.PostMessageContext(ctx, "C0TEST001", slack.MsgOptionText("parent", false))
	if err != nil {
		t.Fatal(err)
	}
	ephTS, err := api.PostEphemeralContext(ctx, "C0TEST001", "U0BOB0001", slack.MsgOptionText("eph", false))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"channel name instead of id", func() error {
			_, _, err := api.PostMessageContext(ctx, "#general", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"no text", func() error { _, _, err := api.PostMessageContext(ctx, "C0TEST001"); return err }, "no_text"},
		{"unknown thread", func() error {
			_, _, err := api.PostMessageContext(ctx, "C0TEST001", slack.MsgOptionText("x", false), slack.MsgOptionTS("1.000001"))
			return err
		}, "thread_not_found"},
		{"thread in another channel", func() error {
			_, _, err := api.PostMessageContext(ctx, "C0TEST002", slack.MsgOptionText("x", false), slack.MsgOptionTS(ts))
			return err
		}, "thread_not_found"},
		{"update unknown message", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C0TEST001", "1.000001", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"update ephemeral", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C0TEST001", ephTS, slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"ephemeral without user", func() error {
			_, err := api.PostEphemeralContext(ctx, "C0TEST001", "", slack.MsgOptionText("x", false))
			return err
		}, "user_not_in_channel"},
		{"complete an upload never sent", func() error {
			_, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
				Files: []slack.FileSummary{{ID: "F0NOPE"}}, Channel: "C0TEST001"})
			return err
		}, "file_not_found"},
		{"view without home type", func() error {
			_, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0BOB0001",
				View: slack.HomeTabViewRequest{Type: slack.VTModal}})
			return err
		}, "invalid_arguments"},
		{"unknown method", func() error {
			_, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C0TEST001"})
			return err
		}, "unknown_method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %s", err, tt.want)
			}
		})
	}
	if n := len(srv.Messages("C0TEST001")); n != 2 {
		t.Errorf("failed calls changed the channel: %d messages", n)
	}
	if _, _, err := api.DeleteMessageContext(ctx, "C0TEST001", ts); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Messages("C0TEST001"); len(msgs) != 1 || !msgs[0].Ephemeral {
		t.Errorf("after chat.delete: %+v", msgs)
	}
}

// BenchmarkPostMessage measures one chat.postMessage round trip through
// slack-go and the fake.
func BenchmarkPostMessage(b *testing.B) {
	srv := slacktest.NewServer()
	defer srv.Close()
	api := newAPI(srv)
	ctx := b.Context()
	for b.Loop() {
		if _, _, err := api.PostMessageContext(ctx, "C0TEST001", slack.MsgOptionText("epoch 1/150", false)); err != nil {
			b.Fatal(err)
		}
	}
}
