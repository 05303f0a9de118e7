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
}

// SSHKey is a public key registered with Lambda. PrivateKey is set only when
// Lambda generated the pair.
type SSHKey struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key,omitempty"`
}
