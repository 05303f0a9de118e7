package bot

import (
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/jobs"
)

// overMark flags a forecast above the budget.
const overMark = "⚠️"

// cardFacts are a job card's figures as display strings; unknown ones are
// dash.
type cardFacts struct {
	GPU, Region, Price, State, Progress, Loss, Util, ETA, Cost, Budget string
}

// factsOf computes what a job card shows at now.
func factsOf(j *jobs.Job, now time.Time) cardFacts {
	f := cardFacts{GPU: dash, Region: dash, Price: dash, Progress: dash, Loss: dash, Util: dash, ETA: dash, Cost: dash, Budget: dash}
	f.State = escapeText(stateLabel(j))
	if j.InstanceType != "" {
		f.GPU = escapeText(j.InstanceType)
	}
	if j.Region != "" {
		f.Region = escapeText(j.Region)
	}
	if j.PricePerHour > 0 {
		f.Price = j.PricePerHour.String() + "/h"
	}
	if hasProgress(j) {
		f.Progress = progressBar(j.Progress.Epoch, totalEpochs(j))
	}
	f.Loss = lossFigures(j.Progress)
	if j.GPUUtil > 0 && !j.Finished() {
		f.Util = formatPercent(j.GPUUtil)
	}
	if eta := j.Progress.ETA(); eta > 0 && !j.Finished() && hasProgress(j) {
		f.ETA = humanDuration(eta)
	}
	forecast, known := forecastOf(j, now)
	if costKnown(j) {
		f.Cost = j.Cost(now).String()
		if !j.Finished() {
			f.Cost += " so far"
		}
		if known {
			f.Cost += " · forecast " + forecast.String()
		}
	}
	if j.Spec.Budget > 0 {
		f.Budget = j.Spec.Budget.String()
		if known && forecast > j.Spec.Budget {
			f.Budget += " " + overMark + " forecast over budget"
		}
	}
	return f
}

// lossFigures is "epoch 0.2269 · iter 0.2101", or the half that is known.
func lossFigures(p jobs.Progress) string {
	var parts []string
	if p.Epoch > 0 && len(p.LossHistory) > 0 {
		parts = append(parts, "epoch "+formatLoss(p.EpochLoss))
	}
	if p.IterLoss != 0 {
		parts = append(parts, "iter "+formatLoss(p.IterLoss))
	}
	if len(parts) == 0 {
		return dash
	}
	return strings.Join(parts, " · ")
}

// cardHeader is the card's first line: "#14 obj1 · 150 epochs · training".
func cardHeader(j *jobs.Job) string {
	return FormatJobID(j.ID) + " " + escapeText(j.Spec.Class) + " · " +
		strconv.Itoa(totalEpochs(j)) + " epochs · " + escapeText(stateLabel(j))
}

// CardMessage renders a job's card, its one parent message that is updated
// in place: a header line, the instance, progress and cost figures, who
// asked, and Stop and Logs buttons while the job is not finished. Values
// not known yet show as "—". Text is a plain fallback of the same figures.
func CardMessage(j *jobs.Job, now time.Time) Message {
	f := factsOf(j, now)
	header := "*" + cardHeader(j) + "*"
	field := func(name, value string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, "*"+name+"*\n"+cutTo(value, 1900), false, false)
	}
	fields := []*slack.TextBlockObject{
		field("GPU", f.GPU), field("Region", f.Region),
		field("Price", f.Price), field("State", f.State),
		field("Progress", f.Progress), field("Loss", f.Loss),
		field("GPU util", f.Util), field("ETA", f.ETA),
		field("Cost", f.Cost), field("Budget", f.Budget),
	}
	context := "requested by " + mention(j.Spec.Requester)
	if note := cardNote(j); note != "" {
		context += " · " + note
	}
	context = cutTo(context, MaxTextLen)
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, cutTo(header, MaxTextLen), false, false), fields, nil),
		slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, context, false, false)),
	}
	if !j.Finished() {
		blocks = append(blocks, cardButtons(j))
	}
	text := header + "\n" +
		"GPU " + f.GPU + " · " + f.Region + " · " + f.Price + "\n" +
		"progress " + f.Progress + " · loss " + f.Loss + " · GPU " + f.Util + " · ETA " + f.ETA + "\n" +
		"cost " + f.Cost + " · budget " + f.Budget + "\n" +
		context
	return Message{Channel: j.Spec.Channel, Text: cutTo(text, MaxTextLen), Blocks: blocks}
}

// cardNote is the reason a job stopped or is stopping, or its last error.
func cardNote(j *jobs.Job) string {
	switch {
	case j.Finished() && j.Reason != "":
		return escapeKeepMentions(cutTo(j.Reason, 500))
	case j.StopReason != "":
		return escapeKeepMentions(cutTo(j.StopReason, 500))
	case j.Progress.Error != "":
		return "last error: " + escapeText(cutTo(j.Progress.Error, 500))
	}
	return ""
}

// cardButtons are a live card's Stop (with a confirmation) and Logs buttons;
// their value is the decimal job id.
func cardButtons(j *jobs.Job) *slack.ActionBlock {
	id := strconv.FormatInt(j.ID, 10)
	plain := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	confirm := slack.NewConfirmationBlockObject(
		plain("Stop "+FormatJobID(j.ID)+"?"),
		plain(cutTo("This stops training of "+j.Label()+" and terminates its instance.", 300)),
		plain("Stop"), plain("Keep running"),
	).WithStyle(slack.StyleDanger)
	stop := slack.NewButtonBlockElement(ActionStop, id, plain("Stop")).WithStyle(slack.StyleDanger).WithConfirm(confirm)
	logs := slack.NewButtonBlockElement(ActionLogs, id, plain("Logs"))
	return slack.NewActionBlock("cpbot_job_"+id, stop, logs)
}
