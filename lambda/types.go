package lambda

// Field names follow Lambda's OpenAPI document, version 1.10.0.

// Instance status values, as Lambda reports them.
const (
	StatusBooting     = "booting"
	StatusActive      = "active"
	StatusUnhealthy   = "unhealthy"
	StatusTerminating = "terminating"
	StatusTerminated  = "terminated"
	StatusPreempted   = "preempted"
)

// Region is a Lambda Cloud region.
type Region struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// InstanceTypeSpecs are the hardware figures of an instance type.
type InstanceTypeSpecs struct {
	VCPUs      int `json:"vcpus"`
	MemoryGiB  int `json:"memory_gib"`
	StorageGiB int `json:"storage_gib"`
	GPUs       int `json:"gpus"`
}

// InstanceType is a kind of machine and its price.
type InstanceType struct {
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	GPUDescription    string            `json:"gpu_description"`
	PriceCentsPerHour int               `json:"price_cents_per_hour"`
	Specs             InstanceTypeSpecs `json:"specs"`
}

// InstanceTypeAvailability is one entry of the instance-types listing: a type
// and the regions that, as a hint and not a promise, have capacity for it.
type InstanceTypeAvailability struct {
	InstanceType                 InstanceType `json:"instance_type"`
	RegionsWithCapacityAvailable []Region     `json:"regions_with_capacity_available"`
}

// Instance is a launched machine.
type Instance struct {
	ID              string       `json:"id"`
	Name            string       `json:"name,omitempty"`
	IP              string       `json:"ip,omitempty"`
	PrivateIP       string       `json:"private_ip,omitempty"`
	Status          string       `json:"status"`
	SSHKeyNames     []string     `json:"ssh_key_names"`
	FileSystemNames []string     `json:"file_system_names"`
	Region          Region       `json:"region"`
	InstanceType    InstanceType `json:"instance_type"`
	Hostname        string       `json:"hostname,omitempty"`
	// Actions is what Lambda would accept for the instance in its current
	// state.
	Actions InstanceActionAvailability `json:"actions"`
}

// SSHKey is a public key registered with Lambda. PrivateKey is set only when
// Lambda generated the pair.
type SSHKey struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key,omitempty"`
}

// InstanceActionAvailabilityDetails says whether one action can be taken on an
// instance now and, if not, why.
type InstanceActionAvailabilityDetails struct {
	Available         bool   `json:"available"`
	ReasonCode        string `json:"reason_code,omitempty"`
	ReasonDescription string `json:"reason_description,omitempty"`
}

// InstanceActionAvailability lists the actions Lambda would accept for an
// instance in its current state.
type InstanceActionAvailability struct {
	Migrate    InstanceActionAvailabilityDetails `json:"migrate"`
	Rebuild    InstanceActionAvailabilityDetails `json:"rebuild"`
	Restart    InstanceActionAvailabilityDetails `json:"restart"`
	ColdReboot InstanceActionAvailabilityDetails `json:"cold_reboot"`
	Terminate  InstanceActionAvailabilityDetails `json:"terminate"`
}

// User is the Lambda Cloud user who created a resource.
type User struct {
	ID     string `json:"id"`
	Email  string `json:"email"`
	Status string `json:"status"`
}

// FileSystem is a persistent network file system that instances in the same
// region can mount.
type FileSystem struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	MountPoint string `json:"mount_point"`
	// Created is an RFC 3339 timestamp.
	Created   string `json:"created"`
	CreatedBy User   `json:"created_by"`
	IsInUse   bool   `json:"is_in_use"`
	Region    Region `json:"region"`
	BytesUsed int64  `json:"bytes_used,omitempty"`
}
