package lambdatest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cpbot/cpbot/lambda"
)

func (s *Server) listSSHKeys(_ *http.Request, _ []byte, _ time.Time) (any, *lambda.APIError) {
	out := make([]lambda.SSHKey, 0, len(s.sshKeys))
	for _, k := range s.sshKeys {
		k.PrivateKey = ""
		out = append(out, k)
	}
	return out, nil
}

func (s *Server) addSSHKey(_ *http.Request, body []byte, _ time.Time) (any, *lambda.APIError) {
	var req struct {
		Name      string  `json:"name"`
		PublicKey *string `json:"public_key"`
	}
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	if req.Name == "" || len(req.Name) > 64 {
		return nil, invalid("name must be 1 to 64 characters")
	}
	if _, dup := s.sshKeyByNameLocked(req.Name); dup {
		return nil, invalid(fmt.Sprintf("an ssh key named %q already exists", req.Name))
	}
	if req.PublicKey == nil {
		k, err := generateKey(req.Name)
		if err != nil {
			return nil, apiErr(http.StatusInternalServerError, lambda.CodeInternalError, "An internal server error occurred.")
		}
		s.sshKeys = append(s.sshKeys, lambda.SSHKey{ID: k.ID, Name: k.Name, PublicKey: k.PublicKey})
		return k, nil
	}
	pub := strings.TrimSpace(*req.PublicKey)
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub)); err != nil || len(pub) > 4096 {
		return nil, invalid("public_key is not a valid SSH public key")
	}
	k := lambda.SSHKey{ID: randomHex(16), Name: req.Name, PublicKey: pub}
	s.sshKeys = append(s.sshKeys, k)
	return k, nil
}

// generateKey makes an ed25519 pair the way Lambda does when no public key
// is given.
func generateKey(name string) (lambda.SSHKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return lambda.SSHKey{}, fmt.Errorf("generate key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return lambda.SSHKey{}, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		return lambda.SSHKey{}, fmt.Errorf("generate key: %w", err)
	}
	return lambda.SSHKey{
		ID:         randomHex(16),
		Name:       name,
		PublicKey:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + name,
		PrivateKey: string(pem.EncodeToMemory(block)),
	}, nil
}

func (s *Server) deleteSSHKey(r *http.Request, _ []byte, _ time.Time) (any, *lambda.APIError) {
	id := r.PathValue("id")
	i := slices.IndexFunc(s.sshKeys, func(k lambda.SSHKey) bool { return k.ID == id })
	if i < 0 {
		return nil, apiErr(http.StatusNotFound, lambda.CodeNotFound, "The requested resource was not found.")
	}
	s.sshKeys = slices.Delete(s.sshKeys, i, i+1)
	return struct{}{}, nil
}

func (s *Server) listFileSystems(_ *http.Request, _ []byte, _ time.Time) (any, *lambda.APIError) {
	out := make([]lambda.FileSystem, 0, len(s.fileSystems))
	for _, fs := range s.fileSystems {
		fs.IsInUse = slices.ContainsFunc(s.instances, func(in *instance) bool {
			return in.status != lambda.StatusTerminated && slices.Contains(in.base.FileSystemNames, fs.Name)
		})
		out = append(out, fs)
	}
	return out, nil
}

func (s *Server) listRegions(_ *http.Request, _ []byte, _ time.Time) (any, *lambda.APIError) {
	return slices.Clone(s.regions), nil
}

// AddSSHKey registers a public key as if through the API and returns it.
func (s *Server) AddSSHKey(name, publicKey string) lambda.SSHKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := lambda.SSHKey{ID: randomHex(16), Name: name, PublicKey: strings.TrimSpace(publicKey)}
	s.sshKeys = append(s.sshKeys, k)
	return k
}

// AddFileSystem creates a file system in a region and returns it.
func (s *Server) AddFileSystem(name, region string) lambda.FileSystem {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := lambda.Region{Name: region}
	if i := slices.IndexFunc(s.regions, func(x lambda.Region) bool { return x.Name == region }); i >= 0 {
		r = s.regions[i]
	}
	fs := lambda.FileSystem{
		ID:         randomHex(16),
		Name:       name,
		MountPoint: "/lambda/nfs/" + name,
		Created:    s.now().UTC().Format(time.RFC3339),
		CreatedBy:  lambda.User{ID: randomHex(16), Email: "cpbot@example.com", Status: "active"},
		Region:     r,
	}
	s.fileSystems = append(s.fileSystems, fs)
	return fs
}
