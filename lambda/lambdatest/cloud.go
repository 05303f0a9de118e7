package lambdatest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// Machine is what answers at a fake instance's address, e.g. a simulated SSH
// host.
type Machine interface{ Close() error }

// Options configure a Server. Zero values are usable.
type Options struct {
	// Now is the fake's clock; default time.Now. Lifecycle transitions are
	// computed from it on every request, so a test advances the cloud by
	// moving the clock.
	Now func() time.Time
	// BootDelay is how long a new instance stays "booting" (without an ip)
	// before it turns "active"; zero means active on the next look.
	BootDelay time.Duration
	// TerminateDelay is how long a terminated instance stays "terminating".
	TerminateDelay time.Duration
	// ForgetTerminatedAfter hides instances that have been terminated this
	// long from the API (they answer 404); zero keeps them listed.
	ForgetTerminatedAfter time.Duration
	// Catalog is the instance-type listing and the initial capacity; nil
	// means DefaultCatalog().
	Catalog []lambda.InstanceTypeAvailability
	// Regions are the regions the API lists; nil means the regions of the
	// catalog plus DefaultRegions().
	Regions []lambda.Region
	// APIKey is the one key the server accepts; empty means a random one.
	APIKey string
	// NewMachine, if set, is called once when an instance turns active, with
	// its ip and the public_key text of each of its ssh keys. The Machine is
	// closed when the instance turns terminated or preempted and on
	// Server.Close. An error marks the instance unhealthy. It is called with
	// the server's lock held and must not call back into the Server.
	NewMachine func(ip string, authorizedKeys []string) (Machine, error)
	// Logger receives a line per request; nil discards them.
	Logger *slog.Logger
}

// Request is one entry of the server's request log.
type Request struct {
	// Operation is the OpenAPI operationId (see the Op constants); empty
	// for unknown routes.
	Operation string
	Method    string
	// Path is the URL path, including /api/v1.
	Path string
	// Time is the fake clock's time at arrival.
	Time time.Time
	// Status is the HTTP status answered.
	Status int
	// ErrorCode is the error's code, empty on success.
	ErrorCode string
	// Body is the request body as received.
	Body []byte
}

// instance is the fake's record of one instance.
type instance struct {
	base        lambda.Instance // id, name, type, region, keys, file systems
	status      string
	ip          string // allocated at launch, shown once booted
	launchedAt  time.Time
	activeAt    time.Time
	terminateAt time.Time // when "terminating" ends; zero until requested
	endedAt     time.Time // when billing stopped; zero while running
	unhealthy   bool      // turn unhealthy instead of active
	fromLaunch  bool
	machine     Machine
}

type capKey struct{ typ, region string }

// Server is an in-process fake of the Lambda Cloud HTTP API, following
// Lambda's OpenAPI document 1.10.0, with fault injection and a billing meter.
type Server struct {
	opts   Options
	now    func() time.Time
	apiKey string
	log    *slog.Logger
	ts     *httptest.Server

	mu          sync.Mutex
	types       []lambda.InstanceType
	regions     []lambda.Region
	capacity    map[capKey]bool // launches succeed
	advertised  map[capKey]bool // listing overrides
	instances   []*instance
	sshKeys     []lambda.SSHKey
	fileSystems []lambda.FileSystem
	requests    []Request
	faults      map[string][]fault
	ipNext      uint32
	launches    int
	quota       int
	unhealthyN  int
	createFailN int
	ended       []Machine // to close once the lock is released
	closed      bool
}

// NewServer starts a fake cloud on a loopback port. Close it when done.
func NewServer(opts Options) *Server {
	s := &Server{
		opts:       opts,
		now:        opts.Now,
		apiKey:     opts.APIKey,
		log:        opts.Logger,
		capacity:   map[capKey]bool{},
		advertised: map[capKey]bool{},
		faults:     map[string][]fault{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.apiKey == "" {
		s.apiKey = "secret_cpbot-fake_" + randomHex(16)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("system", "lambdatest")
	catalog := opts.Catalog
	if catalog == nil {
		catalog = DefaultCatalog()
	}
	regions := opts.Regions
	if regions == nil {
		regions = DefaultRegions()
	}
	for _, r := range regions {
		s.addRegion(r)
	}
	for _, a := range catalog {
		s.types = append(s.types, a.InstanceType)
		for _, r := range a.RegionsWithCapacityAvailable {
			if opts.Regions == nil {
				s.addRegion(r)
			}
			s.capacity[capKey{a.InstanceType.Name, r.Name}] = true
		}
	}
	// 127.R1.R2.2 with R1 in 1..250: never 127.0.0.1, and parallel test
	// processes rarely pick the same block.
	var b [2]byte
	_, _ = rand.Read(b[:])
	s.ipNext = 127<<24 | uint32(1+int(b[0])%250)<<16 | uint32(b[1])<<8 | 2
	s.ts = httptest.NewServer(s.routes())
	return s
}

func (s *Server) addRegion(r lambda.Region) {
	if !slices.ContainsFunc(s.regions, func(x lambda.Region) bool { return x.Name == r.Name }) {
		s.regions = append(s.regions, r)
	}
}

// URL returns the API base, including /api/v1, for lambda.Config.BaseURL.
func (s *Server) URL() string { return s.ts.URL + "/api/v1" }

// APIKey returns the one API key the server accepts.
func (s *Server) APIKey() string { return s.apiKey }

// Close stops the HTTP server and closes every instance's Machine.
func (s *Server) Close() {
	s.ts.Close()
	s.mu.Lock()
	s.closed = true
	var ms []Machine
	for _, in := range s.instances {
		if in.machine != nil {
			ms = append(ms, in.machine)
			in.machine = nil
		}
	}
	s.mu.Unlock()
	closeMachines(s.log, ms)
}

// lock takes the server's lock and brings every instance's lifecycle up to
// the clock; the returned func unlocks and closes machines that ended.
func (s *Server) lock() (now time.Time, unlock func()) {
	s.mu.Lock()
	now = s.now()
	s.advanceLocked(now)
	return now, func() {
		ended := s.ended
		s.ended = nil
		s.mu.Unlock()
		closeMachines(s.log, ended)
	}
}

// advanceLocked applies the transitions due by now and queues the machines
// of instances that ended for closing after unlock.
func (s *Server) advanceLocked(now time.Time) {
	for _, in := range s.instances {
		if in.status == lambda.StatusBooting && !now.Before(in.activeAt) {
			s.bootLocked(in)
		}
		if in.status == lambda.StatusTerminating && !now.Before(in.terminateAt) {
			in.status = lambda.StatusTerminated
			in.endedAt = in.terminateAt
			s.endMachineLocked(in)
		}
	}
}

// endMachineLocked queues an instance's machine for closing.
func (s *Server) endMachineLocked(in *instance) {
	if in.machine != nil {
		s.ended = append(s.ended, in.machine)
		in.machine = nil
	}
}

// bootLocked turns a booting instance active (or unhealthy) and starts its
// machine.
func (s *Server) bootLocked(in *instance) {
	if in.unhealthy || s.closed {
		in.status = lambda.StatusUnhealthy
		return
	}
	in.status = lambda.StatusActive
	if s.opts.NewMachine == nil {
		return
	}
	var keys []string
	for _, name := range in.base.SSHKeyNames {
		if k, ok := s.sshKeyByNameLocked(name); ok {
			keys = append(keys, k.PublicKey)
		}
	}
	m, err := s.opts.NewMachine(in.ip, keys)
	if err != nil {
		s.log.Warn("machine failed to start", "instance", in.base.ID, "ip", in.ip, "err", err)
		in.status = lambda.StatusUnhealthy
		return
	}
	in.machine = m
}

func closeMachines(log *slog.Logger, ms []Machine) {
	for _, m := range ms {
		if err := m.Close(); err != nil {
			log.Warn("close machine", "err", err)
		}
	}
}

// allocIPLocked returns the next unused loopback address.
func (s *Server) allocIPLocked() string {
	for {
		a := s.ipNext
		s.ipNext++
		if last := a & 0xff; last == 0 || last == 1 || last == 255 || a>>24 != 127 {
			if a>>24 != 127 {
				s.ipNext = 127<<24 | 1<<16 | 2
			}
			continue
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], a)
		return netip.AddrFrom4(b).String()
	}
}

// view renders an instance as the API shows it.
func (s *Server) view(in *instance) lambda.Instance {
	v := in.base
	v.SSHKeyNames = append([]string{}, in.base.SSHKeyNames...)
	v.FileSystemNames = append([]string{}, in.base.FileSystemNames...)
	v.Status = in.status
	if in.status != lambda.StatusBooting {
		v.IP, v.Hostname = in.ip, in.ip
	}
	v.Actions = actionsFor(in.status)
	return v
}

func actionsFor(status string) lambda.InstanceActionAvailability {
	no := func(code string) lambda.InstanceActionAvailabilityDetails {
		return lambda.InstanceActionAvailabilityDetails{Available: false, ReasonCode: code}
	}
	yes := lambda.InstanceActionAvailabilityDetails{Available: true}
	switch status {
	case lambda.StatusActive, lambda.StatusUnhealthy:
		return lambda.InstanceActionAvailability{Migrate: no("vm-action-in-progress"), Rebuild: yes, Restart: yes, ColdReboot: yes, Terminate: yes}
	case lambda.StatusBooting:
		n := no("vm-has-not-launched")
		return lambda.InstanceActionAvailability{Migrate: n, Rebuild: n, Restart: n, ColdReboot: n, Terminate: yes}
	default:
		n := no("vm-is-terminating")
		return lambda.InstanceActionAvailability{Migrate: n, Rebuild: n, Restart: n, ColdReboot: n, Terminate: n}
	}
}

// Instances returns every instance ever created, terminated ones included, in
// launch order, as of the fake clock.
func (s *Server) Instances() []lambda.Instance {
	_, unlock := s.lock()
	defer unlock()
	out := make([]lambda.Instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, s.view(in))
	}
	return out
}

// Machine returns the Machine behind an instance, nil if none is running.
func (s *Server) Machine(instanceID string) Machine {
	_, unlock := s.lock()
	defer unlock()
	if in := s.findLocked(instanceID); in != nil {
		return in.machine
	}
	return nil
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Launches returns how many instances launch calls have created.
func (s *Server) Launches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.launches
}

// BilledMinutes returns the minutes billed for an instance: every started
// minute from launch until it turned terminated (or until now). Unknown ids
// give 0.
func (s *Server) BilledMinutes(id string) int {
	now, unlock := s.lock()
	defer unlock()
	in := s.findLocked(id)
	if in == nil {
		return 0
	}
	end := now
	if !in.endedAt.IsZero() {
		end = in.endedAt
	}
	d := end.Sub(in.launchedAt)
	if d <= 0 {
		return 0
	}
	return int((d + time.Minute - 1) / time.Minute)
}

// CostCents returns the billed cost of an instance in cents: billed minutes
// at the type's hourly price, rounded up to a whole cent.
func (s *Server) CostCents(id string) int {
	minutes := s.BilledMinutes(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.findLocked(id)
	if in == nil {
		return 0
	}
	return (minutes*in.base.InstanceType.PriceCentsPerHour + 59) / 60
}

func (s *Server) findLocked(id string) *instance {
	for _, in := range s.instances {
		if in.base.ID == id {
			return in
		}
	}
	return nil
}

func (s *Server) sshKeyByNameLocked(name string) (lambda.SSHKey, bool) {
	for _, k := range s.sshKeys {
		if k.Name == name {
			return k, true
		}
	}
	return lambda.SSHKey{}, false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("lambdatest: random: %v", err))
	}
	return hex.EncodeToString(b)
}
