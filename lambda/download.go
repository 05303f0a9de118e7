package lambda

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pkg/sftp"
)

// DownloadStats counts the files a Download matched and what it copied.
type DownloadStats struct {
	Files, FilesCopied int
	Bytes, BytesCopied int64
	Elapsed            time.Duration
}

// Download copies the regular files under remoteDir whose relative slash
// path matches one of patterns (path.Match syntax, e.g. "model/*/*.pkl",
// "train.log") into localDir, keeping relative paths. A file already present
// locally with the same size is skipped; others are written to a temp file
// and renamed into place, so a local file is never partial. Patterns that
// match nothing are not an error.
func (r *Remote) Download(ctx context.Context, remoteDir string, patterns []string, localDir string) (DownloadStats, error) {
	began := time.Now()
	var st DownloadStats
	remoteDir = path.Clean(remoteDir)
	sc, done, err := r.openSFTP(ctx)
	if err != nil {
		return st, fmt.Errorf("download %s: %w", remoteDir, err)
	}
	defer done()
	wrap := func(err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("download %s: %w", remoteDir, err)
	}
	matches, err := matchRemote(sc, remoteDir, patterns)
	if err != nil {
		return st, wrap(err)
	}
	for _, rel := range matches {
		if err := ctx.Err(); err != nil {
			return st, wrap(err)
		}
		src := path.Join(remoteDir, rel)
		fi, err := sc.Stat(src)
		if err != nil {
			return st, wrap(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		st.Files++
		st.Bytes += fi.Size()
		dst := filepath.Join(localDir, filepath.FromSlash(rel))
		if lfi, err := os.Stat(dst); err == nil && lfi.Mode().IsRegular() && lfi.Size() == fi.Size() {
			continue
		}
		n, err := getFile(sc, src, dst)
		st.BytesCopied += n
		if err != nil {
			return st, wrap(err)
		}
		st.FilesCopied++
	}
	st.Elapsed = time.Since(began)
	r.log.Info("download done", "remote", remoteDir, "local", localDir, "files", st.Files,
		"files_copied", st.FilesCopied, "bytes_copied", st.BytesCopied, "elapsed", st.Elapsed)
	return st, nil
}

// matchRemote expands the patterns under remoteDir into sorted, unique
// relative paths that stay inside it.
func matchRemote(sc *sftp.Client, remoteDir string, patterns []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || path.IsAbs(p) {
			return nil, fmt.Errorf("bad pattern %q", p)
		}
		found, err := sc.Glob(path.Join(remoteDir, p))
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", p, err)
		}
		for _, m := range found {
			rel := m
			if remoteDir != "." {
				rel = strings.TrimPrefix(m, remoteDir+"/")
			}
			if (rel == m && remoteDir != ".") || !filepath.IsLocal(filepath.FromSlash(rel)) {
				continue // outside remoteDir
			}
			if !seen[rel] {
				seen[rel] = true
				out = append(out, rel)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// getFile copies src to dst through a temp file in dst's directory.
func getFile(sc *sftp.Client, src, dst string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	in, err := sc.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return 0, err
	}
	tmp := out.Name()
	n, err := in.WriteTo(out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return n, fmt.Errorf("copy %s: %w", src, err)
	}
	return n, nil
}
