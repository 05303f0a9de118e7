package main

import (
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…"; left at
// "dev", buildVersion falls back to what the Go toolchain recorded.
var version = "dev"

// buildVersion is the version the bot reports: the -ldflags one, else the
// VCS revision (or module version) recorded in the binary, else "dev".
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return resolveVersion(version, bi)
}

// resolveVersion picks the version from the -ldflags value v and the build
// info bi (which may be nil).
func resolveVersion(v string, bi *debug.BuildInfo) string {
	if v != "dev" && v != "" {
		return v
	}
	if bi == nil {
		return "dev"
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		return "dev-" + rev
	}
	if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
		return mv
	}
	return "dev"
}
