package bot

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Verb is the subcommand of /contourpose.
type Verb string

// The verbs of /contourpose.
const (
	VerbTrain  Verb = "train"
	VerbStatus Verb = "status"
	VerbJobs   Verb = "jobs"
	VerbStop   Verb = "stop"
	VerbLogs   Verb = "logs"
	VerbCost   Verb = "cost"
	VerbBudget Verb = "budget"
	VerbGPUs   Verb = "gpus"
	VerbHelp   Verb = "help"
)

// Limits and defaults of the train command.
const (
	DefaultEpochs   = 150
	MaxEpochs       = 1000
	DefaultBatch    = 8
	MaxBatch        = 256
	DefaultLR       = 0.001
	MaxBudgetUSD    = 100000
	MaxClassLen     = 32
	MaxGPUTypeLen   = 64
	maxJobIDDigits  = 18
	shellMetachars  = ";|&$`<>(){}\\'\""
	slashCommand    = "/contourpose"
	allClassesToken = "all"
)

var (
	namePattern   = regexp.MustCompile(`^[a-z0-9_]+$`)
	numberPattern = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
	digitsPattern = regexp.MustCompile(`^[0-9]+$`)
)

// Command is one parsed /contourpose invocation. Only the fields of its Verb
// are set.
type Command struct {
	Verb Verb

	// Train: Classes are lowercased, deduplicated, in the order given; All
	// is set (and Classes empty) for "all". Budget 0 means the default cap.
	Classes []string
	All     bool
	Epochs  int
	Batch   int
	LR      float64
	GPU     string
	Budget  float64

	// JobID is the job of stop and logs, and of status when given (0 = none).
	JobID int64

	// SetBudget is the new team budget of "budget set USD" (0 = just show).
	SetBudget float64
}

// UsageError is a mistake in the command text. Msg says what was wrong, for
// a person; Usage is the usage line of the subcommand.
type UsageError struct {
	Msg   string
	Usage string
}

// Error returns the message followed by the usage line.
func (e *UsageError) Error() string { return e.Msg + "\n" + e.Usage }

var usages = map[Verb]string{
	VerbTrain:  "train <class|all|obj1,obj2> [epochs] [--batch N] [--lr X] [--gpu TYPE] [--budget USD]",
	VerbStatus: "status [#id]",
	VerbJobs:   "jobs",
	VerbStop:   "stop #id",
	VerbLogs:   "logs #id",
	VerbCost:   "cost",
	VerbBudget: "budget [set USD]",
	VerbGPUs:   "gpus",
	VerbHelp:   "help",
}

var verbOrder = []Verb{VerbTrain, VerbStatus, VerbJobs, VerbStop, VerbLogs, VerbCost, VerbBudget, VerbGPUs, VerbHelp}

var helpLines = map[Verb]string{
	VerbTrain:  "train a model on a Lambda GPU (defaults: 150 epochs, batch 8, lr 0.001)",
	VerbStatus: "show one job, or the running jobs",
	VerbJobs:   "list recent jobs",
	VerbStop:   "stop a job and terminate its instance",
	VerbLogs:   "show the tail of a job's training log",
	VerbCost:   "show this month's spend",
	VerbBudget: "show or set the monthly team budget",
	VerbGPUs:   "list GPU types, prices and regions with capacity",
	VerbHelp:   "show this help",
}

// Usage returns the usage line of a verb, "usage: /contourpose …". An
// unknown verb gets the list of all subcommands.
func Usage(v Verb) string {
	if u, ok := usages[v]; ok {
		return "usage: " + slashCommand + " " + u
	}
	names := make([]string, len(verbOrder))
	for i, v := range verbOrder {
		names[i] = string(v)
	}
	return "usage: " + slashCommand + " " + strings.Join(names, "|") + " (try " + slashCommand + " help)"
}

// HelpText returns the help shown for "/contourpose help".
func HelpText() string {
	var b strings.Builder
	b.WriteString("*" + slashCommand + "* trains ContourPose models on Lambda Cloud GPUs.\n")
	for _, v := range verbOrder {
		fmt.Fprintf(&b, "• `%s %s` — %s\n", slashCommand, usages[v], helpLines[v])
	}
	b.WriteString("Job ids are shown as #12; commands accept 12 or #12.")
	return b.String()
}

// FormatJobID returns the way a job id is shown, "#12".
func FormatJobID(id int64) string { return "#" + strconv.FormatInt(id, 10) }

// ParseJobID reads a job id written as "12" or "#12": a positive decimal
// number of at most 18 digits.
func ParseJobID(s string) (int64, error) {
	digits := strings.TrimPrefix(s, "#")
	if !digitsPattern.MatchString(digits) || len(digits) > maxJobIDDigits {
		return 0, fmt.Errorf("job id must be a positive whole number like #12, got %q", s)
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("job id must be a positive whole number like #12, got %q", s)
	}
	return id, nil
}

// ParseCommand parses the text of a /contourpose command. Empty text is the
// help command. Every error is a *UsageError. It checks shape only: whether
// a class or GPU type exists is for the job service to say.
func ParseCommand(text string) (Command, error) {
	fields := strings.Fields(text)
	verb := Verb("")
	if len(fields) > 0 {
		verb = Verb(strings.ToLower(fields[0]))
	}
	if _, ok := usages[verb]; !ok && len(fields) > 0 {
		verb = ""
	}
	if err := checkCharacters(text); err != nil {
		return Command{}, usageErr(verb, "%s", err)
	}
	if len(fields) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	if verb == "" {
		return Command{}, usageErr("", "unknown command %q", fields[0])
	}
	args := fields[1:]
	for i, a := range args {
		args[i] = undoDashAutocorrect(a)
	}
	if verb != VerbTrain {
		for _, a := range args {
			if strings.HasPrefix(a, "--") {
				return Command{}, usageErr(verb, "%s takes no flags, got %q", verb, a)
			}
		}
	}
	switch verb {
	case VerbTrain:
		return parseTrain(args)
	case VerbStatus:
		return parseStatus(args)
	case VerbStop, VerbLogs:
		return parseJobVerb(verb, args)
	case VerbBudget:
		return parseBudget(args)
	default:
		if len(args) > 0 {
			return Command{}, usageErr(verb, "%s takes no arguments, got %q", verb, args[0])
		}
		return Command{Verb: verb}, nil
	}
}

// undoDashAutocorrect turns a leading em or en dash, which chat clients
// make of a typed "--", back into "--".
func undoDashAutocorrect(word string) string {
	for _, dash := range []string{"\u2014", "\u2013"} {
		if rest, ok := strings.CutPrefix(word, dash); ok {
			return "--" + rest
		}
	}
	return word
}

func usageErr(v Verb, format string, a ...any) *UsageError {
	return &UsageError{Msg: fmt.Sprintf(format, a...), Usage: Usage(v)}
}

// checkCharacters refuses shell metacharacters and control characters
// anywhere in the text; ordinary spaces and tabs separate words.
func checkCharacters(text string) error {
	for _, r := range text {
		switch {
		case r == '\n' || r == '\r':
			return fmt.Errorf("the command must be on one line")
		case strings.ContainsRune(shellMetachars, r):
			return fmt.Errorf("character %q is not allowed", r)
		case r == '\t' || r == ' ':
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			return fmt.Errorf("character %q is not allowed", r)
		}
	}
	return nil
}

func parseStatus(args []string) (Command, error) {
	c := Command{Verb: VerbStatus}
	switch len(args) {
	case 0:
		return c, nil
	case 1:
		id, err := ParseJobID(args[0])
		if err != nil {
			return Command{}, usageErr(VerbStatus, "%s", err)
		}
		c.JobID = id
		return c, nil
	default:
		return Command{}, usageErr(VerbStatus, "unexpected argument %q", args[1])
	}
}

func parseJobVerb(v Verb, args []string) (Command, error) {
	if len(args) == 0 {
		return Command{}, usageErr(v, "%s needs a job id like #12", v)
	}
	if len(args) > 1 {
		return Command{}, usageErr(v, "unexpected argument %q", args[1])
	}
	id, err := ParseJobID(args[0])
	if err != nil {
		return Command{}, usageErr(v, "%s", err)
	}
	return Command{Verb: v, JobID: id}, nil
}

func parseBudget(args []string) (Command, error) {
	c := Command{Verb: VerbBudget}
	if len(args) == 0 {
		return c, nil
	}
	if strings.ToLower(args[0]) != "set" {
		return Command{}, usageErr(VerbBudget, "unexpected argument %q (to change the budget: budget set 500)", args[0])
	}
	if len(args) == 1 {
		return Command{}, usageErr(VerbBudget, "budget set needs an amount in USD")
	}
	if len(args) > 2 {
		return Command{}, usageErr(VerbBudget, "unexpected argument %q", args[2])
	}
	usd, err := parseUSD("budget", args[1])
	if err != nil {
		return Command{}, usageErr(VerbBudget, "%s", err)
	}
	c.SetBudget = usd
	return c, nil
}

// parseUSD reads a plain decimal amount in (0, MaxBudgetUSD].
func parseUSD(what, s string) (float64, error) {
	v, ok := parseDecimal(s)
	if !ok || v <= 0 || v > MaxBudgetUSD {
		return 0, fmt.Errorf("%s must be an amount in USD greater than 0 and at most %d, got %q", what, MaxBudgetUSD, s)
	}
	return v, nil
}

// parseDecimal reads a plain decimal number: no sign, hex, inf or nan.
func parseDecimal(s string) (float64, bool) {
	if !numberPattern.MatchString(s) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// parseWhole reads a decimal whole number in [lo, hi].
func parseWhole(s string, lo, hi int) (int, bool) {
	if !digitsPattern.MatchString(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// parseTrain reads "<classes> [epochs]" and the flags, in any order after
// the verb.
func parseTrain(args []string) (Command, error) {
	c := Command{Verb: VerbTrain, Epochs: DefaultEpochs, Batch: DefaultBatch, LR: DefaultLR}
	var positional []string
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || isNumberLike(a) {
			positional = append(positional, a)
			continue
		}
		if !strings.HasPrefix(a, "--") {
			return Command{}, usageErr(VerbTrain, "unknown flag %q (flags start with --)", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		name = strings.ToLower(name)
		if _, ok := trainFlags[name]; !ok {
			return Command{}, usageErr(VerbTrain, "unknown flag %q", "--"+name)
		}
		if seen[name] {
			return Command{}, usageErr(VerbTrain, "flag --%s is given twice", name)
		}
		seen[name] = true
		if !hasValue {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
				return Command{}, usageErr(VerbTrain, "flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := trainFlags[name](&c, value); err != nil {
			return Command{}, usageErr(VerbTrain, "%s", err)
		}
	}
	if len(positional) == 0 {
		return Command{}, usageErr(VerbTrain, "train needs a class, a comma list of classes, or all")
	}
	if len(positional) > 2 {
		return Command{}, usageErr(VerbTrain, "unexpected argument %q", positional[2])
	}
	if err := parseClasses(&c, positional[0]); err != nil {
		return Command{}, usageErr(VerbTrain, "%s", err)
	}
	if len(positional) == 2 {
		n, ok := parseWhole(positional[1], 1, MaxEpochs)
		if !ok {
			return Command{}, usageErr(VerbTrain, "epochs must be a whole number from 1 to %d, got %q", MaxEpochs, positional[1])
		}
		c.Epochs = n
	}
	return c, nil
}

// isNumberLike reports whether a word starting with "-" is a negative
// number, to be judged (and refused) as a value rather than as a flag.
func isNumberLike(s string) bool {
	_, ok := parseDecimal(strings.TrimPrefix(s, "-"))
	return ok
}

var trainFlags = map[string]func(*Command, string) error{
	"batch": func(c *Command, v string) error {
		n, ok := parseWhole(v, 1, MaxBatch)
		if !ok {
			return fmt.Errorf("batch must be a whole number from 1 to %d, got %q", MaxBatch, v)
		}
		c.Batch = n
		return nil
	},
	"lr": func(c *Command, v string) error {
		x, ok := parseDecimal(v)
		if !ok || x <= 0 || x > 1 {
			return fmt.Errorf("learning rate (--lr) must be a number greater than 0 and at most 1, got %q", v)
		}
		c.LR = x
		return nil
	},
	"gpu": func(c *Command, v string) error {
		name := strings.ToLower(v)
		if !namePattern.MatchString(name) || len(name) > MaxGPUTypeLen {
			return fmt.Errorf("GPU type must be a Lambda instance type name like gpu_1x_a100 (a-z, 0-9, _; at most %d characters), got %q", MaxGPUTypeLen, v)
		}
		c.GPU = name
		return nil
	},
	"budget": func(c *Command, v string) error {
		usd, err := parseUSD("budget", v)
		if err != nil {
			return err
		}
		c.Budget = usd
		return nil
	},
}

// parseClasses reads "all", one class, or a comma list without spaces.
func parseClasses(c *Command, word string) error {
	word = strings.ToLower(word)
	if word == allClassesToken {
		c.All = true
		return nil
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(word, ",") {
		switch {
		case name == "":
			return fmt.Errorf("empty class name in %q (write classes as obj1,obj2 without spaces)", word)
		case name == allClassesToken:
			return fmt.Errorf("all cannot be combined with other classes, got %q", word)
		case !namePattern.MatchString(name) || len(name) > MaxClassLen:
			return fmt.Errorf("class name must be letters, digits or _ (at most %d characters), got %q", MaxClassLen, name)
		case seen[name]:
			continue
		}
		seen[name] = true
		c.Classes = append(c.Classes, name)
	}
	return nil
}
