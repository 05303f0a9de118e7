package bot_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cpbot/cpbot/bot"
)

// train builds the expected train command with the defaults filled in.
func train(classes []string, mod func(*bot.Command)) bot.Command {
	c := bot.Command{Verb: bot.VerbTrain, Classes: classes, Epochs: 150, Batch: 8, LR: 0.001}
	if mod != nil {
		mod(&c)
	}
	return c
}

func TestParseCommandAccepts(t *testing.T) {
	tests := []struct {
		text string
		want bot.Command
	}{
		{"", bot.Command{Verb: bot.VerbHelp}},
		{"   \t ", bot.Command{Verb: bot.VerbHelp}},
		{"help", bot.Command{Verb: bot.VerbHelp}},
		{"HELP", bot.Command{Verb: bot.VerbHelp}},
		{"train obj1", train([]string{"obj1"}, nil)},
		{"train OBJ1 150", train([]string{"obj1"}, nil)},
		{"  train   obj1\t 20 ", train([]string{"obj1"}, func(c *bot.Command) { c.Epochs = 20 })},
		{"train obj1 1", train([]string{"obj1"}, func(c *bot.Command) { c.Epochs = 1 })},
		{"train obj1 1000", train([]string{"obj1"}, func(c *bot.Command) { c.Epochs = 1000 })},
		{"train obj1 007", train([]string{"obj1"}, func(c *bot.Command) { c.Epochs = 7 })},
		{"train all", train(nil, func(c *bot.Command) { c.All = true })},
		{"train ALL 10", train(nil, func(c *bot.Command) { c.All = true; c.Epochs = 10 })},
		{"train obj1,obj2", train([]string{"obj1", "obj2"}, nil)},
		{"train obj2,Obj1,obj2,obj13", train([]string{"obj2", "obj1", "obj13"}, nil)},
		{"train obj1 --batch 16", train([]string{"obj1"}, func(c *bot.Command) { c.Batch = 16 })},
		{"train obj1 --batch=16", train([]string{"obj1"}, func(c *bot.Command) { c.Batch = 16 })},
		{"train obj1 --batch 1 --lr 1", train([]string{"obj1"}, func(c *bot.Command) { c.Batch = 1; c.LR = 1 })},
		{"train obj1 --batch=256 --lr=.05", train([]string{"obj1"}, func(c *bot.Command) { c.Batch = 256; c.LR = 0.05 })},
		{"train obj1 --lr 1e-4", train([]string{"obj1"}, func(c *bot.Command) { c.LR = 0.0001 })},
		{"train obj1 --gpu gpu_1x_A100", train([]string{"obj1"}, func(c *bot.Command) { c.GPU = "gpu_1x_a100" })},
		{"train obj1 \u2014batch 16 \u2013lr=0.01", train([]string{"obj1"}, func(c *bot.Command) { c.Batch = 16; c.LR = 0.01 })},
		{"train obj1 --budget 20", train([]string{"obj1"}, func(c *bot.Command) { c.Budget = 20 })},
		{"train obj1 --budget=0.5", train([]string{"obj1"}, func(c *bot.Command) { c.Budget = 0.5 })},
		{"train obj1 --budget 100000", train([]string{"obj1"}, func(c *bot.Command) { c.Budget = 100000 })},
		{"train --gpu gpu_1x_h100_pcie obj1 --BATCH 4 40", train([]string{"obj1"}, func(c *bot.Command) {
			c.GPU = "gpu_1x_h100_pcie"
			c.Batch = 4
			c.Epochs = 40
		})},
		{"train obj1 150 --batch 16 --lr 0.01 --gpu gpu_1x_a10 --budget 25", train([]string{"obj1"}, func(c *bot.Command) {
			c.Batch, c.LR, c.GPU, c.Budget = 16, 0.01, "gpu_1x_a10", 25
		})},
		{"status", bot.Command{Verb: bot.VerbStatus}},
		{"status #12", bot.Command{Verb: bot.VerbStatus, JobID: 12}},
		{"status 12", bot.Command{Verb: bot.VerbStatus, JobID: 12}},
		{"status #999999999999999999", bot.Command{Verb: bot.VerbStatus, JobID: 999999999999999999}},
		{"jobs", bot.Command{Verb: bot.VerbJobs}},
		{"stop #3", bot.Command{Verb: bot.VerbStop, JobID: 3}},
		{"Stop 3", bot.Command{Verb: bot.VerbStop, JobID: 3}},
		{"logs #14", bot.Command{Verb: bot.VerbLogs, JobID: 14}},
		{"cost", bot.Command{Verb: bot.VerbCost}},
		{"budget", bot.Command{Verb: bot.VerbBudget}},
		{"budget set 500", bot.Command{Verb: bot.VerbBudget, SetBudget: 500}},
		{"budget SET 1234.5", bot.Command{Verb: bot.VerbBudget, SetBudget: 1234.5}},
		{"gpus", bot.Command{Verb: bot.VerbGPUs}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := bot.ParseCommand(tt.text)
			if err != nil {
				t.Fatalf("ParseCommand(%q) error: %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseCommandRejects(t *testing.T) {
	tests := []struct {
		text  string
		usage bot.Verb // whose usage line ends the message; "" = the general one
		want  []string // fragments the message must contain
	}{
		{"launch obj1", "", []string{`unknown command "launch"`}},
		{"train", bot.VerbTrain, []string{"needs a class"}},
		{"train obj1 0", bot.VerbTrain, []string{"epochs must be a whole number from 1 to 1000", `got "0"`}},
		{"train obj1 5000", bot.VerbTrain, []string{"epochs must be a whole number from 1 to 1000", `got "5000"`}},
		{"train obj1 -5", bot.VerbTrain, []string{"epochs", `got "-5"`}},
		{"train obj1 1.5", bot.VerbTrain, []string{"epochs", `got "1.5"`}},
		{"train obj1 99999999999999999999", bot.VerbTrain, []string{"epochs", "99999999999999999999"}},
		{"train obj1 150 extra", bot.VerbTrain, []string{`unexpected argument "extra"`}},
		{"train obj1 obj2", bot.VerbTrain, []string{"epochs", `got "obj2"`}},
		{"train obj1, obj2", bot.VerbTrain, []string{"empty class name", "without spaces"}},
		{"train obj1,,obj2", bot.VerbTrain, []string{"empty class name"}},
		{"train all,obj1", bot.VerbTrain, []string{"all cannot be combined"}},
		{"train obj-1", bot.VerbTrain, []string{"class name", `got "obj-1"`}},
		{"train ../etc", bot.VerbTrain, []string{"class name", `"../etc"`}},
		{"train obj1é", bot.VerbTrain, []string{"class name"}},
		{"train " + strings.Repeat("a", 33), bot.VerbTrain, []string{"at most 32 characters"}},
		{"train obj1 --batch 0", bot.VerbTrain, []string{"batch must be a whole number from 1 to 256", `got "0"`}},
		{"train obj1 --batch 257", bot.VerbTrain, []string{"batch", `got "257"`}},
		{"train obj1 --batch=x", bot.VerbTrain, []string{"batch", `got "x"`}},
		{"train obj1 --batch", bot.VerbTrain, []string{"--batch needs a value"}},
		{"train obj1 --batch --lr 0.1", bot.VerbTrain, []string{"--batch needs a value"}},
		{"train obj1 --batch 8 --batch 16", bot.VerbTrain, []string{"--batch is given twice"}},
		{"train obj1 --batch 8 --batch=8", bot.VerbTrain, []string{"--batch is given twice"}},
		{"train obj1 --lr 0", bot.VerbTrain, []string{"learning rate", `got "0"`}},
		{"train obj1 --lr 1.5", bot.VerbTrain, []string{"learning rate", "at most 1", `got "1.5"`}},
		{"train obj1 --lr -0.1", bot.VerbTrain, []string{"learning rate", `got "-0.1"`}},
		{"train obj1 --lr NaN", bot.VerbTrain, []string{"learning rate", `got "NaN"`}},
		{"train obj1 --lr 0x1p-3", bot.VerbTrain, []string{"learning rate", `got "0x1p-3"`}},
		{"train obj1 --lr inf", bot.VerbTrain, []string{"learning rate"}},
		{"train obj1 --gpu gpu-1x", bot.VerbTrain, []string{"GPU type", `got "gpu-1x"`}},
		{"train obj1 --gpu " + strings.Repeat("g", 65), bot.VerbTrain, []string{"GPU type", "at most 64"}},
		{"train obj1 --budget 0", bot.VerbTrain, []string{"budget must be an amount in USD", `got "0"`}},
		{"train obj1 --budget 100000.01", bot.VerbTrain, []string{"budget", "at most 100000"}},
		{"train obj1 --budget 1e9", bot.VerbTrain, []string{"budget", `got "1e9"`}},
		{"train obj1 --budget twenty", bot.VerbTrain, []string{"budget", `got "twenty"`}},
		{"train obj1 --epochs 10", bot.VerbTrain, []string{`unknown flag "--epochs"`}},
		{"train obj1 -b 10", bot.VerbTrain, []string{`unknown flag "-b"`}},
		{"train obj1 --", bot.VerbTrain, []string{`unknown flag "--"`}},
		{"train obj1;rm -rf ~", bot.VerbTrain, []string{`character ';' is not allowed`}},
		{"train obj1 | cat", bot.VerbTrain, []string{`'|'`}},
		{"train obj1 && ls", bot.VerbTrain, []string{`'&'`}},
		{"train $(id)", bot.VerbTrain, []string{`'$'`}},
		{"train `id`", bot.VerbTrain, []string{"'`'"}},
		{"train obj1 > /tmp/x", bot.VerbTrain, []string{`'>'`}},
		{"train obj1 < x", bot.VerbTrain, []string{`'<'`}},
		{"train {obj1}", bot.VerbTrain, []string{`'{'`}},
		{`train obj1\`, bot.VerbTrain, []string{`'\\'`}},
		{"train 'obj1'", bot.VerbTrain, []string{`'\''`}},
		{`train "obj1"`, bot.VerbTrain, []string{`'"'`}},
		{"train obj1\nstop 1", bot.VerbTrain, []string{"one line"}},
		{"train obj1\r", bot.VerbTrain, []string{"one line"}},
		{"train obj1\x00", bot.VerbTrain, []string{"not allowed"}},
		{";train obj1", "", []string{`';'`}},
		{"status #", bot.VerbStatus, []string{"job id must be a positive whole number", `got "#"`}},
		{"status #0", bot.VerbStatus, []string{"job id", `got "#0"`}},
		{"status -3", bot.VerbStatus, []string{"job id", `got "-3"`}},
		{"status ##3", bot.VerbStatus, []string{"job id", `got "##3"`}},
		{"status #1234567890123456789", bot.VerbStatus, []string{"job id", "1234567890123456789"}},
		{"status #12 #13", bot.VerbStatus, []string{`unexpected argument "#13"`}},
		{"status --all", bot.VerbStatus, []string{"status takes no flags"}},
		{"stop", bot.VerbStop, []string{"stop needs a job id"}},
		{"stop job12", bot.VerbStop, []string{"job id", `got "job12"`}},
		{"stop #1 #2", bot.VerbStop, []string{`unexpected argument "#2"`}},
		{"logs", bot.VerbLogs, []string{"logs needs a job id"}},
		{"logs 1.5", bot.VerbLogs, []string{"job id", `got "1.5"`}},
		{"jobs all", bot.VerbJobs, []string{"jobs takes no arguments", `"all"`}},
		{"cost now", bot.VerbCost, []string{"cost takes no arguments"}},
		{"gpus a100", bot.VerbGPUs, []string{"gpus takes no arguments"}},
		{"help train", bot.VerbHelp, []string{"help takes no arguments"}},
		{"budget 500", bot.VerbBudget, []string{`unexpected argument "500"`, "budget set 500"}},
		{"budget set", bot.VerbBudget, []string{"needs an amount"}},
		{"budget set -5", bot.VerbBudget, []string{"budget must be an amount", `got "-5"`}},
		{"budget set 0", bot.VerbBudget, []string{"greater than 0"}},
		{"budget set 200000", bot.VerbBudget, []string{"at most 100000"}},
		{"budget set 5 now", bot.VerbBudget, []string{`unexpected argument "now"`}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := bot.ParseCommand(tt.text)
			if err == nil {
				t.Fatalf("ParseCommand(%q) = %+v, want an error", tt.text, got)
			}
			var ue *bot.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T %v is not a *bot.UsageError", err, err)
			}
			for _, frag := range tt.want {
				if !strings.Contains(ue.Msg, frag) {
					t.Errorf("message %q lacks %q", ue.Msg, frag)
				}
			}
			if ue.Usage != bot.Usage(tt.usage) {
				t.Errorf("usage = %q, want %q", ue.Usage, bot.Usage(tt.usage))
			}
			if want := ue.Msg + "\n" + ue.Usage; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestUsageErrorExample(t *testing.T) {
	_, err := bot.ParseCommand("train obj1 5000")
	want := "epochs must be a whole number from 1 to 1000, got \"5000\"\n" +
		"usage: /contourpose train <class|all|obj1,obj2> [epochs] [--batch N] [--lr X] [--gpu TYPE] [--budget USD]"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestUsageAndHelp(t *testing.T) {
	verbs := []bot.Verb{bot.VerbTrain, bot.VerbStatus, bot.VerbJobs, bot.VerbStop, bot.VerbLogs,
		bot.VerbCost, bot.VerbBudget, bot.VerbGPUs, bot.VerbHelp}
	help := bot.HelpText()
	for _, v := range verbs {
		t.Run(string(v), func(t *testing.T) {
			u := bot.Usage(v)
			if !strings.HasPrefix(u, "usage: /contourpose "+string(v)) {
				t.Errorf("Usage(%q) = %q", v, u)
			}
			if !strings.Contains(help, strings.TrimPrefix(u, "usage: ")) {
				t.Errorf("help lacks %q:\n%s", u, help)
			}
		})
	}
	if u := bot.Usage("nope"); !strings.Contains(u, "train|status|jobs|stop|logs|cost|budget|gpus|help") {
		t.Errorf("general usage = %q", u)
	}
}

func TestJobIDs(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"12", 12, true},
		{"#12", 12, true},
		{"#000012", 12, true},
		{"999999999999999999", 999999999999999999, true},
		{"#0", 0, false},
		{"", 0, false},
		{"#", 0, false},
		{"+12", 0, false},
		{"#-1", 0, false},
		{"1234567890123456789", 0, false},
		{"12a", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bot.ParseJobID(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseJobID(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if tt.ok {
				back, err := bot.ParseJobID(bot.FormatJobID(got))
				if err != nil || back != got {
					t.Fatalf("round trip of %s = %d, %v", bot.FormatJobID(got), back, err)
				}
			}
		})
	}
	if got := bot.FormatJobID(14); got != "#14" {
		t.Errorf("FormatJobID(14) = %q", got)
	}
}

func BenchmarkParseCommand(b *testing.B) {
	for b.Loop() {
		if _, err := bot.ParseCommand("train obj1,obj2,obj13 150 --batch 16 --lr 0.001 --gpu gpu_1x_a100_sxm4 --budget 20"); err != nil {
			b.Fatal(err)
		}
	}
}
