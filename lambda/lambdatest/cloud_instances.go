package lambdatest

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

func (s *Server) listInstanceTypes(_ *http.Request, _ []byte, _ time.Time) (any, *lambda.APIError) {
	out := map[string]lambda.InstanceTypeAvailability{}
	for _, t := range s.types {
		regions := []lambda.Region{}
		for _, r := range s.regions {
			k := capKey{t.Name, r.Name}
			adv, overridden := s.advertised[k]
			if !overridden {
				adv = s.capacity[k]
			}
			if adv {
				regions = append(regions, r)
			}
		}
		out[t.Name] = lambda.InstanceTypeAvailability{InstanceType: t, RegionsWithCapacityAvailable: regions}
	}
	return out, nil
}

// launchRequest is the wire form the fake accepts; pointers tell absent
// fields from zero ones.
type launchRequest struct {
	RegionName       string   `json:"region_name"`
	InstanceTypeName string   `json:"instance_type_name"`
	SSHKeyNames      []string `json:"ssh_key_names"`
	FileSystemNames  []string `json:"file_system_names"`
	Name             *string  `json:"name"`
	Quantity         *int     `json:"quantity"`
}

func (s *Server) launch(_ *http.Request, body []byte, now time.Time) (any, *lambda.APIError) {
	var req launchRequest
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	t, region, e := s.checkLaunchLocked(req)
	if e != nil {
		return nil, e
	}
	if !s.capacity[capKey{t.Name, region.Name}] {
		return nil, apiErr(http.StatusBadRequest, lambda.CodeInsufficientCapacity, "Not enough capacity to fulfill launch request.")
	}
	if s.quota > 0 && s.runningLocked() >= s.quota {
		return nil, apiErr(http.StatusBadRequest, lambda.CodeQuotaExceeded, "Quota exceeded.")
	}
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	in := s.createLocked(name, t, region, req.SSHKeyNames, req.FileSystemNames, now)
	in.fromLaunch = true
	s.launches++
	if s.unhealthyN > 0 {
		s.unhealthyN--
		in.unhealthy = true
	}
	if s.createFailN > 0 {
		s.createFailN--
		return nil, apiErr(http.StatusInternalServerError, lambda.CodeInternalError, "An internal server error occurred.")
	}
	return map[string]any{"instance_ids": []string{in.base.ID}}, nil
}

// checkLaunchLocked validates a launch request the way Lambda does.
func (s *Server) checkLaunchLocked(req launchRequest) (lambda.InstanceType, lambda.Region, *lambda.APIError) {
	var t lambda.InstanceType
	var region lambda.Region
	if req.Quantity != nil && *req.Quantity != 1 {
		return t, region, invalid(fmt.Sprintf("quantity must be 1, got %d", *req.Quantity))
	}
	if req.Name != nil && len(*req.Name) > 64 {
		return t, region, invalid("name must be 64 characters or fewer")
	}
	i := slices.IndexFunc(s.types, func(x lambda.InstanceType) bool { return x.Name == req.InstanceTypeName })
	if i < 0 {
		return t, region, invalid(fmt.Sprintf("unknown instance type %q", req.InstanceTypeName))
	}
	t = s.types[i]
	j := slices.IndexFunc(s.regions, func(x lambda.Region) bool { return x.Name == req.RegionName })
	if j < 0 {
		return t, region, invalid(fmt.Sprintf("unknown region %q", req.RegionName))
	}
	region = s.regions[j]
	if len(req.SSHKeyNames) != 1 {
		return t, region, invalid(fmt.Sprintf("exactly one ssh key name must be given, got %d", len(req.SSHKeyNames)))
	}
	if _, ok := s.sshKeyByNameLocked(req.SSHKeyNames[0]); !ok {
		return t, region, invalid(fmt.Sprintf("unknown ssh key name %q", req.SSHKeyNames[0]))
	}
	for _, fsName := range req.FileSystemNames {
		k := slices.IndexFunc(s.fileSystems, func(f lambda.FileSystem) bool { return f.Name == fsName })
		if k < 0 {
			return t, region, apiErr(http.StatusNotFound, lambda.CodeObjectDoesNotExist, fmt.Sprintf("file system %q does not exist", fsName))
		}
		if s.fileSystems[k].Region.Name != region.Name {
			return t, region, apiErr(http.StatusBadRequest, lambda.CodeFileSystemWrongRegion,
				fmt.Sprintf("file system %q is in %s, not %s", fsName, s.fileSystems[k].Region.Name, region.Name))
		}
	}
	return t, region, nil
}

func (s *Server) runningLocked() int {
	n := 0
	for _, in := range s.instances {
		if in.endedAt.IsZero() && in.status != lambda.StatusTerminated {
			n++
		}
	}
	return n
}

// createLocked records a new booting instance.
func (s *Server) createLocked(name string, t lambda.InstanceType, region lambda.Region, keys, fs []string, now time.Time) *instance {
	in := &instance{
		base: lambda.Instance{
			ID:              randomHex(16),
			Name:            name,
			SSHKeyNames:     append([]string{}, keys...),
			FileSystemNames: append([]string{}, fs...),
			Region:          region,
			InstanceType:    t,
		},
		status:     lambda.StatusBooting,
		ip:         s.allocIPLocked(),
		launchedAt: now,
		activeAt:   now.Add(s.opts.BootDelay),
	}
	s.instances = append(s.instances, in)
	return in
}

func (s *Server) terminate(_ *http.Request, body []byte, now time.Time) (any, *lambda.APIError) {
	var req struct {
		InstanceIDs []string `json:"instance_ids"`
	}
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	if len(req.InstanceIDs) == 0 {
		return nil, invalid("instance_ids must not be empty")
	}
	targets := make([]*instance, 0, len(req.InstanceIDs))
	for _, id := range req.InstanceIDs {
		in := s.visibleLocked(id, now)
		if in == nil {
			return nil, apiErr(http.StatusNotFound, lambda.CodeObjectDoesNotExist, fmt.Sprintf("Specified instance %s does not exist.", id))
		}
		targets = append(targets, in)
	}
	out := make([]lambda.Instance, 0, len(targets))
	for _, in := range targets {
		switch in.status {
		case lambda.StatusBooting, lambda.StatusActive, lambda.StatusUnhealthy:
			in.status = lambda.StatusTerminating
			in.terminateAt = now.Add(s.opts.TerminateDelay)
		}
		out = append(out, s.view(in))
	}
	return map[string]any{"terminated_instances": out}, nil
}

// visibleLocked finds an instance the API still shows.
func (s *Server) visibleLocked(id string, now time.Time) *instance {
	in := s.findLocked(id)
	if in == nil || s.forgottenLocked(in, now) {
		return nil
	}
	return in
}

func (s *Server) forgottenLocked(in *instance, now time.Time) bool {
	keep := s.opts.ForgetTerminatedAfter
	return keep > 0 && in.status == lambda.StatusTerminated && now.Sub(in.endedAt) >= keep
}

func (s *Server) listInstances(_ *http.Request, _ []byte, now time.Time) (any, *lambda.APIError) {
	out := []lambda.Instance{}
	for _, in := range s.instances {
		if !s.forgottenLocked(in, now) {
			out = append(out, s.view(in))
		}
	}
	return out, nil
}

func (s *Server) getInstance(r *http.Request, _ []byte, now time.Time) (any, *lambda.APIError) {
	in := s.visibleLocked(r.PathValue("id"), now)
	if in == nil {
		return nil, apiErr(http.StatusNotFound, lambda.CodeObjectDoesNotExist, "Specified instance does not exist.")
	}
	return s.view(in), nil
}
