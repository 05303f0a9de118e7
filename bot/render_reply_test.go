package bot_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/jobs"
)

func TestStatusText(t *testing.T) {
	tests := []struct {
		name          string
		job           *jobs.Job
		want, notWant []string
	}{
		{"queued", queuedJob(), []string{"#14 obj1 · 150 epochs · queued", "<@U123>", "nothing billed yet", "budget $25.00"},
			[]string{"$0.00", "progress", "pace", "0/150", "forecast"}},
		{"training", trainingJob(), []string{"instance: gpu_1x_a100_sxm4 · us-east-1 · $1.99/h",
			"progress: ▓░░░░░░░░░ 3/150 · loss epoch 0.2269 · iter 0.2101", "pace: 4m00s/epoch · GPU 91% · ETA 9h48m",
			"cost: $1.99 so far · forecast $21.49 · budget $25.00"}, []string{"$0.00", "⚠"}},
		{"over budget", overBudgetJob(), []string{"budget $20.00 ⚠️"}, nil},
		{"succeeded", succeededJob(), []string{"finished · succeeded", "eval: ADD 0.71 · 2D 0.93", "cost: $19.98",
			"checkpoints in `artifacts/14/`"}, []string{"so far", "ETA", "$0.00"}},
		{"failed", failedJob(), []string{"finished · failed", "CUDA out of memory", "12/150"}, []string{"ETA", "$0.00"}},
		{"cancelled", cancelledJob(), []string{"finished · cancelled", "stopped by <@U999>", "nothing billed yet"},
			[]string{"$0.00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkText(t, bot.StatusText(tc.job, renderNow), tc.want, tc.notWant)
		})
	}
}

func TestJobsText(t *testing.T) {
	if got := bot.JobsText(nil, renderNow); got != "no jobs yet" {
		t.Errorf("no jobs: %q", got)
	}
	mixed := []*jobs.Job{queuedJob(), trainingJob(), succeededJob(), failedJob()}
	got := bot.JobsText(mixed, renderNow)
	checkText(t, got, []string{
		"`#14` obj1 · queued · — · — · <@U123>",
		"`#14` obj1 · training · 3/150 · $1.99 · <@U123>",
		"`#14` obj1 · finished · succeeded · 150/150 · $19.98 · <@U123>",
		"`#14` obj1 · finished · failed · 12/150 · $2.10",
	}, []string{"$0.00"})
	if n := strings.Count(got, "\n") + 1; n != 4 {
		t.Errorf("%d lines, want 4:\n%s", n, got)
	}
	many := make([]*jobs.Job, 500)
	for i := range many {
		many[i] = trainingJob()
		many[i].ID = int64(i + 1)
	}
	checkText(t, bot.JobsText(many, renderNow), []string{"`#1` obj1", "more"}, []string{"`#500`"})
}

func TestCostText(t *testing.T) {
	tests := []struct {
		name          string
		total, budget jobs.Money
		byUser        map[string]jobs.Money
		want, notWant []string
	}{
		{"sorted by spend", jobs.USD(412.5), jobs.USD(500),
			map[string]jobs.Money{"U1": jobs.USD(12), "U2": jobs.USD(400.5), "U3": jobs.USD(12)},
			[]string{"2025-06", "• <@U2> $400.50\n• <@U1> $12.00\n• <@U3> $12.00\n", "team: $412.50 of $500.00 (83%)"},
			[]string{"over budget"}},
		{"over budget", jobs.USD(600), jobs.USD(500), map[string]jobs.Money{"U1": jobs.USD(600)},
			[]string{"team: $600.00 of $500.00 (120%) ⚠️ over budget"}, nil},
		{"nothing spent", 0, jobs.USD(500), nil, []string{"nothing spent yet", "team: $0.00 of $500.00 (0%)"}, nil},
		{"no budget", jobs.USD(5), 0, map[string]jobs.Money{"U1": jobs.USD(5)}, []string{"no team budget set"}, []string{"%"}},
		{"odd user id", jobs.USD(5), jobs.USD(10), map[string]jobs.Money{"<!here>": jobs.USD(5)},
			[]string{"&lt;!here&gt; $5.00"}, []string{"<!here>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkText(t, bot.CostText(tc.total, tc.budget, tc.byUser, "2025-06"), tc.want, tc.notWant)
		})
	}
	t.Run("many users", func(t *testing.T) {
		by := map[string]jobs.Money{}
		for i := range 1000 {
			by[fmt.Sprintf("U%04d", i)] = jobs.Money(i) * jobs.Cent
		}
		checkText(t, bot.CostText(jobs.USD(4995), jobs.USD(500), by, "2025-06"),
			[]string{"<@U0999> $9.99", "more", "team: $4995.00"}, []string{"<@U0000>"})
	})
}

func TestGPUsText(t *testing.T) {
	opts := []jobs.GPUOption{
		{Name: "gpu_1x_a10", GPUs: 1, PricePerHour: jobs.PriceFromCents(75), Regions: []string{"us-west-1", "us-east-1"}},
		{Name: "gpu_1x_a100_sxm4", GPUs: 1, PricePerHour: jobs.PriceFromCents(199), Preferred: true},
		{Name: "gpu_8x_h100_sxm5", GPUs: 8, PricePerHour: jobs.PriceFromCents(2392), Regions: []string{"us-south-1"}},
	}
	got := bot.GPUsText(opts)
	checkText(t, got, []string{"```", "gpu_1x_a10", "$0.75", "us-west-1, us-east-1", "$23.92", "8"}, nil)
	lines := strings.Split(got, "\n")
	var a100 string
	for _, l := range lines {
		if strings.Contains(l, "gpu_1x_a100_sxm4") {
			a100 = l
		}
	}
	if !strings.HasPrefix(a100, "★") || !strings.Contains(a100, "none now") || !strings.Contains(a100, "$1.99") {
		t.Errorf("a100 line %q: want preferred mark, none now, $1.99", a100)
	}
	if strings.Count(got, "★") != 2 { // the row and the legend
		t.Errorf("want one preferred row:\n%s", got)
	}
	checkText(t, bot.GPUsText(nil), []string{"no instance types"}, []string{"```"})
}
