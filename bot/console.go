package bot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/slack-go/slack"
)

// Console is a Poster that prints to a terminal, for demo mode: the card as
// a block of text whenever it changes, thread replies indented under it.
type Console struct {
	Out io.Writer
	// Dir is where uploaded files (the loss chart) are saved.
	Dir string

	mu    sync.Mutex
	n     int
	cards map[string]string // ts → last text printed
}

var _ Poster = (*Console)(nil)

// Post prints a new message.
func (c *Console) Post(_ context.Context, m Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	ts := strconv.Itoa(c.n)
	if m.ThreadTS != "" {
		fmt.Fprintf(c.Out, "  └ %s\n", indent(m.Text, "    "))
		return ts, nil
	}
	if c.cards == nil {
		c.cards = map[string]string{}
	}
	c.cards[ts] = m.Text
	fmt.Fprintf(c.Out, "┌ %s\n", indent(m.Text, "│ "))
	return ts, nil
}

// Update prints the card again when its text changed.
func (c *Console) Update(_ context.Context, ts string, m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cards[ts] == m.Text {
		return nil
	}
	c.cards[ts] = m.Text
	fmt.Fprintf(c.Out, "┌ %s\n", indent(m.Text, "│ "))
	return nil
}

// Ephemeral prints a reply meant for one person.
func (c *Console) Ephemeral(_ context.Context, _ string, m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.Out, "» %s\n", indent(m.Text, "  "))
	return nil
}

// Upload saves the file and prints where.
func (c *Console) Upload(_ context.Context, _, _, filename, title string, data []byte) error {
	path := filepath.Join(c.Dir, filepath.Base(filename))
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.Out, "  └ [%s: %s]\n", title, path)
	return nil
}

// PublishHome does nothing: a terminal has no App Home.
func (c *Console) PublishHome(context.Context, string, slack.HomeTabViewRequest) error { return nil }

// emoji turns Slack's emoji shortcodes into the characters a terminal shows.
var emoji = strings.NewReplacer(
	":small_blue_diamond:", "🔹", ":white_check_mark:", "✅", ":x:", "❌", ":no_entry_sign:", "🚫",
	":money_with_wings:", "💸", ":zzz:", "💤", ":ghost:", "👻", ":grey_question:", "❔", ":warning:", "⚠️",
)

func indent(s, prefix string) string {
	return strings.ReplaceAll(emoji.Replace(strings.TrimRight(s, "\n")), "\n", "\n"+prefix)
}

// ConsoleUser and ConsoleChannel are who types in demo mode and where.
const (
	ConsoleUser    = "UDEMO"
	ConsoleChannel = "CDEMO"
)

// RunConsole reads commands from in, one per line ("/contourpose train obj1
// 3" or just "train obj1 3"), until EOF or ctx ends. Each line runs as
// ConsoleUser in ConsoleChannel.
func (b *Bot) RunConsole(ctx context.Context, in io.Reader) error {
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		errc <- sc.Err()
	}()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case line := <-lines:
			text := strings.TrimSpace(line)
			text = strings.TrimSpace(strings.TrimPrefix(text, "/contourpose"))
			if text == "" {
				continue
			}
			if text == "quit" || text == "exit" {
				return nil
			}
			n++
			inv := Invocation{UserID: ConsoleUser, ChannelID: ConsoleChannel, Text: text, TriggerID: fmt.Sprintf("console-%d-%d", os.Getpid(), n)}
			r := b.HandleCommand(ctx, inv)
			if r.Text != "" {
				if err := b.Poster.Ephemeral(ctx, inv.UserID, Message{Channel: inv.ChannelID, Text: r.Text}); err != nil {
					return err
				}
			}
		}
	}
}
