package lambdatest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// serve accepts connections until the listener closes.
func (h *Host) serve() {
	defer h.wg.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				h.logger.Warn("accept", "err", err)
			}
			return
		}
		h.mu.Lock()
		refuse := h.closed || time.Now().Before(h.refuseUntil)
		if !refuse {
			h.conns[c] = struct{}{}
			h.wg.Add(1)
		}
		h.mu.Unlock()
		if refuse {
			h.logger.Debug("connection refused", "remote", c.RemoteAddr())
			_ = c.Close()
			continue
		}
		go h.handleConn(c)
	}
}

// serverConfig builds the SSH server configuration with the current host key.
func (h *Host) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			wire := key.Marshal()
			for _, k := range h.keys {
				if bytes.Equal(k, wire) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, fmt.Errorf("unknown public key for %s", meta.User())
		},
		ServerVersion: "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",
	}
	h.mu.Lock()
	cfg.AddHostKey(h.signer)
	h.mu.Unlock()
	return cfg
}

// handleConn runs one SSH connection: handshake, global requests, channels.
func (h *Host) handleConn(c net.Conn) {
	defer h.wg.Done()
	defer func() {
		_ = c.Close()
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, h.serverConfig())
	if err != nil {
		h.logger.Debug("handshake failed", "remote", c.RemoteAddr(), "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	h.logger.Debug("connection", "remote", c.RemoteAddr(), "user", sc.User())
	go func() {
		for req := range reqs {
			if req.WantReply {
				_ = req.Reply(req.Type == "keepalive@openssh.com", nil)
			}
		}
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			h.logger.Debug("accept channel", "err", err)
			continue
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.handleSession(ch, chReqs)
		}()
	}
	_ = sc.Wait()
}
