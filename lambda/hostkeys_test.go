package lambda_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/cpbot/cpbot/lambda"
	"golang.org/x/crypto/ssh"
)

func newHostKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var testAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}

func TestHostKeysTrustOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	hk, err := lambda.OpenHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := newHostKey(t), newHostKey(t)
	check := hk.Callback("i-1")
	if err := check("127.0.0.1:22", testAddr, k1); err != nil {
		t.Fatalf("first contact: %v", err)
	}
	if err := check("127.0.0.1:22", testAddr, k1); err != nil {
		t.Fatalf("same key: %v", err)
	}
	err = check("127.0.0.1:22", testAddr, k2)
	var changed *lambda.HostKeyChangedError
	if !errors.As(err, &changed) || !errors.Is(err, lambda.ErrHostKeyChanged) {
		t.Fatalf("changed key: %v, want *HostKeyChangedError", err)
	}
	if changed.Want != ssh.FingerprintSHA256(k1) || changed.Got != ssh.FingerprintSHA256(k2) || changed.InstanceID != "i-1" {
		t.Errorf("error fields %+v", changed)
	}
	if err := hk.Callback("i-2")("127.0.0.1:22", testAddr, k2); err != nil {
		t.Errorf("other instance: %v", err)
	}
	if got := hk.Algorithms("i-1"); !reflect.DeepEqual(got, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("algorithms %v", got)
	}
	if got := hk.Algorithms("i-unknown"); got != nil {
		t.Errorf("algorithms before contact %v, want any", got)
	}

	t.Run("persisted 0600", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(dir, lambda.KnownHostsFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("known_hosts: %v, %v", fi, err)
		}
		again, err := lambda.OpenHostKeys(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := again.Callback("i-1")("x", testAddr, k2); !errors.Is(err, lambda.ErrHostKeyChanged) {
			t.Errorf("after reopen: %v, want ErrHostKeyChanged", err)
		}
	})
	t.Run("forget", func(t *testing.T) {
		if err := hk.Forget("i-1"); err != nil {
			t.Fatal(err)
		}
		if err := hk.Forget("i-never"); err != nil {
			t.Errorf("forget unknown: %v", err)
		}
		again, _ := lambda.OpenHostKeys(dir)
		if _, ok := again.Pinned("i-1"); ok {
			t.Error("forgotten pin came back after reopen")
		}
		if err := again.Callback("i-1")("x", testAddr, k2); err != nil {
			t.Errorf("new key after forget: %v", err)
		}
	})
	t.Run("bad instance id", func(t *testing.T) {
		if err := hk.Callback("a b")("x", testAddr, k1); err == nil {
			t.Error("instance id with a space accepted")
		}
	})
}

func TestHostKeysAlgorithmsFollowPinnedType(t *testing.T) {
	hk, err := lambda.OpenHostKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := hk.Callback("i-ec")("x", testAddr, k); err != nil {
		t.Fatal(err)
	}
	if got := hk.Algorithms("i-ec"); !reflect.DeepEqual(got, []string{ssh.KeyAlgoECDSA256}) {
		t.Errorf("algorithms %v", got)
	}
}

func TestHostKeysConcurrent(t *testing.T) {
	dir := t.TempDir()
	hk, err := lambda.OpenHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]ssh.PublicKey, 16)
	for i := range keys {
		keys[i] = newHostKey(t)
	}
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			id := fmt.Sprintf("i-%d", i)
			if err := hk.Callback(id)("x", testAddr, k); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				if err := hk.Forget(id); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	again, err := lambda.OpenHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		got, ok := again.Pinned(fmt.Sprintf("i-%d", i))
		if i%2 == 0 {
			if ok {
				t.Errorf("i-%d still pinned", i)
			}
			continue
		}
		if !ok || string(got.Marshal()) != string(k.Marshal()) {
			t.Errorf("i-%d: pin %v, %v", i, got, ok)
		}
	}
}
