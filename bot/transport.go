package bot

import (
	"context"

	"github.com/slack-go/slack"
)

// Action ids of the buttons on a job card. The button's value is the job id.
const (
	ActionStop = "cpbot_stop"
	ActionLogs = "cpbot_logs"
)

// Message is one chat message: Text is the readable fallback (and what the
// console prints); Blocks, if any, is the Block Kit layout.
type Message struct {
	Channel  string
	ThreadTS string // reply in this thread; empty = top level
	Text     string
	Blocks   []slack.Block
}

// Poster sends messages to people. The Slack implementation keeps to Slack's
// rate limits and retries 429s; the console implementation prints.
type Poster interface {
	// Post sends a new message and returns its timestamp.
	Post(ctx context.Context, m Message) (ts string, err error)
	// Update replaces the message at channel/ts.
	Update(ctx context.Context, ts string, m Message) error
	// Ephemeral shows a message to one user only.
	Ephemeral(ctx context.Context, user string, m Message) error
	// Upload attaches a file to a channel or thread.
	Upload(ctx context.Context, channel, threadTS, filename, title string, data []byte) error
	// PublishHome shows the App Home tab to a user.
	PublishHome(ctx context.Context, user string, view slack.HomeTabViewRequest) error
}
