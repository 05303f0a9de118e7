package lambda

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// PrivateKeyFile is the name of the bot's SSH private key in the data dir;
// the public key is written beside it with a ".pub" suffix.
const PrivateKeyFile = "id_ed25519"

// KeyNamePrefix starts the Lambda name of the bot's SSH key.
const KeyNamePrefix = "cpbot-"

// ErrKeyConflict matches every *KeyConflictError.
var ErrKeyConflict = errors.New("ssh key name conflict")

// KeyConflictError reports that Lambda already holds a key of the bot's key
// name but with a different public key.
type KeyConflictError struct {
	Name string
}

// Error says which name is taken and how to resolve it.
func (e *KeyConflictError) Error() string {
	return fmt.Sprintf("lambda already has an ssh key named %q with a different public key; delete it in the Lambda console or move the data dir's %s aside", e.Name, PrivateKeyFile)
}

// Is makes errors.Is(err, ErrKeyConflict) true.
func (e *KeyConflictError) Is(target error) bool { return target == ErrKeyConflict }

// KeyRegistry is the part of Lambda's API that manages SSH keys, as the
// package's HTTP client offers it.
type KeyRegistry interface {
	// ListSSHKeys returns all keys of the account, or the API error.
	ListSSHKeys(ctx context.Context) ([]SSHKey, error)
	// AddSSHKey registers a public key under name and returns it, or the
	// API error (for example when the name is taken).
	AddSSHKey(ctx context.Context, name, publicKey string) (SSHKey, error)
}

// LoadOrCreateKey returns the bot's SSH key from <dataDir>/id_ed25519,
// generating an ed25519 key there (mode 0600, OpenSSH format) on first use.
// An existing key file with looser permissions is tightened to 0600.
func LoadOrCreateKey(dataDir string) (ssh.Signer, error) {
	path := filepath.Join(dataDir, PrivateKeyFile)
	if s, err := loadKey(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "cpbot")
	if err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	// Write a temp file and hard-link it into place: the link fails if
	// another process created the key meanwhile, and then we use theirs.
	f, err := os.CreateTemp(dataDir, ".id_ed25519.tmp*")
	if err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	werr := f.Chmod(0o600)
	if werr == nil {
		_, werr = f.Write(pem.EncodeToMemory(block))
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("create ssh key: %w", werr)
	}
	if err := os.Link(tmp, path); errors.Is(err, os.ErrExist) {
		return loadKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := os.WriteFile(path+".pub", pub, 0o644); err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	return signer, nil
}

func loadKey(path string) (ssh.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("load ssh key: %w", err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load ssh key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		// The parser's errors never quote key material.
		return nil, fmt.Errorf("load ssh key %s: %w", path, err)
	}
	return s, nil
}

// KeyName is the Lambda name of a public key: "cpbot-" and the first 12 hex
// digits of the SHA-256 of the key, so it only holds [a-z0-9-].
func KeyName(pub ssh.PublicKey) string {
	sum := sha256.Sum256(pub.Marshal())
	return KeyNamePrefix + hex.EncodeToString(sum[:])[:12]
}

// AuthorizedKey is pub in authorized_keys format, without a trailing newline.
func AuthorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// RegisterKey makes sure Lambda holds pub and returns the key to launch
// with. A key of the same public key is reused whatever its name; otherwise
// the key is added under KeyName(pub). If that name is taken by another
// public key it fails with *KeyConflictError.
func RegisterKey(ctx context.Context, reg KeyRegistry, pub ssh.PublicKey) (SSHKey, error) {
	name := KeyName(pub)
	keys, err := reg.ListSSHKeys(ctx)
	if err != nil {
		return SSHKey{}, fmt.Errorf("register ssh key %s: %w", name, err)
	}
	var conflict bool
	for _, k := range keys {
		if samePublicKey(k.PublicKey, pub) {
			return k, nil
		}
		if k.Name == name {
			conflict = true
		}
	}
	if conflict {
		return SSHKey{}, &KeyConflictError{Name: name}
	}
	k, err := reg.AddSSHKey(ctx, name, AuthorizedKey(pub))
	if err != nil {
		return SSHKey{}, fmt.Errorf("register ssh key %s: %w", name, err)
	}
	return k, nil
}

// samePublicKey says whether an authorized_keys line holds pub.
func samePublicKey(authorized string, pub ssh.PublicKey) bool {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	return err == nil && bytes.Equal(k.Marshal(), pub.Marshal())
}
