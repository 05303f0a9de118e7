package lambda_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/cpbot/cpbot/lambda"
)

// makeTree writes a code tree: 20 random data files, a script, a .git dir
// and symlinks inside and outside the tree. It returns the paths (slash,
// relative) that an upload must send.
func makeTree(t testing.TB, dir string) []string {
	t.Helper()
	write := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"main.py", "run.sh", "link_in.py"}
	write("main.py", []byte("print('hi')\n"), 0o644)
	write("run.sh", []byte("#!/bin/sh\necho run\n"), 0o755)
	write(".git/HEAD", []byte("ref: refs/heads/main\n"), 0o644)
	for i := range 20 {
		rel := fmt.Sprintf("data/train/obj1/img_%02d.bin", i)
		write(rel, randBytes(t, 256<<10), 0o644)
		want = append(want, rel)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"link_in.py":  "main.py",
		"link_out":    outside,
		"link_dir":    "data",
		"link_broken": "nowhere",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(want)
	return want
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// treeHashes maps the regular files under dir (relative slash paths) to
// their sha256.
func treeHashes(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(data)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type manifestFile struct {
	Files []struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"files"`
}

func readManifest(t testing.TB, dir string) manifestFile {
	t.Helper()
	var m manifestFile
	data, err := os.ReadFile(filepath.Join(dir, lambda.ManifestFile))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m
}

func TestUploadIncremental(t *testing.T) {
	e := newRemoteEnv(t)
	ctx := testCtx(t)
	local := t.TempDir()
	want := makeTree(t, local)
	remoteDir := e.dir + "/code"
	remoteLocal := filepath.Join(e.localDir, "code")

	var last, total int64
	var calls int
	st, err := e.remote.Upload(ctx, local, remoteDir, func(sent, tot int64) {
		if sent < last {
			t.Errorf("progress went back: %d after %d", sent, last)
		}
		last, total = sent, tot
		calls++
	})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if st.Files != len(want) || st.FilesSent != len(want) || st.BytesSent != st.Bytes || st.Bytes == 0 {
		t.Errorf("first upload stats %+v, want all %d files", st, len(want))
	}
	if calls == 0 || last != total || total != st.BytesSent {
		t.Errorf("progress: %d calls, last %d, total %d, sent %d", calls, last, total, st.BytesSent)
	}
	if st.Throughput() <= 0 {
		t.Errorf("throughput %v", st.Throughput())
	}
	got := treeHashes(t, remoteLocal)
	localHashes := treeHashes(t, local)
	for _, p := range want {
		src := localHashes[p]
		if p == "link_in.py" {
			src = localHashes["main.py"]
		}
		if got[p] != src {
			t.Errorf("remote %s: hash %q, want %q", p, got[p], src)
		}
	}
	if len(got) != len(want)+1 { // + manifest
		t.Errorf("remote has %d files, want %d + manifest: %v", len(got), len(want), got)
	}
	if fi, err := os.Stat(filepath.Join(remoteLocal, "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode: %v, %v", fi, err)
	}
	if m := readManifest(t, remoteLocal); len(m.Files) != len(want) {
		t.Errorf("manifest lists %d files, want %d", len(m.Files), len(want))
	}

	t.Run("nothing changed", func(t *testing.T) {
		st, err := e.remote.Upload(ctx, local, remoteDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.FilesSent != 0 || float64(st.BytesSent) >= 0.01*float64(st.Bytes) {
			t.Errorf("re-upload sent %d files, %d of %d bytes", st.FilesSent, st.BytesSent, st.Bytes)
		}
	})
	t.Run("one changed one added", func(t *testing.T) {
		changed := randBytes(t, 256<<10) // same size, new content
		if err := os.WriteFile(filepath.Join(local, "data/train/obj1/img_03.bin"), changed, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(local, "new.txt"), []byte("new\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := e.remote.Upload(ctx, local, remoteDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.FilesSent != 2 || st.BytesSent != 256<<10+4 {
			t.Errorf("sent %d files, %d bytes; want 2, %d", st.FilesSent, st.BytesSent, 256<<10+4)
		}
		if h := treeHashes(t, remoteLocal); h["data/train/obj1/img_03.bin"] != treeHashes(t, local)["data/train/obj1/img_03.bin"] {
			t.Error("changed file not updated remotely")
		}
	})
	t.Run("remote file removed behind the manifest", func(t *testing.T) {
		if err := os.Remove(filepath.Join(remoteLocal, "main.py")); err != nil {
			t.Fatal(err)
		}
		st, err := e.remote.Upload(ctx, local, remoteDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.FilesSent != 1 {
			t.Errorf("sent %d files, want 1", st.FilesSent)
		}
	})
}

func TestUploadCancelledKeepsManifestHonest(t *testing.T) {
	e := newRemoteEnv(t)
	local := t.TempDir()
	makeTree(t, local)
	remoteDir := e.dir + "/code"
	remoteLocal := filepath.Join(e.localDir, "code")
	if _, err := e.remote.Upload(testCtx(t), local, remoteDir, nil); err != nil {
		t.Fatal(err)
	}
	// Change every data file, then cancel the upload part way.
	for i := range 20 {
		p := filepath.Join(local, fmt.Sprintf("data/train/obj1/img_%02d.bin", i))
		if err := os.WriteFile(p, randBytes(t, 256<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	_, err := e.remote.Upload(ctx, local, remoteDir, func(sent, total int64) {
		if sent > total/3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled upload: %v, want context.Canceled", err)
	}
	// Every file the manifest vouches for must really be there.
	remote := treeHashes(t, remoteLocal)
	localHashes := treeHashes(t, local)
	var done int
	for i := range 20 {
		p := fmt.Sprintf("data/train/obj1/img_%02d.bin", i)
		if localHashes[p] == remote[p] {
			done++
		}
	}
	if done == 0 || done == 20 {
		t.Fatalf("%d of 20 changed files arrived before the cancel; want some", done)
	}
	for _, f := range readManifest(t, remoteLocal).Files {
		if remote[f.Path] != f.SHA256 {
			t.Errorf("manifest lists %s with %s, remote has %q", f.Path, f.SHA256[:8], remote[f.Path])
		}
	}
	st, err := e.remote.Upload(testCtx(t), local, remoteDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The changed files are resent (the manifest no longer vouches for
	// them); the unchanged ones are not.
	if st.FilesSent != 20 {
		t.Errorf("resumed upload sent %d files, want the 20 changed", st.FilesSent)
	}
	remote = treeHashes(t, remoteLocal)
	for i := range 20 {
		p := fmt.Sprintf("data/train/obj1/img_%02d.bin", i)
		if localHashes[p] != remote[p] {
			t.Errorf("%s differs after the resumed upload", p)
		}
	}
}

// BenchmarkUpload measures a full 5 MiB upload over loopback sshd.
func BenchmarkUpload(b *testing.B) {
	e := newRemoteEnv(b)
	local := b.TempDir()
	makeTree(b, local)
	ctx := testCtx(b)
	var st lambda.UploadStats
	for i := 0; b.Loop(); i++ {
		var err error
		st, err = e.remote.Upload(ctx, local, fmt.Sprintf("%s/u%d", e.dir, i), nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(st.BytesSent)
}
