package main

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	tests := []struct {
		name string
		v    string
		bi   *debug.BuildInfo
		want string
	}{
		{"ldflags win", "v1.4.0", vcs("0123456789abcdef0123", "false"), "v1.4.0"},
		{"vcs revision", "dev", vcs("0123456789abcdef0123", "false"), "dev-0123456789ab"},
		{"dirty tree", "dev", vcs("0123456789abcdef0123", "true"), "dev-0123456789ab-dirty"},
		{"short revision", "dev", vcs("abc", "false"), "dev-abc"},
		{"module version", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}}, "v0.3.1"},
		{"devel build without vcs", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"no build info", "dev", nil, "dev"},
		{"empty ldflags value", "", nil, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolveVersion(tt.v, tt.bi); got != tt.want {
				t.Errorf("resolveVersion(%q) = %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

// TestVersionFlag builds the binary with the version set by -ldflags, as a
// release build does, and asks it.
func TestVersionFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "bot")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-version")
	cmd.Env = []string{"HOME=" + t.TempDir()} // no credentials needed
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("-version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "cpbot v9.8.7-test" {
		t.Errorf("-version printed %q, want %q", got, "cpbot v9.8.7-test")
	}
}
