package bot

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// Slack connects a Bot to Slack over socket mode. Every envelope is acked at
// once; the work happens after the ack, in its own goroutine, and a
// redelivered envelope is acked again but never worked twice.
type Slack struct {
	Bot    *Bot
	Client *socketmode.Client
	// HTTPClient posts replies to response URLs; nil = a client with a 30 s
	// timeout.
	HTTPClient *http.Client

	connected atomic.Bool
	seen      dedupe
	wg        sync.WaitGroup
}

// Connected reports whether the socket-mode connection is up.
func (s *Slack) Connected() bool { return s.connected.Load() }

// Run reads events until ctx ends, then waits for the work in flight.
func (s *Slack) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Client.RunContext(ctx) }()
	defer s.wg.Wait()
	log := s.Bot.Logger
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case evt, ok := <-s.Client.Events:
			if !ok {
				return nil
			}
			switch evt.Type {
			case socketmode.EventTypeConnected, socketmode.EventTypeHello:
				s.connected.Store(true)
			case socketmode.EventTypeConnecting, socketmode.EventTypeConnectionError, socketmode.EventTypeDisconnect:
				s.connected.Store(false)
			case socketmode.EventTypeInvalidAuth:
				s.connected.Store(false)
				log.Error("slack refused the app token")
			case socketmode.EventTypeSlashCommand:
				s.slash(ctx, evt)
			case socketmode.EventTypeInteractive:
				s.interactive(ctx, evt)
			case socketmode.EventTypeEventsAPI:
				s.eventsAPI(ctx, evt)
			}
		}
	}
}

// first acks an envelope and reports whether it is new.
func (s *Slack) first(evt socketmode.Event, payload ...any) bool {
	if evt.Request == nil {
		return false
	}
	s.Client.Ack(*evt.Request, payload...)
	return s.seen.add(evt.Request.EnvelopeID)
}

func (s *Slack) slash(ctx context.Context, evt socketmode.Event) {
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		s.first(evt)
		return
	}
	parsed, err := ParseCommand(cmd.Text)
	if err != nil {
		// Bad input is answered in the ack itself: nothing else happens.
		s.first(evt, map[string]any{"response_type": "ephemeral", "text": err.Error()})
		return
	}
	if !s.first(evt) {
		return
	}
	inv := Invocation{UserID: cmd.UserID, ChannelID: cmd.ChannelID, Text: cmd.Text, TriggerID: cmd.TriggerID}
	s.async(func() {
		reply := s.Bot.Run(ctx, inv, parsed)
		s.reply(ctx, cmd.ResponseURL, inv.ChannelID, inv.UserID, reply)
	})
}

func (s *Slack) interactive(ctx context.Context, evt socketmode.Event) {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !s.first(evt) || !ok || cb.Type != slack.InteractionTypeBlockActions {
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		a := a
		s.async(func() {
			reply := s.Bot.HandleAction(ctx, cb.User.ID, a.ActionID, a.Value)
			s.reply(ctx, cb.ResponseURL, cb.Channel.ID, cb.User.ID, reply)
		})
	}
}

func (s *Slack) eventsAPI(ctx context.Context, evt socketmode.Event) {
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !s.first(evt) || !ok {
		return
	}
	if home, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok && home.Tab == "home" {
		s.async(func() {
			if err := s.Bot.PublishHome(ctx, home.User); err != nil {
				s.Bot.Logger.Warn("publish home", "user", home.User, "err", err)
			}
		})
	}
}

// reply answers a command or a button press. The response URL Slack gave
// with it works in any channel, the bot a member or not; a failed response
// URL falls back to a message.
func (s *Slack) reply(ctx context.Context, responseURL, channel, user string, r Reply) {
	if r.Text == "" {
		return
	}
	if responseURL != "" {
		kind := "ephemeral"
		if r.InChannel {
			kind = "in_channel"
		}
		client := s.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 30 * time.Second}
		}
		err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, client, &slack.WebhookMessage{Text: r.Text, ResponseType: kind})
		if err == nil {
			return
		}
		// A response URL is a credential for a while: log the failure
		// without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		s.Bot.Logger.Warn("reply to response URL; posting instead", "channel", channel, "err", err)
	}
	m := Message{Channel: channel, Text: r.Text}
	var err error
	if r.InChannel {
		_, err = s.Bot.Poster.Post(ctx, m)
	} else {
		err = s.Bot.Poster.Ephemeral(ctx, user, m)
	}
	if err != nil {
		s.Bot.Logger.Warn("reply", "channel", channel, "err", err)
	}
}

func (s *Slack) async(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// dedupe remembers the last envelope ids seen.
type dedupe struct {
	mu   sync.Mutex
	set  map[string]bool
	ring []string
	next int
}

const dedupeSize = 4096

func (d *dedupe) add(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set == nil {
		d.set = make(map[string]bool, dedupeSize)
		d.ring = make([]string, dedupeSize)
	}
	if d.set[id] {
		return false
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % dedupeSize
	d.set[id] = true
	return true
}
