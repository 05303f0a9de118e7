package jobs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// This file holds what cpbot knows about the official ZJU-IVI/ContourPose
// code: its classes, a local preflight of the code and dataset folders, the
// training command line and the instance setup script.

// DefaultTrainCommand is the official main.py command line as a Go
// text/template over TrainParams' fields. --train and --eval are argparse
// type=bool flags: any non-empty value is true, an empty one false; --eval
// defaults to true and then needs test scene data after training.
const DefaultTrainCommand = "python3 -u main.py --train True --class_type {{.Class}} --epochs {{.Epochs}}" +
	" --batch_size {{.Batch}} --lr {{.LR}} --data_path {{.DataPath}}{{if not .Eval}} --eval ''{{end}}"

// DefaultSetupPackages are the pip packages ContourPose needs beyond what
// Lambda Stack ships (PyTorch, torchvision, NumPy, Pillow).
var DefaultSetupPackages = []string{
	"opencv-python-headless", "scikit-image", "scikit-learn", "PyYAML", "plyfile", "tqdm", "matplotlib",
}

// ErrTrainTemplate reports a training command template that does not parse or
// does not execute; it is an operator's configuration error.
var ErrTrainTemplate = errors.New("invalid training command template (CPBOT_TRAIN_COMMAND)")

var (
	cpClassRe    = regexp.MustCompile(`^[a-z0-9_]+$`)
	cpDataPathRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./-]*$`)
	cpSafeWordRe = regexp.MustCompile(`^[A-Za-z0-9_./=:,+-]+$`)
	// device_ids=[0, 1] as in the official main.py.
	cpDeviceIDsRe = regexp.MustCompile(`device_ids\s*=\s*\[([0-9,\s]*)\]`)
)

// Classes returns the ContourPose classes of the checkout in codeDir: the
// names of keypoints/*.txt that are valid class names, in natural order
// (obj1 obj2 … obj13). It fails with an EINVALID error when there are none.
func Classes(codeDir string) ([]string, error) {
	dir := filepath.Join(codeDir, "keypoints")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, Errorf(EINVALID, "cannot read the ContourPose keypoints folder %s: %v", dir, err)
	}
	var classes []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".txt")
		if !ok || e.IsDir() || !cpClassRe.MatchString(name) {
			continue
		}
		classes = append(classes, name)
	}
	if len(classes) == 0 {
		return nil, Errorf(EINVALID, "no classes: %s has no <class>.txt files", dir)
	}
	sort.Slice(classes, func(i, j int) bool { return cpNaturalLess(classes[i], classes[j]) })
	return classes, nil
}

// cpNaturalLess orders strings with runs of digits compared as numbers.
func cpNaturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := cpDigits(a), cpDigits(b)
		switch {
		case da > 0 && db > 0:
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
		case a[0] != b[0]:
			return a[0] < b[0]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return len(a) < len(b)
}

func cpDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// TrainParams are the values of one training run, as the training command
// template sees them. Strings are validated and shell-quoted before they
// reach the template.
type TrainParams struct {
	Class    string  // ^[a-z0-9_]+$
	Epochs   int     // 1..1000
	Batch    int     // 1..256
	LR       float64 // (0, 1]
	DataPath string  // relative, clean, no ".."; "" means "data"
	Eval     bool    // run the official evaluation after training
	Workers  int     // DataLoader workers for custom templates; 0..1024, 0 = unset
}

// validate returns an EINVALID error naming the first bad value.
func (p TrainParams) validate() error {
	switch {
	case !cpClassRe.MatchString(p.Class):
		return Errorf(EINVALID, "invalid class %q: use lowercase letters, digits and _", p.Class)
	case p.Epochs < 1 || p.Epochs > 1000:
		return Errorf(EINVALID, "epochs must be 1–1000, not %d", p.Epochs)
	case p.Batch < 1 || p.Batch > 256:
		return Errorf(EINVALID, "batch size must be 1–256, not %d", p.Batch)
	case math.IsNaN(p.LR) || p.LR <= 0 || p.LR > 1:
		return Errorf(EINVALID, "learning rate must be in (0, 1], not %v", p.LR)
	case p.Workers < 0 || p.Workers > 1024:
		return Errorf(EINVALID, "workers must be 0–1024, not %d", p.Workers)
	}
	return cpCheckRelPath("data path", p.DataPath)
}

// cpCheckRelPath accepts a clean relative path without "..".
func cpCheckRelPath(what, p string) error {
	if !cpDataPathRe.MatchString(p) || path.Clean(p) != p || p == "." {
		return Errorf(EINVALID, "invalid %s %q: use a clean relative path of letters, digits, _ . - /", what, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return Errorf(EINVALID, "invalid %s %q: \"..\" is not allowed", what, p)
		}
	}
	return nil
}

// RenderTrainCommand validates p and renders the training command template
// tmpl (DefaultTrainCommand when empty) with it. Bad values are EINVALID
// errors; a template that does not parse or execute wraps ErrTrainTemplate.
func RenderTrainCommand(tmpl string, p TrainParams) (string, error) {
	if tmpl == "" {
		tmpl = DefaultTrainCommand
	}
	if p.DataPath == "" {
		p.DataPath = "data"
	}
	t, err := template.New("train").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrTrainTemplate, err)
	}
	if err := p.validate(); err != nil {
		return "", err
	}
	data := map[string]any{
		"Class":    cpShellQuote(p.Class),
		"Epochs":   p.Epochs,
		"Batch":    p.Batch,
		"LR":       strconv.FormatFloat(p.LR, 'g', -1, 64),
		"DataPath": cpShellQuote(p.DataPath),
		"Eval":     p.Eval,
		"Workers":  p.Workers,
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%w: %v", ErrTrainTemplate, err)
	}
	cmd := strings.TrimSpace(b.String())
	if cmd == "" {
		return "", fmt.Errorf("%w: it renders an empty command", ErrTrainTemplate)
	}
	return cmd, nil
}

// ValidateTrainCommand renders tmpl with sample values, so a bad
// CPBOT_TRAIN_COMMAND is reported at start-up rather than at the first job.
func ValidateTrainCommand(tmpl string) error {
	_, err := RenderTrainCommand(tmpl, TrainParams{Class: "obj1", Epochs: 1, Batch: 1, LR: 0.001, Workers: 1})
	return err
}

// cpShellQuote returns s as one POSIX shell word: unchanged when it holds
// only safe characters, single-quoted otherwise.
func cpShellQuote(s string) string {
	if cpSafeWordRe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cpDeviceIDs returns the number of GPU ids main.py hard-codes in
// nn.DataParallel(..., device_ids=[...]), and the text; 0 when none.
func cpDeviceIDs(mainPy []byte) (int, string) {
	m := cpDeviceIDsRe.FindSubmatch(mainPy)
	if m == nil {
		return 0, ""
	}
	n := 0
	for _, f := range strings.Split(string(m[1]), ",") {
		if strings.TrimSpace(f) != "" {
			n++
		}
	}
	return n, string(m[0])
}

// Preflight checks a ContourPose checkout and dataset on the bot's host before
// anything is launched, so a bad layout costs nothing.
type Preflight struct {
	CodeDir    string   // the local checkout (CPBOT_CODE_DIR)
	DatasetDir string   // the local data/ folder (CPBOT_DATASET_DIR); "" when none
	Classes    []string // the classes to train; empty means every class of the checkout
	GPUs       int      // GPUs of the instance type to launch; 0 when not known yet
}

// cpDatasetFiles are paths inside data/train/<class>/ that the official
// dataset code opens at start; "{}" stands for the class.
var cpDatasetFiles = []struct{ name, marker string }{
	{"{}.txt", `"{}.txt"`},
	{"Intrinsic.yml", "Intrinsic.yml"},
	{"gt.yml", "gt.yml"},
	{"photo_cut", "photo_cut"},
}

// Check returns an EINVALID error naming every missing piece and where it
// should be: main.py and keypoints/<class>.txt in the code folder, a
// non-empty train/<class>/ in the dataset folder. Warnings describe what
// the setup step will patch on the instance (a DataParallel device list
// longer than GPUs, a missing SUN2012 background folder) and files the
// official dataset code opens that are missing.
func (p Preflight) Check() (warnings []string, err error) {
	if p.CodeDir == "" {
		return nil, Errorf(EINVALID, "no ContourPose code folder is configured (CPBOT_CODE_DIR)")
	}
	mainPath := filepath.Join(p.CodeDir, "main.py")
	mainPy, err := os.ReadFile(mainPath)
	if err != nil {
		return nil, Errorf(EINVALID, "%s is missing or unreadable: CPBOT_CODE_DIR must be a ContourPose checkout", mainPath)
	}
	classes := p.Classes
	if len(classes) == 0 {
		if classes, err = Classes(p.CodeDir); err != nil {
			return nil, err
		}
	}
	var missing []string
	for _, c := range classes {
		if !cpClassRe.MatchString(c) {
			return nil, Errorf(EINVALID, "invalid class %q: use lowercase letters, digits and _", c)
		}
		if !cpIsFile(filepath.Join(p.CodeDir, "keypoints", c+".txt")) {
			missing = append(missing, c+".txt")
		}
	}
	if len(missing) > 0 {
		return nil, Errorf(EINVALID, "missing keypoint files in %s: %s",
			filepath.Join(p.CodeDir, "keypoints"), strings.Join(missing, ", "))
	}
	code := cpCodeText(p.CodeDir, mainPy)
	if n, text := cpDeviceIDs(mainPy); p.GPUs > 0 && n > p.GPUs {
		warnings = append(warnings, fmt.Sprintf("main.py hard-codes nn.DataParallel %s (%d GPUs) but the instance has %d; "+
			"the setup step will patch it to device_ids=%s", text, n, p.GPUs, cpIDList(p.GPUs)))
	}
	dw, err := p.checkDataset(classes, code)
	return append(warnings, dw...), err
}

// checkDataset checks DatasetDir for the classes; code is the text of the
// checkout's Python files.
func (p Preflight) checkDataset(classes []string, code string) ([]string, error) {
	if p.DatasetDir == "" {
		return []string{"no dataset folder is configured (CPBOT_DATASET_DIR): training works only if " +
			"data/train/<class>/ is already on the instance"}, nil
	}
	if st, err := os.Stat(p.DatasetDir); err != nil || !st.IsDir() {
		return nil, Errorf(EINVALID, "the dataset folder %s does not exist (CPBOT_DATASET_DIR)", p.DatasetDir)
	}
	var missing, warnings []string
	for _, c := range classes {
		dir := filepath.Join(p.DatasetDir, "train", c)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			missing = append(missing, c)
			continue
		}
		var lacks []string
		for _, f := range cpDatasetFiles {
			name := strings.ReplaceAll(f.name, "{}", c)
			if strings.Contains(code, f.marker) && !cpExists(filepath.Join(dir, name)) {
				lacks = append(lacks, name)
			}
		}
		if len(lacks) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s lacks %s, which the dataset code opens at start",
				dir, strings.Join(lacks, ", ")))
		}
	}
	if len(missing) > 0 {
		return nil, Errorf(EINVALID, "the dataset has no training data for %s: expected non-empty folders %s",
			strings.Join(missing, ", "), filepath.Join(p.DatasetDir, "train", "<class>"))
	}
	sun := filepath.Join(p.DatasetDir, "SUN2012pascalformat", "JPEGImages")
	if strings.Contains(code, "SUN2012") {
		if entries, err := os.ReadDir(sun); err != nil || len(entries) == 0 {
			warnings = append(warnings, fmt.Sprintf("no SUN2012 background images in %s: the setup step creates "+
				"a plain stand-in, so random backgrounds add nothing to training", sun))
		}
	}
	return warnings, nil
}

// cpCodeText returns main.py and the checkout's dataset/*.py as one text.
func cpCodeText(codeDir string, mainPy []byte) string {
	var b strings.Builder
	b.Write(mainPy)
	files, _ := filepath.Glob(filepath.Join(codeDir, "dataset", "*.py"))
	for _, f := range files {
		if body, err := os.ReadFile(f); err == nil {
			b.WriteByte('\n')
			b.Write(body)
		}
	}
	return b.String()
}

// cpIDList returns "[0, 1, …, n-1]" for n >= 1.
func cpIDList(n int) string {
	ids := make([]string, max(n, 1))
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return "[" + strings.Join(ids, ", ") + "]"
}

func cpIsFile(name string) bool {
	st, err := os.Stat(name)
	return err == nil && st.Mode().IsRegular()
}

func cpExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
