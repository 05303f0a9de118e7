package slacktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/cpbot/cpbot/bot/slacktest"
)

// harness is a real slack-go socket-mode client running against a fake
// Slack. Requests (slash commands, interactions) arrive on reqs.
type harness struct {
	srv  *slacktest.Server
	api  *slack.Client
	smc  *socketmode.Client
	reqs chan socketmode.Event
	done chan error
}

func newAPI(srv *slacktest.Server, opts ...slack.Option) *slack.Client {
	base := []slack.Option{
		slack.OptionAppLevelToken(srv.AppToken()),
		slack.OptionAPIURL(srv.URL() + "/api/"),
		slack.OptionLog(log.New(io.Discard, "", 0)),
	}
	return slack.New(srv.BotToken(), append(base, opts...)...)
}

// start runs a socket-mode client until the test ends.
func start(t *testing.T, srv *slacktest.Server, apiOpts []slack.Option, smOpts ...socketmode.Option) *harness {
	t.Helper()
	api := newAPI(srv, apiOpts...)
	smOpts = append([]socketmode.Option{socketmode.OptionLog(log.New(io.Discard, "", 0))}, smOpts...)
	h := &harness{srv: srv, api: api, smc: socketmode.New(api, smOpts...),
		reqs: make(chan socketmode.Event, 16), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- h.smc.RunContext(ctx) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-h.smc.Events:
				if evt.Type == socketmode.EventTypeSlashCommand || evt.Type == socketmode.EventTypeInteractive {
					h.reqs <- evt
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Error("socket-mode client did not stop")
		}
	})
	return h
}

// next waits for the next request the client receives.
func (h *harness) next(t *testing.T, ctx context.Context) socketmode.Event {
	t.Helper()
	select {
	case evt := <-h.reqs:
		return evt
	case <-ctx.Done():
		t.Fatal("no request reached the client")
		return socketmode.Event{}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSlashCommandIsDeliveredAndAcked(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	h := start(t, srv, nil)

	id, err := srv.SendSlashCommand(ctx, slacktest.SlashCommand{Text: "train obj1 150", ChannelID: "C0TEST001", UserID: "U0BOB0001"})
	if err != nil {
		t.Fatal(err)
	}
	evt := h.next(t, ctx)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("event data %T, want slack.SlashCommand", evt.Data)
	}
	if evt.Request.EnvelopeID != id || evt.Request.RetryAttempt != 0 || !evt.Request.AcceptsResponsePayload {
		t.Errorf("request = %+v", evt.Request)
	}
	want := slack.SlashCommand{Command: "/contourpose", Text: "train obj1 150", ChannelID: "C0TEST001", UserID: "U0BOB0001", TeamID: slacktest.TeamID, APIAppID: slacktest.AppID}
	if cmd.Command != want.Command || cmd.Text != want.Text || cmd.ChannelID != want.ChannelID ||
		cmd.UserID != want.UserID || cmd.TeamID != want.TeamID || cmd.APIAppID != want.APIAppID {
		t.Errorf("command = %+v, want %+v", cmd, want)
	}
	if cmd.TriggerID == "" || !strings.HasPrefix(cmd.ResponseURL, srv.URL()+"/response/") {
		t.Errorf("trigger %q, response url %q", cmd.TriggerID, cmd.ResponseURL)
	}
	if err := h.smc.Ack(*evt.Request, map[string]any{"text": "queued #1"}); err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var payload struct{ Text string }
	if err := json.Unmarshal(ack.Payload, &payload); err != nil || payload.Text != "queued #1" {
		t.Errorf("ack payload %s (%v)", ack.Payload, err)
	}
	if ack.At.IsZero() || ack.RetryAttempt != 0 {
		t.Errorf("ack = %+v", ack)
	}
}

func TestRedeliveredEnvelopeArrivesTwice(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	h := start(t, srv, nil)

	id, err := srv.SendSlashCommand(ctx, slacktest.SlashCommand{Text: "stop #3"})
	if err != nil {
		t.Fatal(err)
	}
	first := h.next(t, ctx)
	if err := h.smc.Ack(*first.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := srv.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	second := h.next(t, ctx)
	if err := h.smc.Ack(*second.Request); err != nil {
		t.Fatal(err)
	}
	for i, evt := range []socketmode.Event{first, second} {
		if evt.Request.EnvelopeID != id || evt.Request.RetryAttempt != i {
			t.Errorf("delivery %d: envelope %s attempt %d", i, evt.Request.EnvelopeID, evt.Request.RetryAttempt)
		}
		if evt.Data.(slack.SlashCommand).Text != "stop #3" {
			t.Errorf("delivery %d: %+v", i, evt.Data)
		}
	}
	if second.Request.RetryReason == "" {
		t.Error("redelivery has no retry_reason")
	}
	err = srv.WaitFor(ctx, func() bool { return len(srv.Acks()) == 2 })
	if err != nil {
		t.Fatal(err)
	}
	acks := srv.Acks()
	if acks[0].RetryAttempt != 0 || acks[1].RetryAttempt != 1 || acks[0].Payload != nil {
		t.Errorf("acks = %+v", acks)
	}
	if err := srv.Redeliver("no-such-envelope"); err == nil {
		t.Error("Redeliver of an unknown envelope succeeded")
	}
}

func TestReconnects(t *testing.T) {
	tests := []struct {
		name   string
		srv    []slacktest.Option
		api    []slack.Option
		sm     []socketmode.Option
		action func(*testing.T, *slacktest.Server)
	}{
		{"dropped connection", nil, nil, nil, func(t *testing.T, srv *slacktest.Server) { srv.DropConnection() }},
		{"disconnect message", nil, nil, nil, func(t *testing.T, srv *slacktest.Server) {
			if err := srv.RequestDisconnect("refresh_requested"); err != nil {
				t.Fatal(err)
			}
		}},
		{"debug_reconnects", []slacktest.Option{slacktest.WithDebugReconnectAfter(50 * time.Millisecond)},
			[]slack.Option{slack.OptionDebug(true)}, nil, func(*testing.T, *slacktest.Server) {}},
		{"missing pings", []slacktest.Option{slacktest.WithPingInterval(time.Hour)},
			nil, []socketmode.Option{socketmode.OptionPingInterval(100 * time.Millisecond)}, func(*testing.T, *slacktest.Server) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := slacktest.NewServer(tt.srv...)
			defer srv.Close()
			ctx := testContext(t)
			h := start(t, srv, tt.api, tt.sm...)
			if err := srv.WaitFor(ctx, srv.Connected); err != nil {
				t.Fatal(err)
			}
			tt.action(t, srv)
			if err := srv.WaitFor(ctx, func() bool { return srv.Connections() >= 2 && srv.Connected() }); err != nil {
				t.Fatalf("no reconnect: %v (connections %d)", err, srv.Connections())
			}
			// The new connection carries requests.
			id, err := srv.SendSlashCommand(ctx, slacktest.SlashCommand{Text: "jobs"})
			if err != nil {
				t.Fatal(err)
			}
			if evt := h.next(t, ctx); evt.Request.EnvelopeID != id {
				t.Errorf("got envelope %s, want %s", evt.Request.EnvelopeID, id)
			}
		})
	}
}

func TestPingsKeepTheConnection(t *testing.T) {
	srv := slacktest.NewServer(slacktest.WithPingInterval(10 * time.Millisecond))
	defer srv.Close()
	ctx := testContext(t)
	start(t, srv, nil, socketmode.OptionPingInterval(100*time.Millisecond))
	// 30 answered pings span three of the client's ping intervals.
	if err := srv.WaitFor(ctx, func() bool { return srv.Pongs() >= 30 }); err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("connections = %d, want 1", n)
	}
}

func TestTokens(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx := testContext(t)
	tests := []struct {
		name, token, want string
	}{
		{"bot token", srv.BotToken(), ""},
		{"app token", srv.AppToken(), "not_allowed_token_type"},
		{"unknown token", "xoxb-1-nope", "invalid_auth"},
		{"no token", "", "not_authed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := slack.New(tt.token, slack.OptionAPIURL(srv.URL()+"/api/"))
			resp, err := api.AuthTestContext(ctx)
			if tt.want == "" {
				if err != nil || resp.UserID != slacktest.BotUserID || resp.BotID != slacktest.BotID || resp.TeamID != slacktest.TeamID {
					t.Fatalf("auth.test = %+v, %v", resp, err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("auth.test error = %v, want %s", err, tt.want)
			}
		})
	}
	t.Run("socket mode with a wrong app token", func(t *testing.T) {
		api := slack.New(srv.BotToken(), slack.OptionAppLevelToken("xapp-1-wrong"), slack.OptionAPIURL(srv.URL()+"/api/"))
		smc := socketmode.New(api, socketmode.OptionLog(log.New(io.Discard, "", 0)))
		go func() {
			for range smc.Events {
			}
		}()
		err := smc.RunContext(ctx)
		if err == nil || err.Error() != "invalid_auth" {
			t.Fatalf("RunContext = %v, want invalid_auth", err)
		}
		if srv.Connections() != 0 {
			t.Error("a client with a wrong token connected")
		}
	})
}

func TestDeliverWaitsForAClient(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := srv.SendSlashCommand(ctx, slacktest.SlashCommand{Text: "help"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendSlashCommand with no client = %v, want deadline exceeded", err)
	}
}
