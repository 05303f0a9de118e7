package lambda

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pkg/sftp"
)

// ManifestFile is the name of the upload manifest kept in the remote dir.
const ManifestFile = ".cpbot-manifest.json"

// UploadStats counts what an Upload looked at and what it sent.
type UploadStats struct {
	Files, FilesSent int
	Bytes, BytesSent int64
	Elapsed          time.Duration
}

// Throughput is the bytes sent per second of Elapsed.
func (s UploadStats) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.BytesSent) / s.Elapsed.Seconds()
}

// manifest records the files an upload completed, by slash path.
type manifest struct {
	Version int             `json:"version"`
	Files   []manifestEntry `json:"files"`
}

type manifestEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Mode   uint32 `json:"mode"`
}

// localFile is a file to upload: where it is read from and its entry.
type localFile struct {
	src string
	manifestEntry
}

// Upload copies the regular files under localDir to remoteDir over SFTP,
// sending only those that are missing or changed relative to the manifest
// the last upload left in remoteDir (ManifestFile), or whose remote size
// differs from it. Each file is written to a temp name and renamed into
// place; the manifest is written last, so it never lists a file that was not
// sent. .git dirs and symlinks leading outside localDir are skipped.
// progress, if not nil, is called after each chunk with the bytes sent and
// the bytes to send. Remote files absent locally are left alone.
func (r *Remote) Upload(ctx context.Context, localDir, remoteDir string, progress func(sent, total int64)) (UploadStats, error) {
	began := time.Now()
	var st UploadStats
	remoteDir = path.Clean(remoteDir)
	files, err := scanLocal(ctx, localDir)
	if err != nil {
		return st, fmt.Errorf("upload %s: %w", localDir, err)
	}
	st.Files = len(files)
	for _, f := range files {
		st.Bytes += f.Size
	}
	sc, done, err := r.openSFTP(ctx)
	if err != nil {
		return st, fmt.Errorf("upload %s: %w", localDir, err)
	}
	defer done()
	wrap := func(err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("upload %s to %s: %w", localDir, remoteDir, err)
	}
	old, err := readManifest(sc, remoteDir)
	if err != nil {
		return st, wrap(err)
	}
	remoteSizes, err := remoteFileSizes(sc, remoteDir)
	if err != nil {
		return st, wrap(err)
	}
	var send []localFile
	kept := map[string]manifestEntry{}
	for _, f := range files {
		o, ok := old[f.Path]
		size, there := remoteSizes[f.Path]
		if ok && o == f.manifestEntry && there && size == f.Size {
			kept[f.Path] = o
			continue
		}
		send = append(send, f)
	}
	var total, sent int64
	for _, f := range send {
		total += f.Size
	}
	if len(send) > 0 && len(kept) != len(old) {
		// Forget changed entries first: after a crash mid-upload the old
		// manifest must not vouch for a file that was half replaced.
		if err := writeManifest(sc, remoteDir, entries(kept)); err != nil {
			return st, wrap(err)
		}
	}
	dirs := map[string]bool{}
	for _, f := range send {
		if err := ctx.Err(); err != nil {
			return st, wrap(err)
		}
		dst := path.Join(remoteDir, f.Path)
		if d := path.Dir(dst); !dirs[d] {
			if err := sc.MkdirAll(d); err != nil {
				return st, wrap(fmt.Errorf("mkdir %s: %w", d, err))
			}
			dirs[d] = true
		}
		n, err := putFile(sc, f, dst, func(n int64) {
			if progress != nil {
				progress(sent+n, total)
			}
		})
		sent += n
		st.BytesSent += n
		if err != nil {
			return st, wrap(err)
		}
		st.FilesSent++
		kept[f.Path] = f.manifestEntry
	}
	if len(send) > 0 || len(kept) != len(old) {
		if err := writeManifest(sc, remoteDir, entries(kept)); err != nil {
			return st, wrap(err)
		}
	}
	st.Elapsed = time.Since(began)
	r.log.Info("upload done", "local", localDir, "remote", remoteDir, "files", st.Files,
		"files_sent", st.FilesSent, "bytes_sent", st.BytesSent, "elapsed", st.Elapsed)
	return st, nil
}

// scanLocal lists the regular files under root with their hashes, following
// symlinks to files inside root and skipping .git and everything else.
func scanLocal(ctx context.Context, root string) ([]localFile, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	realRoot, err = filepath.Abs(realRoot)
	if err != nil {
		return nil, err
	}
	var files []localFile
	err = filepath.WalkDir(realRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(realRoot, p)
		if err != nil {
			return err
		}
		slashed := filepath.ToSlash(rel)
		if slashed == ManifestFile {
			return nil
		}
		src := p
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(p)
			if err != nil || !inside(realRoot, target) {
				return nil // dangling or leading outside the tree
			}
			src = target
		}
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil // directories behind symlinks, devices, sockets
		}
		sum, err := hashFile(src)
		if err != nil {
			return err
		}
		files = append(files, localFile{src: src, manifestEntry: manifestEntry{
			Path: slashed, Size: fi.Size(), SHA256: sum, Mode: uint32(fi.Mode().Perm()),
		}})
		return nil
	})
	return files, err
}

func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func hashFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// putFile sends one file to a temp name beside dst and renames it into place.
func putFile(sc *sftp.Client, f localFile, dst string, progress func(int64)) (int64, error) {
	in, err := os.Open(f.src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	tmp := dst + ".cpbot-tmp"
	out, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}
	n, err := out.ReadFrom(&countingReader{r: in, size: f.Size, progress: progress})
	if err == nil {
		err = out.Chmod(os.FileMode(f.Mode))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = sc.PosixRename(tmp, dst)
	}
	if err != nil {
		_ = sc.Remove(tmp)
		return n, fmt.Errorf("send %s: %w", f.Path, err)
	}
	return n, nil
}

// countingReader reports progress and tells sftp the size, which lets it
// pipeline writes.
type countingReader struct {
	r        io.Reader
	size     int64
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.progress(c.n)
	}
	return n, err
}

// Size is the bytes left to read.
func (c *countingReader) Size() int64 { return c.size - c.n }

func readManifest(sc *sftp.Client, remoteDir string) (map[string]manifestEntry, error) {
	f, err := sc.Open(path.Join(remoteDir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]manifestEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer f.Close()
	var m manifest
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		// A corrupt manifest only costs a full upload.
		return map[string]manifestEntry{}, nil
	}
	out := make(map[string]manifestEntry, len(m.Files))
	for _, e := range m.Files {
		out[e.Path] = e
	}
	return out, nil
}

func writeManifest(sc *sftp.Client, remoteDir string, files []manifestEntry) error {
	data, err := json.MarshalIndent(manifest{Version: 1, Files: files}, "", " ")
	if err != nil {
		return err
	}
	if err := sc.MkdirAll(remoteDir); err != nil {
		return fmt.Errorf("mkdir %s: %w", remoteDir, err)
	}
	dst := path.Join(remoteDir, ManifestFile)
	tmp := dst + ".cpbot-tmp"
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = sc.PosixRename(tmp, dst)
	}
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

func entries(m map[string]manifestEntry) []manifestEntry {
	out := make([]manifestEntry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// remoteFileSizes lists the sizes of the regular files under remoteDir by
// slash path relative to it; a missing dir is empty.
func remoteFileSizes(sc *sftp.Client, remoteDir string) (map[string]int64, error) {
	sizes := map[string]int64{}
	w := sc.Walk(remoteDir)
	for w.Step() {
		if err := w.Err(); err != nil {
			if w.Path() == remoteDir && errors.Is(err, os.ErrNotExist) {
				return sizes, nil
			}
			return nil, fmt.Errorf("list %s: %w", w.Path(), err)
		}
		if !w.Stat().Mode().IsRegular() {
			continue
		}
		rel := w.Path()
		if remoteDir != "." {
			rel = strings.TrimPrefix(rel, remoteDir+"/")
		}
		sizes[rel] = w.Stat().Size()
	}
	return sizes, nil
}
