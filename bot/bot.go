package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

// Jobs is what the bot asks of the job service (satisfied by *jobs.Service).
type Jobs interface {
	Submit(ctx context.Context, req jobs.SubmitRequest) ([]*jobs.Job, error)
	Cancel(ctx context.Context, id int64, by string, admin bool) (*jobs.Job, error)
	Get(ctx context.Context, id int64) (*jobs.Job, error)
	List(ctx context.Context, f jobs.JobFilter) ([]*jobs.Job, error)
	Logs(ctx context.Context, id int64, n int) ([]string, error)
	MonthSpend(ctx context.Context) (jobs.Money, map[string]jobs.Money, error)
	TeamBudget(ctx context.Context) (jobs.Money, error)
	SetTeamBudget(ctx context.Context, m jobs.Money, admin bool) error
	GPUs(ctx context.Context) ([]jobs.GPUOption, error)
	Delivered(ctx context.Context, id, seq int64) error
}

var _ Jobs = (*jobs.Service)(nil)

// Config is the bot's own configuration.
type Config struct {
	Users        []string      // may launch; empty = everyone
	Admins       []string      // may stop anyone's job and change budgets
	AlertChannel string        // budget and orphan alerts; empty = the job's channel
	UpdateEvery  time.Duration // least time between two updates of one card; default 2 s
	LogLines     int           // lines shown by logs; default 30
	Now          func() time.Time
	Logger       *slog.Logger
}

// Bot answers /contourpose commands and card buttons, and tells people what
// their jobs do (it is the jobs.Notifier). Jobs and Poster are plain fields
// set before use.
type Bot struct {
	Config
	Jobs   Jobs
	Poster Poster

	ctx    context.Context // ends the outboxes' calls when Close gives up waiting
	cancel context.CancelFunc
	mu     sync.Mutex
	cards  map[int64]*card // jobs with a live outbox
	wg     sync.WaitGroup
	closed bool
}

// drainTimeout is how long Close waits for outboxes to send what they have.
const drainTimeout = 10 * time.Second

// New returns a bot; set Jobs before handling commands.
func New(cfg Config, poster Poster) *Bot {
	if cfg.UpdateEvery <= 0 {
		cfg.UpdateEvery = 2 * time.Second
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bot{Config: cfg, Poster: poster, cards: map[int64]*card{}, ctx: ctx, cancel: cancel}
}

// Close waits (a while) for the outboxes to send what they have.
func (b *Bot) Close() error {
	b.mu.Lock()
	b.closed = true
	for _, c := range b.cards {
		c.kick()
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		b.Logger.Warn("closing with chat messages unsent")
		b.cancel()
		<-done
	}
	b.cancel()
	return nil
}

// Invocation is one /contourpose command as Slack delivers it.
type Invocation struct {
	UserID    string
	ChannelID string
	Text      string
	TriggerID string // dedupes a retried delivery
}

// Reply is the bot's answer, shown to the invoking user only unless
// InChannel.
type Reply struct {
	Text      string
	InChannel bool
}

func (b *Bot) isAdmin(user string) bool { return slices.Contains(b.Admins, user) }

func (b *Bot) mayLaunch(user string) bool {
	return len(b.Users) == 0 || slices.Contains(b.Users, user) || b.isAdmin(user)
}

// HandleCommand runs one command and returns the reply. Bad input and
// refusals are replies, never launches.
func (b *Bot) HandleCommand(ctx context.Context, inv Invocation) Reply {
	cmd, err := ParseCommand(inv.Text)
	if err != nil {
		return Reply{Text: err.Error()}
	}
	return b.Run(ctx, inv, cmd)
}

// Run executes a parsed command.
func (b *Bot) Run(ctx context.Context, inv Invocation, cmd Command) Reply {
	text, err := b.run(ctx, inv, cmd)
	if err != nil {
		if jobs.ErrorCode(err) == jobs.EINTERNAL {
			b.Logger.Error("command failed", "verb", cmd.Verb, "user", inv.UserID, "err", err)
		}
		return Reply{Text: jobs.ErrorMessage(err)}
	}
	return Reply{Text: text}
}

func (b *Bot) run(ctx context.Context, inv Invocation, cmd Command) (string, error) {
	switch cmd.Verb {
	case VerbHelp:
		return HelpText(), nil
	case VerbTrain:
		return b.train(ctx, inv, cmd)
	case VerbStatus:
		if cmd.JobID != 0 {
			j, err := b.Jobs.Get(ctx, cmd.JobID)
			if err != nil {
				return "", err
			}
			return StatusText(j, b.Now()), nil
		}
		js, err := b.Jobs.List(ctx, jobs.JobFilter{Unfinished: true})
		if err != nil {
			return "", err
		}
		if len(js) == 0 {
			return "no jobs are running; `/contourpose jobs` lists recent ones", nil
		}
		return JobsText(js, b.Now()), nil
	case VerbJobs:
		js, err := b.Jobs.List(ctx, jobs.JobFilter{Limit: 20})
		if err != nil {
			return "", err
		}
		return JobsText(js, b.Now()), nil
	case VerbStop:
		j, err := b.Jobs.Cancel(ctx, cmd.JobID, inv.UserID, b.isAdmin(inv.UserID))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("stopping %s: collecting checkpoints and terminating its instance", j.Label()), nil
	case VerbLogs:
		return b.logs(ctx, cmd.JobID)
	case VerbCost:
		return b.cost(ctx)
	case VerbBudget:
		if cmd.SetBudget > 0 {
			if err := b.Jobs.SetTeamBudget(ctx, jobs.USD(cmd.SetBudget), b.isAdmin(inv.UserID)); err != nil {
				return "", err
			}
			return fmt.Sprintf("the team budget is now %s a month", jobs.USD(cmd.SetBudget)), nil
		}
		return b.cost(ctx)
	case VerbGPUs:
		opts, err := b.Jobs.GPUs(ctx)
		if err != nil {
			return "", err
		}
		return GPUsText(opts), nil
	}
	return "", jobs.Errorf(jobs.EINVALID, "unknown command %q\n%s", cmd.Verb, Usage(""))
}

func (b *Bot) train(ctx context.Context, inv Invocation, cmd Command) (string, error) {
	if !b.mayLaunch(inv.UserID) {
		return "", jobs.Errorf(jobs.EFORBIDDEN, "you are not on this bot's list of people who may launch training (CPBOT_USERS); ask an admin")
	}
	js, err := b.Jobs.Submit(ctx, jobs.SubmitRequest{DedupeKey: inv.TriggerID, Classes: cmd.Classes, All: cmd.All,
		Epochs: cmd.Epochs, Batch: cmd.Batch, LR: cmd.LR, GPU: cmd.GPU, Budget: jobs.USD(cmd.Budget),
		Requester: inv.UserID, Channel: inv.ChannelID})
	if err != nil {
		return "", err
	}
	labels := make([]string, len(js))
	for i, j := range js {
		labels[i] = j.Label()
	}
	return "queued " + strings.Join(labels, ", ") + "; progress is in the job card's thread", nil
}

// cost is this month's spend per person and for the team, against the budget.
func (b *Bot) cost(ctx context.Context) (string, error) {
	total, byUser, err := b.Jobs.MonthSpend(ctx)
	if err != nil {
		return "", err
	}
	budget, err := b.Jobs.TeamBudget(ctx)
	if err != nil {
		return "", err
	}
	return CostText(total, budget, byUser, b.Now().UTC().Format("January 2006")), nil
}

func (b *Bot) logs(ctx context.Context, id int64) (string, error) {
	j, err := b.Jobs.Get(ctx, id)
	if err != nil {
		return "", err
	}
	lines, err := b.Jobs.Logs(ctx, id, b.LogLines)
	if err != nil {
		return "", err
	}
	return LogsText(j, lines), nil
}

// HandleAction answers a press of a card button.
func (b *Bot) HandleAction(ctx context.Context, user, actionID, value string) Reply {
	id, err := ParseJobID(value)
	if err != nil {
		return Reply{Text: "that button does not name a job"}
	}
	var cmd Command
	switch actionID {
	case ActionStop:
		cmd = Command{Verb: VerbStop, JobID: id}
	case ActionLogs:
		cmd = Command{Verb: VerbLogs, JobID: id}
	default:
		return Reply{Text: "unknown button"}
	}
	return b.Run(ctx, Invocation{UserID: user}, cmd)
}

// Home gathers what the App Home tab shows.
func (b *Bot) Home(ctx context.Context) (running, recent []*jobs.Job, spent, budget jobs.Money, err error) {
	if running, err = b.Jobs.List(ctx, jobs.JobFilter{Unfinished: true}); err != nil {
		return
	}
	all, err := b.Jobs.List(ctx, jobs.JobFilter{Limit: 30})
	if err != nil {
		return
	}
	for _, j := range all {
		if j.Finished() && len(recent) < 10 {
			recent = append(recent, j)
		}
	}
	if spent, _, err = b.Jobs.MonthSpend(ctx); err != nil {
		return
	}
	budget, err = b.Jobs.TeamBudget(ctx)
	return
}

// PublishHome shows a user the App Home tab.
func (b *Bot) PublishHome(ctx context.Context, user string) error {
	running, recent, spent, budget, err := b.Home(ctx)
	if err != nil {
		return err
	}
	return b.Poster.PublishHome(ctx, user, HomeView(running, recent, spent, budget, b.Now()))
}

// errNoRef: a job announced while the chat was unreachable has no card.
var errNoRef = errors.New("job has no card")
