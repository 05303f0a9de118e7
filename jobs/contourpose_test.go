package jobs_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cpbot/cpbot/jobs"
)

// cpWriteFiles creates files under root; a name ending in "/" is a folder.
func cpWriteFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func cpWantInvalid(t *testing.T, err error, parts ...string) {
	t.Helper()
	if jobs.ErrorCode(err) != jobs.EINVALID {
		t.Fatalf("error = %v (code %q), want code %q", err, jobs.ErrorCode(err), jobs.EINVALID)
	}
	for _, p := range parts {
		if !strings.Contains(jobs.ErrorMessage(err), p) {
			t.Errorf("message %q lacks %q", jobs.ErrorMessage(err), p)
		}
	}
}

func TestClasses(t *testing.T) {
	t.Run("natural order, only valid class files", func(t *testing.T) {
		dir := t.TempDir()
		cpWriteFiles(t, dir, map[string]string{
			"keypoints/obj13.txt": "1", "keypoints/obj2.txt": "1", "keypoints/obj1.txt": "1",
			"keypoints/obj32.txt": "1", "keypoints/obj3.txt": "1", "keypoints/README.md": "x",
			"keypoints/Obj 9.txt": "1", "keypoints/sub.txt/": "",
		})
		got, err := jobs.Classes(dir)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"obj1", "obj2", "obj3", "obj13", "obj32"}; !slices.Equal(got, want) {
			t.Fatalf("Classes() = %v, want %v", got, want)
		}
	})
	t.Run("no keypoints folder", func(t *testing.T) {
		dir := t.TempDir()
		_, err := jobs.Classes(dir)
		cpWantInvalid(t, err, filepath.Join(dir, "keypoints"))
	})
	t.Run("no class files", func(t *testing.T) {
		dir := t.TempDir()
		cpWriteFiles(t, dir, map[string]string{"keypoints/notes.md": "x"})
		_, err := jobs.Classes(dir)
		cpWantInvalid(t, err, "no classes", filepath.Join(dir, "keypoints"))
	})
}

const cpOfficialMain = `    if args.train:
        train_set = MyDataset(args.data_path, args.class_type, is_train=True)
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=8)
    if args.eval:
        test_set = MyDataset(args.data_path, args.class_type, is_train=False, scene=args.scene, index=args.index)
        test_loader = DataLoader(
            test_set, batch_size=args.batch_size, shuffle=False, num_workers=8
        )
    ContourNet = ContourPose(heatmap_dim=corners.shape[0])

    ContourNet = nn.DataParallel(ContourNet, device_ids=[0, 1])
    ContourNet = ContourNet.to(device)
`

const cpOfficialDataset = `        self.corners = np.loadtxt(os.path.join(root, "train", cls, "{}.txt".format(cls)))  # KEYPOINTS
        self.bg_imgs_path = os.path.join(os.getcwd(), "bg_imgs.npy")
        self.sun_path = os.path.join(root, "SUN2012pascalformat")
        self.get_bg_imgs()
        self.bg_imgs = np.load(self.bg_imgs_path).astype(np.str)
            self.K = yaml.load(open(osp.join(self.path, 'Intrinsic.yml'), 'r'))
            self.train_pose = yaml.load(open(osp.join(self.path, 'gt.yml'), 'r'))
        count = os.listdir(osp.join(self.path, "photo_cut"))
        img_paths = glob.glob(os.path.join(self.sun_path, 'JPEGImages/*'))
`

// cpLayout returns a code and a dataset folder for obj1 and obj2 that pass
// preflight; drop removes names, add writes more.
func cpLayout(t *testing.T, drop []string, add map[string]string) (code, data string) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"code/main.py": cpOfficialMain, "code/dataset/Dataset.py": cpOfficialDataset,
		"code/keypoints/obj1.txt": "1 2 3\n", "code/keypoints/obj2.txt": "1 2 3\n",
		"data/SUN2012pascalformat/JPEGImages/a.jpg": "jpg",
	}
	for _, c := range []string{"obj1", "obj2"} {
		for _, f := range []string{c + ".txt", "Intrinsic.yml", "gt.yml", "photo_cut/0.png"} {
			files["data/train/"+c+"/"+f] = "x"
		}
	}
	for _, d := range drop {
		for name := range files {
			if name == d || strings.HasPrefix(name, d+"/") {
				delete(files, name)
			}
		}
	}
	for k, v := range add {
		files[k] = v
	}
	cpWriteFiles(t, root, files)
	return filepath.Join(root, "code"), filepath.Join(root, "data")
}

func TestPreflightCheck(t *testing.T) {
	tests := []struct {
		name      string
		drop      []string
		add       map[string]string
		classes   []string
		gpus      int
		noDataset bool
		wantErr   []string // parts of an EINVALID message; nil means no error
		wantWarns []string // one part per expected warning, in order
	}{
		{name: "complete layout, two GPUs", gpus: 2},
		{name: "unknown GPU count", gpus: 0},
		{name: "one GPU warns about DataParallel", gpus: 1,
			wantWarns: []string{"nn.DataParallel device_ids=[0, 1] (2 GPUs) but the instance has 1; the setup step will patch it to device_ids=[0]"}},
		{name: "missing main.py", drop: []string{"code/main.py"}, gpus: 1, wantErr: []string{"main.py", "CPBOT_CODE_DIR"}},
		{name: "missing keypoint file", drop: []string{"code/keypoints/obj2.txt"}, classes: []string{"obj1", "obj2", "obj9"},
			wantErr: []string{"missing keypoint files", "keypoints", "obj2.txt, obj9.txt"}},
		{name: "invalid class name", classes: []string{"obj1;reboot"}, wantErr: []string{`invalid class "obj1;reboot"`}},
		{name: "missing train folder", drop: []string{"data/train/obj2"}, wantErr: []string{"obj2", filepath.Join("train", "<class>")}},
		{name: "empty train folder", drop: []string{"data/train/obj1"}, add: map[string]string{"data/train/obj1/": ""},
			wantErr: []string{"no training data for obj1"}},
		{name: "only the requested class is needed", drop: []string{"data/train/obj2"}, classes: []string{"obj1"}, gpus: 2},
		{name: "no dataset folder configured", noDataset: true, gpus: 2, wantWarns: []string{"CPBOT_DATASET_DIR"}},
		{name: "missing SUN2012", drop: []string{"data/SUN2012pascalformat"}, gpus: 2,
			wantWarns: []string{filepath.Join("data", "SUN2012pascalformat", "JPEGImages") + ": the setup step creates a plain stand-in"}},
		{name: "SUN2012 not needed by the code", drop: []string{"data/SUN2012pascalformat", "code/dataset"}, gpus: 2},
		{name: "files the dataset code opens", drop: []string{"data/train/obj1/gt.yml", "data/train/obj1/obj1.txt"}, gpus: 2,
			wantWarns: []string{filepath.Join("train", "obj1") + " lacks obj1.txt, gt.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, data := cpLayout(t, tt.drop, tt.add)
			if tt.noDataset {
				data = ""
			}
			warns, err := jobs.Preflight{CodeDir: code, DatasetDir: data, Classes: tt.classes, GPUs: tt.gpus}.Check()
			if tt.wantErr != nil {
				cpWantInvalid(t, err, tt.wantErr...)
				return
			}
			if err != nil {
				t.Fatalf("Check() error = %v", err)
			}
			if len(warns) != len(tt.wantWarns) {
				t.Fatalf("Check() warnings = %q, want %d", warns, len(tt.wantWarns))
			}
			for i, w := range tt.wantWarns {
				if !strings.Contains(warns[i], w) {
					t.Errorf("warning %q lacks %q", warns[i], w)
				}
			}
		})
	}
	t.Run("missing dataset folder", func(t *testing.T) {
		code, _ := cpLayout(t, nil, nil)
		_, err := jobs.Preflight{CodeDir: code, DatasetDir: filepath.Join(code, "nope"), GPUs: 1}.Check()
		cpWantInvalid(t, err, filepath.Join(code, "nope"))
	})
	t.Run("no code folder configured", func(t *testing.T) {
		_, err := jobs.Preflight{}.Check()
		cpWantInvalid(t, err, "CPBOT_CODE_DIR")
	})
}

// cpShellWords returns the arguments sh makes of cmd.
func cpShellWords(t *testing.T, cmd string) []string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", `set -- `+cmd+`; for a; do printf '[%s]\n' "$a"; done`).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	var words []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		words = append(words, strings.TrimSuffix(strings.TrimPrefix(l, "["), "]"))
	}
	return words
}

func TestRenderTrainCommand(t *testing.T) {
	ok := jobs.TrainParams{Class: "obj1", Epochs: 150, Batch: 8, LR: 0.001}
	with := func(f func(*jobs.TrainParams)) jobs.TrainParams { p := ok; f(&p); return p }
	t.Run("valid", func(t *testing.T) {
		tests := []struct {
			name string
			tmpl string
			p    jobs.TrainParams
			want string
		}{
			{"default template, no evaluation", "", ok,
				"python3 -u main.py --train True --class_type obj1 --epochs 150 --batch_size 8 --lr 0.001 --data_path data --eval ''"},
			{"default template with evaluation", jobs.DefaultTrainCommand,
				with(func(p *jobs.TrainParams) { p.Eval, p.DataPath, p.LR = true, "sets/data_v2", 1 }),
				"python3 -u main.py --train True --class_type obj1 --epochs 150 --batch_size 8 --lr 1 --data_path sets/data_v2"},
			{"lr formatted plainly", "", with(func(p *jobs.TrainParams) { p.LR = 2.5e-5; p.Class = "obj_32" }),
				"python3 -u main.py --train True --class_type obj_32 --epochs 150 --batch_size 8 --lr 2.5e-05 --data_path data --eval ''"},
			{"custom template", "OMP_NUM_THREADS={{.Workers}} python -u train.py {{.Class}} -e {{.Epochs}} -b {{.Batch}}{{if .Eval}} --eval{{end}}",
				with(func(p *jobs.TrainParams) { p.Workers = 30; p.Eval = true }),
				"OMP_NUM_THREADS=30 python -u train.py obj1 -e 150 -b 8 --eval"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := jobs.RenderTrainCommand(tt.tmpl, tt.p)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("got  %s\nwant %s", got, tt.want)
				}
			})
		}
	})
	t.Run("shell sees --eval as an empty argument", func(t *testing.T) {
		got, err := jobs.RenderTrainCommand("", ok)
		if err != nil {
			t.Fatal(err)
		}
		words := cpShellWords(t, got)
		if len(words) != 17 || words[15] != "--eval" || words[16] != "" {
			t.Fatalf("sh words = %q", words)
		}
	})
	t.Run("hostile or out-of-range values", func(t *testing.T) {
		tests := []struct {
			name string
			p    jobs.TrainParams
		}{
			{"command substitution in class", with(func(p *jobs.TrainParams) { p.Class = "$(reboot)" })},
			{"separator in class", with(func(p *jobs.TrainParams) { p.Class = "obj1; rm -rf ~" })},
			{"quote in class", with(func(p *jobs.TrainParams) { p.Class = "obj1'" })},
			{"upper-case class", with(func(p *jobs.TrainParams) { p.Class = "OBJ1" })},
			{"empty class", with(func(p *jobs.TrainParams) { p.Class = "" })},
			{"newline in class", with(func(p *jobs.TrainParams) { p.Class = "obj1\nreboot" })},
			{"zero epochs", with(func(p *jobs.TrainParams) { p.Epochs = 0 })},
			{"too many epochs", with(func(p *jobs.TrainParams) { p.Epochs = 1001 })},
			{"zero batch", with(func(p *jobs.TrainParams) { p.Batch = 0 })},
			{"batch too big", with(func(p *jobs.TrainParams) { p.Batch = 257 })},
			{"zero lr", with(func(p *jobs.TrainParams) { p.LR = 0 })},
			{"negative lr", with(func(p *jobs.TrainParams) { p.LR = -0.1 })},
			{"lr above one", with(func(p *jobs.TrainParams) { p.LR = 1.5 })},
			{"NaN lr", with(func(p *jobs.TrainParams) { p.LR = math.NaN() })},
			{"infinite lr", with(func(p *jobs.TrainParams) { p.LR = math.Inf(1) })},
			{"negative workers", with(func(p *jobs.TrainParams) { p.Workers = -1 })},
			{"absolute data path", with(func(p *jobs.TrainParams) { p.DataPath = "/etc" })},
			{"parent data path", with(func(p *jobs.TrainParams) { p.DataPath = "../data" })},
			{"inner parent data path", with(func(p *jobs.TrainParams) { p.DataPath = "a/../../b" })},
			{"unclean data path", with(func(p *jobs.TrainParams) { p.DataPath = "data//x" })},
			{"trailing slash", with(func(p *jobs.TrainParams) { p.DataPath = "data/" })},
			{"dot data path", with(func(p *jobs.TrainParams) { p.DataPath = "." })},
			{"space in data path", with(func(p *jobs.TrainParams) { p.DataPath = "my data" })},
			{"substitution in data path", with(func(p *jobs.TrainParams) { p.DataPath = "data$(id)" })},
			{"option as data path", with(func(p *jobs.TrainParams) { p.DataPath = "-rf" })},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := jobs.RenderTrainCommand("", tt.p)
				if jobs.ErrorCode(err) != jobs.EINVALID {
					t.Fatalf("RenderTrainCommand() = %q, %v; want an %s error", got, err, jobs.EINVALID)
				}
			})
		}
	})
	t.Run("bad templates", func(t *testing.T) {
		for _, tmpl := range []string{"python3 main.py {{.Class", "python3 main.py {{.Nope}}", "{{if .Eval}}{{end}}", "{{.Class.Foo}}"} {
			_, err := jobs.RenderTrainCommand(tmpl, ok)
			if !errors.Is(err, jobs.ErrTrainTemplate) {
				t.Errorf("template %q: error = %v, want ErrTrainTemplate", tmpl, err)
			}
			if err := jobs.ValidateTrainCommand(tmpl); !errors.Is(err, jobs.ErrTrainTemplate) {
				t.Errorf("ValidateTrainCommand(%q) = %v, want ErrTrainTemplate", tmpl, err)
			}
		}
		if err := jobs.ValidateTrainCommand(jobs.DefaultTrainCommand); err != nil {
			t.Errorf("ValidateTrainCommand(default) = %v", err)
		}
	})
}

// cpStubPython stands in for python3 on an instance. Modules in $STUB_MODULES
// import, and so do those pip installed (kept in $STUB_DIR/installed);
// $STUB_CUDA=1 makes CUDA available; $STUB_GPUS is the GPU count. Every
// -c program goes to $STUB_DIR/calls.log, every pip run to pip.log.
const cpStubPython = `#!/bin/sh
if [ "$1" = -m ] && [ "$2" = pip ]; then
	shift 2
	echo "$* index=${PIP_INDEX_URL-}" >>"$STUB_DIR/pip.log"
	for a; do
		case $a in -* | install) ;; *) echo "$a" >>"$STUB_DIR/installed" ;; esac
	done
	exit 0
fi
[ "$1" = -c ] || exit 2
printf '%s\n' "$2" >>"$STUB_DIR/calls.log"
case $2 in
*cuda.is_available*) [ "$STUB_CUDA" = 1 ]; exit ;;
*device_count*) echo "$STUB_GPUS"; exit 0 ;;
*resnet18*)
	mkdir -p "$HOME/.cache/torch/hub/checkpoints"
	echo weights >"$HOME/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth"
	exit 0 ;;
*bg_imgs*) exit 1 ;;
"import "*)
	mod=${2#import }
	for m in $STUB_MODULES; do [ "$m" = "$mod" ] && exit 0; done
	[ -f "$STUB_DIR/installed" ] || exit 1
	while read -r p; do
		case $p in
		opencv-python-headless) m=cv2 ;; scikit-image) m=skimage ;; scikit-learn) m=sklearn ;;
		PyYAML) m=yaml ;; Pillow*) m=PIL ;; *) m=$p ;;
		esac
		[ "$m" = "$mod" ] && exit 0
	done <"$STUB_DIR/installed"
	exit 1 ;;
esac
exit 3
`

// cpInstance is a home folder with ContourPose uploaded to contourpose/, and
// a PATH whose python3 is cpStubPython.
type cpInstance struct {
	home, stub, code string
	env              []string
}

func cpNewInstance(t *testing.T, env ...string) *cpInstance {
	t.Helper()
	root := t.TempDir()
	in := &cpInstance{home: filepath.Join(root, "home"), stub: filepath.Join(root, "stub")}
	in.code = filepath.Join(in.home, "contourpose")
	cpWriteFiles(t, in.code, map[string]string{
		"main.py": cpOfficialMain, "dataset/Dataset.py": cpOfficialDataset,
		"bg_imgs.npy": "stale list from the laptop", "data/train/obj1/obj1.txt": "1",
	})
	cpWriteFiles(t, in.stub, map[string]string{"bin/python3": cpStubPython})
	if err := os.Chmod(filepath.Join(in.stub, "bin", "python3"), 0o755); err != nil {
		t.Fatal(err)
	}
	in.env = append([]string{
		"HOME=" + in.home, "PATH=" + filepath.Join(in.stub, "bin") + ":/usr/bin:/bin", "STUB_DIR=" + in.stub,
		"STUB_CUDA=1", "STUB_GPUS=1", "STUB_MODULES=numpy tqdm yaml PIL",
	}, env...)
	return in
}

// run runs script with /bin/sh from a folder outside the home.
func (in *cpInstance) run(t *testing.T, script string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = in.stub
	cmd.Env = in.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (in *cpInstance) read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.stub, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// hashes returns the SHA-256 of every file under the home.
func (in *cpInstance) hashes(t *testing.T) map[string][32]byte {
	t.Helper()
	m := map[string][32]byte{}
	err := filepath.WalkDir(in.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSetupScriptSyntax(t *testing.T) {
	for _, o := range []jobs.SetupOptions{
		{},
		{WorkDir: "contourpose/job 7", GPUs: 8, VCPUs: 208, PipIndexURL: "http://127.0.0.1:9/simple"},
		{Packages: []string{"torch", "bad name", "$(reboot)", "numpy<2", "opencv-python-headless"}},
	} {
		script := jobs.SetupScript(o)
		out, err := exec.Command("/bin/sh", "-n", "-c", script).CombinedOutput()
		if err != nil {
			t.Errorf("sh -n on the script for %+v: %v\n%s", o, err, out)
		}
		for _, bad := range []string{"requirements.txt", "pip install torch", "#!/bin/bash", "[[ ", "source "} {
			if strings.Contains(script, bad) {
				t.Errorf("script for %+v contains %q", o, bad)
			}
		}
		if !strings.HasPrefix(script, "#!/bin/sh\n") || !strings.Contains(script, "set -eu\n") {
			t.Errorf("script for %+v does not start as a strict sh script", o)
		}
	}
}

func TestSetupScriptRunsTwice(t *testing.T) {
	in := cpNewInstance(t)
	script := jobs.SetupScript(jobs.SetupOptions{WorkDir: "contourpose", GPUs: 1, VCPUs: 30})

	out, errOut, err := in.run(t, script)
	if err != nil {
		t.Fatalf("first run: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "cpbot-setup: ") {
			t.Errorf("stdout line without the cpbot-setup prefix: %q", l)
		}
	}
	if !strings.HasSuffix(out, "cpbot-setup: done\n") {
		t.Errorf("stdout does not end with done:\n%s", out)
	}

	pip := in.read(t, "pip.log")
	if want := "install --user --quiet opencv-python-headless scikit-image scikit-learn plyfile matplotlib index=\n"; pip != want {
		t.Errorf("pip runs:\n%s\nwant one run:\n%s", pip, want)
	}

	main, err := os.ReadFile(filepath.Join(in.code, "main.py"))
	if err != nil {
		t.Fatal(err)
	}
	wantMain := strings.ReplaceAll(cpOfficialMain, "num_workers=8", "num_workers=30")
	wantMain = strings.Replace(wantMain, "device_ids=[0, 1]", "device_ids=[0]", 1)
	if string(main) != wantMain {
		t.Errorf("patched main.py:\n%s\nwant:\n%s", main, wantMain)
	}
	ds, err := os.ReadFile(filepath.Join(in.code, "dataset", "Dataset.py"))
	if err != nil {
		t.Fatal(err)
	}
	wantDS := strings.ReplaceAll(cpOfficialDataset, "astype(np.str)", "astype(str)")
	wantDS = strings.ReplaceAll(wantDS, "yaml.load(", "yaml.safe_load(")
	if string(ds) != wantDS {
		t.Errorf("patched Dataset.py:\n%s\nwant:\n%s", ds, wantDS)
	}
	for name, want := range map[string]string{"main.py.orig": cpOfficialMain, "dataset/Dataset.py.orig": cpOfficialDataset} {
		if b, err := os.ReadFile(filepath.Join(in.code, name)); err != nil || string(b) != want {
			t.Errorf("%s: %v; does not hold the original", name, err)
		}
	}

	sun := filepath.Join(in.code, "data", "SUN2012pascalformat", "JPEGImages")
	entries, err := os.ReadDir(sun)
	if err != nil || len(entries) != 1 {
		t.Fatalf("SUN2012 stand-in folder: %v, %d entries", err, len(entries))
	}
	img, err := os.ReadFile(filepath.Join(sun, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	header := "P6\n1280 960\n255\n"
	if !strings.HasPrefix(string(img), header) || len(img) != len(header)+1280*960*3 {
		t.Fatalf("stand-in image: %d bytes, header %q", len(img), img[:min(len(img), 20)])
	}
	if pix := img[len(header):]; bytes.Count(pix, []byte{0x80}) != len(pix) {
		t.Error("stand-in image is not uniformly mid-grey")
	}
	if _, err := os.Stat(filepath.Join(in.code, "bg_imgs.npy")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale bg_imgs.npy kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(in.home, ".cache/torch/hub/checkpoints/resnet18-f37072fd.pth")); err != nil {
		t.Errorf("resnet18 weights not fetched: %v", err)
	}

	before, calls := in.hashes(t), in.read(t, "calls.log")
	out2, errOut2, err := in.run(t, script)
	if err != nil {
		t.Fatalf("second run: %v\nstdout:\n%s\nstderr:\n%s", err, out2, errOut2)
	}
	if got := in.read(t, "pip.log"); got != pip {
		t.Errorf("second run ran pip: %q", strings.TrimPrefix(got, pip))
	}
	if after := in.hashes(t); !cpSameHashes(before, after) {
		t.Errorf("second run changed files: %d before, %d after", len(before), len(after))
		for p, h := range after {
			if before[p] != h {
				t.Errorf("changed: %s", p)
			}
		}
	}
	if again := strings.TrimPrefix(in.read(t, "calls.log"), calls); strings.Contains(again, "resnet18") {
		t.Errorf("second run fetched resnet18 again")
	}
	for _, s := range []string{"Python packages already present", "fits 1 GPU(s)", "num_workers already 30",
		"needs no NumPy or PyYAML fix", "already cached", "SUN2012 background images present"} {
		if !strings.Contains(out2, s) {
			t.Errorf("second run output lacks %q:\n%s", s, out2)
		}
	}
}

func cpSameHashes(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSetupScriptVariants(t *testing.T) {
	nproc, err := exec.Command("/bin/sh", "-c", "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN").Output()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     jobs.SetupOptions
		env      []string
		main     string // replaces cpOfficialMain when set
		wantMain string // "" means unchanged
		wantPip  string
	}{
		{name: "two GPUs keep DataParallel", opts: jobs.SetupOptions{WorkDir: "contourpose", GPUs: 2, VCPUs: 8},
			env: []string{"STUB_MODULES=cv2 skimage sklearn yaml plyfile tqdm matplotlib"}},
		{name: "GPU count asked on the instance", opts: jobs.SetupOptions{WorkDir: "contourpose", VCPUs: 8},
			env:      []string{"STUB_GPUS=1", "STUB_MODULES=cv2 skimage sklearn yaml plyfile tqdm matplotlib"},
			wantMain: strings.Replace(cpOfficialMain, "device_ids=[0, 1]", "device_ids=[0]", 1)},
		{name: "four GPUs found on the instance", opts: jobs.SetupOptions{WorkDir: "contourpose", VCPUs: 8},
			env: []string{"STUB_GPUS=4", "STUB_MODULES=cv2 skimage sklearn yaml plyfile tqdm matplotlib"}},
		{name: "garbage GPU count means one", opts: jobs.SetupOptions{WorkDir: "contourpose", VCPUs: 8},
			env:      []string{"STUB_GPUS=oops", "STUB_MODULES=cv2 skimage sklearn yaml plyfile tqdm matplotlib"},
			wantMain: strings.Replace(cpOfficialMain, "device_ids=[0, 1]", "device_ids=[0]", 1)},
		{name: "four hard-coded ids on two GPUs", opts: jobs.SetupOptions{WorkDir: "contourpose", GPUs: 2, VCPUs: 8},
			env:      []string{"STUB_MODULES=cv2 skimage sklearn yaml plyfile tqdm matplotlib"},
			main:     "net = nn.DataParallel(net, device_ids = [0,1,2,3])\n",
			wantMain: "net = nn.DataParallel(net, device_ids=[0, 1])\n"},
		{name: "vCPUs from nproc", opts: jobs.SetupOptions{WorkDir: "contourpose", GPUs: 2},
			env:      []string{"STUB_MODULES=cv2 skimage sklearn yaml plyfile tqdm matplotlib"},
			wantMain: strings.ReplaceAll(cpOfficialMain, "num_workers=8", "num_workers="+strings.TrimSpace(string(nproc)))},
		{name: "nothing hard-coded", opts: jobs.SetupOptions{WorkDir: "contourpose", GPUs: 1, VCPUs: 30},
			env:  []string{"STUB_MODULES=cv2 skimage sklearn yaml plyfile tqdm matplotlib"},
			main: "loader = DataLoader(ds, num_workers=args.workers)\nnet = nn.DataParallel(net)\n"},
		{name: "custom packages: torch never, invalid skipped", opts: jobs.SetupOptions{WorkDir: "contourpose", GPUs: 2, VCPUs: 8,
			Packages: []string{"torch", "torchvision", "tqdm", "$(touch pwned)", "Pillow>=9", "open3d"}},
			env:     []string{"STUB_MODULES=tqdm"},
			wantPip: "install --user --quiet Pillow>=9 open3d index=\n"},
		{name: "hostile index URL stays one value", opts: jobs.SetupOptions{WorkDir: "contourpose", GPUs: 2, VCPUs: 8,
			PipIndexURL: "http://127.0.0.1:9/simple'; touch pwned; echo '$(touch pwned)"},
			env:     []string{"STUB_MODULES=cv2 skimage sklearn yaml tqdm matplotlib"},
			wantPip: "install --user --quiet plyfile index=http://127.0.0.1:9/simple'; touch pwned; echo '$(touch pwned)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := cpNewInstance(t, tt.env...)
			orig := cpOfficialMain
			if tt.main != "" {
				orig = tt.main
				cpWriteFiles(t, in.code, map[string]string{"main.py": orig})
			}
			want := tt.wantMain
			if want == "" {
				want = strings.ReplaceAll(orig, "num_workers=8", cpWorkers(tt.opts.VCPUs))
			}
			out, errOut, err := in.run(t, jobs.SetupScript(tt.opts))
			if err != nil {
				t.Fatalf("run: %v\n%s\n%s", err, out, errOut)
			}
			if got := in.read(t, "pip.log"); got != tt.wantPip {
				t.Errorf("pip runs = %q, want %q", got, tt.wantPip)
			}
			if b, _ := os.ReadFile(filepath.Join(in.code, "main.py")); string(b) != want {
				t.Errorf("main.py:\n%s\nwant:\n%s", b, want)
			}
			if _, err := os.Stat(filepath.Join(in.stub, "pwned")); err == nil {
				t.Error("a hostile value ran a command")
			}
		})
	}
}

// cpWorkers is the official num_workers=8 after the setup set it to vcpus.
func cpWorkers(vcpus int) string { return "num_workers=" + strconv.Itoa(vcpus) }

func TestSetupScriptFailures(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		setup   func(t *testing.T, in *cpInstance)
		wantErr string
	}{
		{name: "no CUDA", env: []string{"STUB_CUDA=0"},
			wantErr: "cpbot-setup: error: PyTorch cannot use CUDA on this instance"},
		{name: "code not uploaded", setup: func(t *testing.T, in *cpInstance) {
			if err := os.Remove(filepath.Join(in.code, "main.py")); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "cpbot-setup: error: no main.py in " + "${HOME}/contourpose: upload the ContourPose code before the setup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := cpNewInstance(t, tt.env...)
			if tt.setup != nil {
				tt.setup(t, in)
			}
			before := in.hashes(t)
			out, errOut, err := in.run(t, jobs.SetupScript(jobs.SetupOptions{WorkDir: "contourpose", GPUs: 1, VCPUs: 4}))
			if err == nil {
				t.Fatalf("the script succeeded:\n%s", out)
			}
			if want := strings.ReplaceAll(tt.wantErr, "${HOME}", in.home); !strings.Contains(errOut, want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, want)
			}
			if pip := in.read(t, "pip.log"); pip != "" {
				t.Errorf("pip ran: %q", pip)
			}
			if !cpSameHashes(before, in.hashes(t)) {
				t.Error("a failed setup changed files")
			}
		})
	}
}

func BenchmarkRenderTrainCommand(b *testing.B) {
	p := jobs.TrainParams{Class: "obj13", Epochs: 150, Batch: 8, LR: 0.001, DataPath: "data"}
	for b.Loop() {
		if _, err := jobs.RenderTrainCommand("", p); err != nil {
			b.Fatal(err)
		}
	}
}
