package lambda

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// KnownHostsFile is the name of the host-key pin file in the data dir.
const KnownHostsFile = "known_hosts"

// ErrHostKeyChanged matches every *HostKeyChangedError.
var ErrHostKeyChanged = errors.New("host key changed")

// HostKeyChangedError reports that an instance presented a host key other
// than the one pinned on first contact. No command is run on such a host.
type HostKeyChangedError struct {
	InstanceID string
	Addr       string
	Want, Got  string // SHA256 fingerprints
}

// Error names the instance and both fingerprints.
func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("host key of instance %s at %s changed: pinned %s, presented %s; refusing to connect",
		e.InstanceID, e.Addr, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrHostKeyChanged) true.
func (e *HostKeyChangedError) Is(target error) bool { return target == ErrHostKeyChanged }

// HostKeys pins instances' SSH host keys on first use (trust on first use),
// keyed by instance ID, and persists the pins in a file, one line per
// instance: "<instance-id> <addr> <key-type> <base64-key>". It is safe for
// concurrent use; one process should own the file.
type HostKeys struct {
	path string

	mu   sync.Mutex
	pins map[string]hostPin
}

type hostPin struct {
	addr string
	key  ssh.PublicKey
}

// OpenHostKeys loads the pins from <dataDir>/known_hosts, creating the data
// dir if needed. A missing file means no pins yet.
func OpenHostKeys(dataDir string) (*HostKeys, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open host keys: %w", err)
	}
	h := &HostKeys{path: filepath.Join(dataDir, KnownHostsFile), pins: map[string]hostPin{}}
	data, err := os.ReadFile(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open host keys: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("open host keys: %s:%d: want 4 fields, got %d", h.path, n, len(f))
		}
		raw, err := base64.StdEncoding.DecodeString(f[3])
		if err != nil {
			return nil, fmt.Errorf("open host keys: %s:%d: %w", h.path, n, err)
		}
		key, err := ssh.ParsePublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("open host keys: %s:%d: %w", h.path, n, err)
		}
		h.pins[f[0]] = hostPin{addr: f[1], key: key}
	}
	return h, nil
}

// Pinned returns the pinned key of an instance, if any.
func (h *HostKeys) Pinned(instanceID string) (ssh.PublicKey, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pins[instanceID]
	return p.key, ok
}

// Forget removes an instance's pin, for when the instance is terminated.
// Forgetting an unknown instance is not an error.
func (h *HostKeys) Forget(instanceID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pins[instanceID]
	if !ok {
		return nil
	}
	delete(h.pins, instanceID)
	if err := h.saveLocked(); err != nil {
		h.pins[instanceID] = p
		return fmt.Errorf("forget host key of %s: %w", instanceID, err)
	}
	return nil
}

// Callback returns the host-key check for one instance: the first key seen
// is pinned and saved; later a different key fails with *HostKeyChangedError.
func (h *HostKeys) Callback(instanceID string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if instanceID == "" || strings.ContainsAny(instanceID, " \t\r\n#") {
			return fmt.Errorf("pin host key: invalid instance id %q", instanceID)
		}
		addr := hostname
		if remote != nil {
			addr = remote.String()
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if p, ok := h.pins[instanceID]; ok {
			if bytes.Equal(p.key.Marshal(), key.Marshal()) {
				return nil
			}
			return &HostKeyChangedError{
				InstanceID: instanceID,
				Addr:       addr,
				Want:       ssh.FingerprintSHA256(p.key),
				Got:        ssh.FingerprintSHA256(key),
			}
		}
		h.pins[instanceID] = hostPin{addr: addr, key: key}
		if err := h.saveLocked(); err != nil {
			delete(h.pins, instanceID)
			return fmt.Errorf("pin host key of %s: %w", instanceID, err)
		}
		return nil
	}
}

// Algorithms returns the host-key algorithms to ask an instance for: those
// of its pinned key, so a server with several host keys presents the pinned
// one; nil (any) before the first contact.
func (h *HostKeys) Algorithms(instanceID string) []string {
	key, ok := h.Pinned(instanceID)
	if !ok {
		return nil
	}
	switch t := key.Type(); t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		return []string{t}
	}
}

// saveLocked writes all pins atomically (temp file, then rename).
func (h *HostKeys) saveLocked() error {
	ids := make([]string, 0, len(h.pins))
	for id := range h.pins {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b bytes.Buffer
	b.WriteString("# cpbot host-key pins: instance-id addr key-type key\n")
	for _, id := range ids {
		p := h.pins[id]
		fmt.Fprintf(&b, "%s %s %s %s\n", id, p.addr, p.key.Type(),
			base64.StdEncoding.EncodeToString(p.key.Marshal()))
	}
	return writeFileAtomic(h.path, b.Bytes(), 0o600)
}

// writeFileAtomic writes data to a temp file beside path and renames it over
// path, so readers see the old or the new content, never a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
