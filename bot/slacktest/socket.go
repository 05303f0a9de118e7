package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Ack is a Socket Mode acknowledgement the client sent.
type Ack struct {
	EnvelopeID string
	// Payload is the ack's payload JSON, nil when the ack carried none.
	Payload json.RawMessage
	// RetryAttempt is the retry_attempt of the latest delivery of the
	// envelope when the ack arrived (0 = first delivery).
	RetryAttempt int
	At           time.Time
}

// envelope is one Socket Mode request the server sent.
type envelope struct {
	id       string
	kind     string // slash_commands, interactive
	payload  json.RawMessage
	attempts int // retry_attempt of the latest delivery
}

// wsConn is one open Socket Mode websocket.
type wsConn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	done    chan struct{}
	once    sync.Once
}

func (c *wsConn) writeJSON(v any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *wsConn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.Close()
	})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveLink accepts a websocket dialled with a ticket from
// apps.connections.open, says hello, pings it and reads its acks.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{ws: ws, done: make(chan struct{})}
	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		s.pongs++
		s.notifyLocked()
		s.mu.Unlock()
		return nil
	})
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		c.close()
		return
	}
	s.conns = append(s.conns, c)
	s.connections++
	s.wg.Add(2)
	s.mu.Unlock()

	hello := map[string]any{
		"type":            "hello",
		"num_connections": 1,
		"debug_info":      map[string]any{"host": "applink-fake-1", "build_number": 1, "approximate_connection_time": int(s.debugAfter.Seconds())},
		"connection_info": map[string]any{"app_id": AppID},
	}
	if err := c.writeJSON(hello); err != nil {
		c.close()
	}
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
	debug := r.URL.Query().Get("debug_reconnects") == "true"
	go s.keepAlive(c, debug)
	go s.readAcks(c)
}

// keepAlive pings the connection and, for debug_reconnects, asks the client
// to reconnect when the connection's time is up.
func (s *Server) keepAlive(c *wsConn, debug bool) {
	defer s.wg.Done()
	ping := time.NewTicker(s.pingInterval)
	defer ping.Stop()
	var refresh <-chan time.Time
	if debug {
		t := time.NewTimer(s.debugAfter)
		defer t.Stop()
		refresh = t.C
	}
	for {
		select {
		case <-s.ctx.Done():
			c.close()
			return
		case <-c.done:
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second)); err != nil {
				c.close()
			}
		case <-refresh:
			_ = c.writeJSON(disconnectMessage("refresh_requested"))
		}
	}
}

// readAcks records every ack until the connection ends, then forgets it.
func (s *Server) readAcks(c *wsConn) {
	defer s.wg.Done()
	defer func() {
		c.close()
		s.mu.Lock()
		for i, o := range s.conns {
			if o == c {
				s.conns = append(s.conns[:i:i], s.conns[i+1:]...)
				break
			}
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()
	for {
		var msg struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := c.ws.ReadJSON(&msg); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				continue
			}
			return
		}
		if msg.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		ack := Ack{EnvelopeID: msg.EnvelopeID, At: time.Now()}
		if len(msg.Payload) > 0 && string(msg.Payload) != "null" {
			ack.Payload = msg.Payload
		}
		if env, ok := s.envelopes[msg.EnvelopeID]; ok {
			ack.RetryAttempt = env.attempts
		}
		s.acks = append(s.acks, ack)
		s.notifyLocked()
		s.mu.Unlock()
	}
}

func disconnectMessage(reason string) map[string]any {
	return map[string]any{
		"type":       "disconnect",
		"reason":     reason,
		"debug_info": map[string]any{"host": "applink-fake-1"},
	}
}

// Connected reports whether a Socket Mode client is connected.
func (s *Server) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) > 0
}

// Connections returns how many websocket connections the server has
// accepted so far; it grows by one on every reconnect.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// Pongs returns how many answers to its pings the server has received.
func (s *Server) Pongs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pongs
}

// DropConnection closes every open websocket without a close frame, as a
// network failure would; a healthy client reconnects.
func (s *Server) DropConnection() {
	s.mu.Lock()
	conns := append([]*wsConn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// RequestDisconnect sends Slack's "disconnect" message (reason
// "refresh_requested", "warning", …) on every open connection; slack-go
// answers by opening a new connection.
func (s *Server) RequestDisconnect(reason string) error {
	s.mu.Lock()
	conns := append([]*wsConn(nil), s.conns...)
	s.mu.Unlock()
	if len(conns) == 0 {
		return errors.New("request disconnect: no client connected")
	}
	for _, c := range conns {
		if err := c.writeJSON(disconnectMessage(reason)); err != nil {
			return fmt.Errorf("request disconnect: %w", err)
		}
	}
	return nil
}

// WaitAck waits for the first ack of an envelope.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var ack Ack
	found := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, a := range s.acks {
			if a.EnvelopeID == envelopeID {
				ack = a
				return true
			}
		}
		return false
	}
	if err := s.WaitFor(ctx, found); err != nil {
		return Ack{}, fmt.Errorf("ack of %s: %w", envelopeID, err)
	}
	return ack, nil
}

// Acks returns every ack received so far, in order of arrival.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// deliver sends an envelope on the newest connection, waiting for a client
// to connect until ctx ends.
func (s *Server) deliver(ctx context.Context, env *envelope) error {
	var c *wsConn
	err := s.WaitFor(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.conns) > 0 {
			c = s.conns[len(s.conns)-1]
		}
		return c != nil
	})
	if err != nil {
		return fmt.Errorf("deliver %s: no client connected: %w", env.kind, err)
	}
	s.mu.Lock()
	msg := map[string]any{
		"envelope_id":              env.id,
		"type":                     env.kind,
		"payload":                  env.payload,
		"accepts_response_payload": env.kind == "slash_commands",
		"retry_attempt":            env.attempts,
		"retry_reason":             "",
	}
	if env.attempts > 0 {
		msg["retry_reason"] = "timeout"
	}
	s.envelopes[env.id] = env
	s.mu.Unlock()
	if err := c.writeJSON(msg); err != nil {
		return fmt.Errorf("deliver %s: %w", env.kind, err)
	}
	return nil
}

// Redeliver sends an envelope again with its retry_attempt raised by one,
// as Slack does when an ack is late. It needs a connected client.
func (s *Server) Redeliver(envelopeID string) error {
	s.mu.Lock()
	env, ok := s.envelopes[envelopeID]
	if ok {
		env.attempts++
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("redeliver %s: unknown envelope", envelopeID)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	return s.deliver(ctx, env)
}
