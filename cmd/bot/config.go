package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Secret is a credential from the environment. It never prints itself.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Value returns the secret itself, for the one place that sends it.
func (s Secret) Value() string { return string(s) }

// Config is the bot's configuration: environment only (DESIGN.md, "External
// contract").
type Config struct {
	SlackAppToken Secret `envconfig:"SLACK_APP_TOKEN"`
	SlackBotToken Secret `envconfig:"SLACK_BOT_TOKEN"`
	SlackAPIURL   string `envconfig:"SLACK_API_URL" default:"https://slack.com/api/"`
	LambdaAPIKey  Secret `envconfig:"LAMBDA_API_KEY"`
	LambdaAPIURL  string `envconfig:"LAMBDA_API_URL" default:"https://cloud.lambda.ai/api/v1"`

	DataDir      string   `envconfig:"CPBOT_DATA_DIR" default:"./cpbot-data"`
	CodeDir      string   `envconfig:"CPBOT_CODE_DIR"`
	DatasetDir   string   `envconfig:"CPBOT_DATASET_DIR"`
	SSHUser      string   `envconfig:"CPBOT_SSH_USER" default:"ubuntu"`
	SSHPort      int      `envconfig:"CPBOT_SSH_PORT" default:"22"`
	RemoteDir    string   `envconfig:"CPBOT_REMOTE_DIR" default:"contourpose"`
	TrainCommand string   `envconfig:"CPBOT_TRAIN_COMMAND"`
	Types        []string `envconfig:"CPBOT_INSTANCE_TYPES" default:"gpu_1x_a100_sxm4,gpu_1x_a100,gpu_1x_h100_pcie,gpu_1x_a10"`
	Regions      []string `envconfig:"CPBOT_REGIONS"`

	LambdaRPS      float64       `envconfig:"CPBOT_LAMBDA_RPS" default:"1"`
	LaunchInterval time.Duration `envconfig:"CPBOT_LAUNCH_INTERVAL" default:"12s"`

	JobBudget    float64       `envconfig:"CPBOT_JOB_BUDGET_USD" default:"25"`
	TeamBudget   float64       `envconfig:"CPBOT_TEAM_BUDGET_USD" default:"500"`
	AlertChannel string        `envconfig:"CPBOT_ALERT_CHANNEL"`
	IdleAfter    time.Duration `envconfig:"CPBOT_IDLE_AFTER" default:"15m"`
	Watchdog     string        `envconfig:"CPBOT_WATCHDOG_SCHEDULE" default:"@every 1m"`
	Digest       string        `envconfig:"CPBOT_DIGEST_SCHEDULE" default:"0 9 * * *"`
	OrphanGrace  time.Duration `envconfig:"CPBOT_ORPHAN_GRACE" default:"30m"`
	BootTimeout  time.Duration `envconfig:"CPBOT_BOOT_TIMEOUT" default:"20m"`
	PollInterval time.Duration `envconfig:"CPBOT_POLL_INTERVAL" default:"10s"`
	Users        []string      `envconfig:"CPBOT_USERS"`
	Admins       []string      `envconfig:"CPBOT_ADMINS"`
	HTTPAddr     string        `envconfig:"CPBOT_HTTP_ADDR" default:"127.0.0.1:9090"`
	// HTTPAddrSet reports whether CPBOT_HTTP_ADDR was set at all: the demo
	// serves /healthz and /metrics only then.
	HTTPAddrSet bool `ignored:"true"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	_, c.HTTPAddrSet = os.LookupEnv("CPBOT_HTTP_ADDR")
	return c, nil
}

// Validate checks what a real (non-demo) run needs.
func (c Config) Validate() error {
	var missing []string
	if c.SlackAppToken == "" {
		missing = append(missing, "SLACK_APP_TOKEN")
	}
	if c.SlackBotToken == "" {
		missing = append(missing, "SLACK_BOT_TOKEN")
	}
	if c.LambdaAPIKey == "" {
		missing = append(missing, "LAMBDA_API_KEY")
	}
	if c.CodeDir == "" {
		missing = append(missing, "CPBOT_CODE_DIR")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing configuration: %s (or run with -demo)", strings.Join(missing, ", "))
	}
	if !strings.HasPrefix(c.SlackAppToken.Value(), "xapp-") {
		return fmt.Errorf("SLACK_APP_TOKEN must be an app-level token (xapp-…)")
	}
	if !strings.HasPrefix(c.SlackBotToken.Value(), "xoxb-") {
		return fmt.Errorf("SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
	}
	if !strings.HasSuffix(c.SlackAPIURL, "/") {
		return fmt.Errorf("SLACK_API_URL must end with /")
	}
	if c.JobBudget <= 0 || c.TeamBudget <= 0 {
		return fmt.Errorf("CPBOT_JOB_BUDGET_USD and CPBOT_TEAM_BUDGET_USD must be positive")
	}
	if c.PollInterval <= 0 || c.BootTimeout <= 0 {
		return fmt.Errorf("CPBOT_POLL_INTERVAL and CPBOT_BOOT_TIMEOUT must be positive")
	}
	return nil
}
