package lambdatest

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
)

var _ Machine = (*Host)(nil)

// Sim makes the simulated hosts behind a fake cloud's instances and keeps
// the live ones by IP, so a test can reach the machine behind an instance:
//
//	sim := lambdatest.NewSim(lambdatest.HostConfig{Root: t.TempDir()})
//	defer sim.Close()
//	opts := lambdatest.Options{NewMachine: sim.NewMachine}
//	…
//	sim.Host(instance.IP).SetTrainer(lambdatest.TrainerConfig{Mode: lambdatest.ModeHang})
//
// All hosts of a Sim listen on the same port, Port, as real instances all
// listen on 22.
type Sim struct {
	cfg     HostConfig
	portErr error

	mu    sync.Mutex
	hosts map[string]*Host
}

// NewSim returns a Sim whose hosts use cfg. A zero cfg.Port is replaced by
// a free port shared by all its hosts.
func NewSim(cfg HostConfig) *Sim {
	s := &Sim{cfg: cfg, hosts: make(map[string]*Host)}
	if s.cfg.Port == 0 {
		s.cfg.Port, s.portErr = FreePort()
	}
	return s
}

// Port returns the SSH port of every host of the Sim.
func (s *Sim) Port() int { return s.cfg.Port }

// NewMachine starts a host at ip; it has the signature of
// Options.NewMachine. It fails if a live host of this Sim already has ip.
func (s *Sim) NewMachine(ip string, authorizedKeys []string) (Machine, error) {
	h, err := s.Start(ip, authorizedKeys)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Start is NewMachine returning the concrete *Host.
func (s *Sim) Start(ip string, authorizedKeys []string) (*Host, error) {
	if s.portErr != nil {
		return nil, fmt.Errorf("sim: %w", s.portErr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hosts == nil {
		return nil, errors.New("sim: closed")
	}
	if _, ok := s.hosts[ip]; ok {
		return nil, fmt.Errorf("sim: host %s is already running", ip)
	}
	h, err := NewHost(ip, authorizedKeys, s.cfg)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s.hosts[ip] = h
	h.addCloseHook(func() {
		s.mu.Lock()
		if s.hosts[ip] == h {
			delete(s.hosts, ip)
		}
		s.mu.Unlock()
	})
	return h, nil
}

// Host returns the live host at ip, nil if there is none.
func (s *Sim) Host(ip string) *Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hosts[ip]
}

// Hosts returns the live hosts ordered by IP.
func (s *Sim) Hosts() []*Host {
	s.mu.Lock()
	hs := make([]*Host, 0, len(s.hosts))
	for _, h := range s.hosts {
		hs = append(hs, h)
	}
	s.mu.Unlock()
	sort.Slice(hs, func(i, j int) bool { return hs[i].ip < hs[j].ip })
	return hs
}

// Close closes every live host; the Sim starts no more hosts.
func (s *Sim) Close() error {
	s.mu.Lock()
	hosts := s.hosts
	s.hosts = nil
	s.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.Close())
	}
	return errors.Join(errs...)
}

// SimulatedMachines returns an Options.NewMachine that backs every instance
// with a simulated Host made from cfg, through a new Sim. Find a host later
// with HostFor.
func SimulatedMachines(cfg HostConfig) func(ip string, authorizedKeys []string) (Machine, error) {
	return NewSim(cfg).NewMachine
}

// registry holds every live Host of the process by IP, newest last.
var registry = struct {
	sync.Mutex
	hosts map[string][]*Host
}{hosts: make(map[string][]*Host)}

func register(h *Host) {
	registry.Lock()
	registry.hosts[h.ip] = append(registry.hosts[h.ip], h)
	registry.Unlock()
}

func unregister(h *Host) {
	registry.Lock()
	defer registry.Unlock()
	hs := registry.hosts[h.ip]
	for i, x := range hs {
		if x == h {
			hs = append(hs[:i:i], hs[i+1:]...)
			break
		}
	}
	if len(hs) == 0 {
		delete(registry.hosts, h.ip)
	} else {
		registry.hosts[h.ip] = hs
	}
}

// HostFor returns the most recently started live Host at ip in this
// process, nil if there is none. Tests running fake clouds in parallel
// with overlapping IPs should use a Sim's Host instead.
func HostFor(ip string) *Host {
	registry.Lock()
	defer registry.Unlock()
	hs := registry.hosts[ip]
	if len(hs) == 0 {
		return nil
	}
	return hs[len(hs)-1]
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
