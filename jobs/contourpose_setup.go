package jobs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SetupOptions shape the instance setup script.
type SetupOptions struct {
	WorkDir     string   // remote folder of main.py, relative to the home; "" means the home
	DataPath    string   // the dataset folder relative to WorkDir, as given to --data_path; "" means "data"
	Packages    []string // pip packages to install when their import fails; nil means DefaultSetupPackages
	GPUs        int      // GPUs of the instance; 0 means ask PyTorch on the instance
	VCPUs       int      // vCPUs of the instance; 0 means nproc on the instance
	PipIndexURL string   // optional pip index (PIP_INDEX_URL)
}

var (
	cpPackageRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~*+]*$`)
	cpModuleRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)
	// pip distribution names whose module name differs.
	cpModules = map[string]string{
		"opencv-python-headless": "cv2", "opencv-python": "cv2",
		"opencv-contrib-python": "cv2", "opencv-contrib-python-headless": "cv2",
		"scikit-image": "skimage", "scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL",
	}
	// never reinstalled: Lambda Stack's builds match its CUDA.
	cpKeep = map[string]bool{"torch": true, "torchvision": true, "torchaudio": true}
)

// cpModuleFor returns the module that pip package pkg provides.
func cpModuleFor(pkg string) (name, module string) {
	name = strings.ToLower(pkg)
	if i := strings.IndexAny(name, "[<>=!~;"); i >= 0 {
		name = name[:i]
	}
	if m, ok := cpModules[name]; ok {
		return name, m
	}
	return name, strings.ReplaceAll(name, "-", "_")
}

// SetupScript returns a POSIX sh script that prepares a Lambda Stack
// instance (PyTorch and CUDA preinstalled) for ContourPose, after the code
// is uploaded to WorkDir. It fails unless PyTorch can use CUDA; pip-installs
// (--user) only the packages whose import fails, never torch and never
// requirements.txt; rewrites a DataParallel device_ids list longer than the
// GPUs; sets hard-coded DataLoader num_workers to the vCPUs; fixes
// dataset/Dataset.py for current NumPy and PyYAML; pre-fetches the resnet18
// weights; creates a stand-in SUN2012 background when there is none and
// drops a stale bg_imgs.npy. Patched files keep a .orig copy of their first
// version. Each step prints one "cpbot-setup: …" line. Running it again
// installs and changes nothing.
func SetupScript(o SetupOptions) string {
	workDir, dataPath := o.WorkDir, o.DataPath
	if workDir == "" {
		workDir = "."
	}
	if dataPath == "" {
		dataPath = "data"
	}
	pkgs := o.Packages
	if pkgs == nil {
		pkgs = DefaultSetupPackages
	}
	var b strings.Builder
	b.WriteString(cpSetupHead)
	fmt.Fprintf(&b, "WORKDIR=%s\nDATA=%s\nGPUS=%d\nVCPUS=%d\n",
		cpShellQuote(workDir), cpShellQuote(dataPath), max(o.GPUs, 0), max(o.VCPUs, 0))
	if o.PipIndexURL != "" {
		fmt.Fprintf(&b, "export PIP_INDEX_URL=%s\n", cpShellQuote(o.PipIndexURL))
	}
	b.WriteString(cpSetupPrepare)
	for _, p := range pkgs {
		name, mod := cpModuleFor(p)
		switch {
		case cpKeep[name]:
			continue
		case !cpPackageRe.MatchString(p) || !cpModuleRe.MatchString(mod):
			fmt.Fprintf(&b, "say %s\n", cpShellQuote("warning: skipped invalid package name "+strconv.Quote(p)))
		default:
			fmt.Fprintf(&b, "need %s %s\n", cpShellQuote(p), mod)
		}
	}
	b.WriteString(cpSetupSteps)
	return b.String()
}

// The setup script: cpSetupHead, then the settings SetupScript writes,
// cpSetupPrepare, one "need <pip name> <module>" line per package, cpSetupSteps.
const cpSetupHead = `#!/bin/sh
# cpbot: prepare a Lambda Stack instance for ContourPose.
# Safe to run again: a second run installs and changes nothing.
set -eu
`

const cpSetupPrepare = `
say() { printf 'cpbot-setup: %s\n' "$*"; }
die() { printf 'cpbot-setup: error: %s\n' "$*" >&2; exit 1; }

# cp_patch FILE SED-SCRIPT: edits FILE in place, keeping FILE.orig from
# before its first edit; fails (status 1) when the edit changes nothing.
cp_patch() {
	sed "$2" "$1" >"$1.cpbot-tmp" || { rm -f "$1.cpbot-tmp"; die "cannot edit $1"; }
	if cmp -s "$1" "$1.cpbot-tmp"; then
		rm -f "$1.cpbot-tmp"
		return 1
	fi
	[ -e "$1.orig" ] || cp -p "$1" "$1.orig"
	cat "$1.cpbot-tmp" >"$1"
	rm -f "$1.cpbot-tmp"
}

cd "$HOME" || die "no home directory"
cd "$WORKDIR" 2>/dev/null || die "no folder $WORKDIR in $HOME: upload the ContourPose code before the setup"
[ -f main.py ] || die "no main.py in $HOME/$WORKDIR: upload the ContourPose code before the setup"

say "checking PyTorch and CUDA"
python3 -c 'import torch; assert torch.cuda.is_available()' >/dev/null ||
	die "PyTorch cannot use CUDA on this instance (python3 -c 'import torch; assert torch.cuda.is_available()' failed); cpbot needs a Lambda Stack GPU image"

missing= mods=
need() { python3 -c "import $2" >/dev/null 2>&1 || { missing="$missing $1"; mods="$mods $2"; }; }
`

const cpSetupSteps = `
if [ -n "$missing" ]; then
	say "installing missing Python packages:$missing"
	set -f # the names are validated: no spaces, no globbing
	PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --user --quiet $missing ||
		die "pip install failed for:$missing"
	for m in $mods; do
		python3 -c "import $m" >/dev/null 2>&1 || die "module $m still does not import after pip install"
	done
	set +f
else
	say "Python packages already present"
fi

gpus=$GPUS
if [ "$gpus" -lt 1 ]; then
	gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null) || gpus=1
	case $gpus in '' | *[!0-9]*) gpus=1 ;; esac
	[ "$gpus" -ge 1 ] || gpus=1
fi
ids=$(sed -n 's/.*device_ids *= *\[\([0-9, ]*\)\].*/\1/p' main.py | sed -n 1p)
if [ -z "$ids" ]; then
	say "main.py hard-codes no DataParallel device_ids"
else
	n=$(printf '%s\n' "$ids" | tr ',' '\n' | grep -c '[0-9]') || n=0
	if [ "$n" -le "$gpus" ]; then
		say "DataParallel device_ids=[$ids] fits $gpus GPU(s)"
	else
		list=0 i=1
		while [ "$i" -lt "$gpus" ]; do
			list="$list, $i"
			i=$((i + 1))
		done
		cp_patch main.py "s/device_ids *= *\[[0-9, ]*\]/device_ids=[$list]/g" || true
		say "patched main.py: DataParallel device_ids=[$ids] -> [$list] for $gpus GPU(s) (original in main.py.orig)"
	fi
fi

vcpus=$VCPUS
if [ "$vcpus" -lt 1 ]; then
	vcpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
fi
if ! grep -q 'num_workers *= *[0-9]' main.py; then
	say "main.py hard-codes no DataLoader num_workers"
elif cp_patch main.py "s/num_workers *= *[0-9][0-9]*/num_workers=$vcpus/g"; then
	say "patched main.py: DataLoader num_workers=$vcpus (one per vCPU)"
else
	say "DataLoader num_workers already $vcpus"
fi

ds=dataset/Dataset.py
if [ ! -f "$ds" ]; then
	say "no $ds to check"
elif cp_patch "$ds" 's/astype(np\.str)/astype(str)/g; /Loader/!s/yaml\.load(/yaml.safe_load(/g'; then
	say "patched $ds for current NumPy (np.str) and PyYAML (yaml.load)"
else
	say "$ds needs no NumPy or PyYAML fix"
fi

ckpt="${TORCH_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/torch}/hub/checkpoints"
if ls "$ckpt"/resnet18-*.pth >/dev/null 2>&1; then
	say "resnet18 pretrained weights already cached"
elif python3 -c 'import torchvision; torchvision.models.resnet18(pretrained=True)' >/dev/null 2>&1; then
	say "fetched resnet18 pretrained weights"
else
	say "warning: could not pre-fetch the resnet18 weights; main.py downloads them when it starts"
fi

sun="$DATA/SUN2012pascalformat/JPEGImages"
if [ -n "$(ls "$sun" 2>/dev/null)" ]; then
	say "SUN2012 background images present in $sun"
else
	# A mid-grey 1280x960 binary PPM: OpenCV reads it whatever its name,
	# and it is larger than the 640x480 crop the background sampler takes.
	mkdir -p "$sun"
	{
		printf 'P6\n1280 960\n255\n'
		dd if=/dev/zero bs=3840 count=960 2>/dev/null | tr '\000' '\200'
	} >"$sun/.cpbot-standin.tmp"
	mv "$sun/.cpbot-standin.tmp" "$sun/cpbot-standin.ppm"
	rm -f bg_imgs.npy
	say "created a stand-in SUN2012 background $sun/cpbot-standin.ppm"
fi

if [ -f bg_imgs.npy ]; then
	if python3 -c 'import os, sys, numpy; p = numpy.load(sys.argv[1]); sys.exit(0 if len(p) and all(os.path.isfile(str(x)) for x in p) else 1)' bg_imgs.npy >/dev/null 2>&1; then
		say "bg_imgs.npy lists existing background images"
	else
		rm -f bg_imgs.npy
		say "removed a stale bg_imgs.npy (missing or no images); main.py rebuilds it"
	fi
fi

say "done"
`
