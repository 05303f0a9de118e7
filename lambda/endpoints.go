package lambda

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
)

// ListInstanceTypes returns every instance type Lambda offers, sorted by name,
// each with the regions that currently advertise capacity for it.
func (c *Client) ListInstanceTypes(ctx context.Context) ([]InstanceTypeAvailability, error) {
	var byName map[string]InstanceTypeAvailability
	err := c.do(ctx, call{op: "listInstanceTypes", method: http.MethodGet, path: "/instance-types", idempotent: true}, &byName)
	if err != nil {
		return nil, err
	}
	out := make([]InstanceTypeAvailability, 0, len(byName))
	for name, it := range byName {
		if it.InstanceType.Name == "" {
			it.InstanceType.Name = name
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceType.Name < out[j].InstanceType.Name })
	return out, nil
}

// LaunchRequest describes one instance to launch.
type LaunchRequest struct {
	// Name is the instance's name, at most 64 characters.
	Name string
	// RegionName is e.g. "us-east-1".
	RegionName string
	// InstanceTypeName is e.g. "gpu_1x_a100_sxm4".
	InstanceTypeName string
	// SSHKeyName is the name of a registered SSH key; Lambda takes exactly one.
	SSHKeyName string
	// FileSystemNames are file systems, in the same region, to mount.
	FileSystemNames []string
}

// launchBody is the wire form of a launch request; quantity is always 1.
type launchBody struct {
	RegionName       string   `json:"region_name"`
	InstanceTypeName string   `json:"instance_type_name"`
	SSHKeyNames      []string `json:"ssh_key_names"`
	FileSystemNames  []string `json:"file_system_names,omitempty"`
	Name             string   `json:"name,omitempty"`
	Quantity         int      `json:"quantity"`
}

// Launch starts one instance and returns its id. It waits for the launch
// interval and the rate limit, and retries a 429 answer. A launch that times
// out, fails in transport or gets a 5xx is not retried: the error then
// matches ErrAmbiguousLaunch and the caller should look the instance up by
// name before launching again. Capacity, quota and validation failures come
// back as *APIError (see IsCapacity, IsQuotaExceeded).
func (c *Client) Launch(ctx context.Context, req LaunchRequest) (string, error) {
	switch {
	case req.RegionName == "" || req.InstanceTypeName == "":
		return "", errors.New("launch: region and instance type are required")
	case req.SSHKeyName == "":
		return "", errors.New("launch: an ssh key name is required")
	case len(req.Name) > 64:
		return "", fmt.Errorf("launch: name %q is longer than 64 characters", req.Name)
	}
	body := launchBody{
		RegionName:       req.RegionName,
		InstanceTypeName: req.InstanceTypeName,
		SSHKeyNames:      []string{req.SSHKeyName},
		FileSystemNames:  req.FileSystemNames,
		Name:             req.Name,
		Quantity:         1,
	}
	var out struct {
		InstanceIDs []string `json:"instance_ids"`
	}
	err := c.do(ctx, call{op: "launchInstance", method: http.MethodPost, path: "/instance-operations/launch", body: body, launch: true}, &out)
	if err != nil {
		return "", fmt.Errorf("launch %q: %w", req.Name, err)
	}
	if len(out.InstanceIDs) != 1 {
		return "", fmt.Errorf("launch %q: %w: got %d instance ids", req.Name, ErrAmbiguousLaunch, len(out.InstanceIDs))
	}
	return out.InstanceIDs[0], nil
}

// Terminate terminates the given instances and returns them as Lambda
// reports them afterwards (usually "terminating"). It is retried like a GET.
func (c *Client) Terminate(ctx context.Context, ids ...string) ([]Instance, error) {
	if len(ids) == 0 {
		return nil, errors.New("terminate: no instance ids")
	}
	body := struct {
		InstanceIDs []string `json:"instance_ids"`
	}{ids}
	var out struct {
		TerminatedInstances []Instance `json:"terminated_instances"`
	}
	err := c.do(ctx, call{op: "terminateInstance", method: http.MethodPost, path: "/instance-operations/terminate", body: body, idempotent: true}, &out)
	if err != nil {
		return nil, fmt.Errorf("terminate %v: %w", ids, err)
	}
	return out.TerminatedInstances, nil
}

// ListInstances returns the account's instances.
func (c *Client) ListInstances(ctx context.Context) ([]Instance, error) {
	var out []Instance
	err := c.do(ctx, call{op: "listInstances", method: http.MethodGet, path: "/instances", idempotent: true}, &out)
	return out, err
}

// GetInstance returns one instance; a missing one gives an error for which
// IsNotFound is true.
func (c *Client) GetInstance(ctx context.Context, id string) (Instance, error) {
	if id == "" {
		return Instance{}, errors.New("get instance: empty id")
	}
	var out Instance
	err := c.do(ctx, call{op: "getInstance", method: http.MethodGet, path: "/instances/" + url.PathEscape(id), idempotent: true}, &out)
	if err != nil {
		return Instance{}, fmt.Errorf("get instance %s: %w", id, err)
	}
	return out, nil
}

// FindInstanceByName lists instances and returns the one named name. When
// several carry the name, one that is not terminated wins.
func (c *Client) FindInstanceByName(ctx context.Context, name string) (Instance, bool, error) {
	all, err := c.ListInstances(ctx)
	if err != nil {
		return Instance{}, false, fmt.Errorf("find instance %q: %w", name, err)
	}
	var found Instance
	ok := false
	for _, inst := range all {
		if inst.Name != name {
			continue
		}
		if !ok || (found.Status == StatusTerminated && inst.Status != StatusTerminated) {
			found, ok = inst, true
		}
	}
	return found, ok, nil
}

// ListSSHKeys returns the account's registered SSH keys.
func (c *Client) ListSSHKeys(ctx context.Context) ([]SSHKey, error) {
	var out []SSHKey
	err := c.do(ctx, call{op: "listSSHKeys", method: http.MethodGet, path: "/ssh-keys", idempotent: true}, &out)
	return out, err
}

// AddSSHKey registers publicKey under name. With an empty publicKey Lambda
// generates a pair and the returned key carries PrivateKey.
func (c *Client) AddSSHKey(ctx context.Context, name, publicKey string) (SSHKey, error) {
	if name == "" {
		return SSHKey{}, errors.New("add ssh key: empty name")
	}
	body := struct {
		Name      string `json:"name"`
		PublicKey string `json:"public_key,omitempty"`
	}{name, publicKey}
	var out SSHKey
	if err := c.do(ctx, call{op: "addSSHKey", method: http.MethodPost, path: "/ssh-keys", body: body}, &out); err != nil {
		return SSHKey{}, fmt.Errorf("add ssh key %q: %w", name, err)
	}
	return out, nil
}

// DeleteSSHKey removes the SSH key with the given id.
func (c *Client) DeleteSSHKey(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("delete ssh key: empty id")
	}
	var out struct{}
	if err := c.do(ctx, call{op: "deleteSSHKey", method: http.MethodDelete, path: "/ssh-keys/" + url.PathEscape(id), idempotent: true}, &out); err != nil {
		return fmt.Errorf("delete ssh key %s: %w", id, err)
	}
	return nil
}

// ListFileSystems returns the account's file systems.
func (c *Client) ListFileSystems(ctx context.Context) ([]FileSystem, error) {
	var out []FileSystem
	err := c.do(ctx, call{op: "listFilesystems", method: http.MethodGet, path: "/file-systems", idempotent: true}, &out)
	return out, err
}

// ListRegions returns Lambda's regions.
func (c *Client) ListRegions(ctx context.Context) ([]Region, error) {
	var out []Region
	err := c.do(ctx, call{op: "listRegions", method: http.MethodGet, path: "/regions", idempotent: true}, &out)
	return out, err
}
