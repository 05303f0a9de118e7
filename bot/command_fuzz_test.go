package bot_test

import (
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/cpbot/cpbot/bot"
)

var fuzzName = regexp.MustCompile(`^[a-z0-9_]+$`)

// FuzzParseCommand checks that the parser never panics, that every error is
// a *bot.UsageError, and that every accepted command is within its limits
// with no shell metacharacter left in any string.
func FuzzParseCommand(f *testing.F) {
	seeds := []string{
		"", "help", "train obj1", "train obj1 150", "train all 10 --batch 16",
		"train obj1,obj2,obj1 --lr=0.01 --gpu gpu_1x_a100 --budget 20",
		"train obj1 --batch=256 --lr 1e-4", "status", "status #12", "jobs",
		"stop 3", "logs #14", "cost", "budget", "budget set 500", "gpus",
		"train obj1;id", "train $(id)", "train obj1 --batch --lr", "train obj1 -5",
		"status #999999999999999999", "status #9999999999999999999", "train ,",
		"train obj1 --lr 1e309", "train obj1 --lr .", "budget set 1e5",
		"train Ǆ", "train K", "train obj1\u00a0150", "train\tobj1\v20",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := bot.ParseCommand(text)
		if err != nil {
			var ue *bot.UsageError
			if !errors.As(err, &ue) || ue.Msg == "" || !strings.HasPrefix(ue.Usage, "usage: /contourpose") {
				t.Fatalf("ParseCommand(%q): bad error %#v", text, err)
			}
			return
		}
		if strings.ContainsAny(text, ";|&$`<>(){}\\'\"\n\r") {
			t.Fatalf("ParseCommand(%q) accepted a metacharacter", text)
		}
		switch c.Verb {
		case bot.VerbTrain:
			checkTrain(t, text, c)
		case bot.VerbStatus:
			if c.JobID < 0 {
				t.Fatalf("ParseCommand(%q): job id %d", text, c.JobID)
			}
		case bot.VerbStop, bot.VerbLogs:
			if c.JobID <= 0 {
				t.Fatalf("ParseCommand(%q): job id %d", text, c.JobID)
			}
		case bot.VerbBudget:
			if c.SetBudget < 0 || c.SetBudget > bot.MaxBudgetUSD || math.IsNaN(c.SetBudget) {
				t.Fatalf("ParseCommand(%q): budget %v", text, c.SetBudget)
			}
		case bot.VerbJobs, bot.VerbCost, bot.VerbGPUs, bot.VerbHelp:
		default:
			t.Fatalf("ParseCommand(%q): verb %q", text, c.Verb)
		}
	})
}

func checkTrain(t *testing.T, text string, c bot.Command) {
	t.Helper()
	if c.Epochs < 1 || c.Epochs > bot.MaxEpochs || c.Batch < 1 || c.Batch > bot.MaxBatch {
		t.Fatalf("ParseCommand(%q): epochs %d batch %d", text, c.Epochs, c.Batch)
	}
	if !(c.LR > 0 && c.LR <= 1) {
		t.Fatalf("ParseCommand(%q): lr %v", text, c.LR)
	}
	if c.Budget < 0 || c.Budget > bot.MaxBudgetUSD || math.IsNaN(c.Budget) {
		t.Fatalf("ParseCommand(%q): budget %v", text, c.Budget)
	}
	if c.All == (len(c.Classes) > 0) {
		t.Fatalf("ParseCommand(%q): all=%v classes=%q", text, c.All, c.Classes)
	}
	seen := map[string]bool{}
	for _, cl := range c.Classes {
		if !fuzzName.MatchString(cl) || len(cl) > bot.MaxClassLen || seen[cl] {
			t.Fatalf("ParseCommand(%q): class %q", text, cl)
		}
		seen[cl] = true
	}
	if c.GPU != "" && (!fuzzName.MatchString(c.GPU) || len(c.GPU) > bot.MaxGPUTypeLen) {
		t.Fatalf("ParseCommand(%q): gpu %q", text, c.GPU)
	}
}
