package bot

import (
	"strconv"
	"time"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/jobs"
)

// Slack allows 100 blocks in a Home tab; these caps keep well inside it.
const (
	homeMaxRunning = 20
	homeMaxRecent  = 10
)

// HomeView renders the App Home tab: this month's spend against the team
// budget, the running jobs with their progress and cost, and the recently
// finished jobs with their outcome. Long lists are capped and the rest
// counted.
func HomeView(running []*jobs.Job, recent []*jobs.Job, spent, budget jobs.Money, now time.Time) slack.HomeTabViewRequest {
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, cutTo(s, MaxTextLen), false, false)
	}
	plain := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("cpbot · ContourPose training on Lambda GPUs")),
		slack.NewSectionBlock(md(spendLine(spent, budget)), nil, nil),
		slack.NewDividerBlock(),
		slack.NewHeaderBlock(plain("Running (" + strconv.Itoa(len(running)) + ")")),
	}
	if len(running) == 0 {
		blocks = append(blocks, slack.NewSectionBlock(md("nothing running · start one with `/contourpose train obj1`"), nil, nil))
	}
	for i, j := range running {
		if i == homeMaxRunning {
			blocks = append(blocks, slack.NewContextBlock("", md("… and "+strconv.Itoa(len(running)-i)+" more")))
			break
		}
		blocks = append(blocks, slack.NewSectionBlock(md(homeRunningText(j, now)), nil, nil))
	}
	blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(plain("Recently finished")))
	if len(recent) == 0 {
		blocks = append(blocks, slack.NewSectionBlock(md("no finished jobs yet"), nil, nil))
	}
	for i, j := range recent {
		if i == homeMaxRecent {
			blocks = append(blocks, slack.NewContextBlock("", md("… and "+strconv.Itoa(len(recent)-i)+" more")))
			break
		}
		blocks = append(blocks, slack.NewSectionBlock(md(homeRecentText(j, now)), nil, nil))
	}
	blocks = append(blocks, slack.NewContextBlock("", md("updated "+now.UTC().Format("2006-01-02 15:04 MST")+" · /contourpose help")))
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// spendLine is "*This month:* $120.00 of $500.00 (24%)".
func spendLine(spent, budget jobs.Money) string {
	s := "*This month:* " + spent.String()
	if budget <= 0 {
		return s + " · no team budget set"
	}
	s += " of " + budget.String() + " (" + formatPercent(float64(spent)/float64(budget)*100) + ")"
	if spent > budget {
		s += " " + overMark + " over budget"
	}
	return s
}

// homeRunningText is a running job's header, progress bar and figures.
func homeRunningText(j *jobs.Job, now time.Time) string {
	f := factsOf(j, now)
	s := "*" + cardHeader(j) + "* · " + mention(j.Spec.Requester) + "\n" +
		f.Progress + " · loss " + f.Loss + " · ETA " + f.ETA + "\n" +
		f.GPU + " · " + f.Region + " · " + f.Price + " · GPU " + f.Util + "\n" +
		"cost " + f.Cost + " · budget " + f.Budget
	return s
}

// homeRecentText is a finished job's header with its cost, final loss and
// how long ago it ended.
func homeRecentText(j *jobs.Job, now time.Time) string {
	s := "*" + cardHeader(j) + "* · " + mention(j.Spec.Requester)
	if costKnown(j) {
		s += " · " + j.Cost(now).String()
	}
	if j.Progress.Epoch > 0 && len(j.Progress.LossHistory) > 0 {
		s += " · final loss " + formatLoss(j.Progress.EpochLoss)
	}
	if ev := j.Progress.Eval; ev != nil {
		s += " · ADD " + strconv.FormatFloat(ev.ADD, 'f', 2, 64)
	}
	if !j.FinishedAt.IsZero() && now.After(j.FinishedAt) {
		s += " · " + humanDuration(now.Sub(j.FinishedAt)) + " ago"
	}
	if note := cardNote(j); note != "" {
		s += "\n" + note
	}
	return s
}
