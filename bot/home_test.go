package bot_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/jobs"
)

func TestHomeView(t *testing.T) {
	many := make([]*jobs.Job, 60)
	for i := range many {
		many[i] = trainingJob()
	}
	tests := []struct {
		name            string
		running, recent []*jobs.Job
		spent, budget   jobs.Money
		want, notWant   []string
	}{
		{"empty", nil, nil, 0, jobs.USD(500),
			[]string{"This month:* $0.00 of $500.00 (0%)", "nothing running", "no finished jobs yet"}, nil},
		{"busy", []*jobs.Job{trainingJob(), overBudgetJob()}, []*jobs.Job{succeededJob(), failedJob(), cancelledJob()},
			jobs.USD(120), jobs.USD(500),
			[]string{"$120.00 of $500.00 (24%)", "Running (2)", "▓░░░░░░░░░ 3/150", "ETA 9h48m", "forecast $21.49",
				"finished · succeeded", "final loss 0.0412", "ADD 0.71", "$19.98", "5m00s ago", "CUDA out of memory",
				"stopped by <@U999>"},
			[]string{"nothing running", "$0.00"}},
		{"over budget", nil, nil, jobs.USD(600), jobs.USD(500), []string{"(120%) ⚠️ over budget"}, nil},
		{"capped", many, many, jobs.USD(1), 0, []string{"… and 40 more", "… and 50 more", "no team budget set"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := bot.HomeView(tc.running, tc.recent, tc.spent, tc.budget, renderNow)
			if v.Type != slack.VTHomeTab {
				t.Errorf("type = %q, want home", v.Type)
			}
			if n := len(v.Blocks.BlockSet); n > 100 {
				t.Errorf("%d blocks, Slack allows 100 in a home tab", n)
			}
			raw, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got := string(raw)
			for _, s := range tc.want {
				if !strings.Contains(got, jsonString(s)) {
					t.Errorf("view lacks %q:\n%s", s, got)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(got, jsonString(s)) {
					t.Errorf("view contains %q", s)
				}
			}
		})
	}
}
