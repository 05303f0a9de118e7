package bot

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

// StatusText renders one job for the status command: its state, instance,
// progress, loss, pace and cost, one topic a line, leaving out what is not
// known yet.
func StatusText(j *jobs.Job, now time.Time) string {
	f := factsOf(j, now)
	lines := []string{"*" + cardHeader(j) + "* · requested by " + mention(j.Spec.Requester)}
	if j.InstanceType != "" || j.Region != "" {
		lines = append(lines, "instance: "+f.GPU+" · "+f.Region+" · "+f.Price)
	}
	if hasProgress(j) {
		l := "progress: " + f.Progress
		if f.Loss != dash {
			l += " · loss " + f.Loss
		}
		lines = append(lines, l)
	}
	var pace []string
	if p := j.Progress; p.EpochSeconds > 0 && !math.IsInf(p.EpochSeconds, 0) && hasProgress(j) {
		pace = append(pace, humanDuration(time.Duration(p.EpochSeconds*float64(time.Second)))+"/epoch")
	}
	if f.Util != dash {
		pace = append(pace, "GPU "+f.Util)
	}
	if f.ETA != dash {
		pace = append(pace, "ETA "+f.ETA)
	}
	if len(pace) > 0 {
		lines = append(lines, "pace: "+strings.Join(pace, " · "))
	}
	money := "cost: " + f.Cost
	if !costKnown(j) {
		money = "cost: nothing billed yet"
	}
	if f.Budget != dash {
		money += " · budget " + f.Budget
	}
	lines = append(lines, money)
	if ev := j.Progress.Eval; ev != nil {
		lines = append(lines, fmt.Sprintf("eval: ADD %.2f · 2D %.2f", ev.ADD, ev.Metric2D))
	}
	if j.Artifacts != "" {
		lines = append(lines, "checkpoints in `"+artifactsLabel(j.Artifacts)+"`")
	}
	if note := cardNote(j); note != "" {
		lines = append(lines, note)
	}
	return cutTo(strings.Join(lines, "\n"), MaxTextLen)
}

// JobsText renders a compact list of jobs, one a line: id, class, state,
// epochs done, cost and requester. It says "no jobs yet" for none and
// counts the jobs that do not fit.
func JobsText(js []*jobs.Job, now time.Time) string {
	if len(js) == 0 {
		return "no jobs yet"
	}
	var b strings.Builder
	for i, j := range js {
		line := jobLine(j, now) + "\n"
		if b.Len()+len(line) > MaxTextLen-40 {
			fmt.Fprintf(&b, "… and %d more", len(js)-i)
			break
		}
		b.WriteString(line)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// jobLine is "`#14` obj1 · training · 3/150 · $0.41 · <@U1>".
func jobLine(j *jobs.Job, now time.Time) string {
	epochs := dash
	if hasProgress(j) {
		epochs = strconv.Itoa(j.Progress.Epoch) + "/" + strconv.Itoa(totalEpochs(j))
	}
	cost := dash
	if costKnown(j) {
		cost = j.Cost(now).String()
	}
	return "`" + FormatJobID(j.ID) + "` " + escapeText(cutTo(j.Spec.Class, 40)) + " · " + escapeText(stateLabel(j)) +
		" · " + epochs + " · " + cost + " · " + mention(j.Spec.Requester)
}

// CostText renders month-to-date spend: each user's, biggest first, then the
// team's total against the monthly budget with the share used.
func CostText(total, budget jobs.Money, byUser map[string]jobs.Money, month string) string {
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	sort.Slice(users, func(a, b int) bool {
		if byUser[users[a]] != byUser[users[b]] {
			return byUser[users[a]] > byUser[users[b]]
		}
		return users[a] < users[b]
	})
	head := "*Spend in " + escapeText(month) + "* (month to date)"
	if month == "" {
		head = "*Spend this month*"
	}
	foot := "team: " + total.String()
	switch {
	case budget > 0:
		pct := float64(total) / float64(budget) * 100
		foot += " of " + budget.String() + " (" + formatPercent(pct) + ")"
		if total > budget {
			foot += " " + overMark + " over budget"
		}
	default:
		foot += " · no team budget set"
	}
	var b strings.Builder
	b.WriteString(head + "\n")
	if len(users) == 0 {
		b.WriteString("nothing spent yet\n")
	}
	for i, u := range users {
		line := "• " + mention(u) + " " + byUser[u].String() + "\n"
		if b.Len()+len(line)+len(foot) > MaxTextLen-40 {
			fmt.Fprintf(&b, "… and %d more\n", len(users)-i)
			break
		}
		b.WriteString(line)
	}
	b.WriteString(foot)
	return b.String()
}

// GPUsText renders the instance types on offer as a table: type, GPUs, price
// per hour and regions with capacity now ("none now"); ★ marks the
// configured preferences.
func GPUsText(opts []jobs.GPUOption) string {
	if len(opts) == 0 {
		return "Lambda lists no instance types right now"
	}
	nameW := len("type")
	for _, o := range opts {
		nameW = max(nameW, min(len(o.Name), 40))
	}
	row := func(mark, name, gpus, price, regions string) string {
		return fmt.Sprintf("%s %-*s %4s %9s  %s", mark, nameW, name, gpus, price, regions)
	}
	var b strings.Builder
	b.WriteString(row(" ", "type", "GPUs", "$/h", "regions with capacity") + "\n")
	for i, o := range opts {
		regions := "none now"
		if len(o.Regions) > 0 {
			regions = strings.Join(o.Regions, ", ")
		}
		mark := " "
		if o.Preferred {
			mark = "★"
		}
		line := escapeText(row(mark, cutTo(o.Name, 40), strconv.Itoa(o.GPUs), o.PricePerHour.String(), cutTo(regions, 200))) + "\n"
		if b.Len()+len(line) > MaxTextLen-80 {
			fmt.Fprintf(&b, "… and %d more types\n", len(opts)-i)
			break
		}
		b.WriteString(line)
	}
	return "```\n" + strings.TrimSuffix(b.String(), "\n") + "\n```\n★ = in the preference list"
}
