package jobs

import (
	"log/slog"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// Config is what the job service needs to know of its world.
type Config struct {
	CodeDir    string // local ContourPose checkout
	DatasetDir string // local data/ folder, optional
	DataDir    string // artifacts go to DataDir/artifacts/<job>/
	RemoteDir  string // job dirs on the instance, relative to the remote home

	TrainCommand  string   // text/template; DefaultTrainCommand if empty
	InstanceTypes []string // preference order
	Regions       []string // allowed regions, empty = any
	SSHKeyName    string   // the bot's key as registered with Lambda
	SSH           lambda.SSHConfig

	JobBudget  Money // default per-job cap
	TeamBudget Money // monthly team budget (a stored setting overrides it)

	BootTimeout  time.Duration // booting longer than this is a failed launch
	PollInterval time.Duration // boot polling and log tailing period
	SSHGrace     time.Duration // SSH unreachable (or a transfer stalled) longer than this ends the attempt
	// SetupTimeout bounds the instance setup script; CollectTimeout the
	// download of checkpoints before the instance is terminated anyway.
	SetupTimeout, CollectTimeout time.Duration
	MaxAttempts                  int // launch attempts per job across candidates

	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.RemoteDir == "" {
		c.RemoteDir = "contourpose"
	}
	if c.TrainCommand == "" {
		c.TrainCommand = DefaultTrainCommand
	}
	if len(c.InstanceTypes) == 0 {
		c.InstanceTypes = []string{"gpu_1x_a100_sxm4", "gpu_1x_a100", "gpu_1x_h100_pcie", "gpu_1x_a10"}
	}
	if c.JobBudget <= 0 {
		c.JobBudget = USD(25)
	}
	if c.TeamBudget <= 0 {
		c.TeamBudget = USD(500)
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = 20 * time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Second
	}
	if c.SSHGrace <= 0 {
		c.SSHGrace = 5 * time.Minute
	}
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = 30 * time.Minute
	}
	if c.CollectTimeout <= 0 {
		c.CollectTimeout = 15 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
