package lambdatest

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// fault is an injected failure for the next n calls of an operation.
type fault struct {
	status     int
	retryAfter time.Duration
	n          int
}

// apiError renders the fault with the code Lambda uses for its status.
func (f fault) apiError() *lambda.APIError {
	switch {
	case f.status == http.StatusTooManyRequests:
		return apiErr(f.status, lambda.CodeTooManyRequests, "Too many requests.")
	case f.status >= 500:
		return apiErr(f.status, lambda.CodeInternalError, "An internal server error occurred.")
	case f.status == http.StatusUnauthorized:
		return apiErr(f.status, lambda.CodeInvalidAPIKey, "API key was invalid, expired, or deleted.")
	case f.status == http.StatusForbidden:
		return apiErr(f.status, lambda.CodeAccountInactive, "Your account is inactive.")
	case f.status == http.StatusNotFound:
		return apiErr(f.status, lambda.CodeNotFound, "The requested resource was not found.")
	default:
		return apiErr(f.status, lambda.CodeInvalidParameters, "Invalid request data.")
	}
}

// takeFaultLocked consumes one pending fault for op, if any.
func (s *Server) takeFaultLocked(op string) (fault, bool) {
	for _, key := range []string{op, OpAny} {
		q := s.faults[key]
		if len(q) == 0 {
			continue
		}
		f := q[0]
		q[0].n--
		if q[0].n <= 0 {
			q = q[1:]
		}
		s.faults[key] = q
		return f, true
	}
	return fault{}, false
}

// FailNext makes the next n calls of operation op (an Op constant, or OpAny)
// answer status without doing anything: 429 with a rate-limit code, 5xx
// with global/internal-error, other statuses with the code Lambda uses for
// them. Faults queue up in the order given.
func (s *Server) FailNext(op string, status, n int) {
	s.FailNextRetryAfter(op, status, n, 0)
}

// FailNextRetryAfter is FailNext with a Retry-After header (whole seconds,
// rounded up) on each failing answer.
func (s *Server) FailNextRetryAfter(op string, status, n int, retryAfter time.Duration) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], fault{status: status, retryAfter: retryAfter, n: n})
}

// FailTerminate makes the next n terminate calls answer 500 and leave the
// instances running.
func (s *Server) FailTerminate(n int) { s.FailNext(OpTerminate, http.StatusInternalServerError, n) }

// FailLaunchAfterCreate makes the next n successful launches create their
// instance but answer 500, as a launch whose answer was lost would.
func (s *Server) FailLaunchAfterCreate(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createFailN += n
}

// SetCapacity says whether launches of typeName in region succeed; the
// listing advertises the same unless SetAdvertised overrides it.
func (s *Server) SetCapacity(typeName, region string, available bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capacity[capKey{typeName, region}] = available
}

// SetAdvertised overrides what the instance-types listing says about
// capacity for typeName in region, independently of what launches do.
func (s *Server) SetAdvertised(typeName, region string, advertised bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advertised[capKey{typeName, region}] = advertised
}

// SetQuota caps the number of instances not yet terminated; launches beyond
// it answer global/quota-exceeded. Zero means no cap.
func (s *Server) SetQuota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = n
}

// UnhealthyOnBoot makes the next n launched instances turn unhealthy instead
// of active when their boot delay is over.
func (s *Server) UnhealthyOnBoot(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unhealthyN += n
}

// SetUnhealthy turns a running instance unhealthy now; its Machine keeps
// running.
func (s *Server) SetUnhealthy(id string) error {
	_, unlock := s.lock()
	defer unlock()
	in := s.findLocked(id)
	if in == nil {
		return fmt.Errorf("set unhealthy: no instance %s", id)
	}
	switch in.status {
	case lambda.StatusBooting:
		in.unhealthy = true
		in.status = lambda.StatusUnhealthy
	case lambda.StatusActive:
		in.status = lambda.StatusUnhealthy
	default:
		return fmt.Errorf("set unhealthy: instance %s is %s", id, in.status)
	}
	return nil
}

// Preempt ends a running instance now with status "preempted", stops its
// billing and closes its Machine.
func (s *Server) Preempt(id string) error {
	now, unlock := s.lock()
	defer unlock()
	in := s.findLocked(id)
	if in == nil || !in.endedAt.IsZero() || in.status == lambda.StatusTerminating {
		return fmt.Errorf("preempt: no running instance %s", id)
	}
	in.status = lambda.StatusPreempted
	in.endedAt = now
	s.endMachineLocked(in)
	return nil
}

// Seed describes an instance that exists before the test starts, e.g. one
// left by an earlier run or one not named cpbot-….
type Seed struct {
	Name             string
	InstanceTypeName string
	RegionName       string
	// SSHKeyNames need not be registered; unknown names give no
	// authorized key to the Machine.
	SSHKeyNames []string
	// LaunchedAt defaults to now; billing and the boot delay count from it.
	LaunchedAt time.Time
	// Status is booting (the default, following the boot delay), active
	// (the Machine starts on the next look) or unhealthy.
	Status string
}

// AddInstance creates an instance directly, without a launch call, and
// returns it as the API would show it.
func (s *Server) AddInstance(seed Seed) (lambda.Instance, error) {
	now, unlock := s.lock()
	defer unlock()
	i := slices.IndexFunc(s.types, func(t lambda.InstanceType) bool { return t.Name == seed.InstanceTypeName })
	if i < 0 {
		return lambda.Instance{}, fmt.Errorf("add instance: unknown type %q", seed.InstanceTypeName)
	}
	j := slices.IndexFunc(s.regions, func(r lambda.Region) bool { return r.Name == seed.RegionName })
	if j < 0 {
		return lambda.Instance{}, fmt.Errorf("add instance: unknown region %q", seed.RegionName)
	}
	at := seed.LaunchedAt
	if at.IsZero() {
		at = now
	}
	switch seed.Status {
	case "", lambda.StatusBooting, lambda.StatusActive, lambda.StatusUnhealthy:
	default:
		return lambda.Instance{}, fmt.Errorf("add instance: cannot seed status %q", seed.Status)
	}
	in := s.createLocked(seed.Name, s.types[i], s.regions[j], seed.SSHKeyNames, nil, at)
	if seed.Status == lambda.StatusActive || seed.Status == lambda.StatusUnhealthy {
		in.activeAt = at
		if at.After(now) {
			in.activeAt = now
		}
		in.unhealthy = seed.Status == lambda.StatusUnhealthy
	}
	s.advanceLocked(now)
	return s.view(in), nil
}
