package bot

import (
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cpbot/cpbot/jobs"
)

// MaxTextLen is the longest text the renderers produce, in bytes: Slack's
// limit for one section's text is 3000 characters, and a byte count never
// undercounts characters.
const MaxTextLen = 3000

// dash stands for a value that is not known yet.
const dash = "—"

// barCells is the width of a progress bar.
const barCells = 10

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

var mentionPattern = regexp.MustCompile(`<@[A-Z0-9]{1,30}>`)

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escapeText makes user-controlled text safe for Slack mrkdwn: &, < and >
// would otherwise start entities, links or mentions.
func escapeText(s string) string { return mrkdwnEscaper.Replace(s) }

// escapeKeepMentions escapes s like escapeText but keeps user mentions
// ("<@U123>") that the domain writes into reasons such as "stopped by <@U123>".
func escapeKeepMentions(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range mentionPattern.FindAllStringIndex(s, -1) {
		b.WriteString(escapeText(s[last:m[0]]))
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(escapeText(s[last:]))
	return b.String()
}

// mention returns the Slack mention of a user id, or the escaped id when it
// does not look like one (so nothing can smuggle in a link).
func mention(user string) string {
	switch {
	case user == "":
		return dash
	case userIDPattern.MatchString(user):
		return "<@" + user + ">"
	}
	return escapeText(user)
}

// humanDuration formats d for people: "42s", "4m12s", "10h13m" (no seconds
// above an hour).
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return strconv.FormatInt(h, 10) + "h" + pad2(m) + "m"
	case m > 0:
		return strconv.FormatInt(m, 10) + "m" + pad2(s) + "s"
	}
	return strconv.FormatInt(s, 10) + "s"
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// reformatDuration rewrites a Go duration string ("10h2m0s") the way
// humanDuration does; an empty or zero duration is unknown (""), and text
// that is not a duration is returned escaped.
func reformatDuration(s string) string {
	d, err := time.ParseDuration(s)
	switch {
	case s == "":
		return ""
	case err != nil:
		return escapeText(s)
	case d <= 0:
		return ""
	}
	return humanDuration(d)
}

// formatLoss formats a loss with four decimals; NaN and infinities as such.
func formatLoss(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 0):
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', 4, 64)
}

// formatPercent formats a utilisation or share as a whole percent.
func formatPercent(f float64) string {
	return strconv.FormatFloat(math.Round(f), 'f', 0, 64) + "%"
}

// progressBar draws done/total epochs as Unicode blocks: "▓▓▓░░░░░░░ 3/10".
// Any progress fills a cell; only completion fills them all.
func progressBar(done, total int) string {
	if total <= 0 {
		return dash
	}
	n := min(max(done*barCells/total, 0), barCells)
	switch {
	case done > 0 && n == 0:
		n = 1 // started shows
	case done < total && n == barCells:
		n = barCells - 1 // full means done
	}
	return strings.Repeat("▓", n) + strings.Repeat("░", barCells-n) + " " +
		strconv.Itoa(done) + "/" + strconv.Itoa(total)
}

// totalEpochs is the run's epoch count as the log says, else as asked.
func totalEpochs(j *jobs.Job) int {
	if j.Progress.Epochs > 0 {
		return j.Progress.Epochs
	}
	return j.Spec.Epochs
}

// stateLabel is the job's state for people: "training", "finished ·
// succeeded", "training · stopping (cancelled)".
func stateLabel(j *jobs.Job) string {
	switch {
	case j.Finished() && j.Outcome != "":
		return string(j.State) + " · " + string(j.Outcome)
	case j.StopRequest != "" && !j.Finished():
		return string(j.State) + " · stopping (" + string(j.StopRequest) + ")"
	}
	return string(j.State)
}

// hasProgress reports whether the job's progress figures mean anything yet.
func hasProgress(j *jobs.Job) bool {
	switch j.State {
	case jobs.StateTraining, jobs.StateCollecting, jobs.StateTerminating:
		return true
	}
	return j.Progress.Epoch > 0
}

// costKnown reports whether the job has ever had an instance billing.
func costKnown(j *jobs.Job) bool { return !j.LaunchedAt.IsZero() || j.Spent != 0 }

// forecastOf is the job's projected total cost: the live instance at the
// current pace plus earlier attempts.
func forecastOf(j *jobs.Job, now time.Time) (jobs.Money, bool) {
	if j.LaunchedAt.IsZero() || j.Finished() {
		return 0, false
	}
	f, ok := jobs.Forecast(j.PricePerHour, j.LaunchedAt, now, j.Progress)
	return f + j.Spent, ok
}

// artifactsLabel shortens the local checkpoint dir to its last two
// elements, "artifacts/14/".
func artifactsLabel(dir string) string {
	dir = path.Clean(strings.ReplaceAll(dir, `\`, "/"))
	return escapeText(path.Join(path.Base(path.Dir(dir)), path.Base(dir)) + "/")
}

// cutTo shortens s to at most n bytes at a rune boundary, marking the cut
// with "…".
func cutTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	if n < len(ell) {
		return ""
	}
	cut := n - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// cutFront keeps the last n bytes of s at a rune boundary, marking the cut
// with a leading "…".
func cutFront(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	if n < len(ell) {
		return ""
	}
	start := len(s) - (n - len(ell))
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return ell + s[start:]
}

// codeBlock puts the last lines that fit in n bytes in a ``` block, escaped.
// Lines cut from the top are announced in the block's first line.
func codeBlock(lines []string, n int) string {
	const fence, fenceLen = "```", 3
	esc := make([]string, len(lines))
	for i, l := range lines {
		// a fence inside the text would end the block early
		esc[i] = strings.ReplaceAll(escapeText(strings.TrimRight(l, "\r\n")), fence, "'''")
	}
	budget := n - 2*fenceLen - 2 // fences and their newlines
	used, first := 0, len(esc)
	for first > 0 && used+len(esc[first-1])+1 <= budget-40 {
		first--
		used += len(esc[first]) + 1
	}
	body := strings.Join(esc[first:], "\n")
	if first == len(esc) && first > 0 {
		// not even the last line fits whole: keep its end
		first--
		body = cutFront(esc[first], budget-40)
	}
	if first > 0 {
		body = "… " + strconv.Itoa(first) + " earlier lines cut\n" + body
	}
	return cutTo(fence+"\n"+body+"\n"+fence, n)
}
