package lambda_test

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestDownload(t *testing.T) {
	e := newRemoteEnv(t)
	ctx := testCtx(t)
	remoteDir := e.dir + "/code"
	files := map[string]string{
		"model/obj1/10.pkl":   strings.Repeat("a", 100<<10),
		"model/obj1/20.pkl":   "twenty",
		"model/obj2/10.pkl":   "obj2",
		"model/obj1/notes.md": "not a checkpoint",
		"train.log":           "epoch 1\n",
		"data/big.bin":        "dataset, not wanted",
	}
	for rel, content := range files {
		p := filepath.Join(e.localDir, "code", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := t.TempDir()
	patterns := []string{"model/*/*.pkl", "train.log", "missing/*.pkl"}

	st, err := e.remote.Download(ctx, remoteDir, patterns, local)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	want := []string{"model/obj1/10.pkl", "model/obj1/20.pkl", "model/obj2/10.pkl", "train.log"}
	var wantBytes int64
	for _, p := range want {
		wantBytes += int64(len(files[p]))
	}
	if st.Files != 4 || st.FilesCopied != 4 || st.Bytes != wantBytes || st.BytesCopied != wantBytes {
		t.Errorf("stats %+v, want 4 files of %d bytes copied", st, wantBytes)
	}
	if got := localFiles(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("local files %q, want %q", got, want)
	}
	for _, p := range want {
		data, err := os.ReadFile(filepath.Join(local, filepath.FromSlash(p)))
		if err != nil || string(data) != files[p] {
			t.Errorf("%s: %d bytes, %v", p, len(data), err)
		}
	}

	t.Run("same size skipped", func(t *testing.T) {
		st, err := e.remote.Download(ctx, remoteDir, patterns, local)
		if err != nil {
			t.Fatal(err)
		}
		if st.Files != 4 || st.FilesCopied != 0 || st.BytesCopied != 0 {
			t.Errorf("stats %+v, want nothing copied", st)
		}
	})
	t.Run("grown file copied again", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(e.localDir, "code", "train.log"), []byte("epoch 1\nepoch 2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := e.remote.Download(ctx, remoteDir, patterns, local)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(local, "train.log"))
		if st.FilesCopied != 1 || string(data) != "epoch 1\nepoch 2\n" {
			t.Errorf("stats %+v, train.log %q", st, data)
		}
		if got := localFiles(t, local); len(got) != 4 {
			t.Errorf("leftover temp files: %q", got)
		}
	})
	t.Run("bad pattern", func(t *testing.T) {
		if _, err := e.remote.Download(ctx, remoteDir, []string{"model/[/x"}, local); err == nil {
			t.Error("no error for a malformed pattern")
		}
	})
}

// localFiles lists every file under dir, as sorted slash paths.
func localFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
