package lambda_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/cpbot/cpbot/lambda"
	"golang.org/x/crypto/ssh"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s1, err := lambda.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if s1.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s", s1.PublicKey().Type())
	}
	path := filepath.Join(dir, lambda.PrivateKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("private key not in OpenSSH format: %.40q", data)
	}
	pub, _ := os.ReadFile(path + ".pub")
	if strings.TrimSpace(string(pub)) != lambda.AuthorizedKey(s1.PublicKey()) {
		t.Errorf("public key file %q", pub)
	}

	t.Run("reused", func(t *testing.T) {
		s2, err := lambda.LoadOrCreateKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()) {
			t.Error("second call made a new key")
		}
	})
	t.Run("loose mode tightened", func(t *testing.T) {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := lambda.LoadOrCreateKey(dir); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("corrupt key is an error without key material", func(t *testing.T) {
		bad := t.TempDir()
		secret := "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END OPENSSH PRIVATE KEY-----\n"
		if err := os.WriteFile(filepath.Join(bad, lambda.PrivateKeyFile), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := lambda.LoadOrCreateKey(bad)
		if err == nil {
			t.Fatal("no error for a corrupt key")
		}
		if strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("error leaks key material: %v", err)
		}
	})
	t.Run("concurrent first use agrees", func(t *testing.T) {
		fresh := t.TempDir()
		keys := make([][]byte, 8)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				s, err := lambda.LoadOrCreateKey(fresh)
				if err != nil {
					t.Error(err)
					return
				}
				keys[i] = s.PublicKey().Marshal()
			})
		}
		wg.Wait()
		for _, k := range keys[1:] {
			if !bytes.Equal(k, keys[0]) {
				t.Fatal("concurrent callers got different keys")
			}
		}
	})
}

func TestKeyName(t *testing.T) {
	valid := regexp.MustCompile(`^cpbot-[a-z0-9]{12}$`)
	seen := map[string]bool{}
	for range 5 {
		s, err := lambda.LoadOrCreateKey(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		name := lambda.KeyName(s.PublicKey())
		if !valid.MatchString(name) {
			t.Errorf("name %q does not match %s", name, valid)
		}
		if name != lambda.KeyName(s.PublicKey()) {
			t.Error("name not stable")
		}
		if seen[name] {
			t.Errorf("two keys share name %s", name)
		}
		seen[name] = true
	}
}

// fakeRegistry is an in-memory KeyRegistry.
type fakeRegistry struct {
	keys    []lambda.SSHKey
	adds    int
	listErr error
}

func (f *fakeRegistry) ListSSHKeys(context.Context) ([]lambda.SSHKey, error) {
	return f.keys, f.listErr
}

func (f *fakeRegistry) AddSSHKey(_ context.Context, name, publicKey string) (lambda.SSHKey, error) {
	f.adds++
	for _, k := range f.keys {
		if k.Name == name {
			return lambda.SSHKey{}, errors.New("name taken")
		}
	}
	k := lambda.SSHKey{ID: "id-" + name, Name: name, PublicKey: publicKey}
	f.keys = append(f.keys, k)
	return k, nil
}

func TestRegisterKey(t *testing.T) {
	ctx := context.Background()
	s, err := lambda.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := lambda.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := s.PublicKey()
	name := lambda.KeyName(pub)
	authorized := lambda.AuthorizedKey(pub)

	tests := []struct {
		name     string
		existing []lambda.SSHKey
		listErr  error
		wantName string
		wantAdds int
		wantErr  error
	}{
		{"added when missing", []lambda.SSHKey{{Name: "someone-else", PublicKey: lambda.AuthorizedKey(other.PublicKey())}}, nil, name, 1, nil},
		{"not added twice", []lambda.SSHKey{{Name: name, PublicKey: authorized + " cpbot"}}, nil, name, 0, nil},
		{"same key under another name reused", []lambda.SSHKey{{Name: "laptop", PublicKey: authorized}}, nil, "laptop", 0, nil},
		{"name taken by another key", []lambda.SSHKey{{Name: name, PublicKey: lambda.AuthorizedKey(other.PublicKey())}}, nil, "", 0, lambda.ErrKeyConflict},
		{"list fails", nil, errors.New("boom"), "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := &fakeRegistry{keys: tt.existing, listErr: tt.listErr}
			k, err := lambda.RegisterKey(ctx, reg, pub)
			switch {
			case tt.listErr != nil:
				if !errors.Is(err, tt.listErr) {
					t.Fatalf("err %v, want wrapped %v", err, tt.listErr)
				}
				return
			case tt.wantErr != nil:
				var conflict *lambda.KeyConflictError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &conflict) || conflict.Name != name {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				if reg.adds != 0 {
					t.Errorf("added %d keys on conflict", reg.adds)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if k.Name != tt.wantName || reg.adds != tt.wantAdds {
				t.Errorf("key %q after %d adds; want %q after %d", k.Name, reg.adds, tt.wantName, tt.wantAdds)
			}
			if tt.wantAdds == 1 && k.PublicKey != authorized {
				t.Errorf("registered %q, want %q", k.PublicKey, authorized)
			}
		})
	}
}
