package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/store"
)

// app is the wired program, shared by the Slack and demo runs.
type app struct {
	db       *store.DB
	client   *lambda.Client
	svc      *jobs.Service
	bot      *bot.Bot
	watchdog *jobs.Watchdog
}

// wiring are the parts that differ between a real and a demo run.
type wiring struct {
	lambdaURL, lambdaKey string
	sshPort              int
	poster               bot.Poster
	tune                 func(*jobs.Config, *bot.Config)
}

// open wires store, Lambda client, SSH key, job service and bot.
func (m *Main) open(ctx context.Context, w wiring) (*app, error) {
	c := m.Config
	log := m.Logger
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := jobs.ValidateTrainCommand(c.TrainCommand); err != nil {
		return nil, err
	}
	db, err := store.Open(filepath.Join(c.DataDir, "cpbot.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	m.onClose(db.Close)

	launchInterval := c.LaunchInterval
	if launchInterval == 0 {
		launchInterval = lambda.NoLaunchSpacing
	}
	if m.metrics == nil {
		m.metrics = NewMetrics(buildVersion(), log.With("system", "metrics"))
	}
	// The client and the SSH connections add their own "system" key.
	client, err := lambda.NewClient(lambda.Config{BaseURL: w.lambdaURL, APIKey: w.lambdaKey,
		HTTPClient:        &http.Client{Timeout: lambda.DefaultRequestTimeout, Transport: m.metrics.LambdaTransport(nil)},
		RequestsPerSecond: c.LambdaRPS, LaunchInterval: launchInterval, Logger: log})
	if err != nil {
		return nil, err
	}
	signer, err := lambda.LoadOrCreateKey(c.DataDir)
	if err != nil {
		return nil, err
	}
	key, err := lambda.RegisterKey(ctx, client, signer.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("register the bot's SSH key with Lambda: %w", err)
	}
	hostKeys, err := lambda.OpenHostKeys(c.DataDir)
	if err != nil {
		return nil, err
	}

	bcfg := bot.Config{Users: c.Users, Admins: c.Admins, AlertChannel: c.AlertChannel, Logger: log.With("system", "bot")}
	jcfg := jobs.Config{CodeDir: c.CodeDir, DatasetDir: c.DatasetDir, DataDir: c.DataDir, RemoteDir: c.RemoteDir,
		TrainCommand: c.TrainCommand, InstanceTypes: c.Types, Regions: c.Regions, SSHKeyName: key.Name,
		SSH:       lambda.SSHConfig{User: c.SSHUser, Port: w.sshPort, Signer: signer, HostKeys: hostKeys, Logger: log},
		JobBudget: jobs.USD(c.JobBudget), TeamBudget: jobs.USD(c.TeamBudget),
		BootTimeout: c.BootTimeout, PollInterval: c.PollInterval, Logger: log.With("system", "jobs")}
	if w.tune != nil {
		w.tune(&jcfg, &bcfg)
	}
	b := bot.New(bcfg, w.poster)
	svc := jobs.NewService(jcfg, db, b, client)
	b.Jobs = svc
	if err := svc.Open(ctx); err != nil {
		return nil, err
	}
	m.onClose(b.Close)   // runs third: drain the chat
	m.onClose(svc.Close) // runs second: stop the runners
	wd := jobs.NewWatchdog(svc, jobs.WatchdogConfig{Schedule: c.Watchdog, DigestSchedule: c.Digest,
		IdleAfter: c.IdleAfter, OrphanGrace: c.OrphanGrace})
	if err := wd.Open(); err != nil {
		return nil, err
	}
	m.onClose(wd.Close) // runs first
	if err := m.metrics.RegisterJobs(svc); err != nil {
		return nil, err
	}
	return &app{db: db, client: client, svc: svc, bot: b, watchdog: wd}, nil
}

// slackHTTPTimeout bounds one Slack Web API request, a chart upload
// included.
const slackHTTPTimeout = 2 * time.Minute

// runSlack runs the real bot: Slack socket mode and Lambda Cloud, with
// /healthz and /metrics on CPBOT_HTTP_ADDR.
func (m *Main) runSlack(ctx context.Context) error {
	c := m.Config
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	// Bind first: a busy port is a startup error before anything is wired.
	ln, err := m.listenHTTP()
	if err != nil {
		return err
	}
	if ln != nil {
		m.onClose(func() error { ln.Close(); return nil }) // unless served (then Shutdown closes it)
	}
	m.metrics = NewMetrics(buildVersion(), m.Logger.With("system", "metrics"))
	httpClient := &http.Client{Timeout: slackHTTPTimeout, Transport: m.metrics.SlackTransport(nil)}
	api := slack.New(c.SlackBotToken.Value(), slack.OptionAppLevelToken(c.SlackAppToken.Value()),
		slack.OptionAPIURL(c.SlackAPIURL), slack.OptionHTTPClient(httpClient))
	// The poster adds its own "system" key.
	poster := bot.NewSlackPoster(api, bot.PosterOptions{Logger: m.Logger})
	a, err := m.open(ctx, wiring{lambdaURL: c.LambdaAPIURL, lambdaKey: c.LambdaAPIKey.Value(), sshPort: c.SSHPort, poster: poster})
	if err != nil {
		return err
	}
	sm := &bot.Slack{Bot: a.bot, Client: socketmode.New(api), HTTPClient: httpClient}
	if ln != nil {
		m.serveHTTP(ln, newHTTPHandler(m.health(a, sm.Connected), m.metrics))
	}
	m.Logger.Info("cpbot started", "system", "main", "version", buildVersion(), "data_dir", c.DataDir)
	return sm.Run(ctx)
}
