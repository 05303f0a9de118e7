package jobs

import (
	"strconv"
	"strings"
	"time"
)

// LineKind says what a line of a ContourPose training log is.
type LineKind uint8

// Kinds of training-log lines. The examples are the official ZJU-IVI/ContourPose
// output; lines of the widely used Lambda fork (alanli-ML/ContourPose_Metal,
// lambda-labs-setup/main_lambda.py) map to the same kinds.
const (
	LineOther      LineKind = iota // anything not listed below
	LineBlank                      // empty or white space only
	LineIter                       // loss:0.512825  heatmap_loss:0.451616  contour_loss:0.061210; fork: Epoch 3/150 [100/230] Loss: … ETA: …
	LineClass                      // current class:obj1; fork: Epoch 3/150 - obj1
	LineTimeCost                   // Time cost:1116.1419277191162 (seconds of the epoch)
	LineLR                         // LR:0.1; fork: Learning rate: 0.001000
	LineEpoch                      // Epoch: 01, Loss: 0.4717; fork: Epoch 3 completed in 18.5min - Avg Loss: …
	LineCheckpoint                 // Load model: …/model/obj1/20.pkl; fork: Successfully loaded model from epoch 20
	LineDevice                     // using cuda device
	LineEval                       // model class type:obj1:2D- 0.93  ADD-0.71
	LineTraceback                  // Traceback (most recent call last):
	LineError                      // an exception line such as RuntimeError: CUDA out of memory. …
)

var lineKindNames = [...]string{
	LineOther: "other", LineBlank: "blank", LineIter: "iter", LineClass: "class",
	LineTimeCost: "time-cost", LineLR: "lr", LineEpoch: "epoch", LineCheckpoint: "checkpoint",
	LineDevice: "device", LineEval: "eval", LineTraceback: "traceback", LineError: "error",
}

// String returns the kind's short lowercase name.
func (k LineKind) String() string {
	if int(k) < len(lineKindNames) {
		return lineKindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Line is one classified training-log line. Only the fields that the Kind
// carries are set; the others are zero. Its strings are substrings of the
// parsed line.
type Line struct {
	Kind     LineKind
	Text     string // the visible line: no line ending, no text overwritten by '\r', no surrounding space
	Indented bool   // the visible line starts with a space or tab (traceback frames, continued messages)

	Epoch  int // LineEpoch: the epoch finished; LineCheckpoint: the checkpoint's epoch (0 if unknown); fork lines: the epoch in progress
	Epochs int // fork lines: the total number of epochs
	Iter   int // fork LineIter: the iteration within the epoch
	Iters  int // fork LineIter: iterations per epoch

	Loss        float64       // LineIter, LineEpoch
	HeatmapLoss float64       // LineIter
	ContourLoss float64       // LineIter
	Seconds     float64       // LineTimeCost, fork LineEpoch: the epoch's duration
	LR          float64       // LineLR
	ETA         time.Duration // fork LineIter: the time left in the epoch

	Class      string  // LineClass, LineEval
	Device     string  // LineDevice: cuda, cpu, mps
	Checkpoint string  // LineCheckpoint: the checkpoint path as printed
	Metric2D   float64 // LineEval: the 2D projection metric
	ADD        float64 // LineEval: the ADD metric
	OOM        bool    // LineError: the error is CUDA running out of memory
}

// ParseLine classifies one line of a training log, with or without its line
// ending. Numbers may be in any form Python prints (nan, inf, 1e-05). A line
// whose numbers do not parse is LineOther. ParseLine does not allocate for
// the lines that make up most of a log.
func ParseLine(raw string) Line {
	s := visible(raw)
	indented := len(s) > 0 && (s[0] == ' ' || s[0] == '\t')
	s = strings.TrimSpace(s)
	if s == "" {
		return Line{Kind: LineBlank}
	}
	l := Line{Text: s, Indented: indented}
	if s[0] >= 0x80 { // the fork decorates lines with emoji
		s = undecorate(s)
	}
	var ok bool
	switch {
	case strings.HasPrefix(s, "loss:"):
		ok = parseIter(&l, s[len("loss:"):])
	case strings.HasPrefix(s, "current class:"):
		l.Class = strings.TrimSpace(s[len("current class:"):])
		l.Kind, ok = LineClass, l.Class != ""
	case strings.HasPrefix(s, "Time cost:"):
		l.Seconds, _, ok = number(strings.TrimSpace(s[len("Time cost:"):]))
		l.Kind = LineTimeCost
	case strings.HasPrefix(s, "LR:"):
		l.LR, _, ok = number(strings.TrimSpace(s[len("LR:"):]))
		l.Kind = LineLR
	case strings.HasPrefix(s, "Learning rate:"):
		l.LR, _, ok = number(strings.TrimSpace(s[len("Learning rate:"):]))
		l.Kind = LineLR
	case strings.HasPrefix(s, "Epoch:"):
		ok = parseEpoch(&l, s[len("Epoch:"):])
	case strings.HasPrefix(s, "Epoch "):
		ok = parseForkEpoch(&l, s[len("Epoch "):])
	case strings.HasPrefix(s, "Load model:"):
		l.Checkpoint = strings.TrimSpace(s[len("Load model:"):])
		l.Epoch = checkpointEpoch(l.Checkpoint)
		l.Kind, ok = LineCheckpoint, l.Checkpoint != ""
	case strings.HasPrefix(s, "Successfully loaded model from epoch "):
		l.Epoch, _, ok = integer(s[len("Successfully loaded model from epoch "):])
		l.Kind = LineCheckpoint
	case strings.HasPrefix(s, "using ") && strings.HasSuffix(firstWords(s, 3), " device"):
		l.Device = strings.TrimSuffix(firstWords(s, 3), " device")[len("using "):]
		l.Kind, ok = LineDevice, true
	case strings.HasPrefix(s, "model class type:"):
		ok = parseEval(&l, s[len("model class type:"):])
	case strings.HasPrefix(s, "Traceback (most recent call last):"):
		l.Kind, ok = LineTraceback, true
	case isExceptionLine(s):
		l.Kind, l.OOM, ok = LineError, mentionsOOM(s), true
	}
	if !ok {
		return Line{Kind: LineOther, Text: l.Text, Indented: l.Indented}
	}
	return l
}

// visible returns what a terminal would show of raw: without its line ending
// and, when '\r' overwrote part of it (tqdm bars), the last non-blank segment.
func visible(raw string) string {
	s := strings.TrimRight(raw, "\r\n")
	for {
		i := strings.LastIndexByte(s, '\r')
		if i < 0 {
			return s
		}
		if strings.TrimSpace(s[i+1:]) != "" {
			return s[i+1:]
		}
		s = s[:i]
	}
}

// undecorate drops a leading run of non-ASCII bytes and spaces (emoji).
func undecorate(s string) string {
	i := 0
	for i < len(s) && (s[i] >= 0x80 || s[i] == ' ') {
		i++
	}
	return s[i:]
}

// firstWords returns s up to the end of its n-th space-separated word.
func firstWords(s string, n int) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			n--
			if n == 0 {
				return s[:i]
			}
		}
	}
	return s
}

func parseIter(l *Line, s string) bool {
	v, rest, ok := number(s)
	if !ok {
		return false
	}
	l.Kind, l.Loss = LineIter, v
	for rest = trimLeft(rest); rest != ""; rest = trimLeft(rest) {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			break
		}
		key := rest[:i]
		if v, rest, ok = number(trimLeft(rest[i+1:])); !ok {
			break
		}
		switch key {
		case "heatmap_loss":
			l.HeatmapLoss = v
		case "contour_loss":
			l.ContourLoss = v
		}
	}
	return true
}

// parseEpoch parses the rest of "Epoch: 01, Loss: 0.4717".
func parseEpoch(l *Line, s string) bool {
	e, rest, ok := integer(trimLeft(s))
	if !ok {
		return false
	}
	i := strings.Index(rest, "Loss:")
	if i < 0 {
		return false
	}
	l.Kind, l.Epoch = LineEpoch, e
	l.Loss, _, ok = number(trimLeft(rest[i+len("Loss:"):]))
	return ok
}

// parseForkEpoch parses the rest of the fork's three "Epoch " lines:
// "3/150 [100/230] Loss: 0.226900 (H: 0.2, C: 0.02) ETA: 12.3min",
// "3 completed in 18.5min - Avg Loss: 0.226900 (H: …, C: …)" and "3/150 - obj1".
func parseForkEpoch(l *Line, s string) bool {
	e, rest, ok := integer(s)
	if !ok {
		return false
	}
	l.Epoch = e
	if strings.HasPrefix(rest, "/") {
		if l.Epochs, rest, ok = integer(rest[1:]); !ok {
			return false
		}
	}
	rest = trimLeft(rest)
	switch {
	case strings.HasPrefix(rest, "completed in "):
		tok, after := token(rest[len("completed in "):])
		d, ok := parseDuration(tok)
		i := strings.Index(after, "Loss:")
		if !ok || i < 0 {
			return false
		}
		l.Kind, l.Seconds = LineEpoch, d.Seconds()
		l.Loss, _, ok = number(trimLeft(after[i+len("Loss:"):]))
		return ok
	case strings.HasPrefix(rest, "- ") && l.Epochs > 0:
		l.Kind, l.Class = LineClass, strings.TrimSpace(rest[2:])
		return l.Class != ""
	}
	if strings.HasPrefix(rest, "[") {
		if l.Iter, rest, ok = integer(rest[1:]); !ok || !strings.HasPrefix(rest, "/") {
			return false
		}
		if l.Iters, rest, ok = integer(rest[1:]); !ok {
			return false
		}
	}
	i := strings.Index(rest, "Loss:")
	if i < 0 {
		return false
	}
	l.Kind = LineIter
	if l.Loss, rest, ok = number(trimLeft(rest[i+len("Loss:"):])); !ok {
		return false
	}
	if j := strings.Index(rest, "H:"); j >= 0 {
		l.HeatmapLoss, _, _ = number(trimLeft(rest[j+len("H:"):]))
	}
	if j := strings.Index(rest, "C:"); j >= 0 {
		l.ContourLoss, _, _ = number(trimLeft(rest[j+len("C:"):]))
	}
	if j := strings.Index(rest, "ETA:"); j >= 0 {
		tok, _ := token(trimLeft(rest[j+len("ETA:"):]))
		if l.ETA, ok = parseDuration(tok); !ok {
			return false
		}
	}
	return true
}

// parseEval parses the rest of "model class type:obj1:2D- 0.93  ADD-0.71".
func parseEval(l *Line, s string) bool {
	i := strings.Index(s, ":2D-")
	if i < 0 {
		return false
	}
	l.Kind, l.Class = LineEval, s[:i]
	v, rest, ok := number(trimLeft(s[i+len(":2D-"):]))
	if !ok {
		return false
	}
	l.Metric2D = v
	j := strings.Index(rest, "ADD-")
	if j < 0 {
		return false
	}
	l.ADD, _, ok = number(trimLeft(rest[j+len("ADD-"):]))
	return ok
}

// checkpointEpoch returns N of a path ending in N.pkl or N.pth, else 0.
func checkpointEpoch(path string) int {
	base := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	n, err := strconv.Atoi(base)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// isExceptionLine reports whether s looks like the last line of a Python
// traceback: a dotted name ending in Error, error, Exception, Interrupt or
// Exit, alone or followed by a colon.
func isExceptionLine(s string) bool {
	i := 0
	for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
		i++
	}
	if i == 0 || (s[0] >= '0' && s[0] <= '9') || (i < len(s) && s[i] != ':') {
		return false
	}
	name := s[:i]
	for _, suffix := range [...]string{"Error", "error", "Exception", "Interrupt", "Exit"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

func isIdent(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// mentionsOOM reports whether s is PyTorch's CUDA out-of-memory error.
func mentionsOOM(s string) bool {
	return strings.Contains(s, "CUDA out of memory") || strings.Contains(s, "OutOfMemoryError")
}

func trimLeft(s string) string { return strings.TrimLeft(s, " \t") }

// token splits s at the first space, tab, comma or parenthesis.
func token(s string) (tok, rest string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', ',', '(', ')', ']':
			return s[:i], s[i:]
		}
	}
	return s, ""
}

// number parses the float at the start of s, as Python prints it.
func number(s string) (float64, string, bool) {
	tok, rest := token(s)
	v, err := strconv.ParseFloat(tok, 64)
	return v, rest, err == nil
}

// integer parses the decimal digits at the start of s.
func integer(s string) (int, string, bool) {
	i, n := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n > (1<<31)/10 {
			return 0, s, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s[i:], i > 0
}

// parseDuration parses a remaining or elapsed time as the fork and similar
// scripts print it: "0:12:34", "12:34", "754", "754s", "12.3min", "1.5h" or a
// Go duration such as "1h2m3s".
func parseDuration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	if strings.IndexByte(s, ':') >= 0 {
		var secs float64
		for part := range strings.SplitSeq(s, ":") {
			v, err := strconv.ParseFloat(part, 64)
			if err != nil || v < 0 {
				return 0, false
			}
			secs = secs*60 + v
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch s[i:] {
	case "", "s", "sec", "secs":
		unit = time.Second
	case "m", "min", "mins":
		unit = time.Minute
	case "h", "hr", "hrs":
		unit = time.Hour
	default:
		d, err := time.ParseDuration(s)
		return d, err == nil && d >= 0
	}
	return time.Duration(v * float64(unit)), true
}
