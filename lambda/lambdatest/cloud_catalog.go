package lambdatest

import "github.com/cpbot/cpbot/lambda"

// Regions of the default catalog.
var (
	RegionUSEast1    = lambda.Region{Name: "us-east-1", Description: "Virginia, USA"}
	RegionUSWest1    = lambda.Region{Name: "us-west-1", Description: "California, USA"}
	RegionUSSouth1   = lambda.Region{Name: "us-south-1", Description: "Texas, USA"}
	RegionEUCentral1 = lambda.Region{Name: "europe-central-1", Description: "Germany"}
)

func itype(name, desc, gpu string, cents, vcpus, mem, disk, gpus int) lambda.InstanceType {
	return lambda.InstanceType{
		Name:              name,
		Description:       desc,
		GPUDescription:    gpu,
		PriceCentsPerHour: cents,
		Specs:             lambda.InstanceTypeSpecs{VCPUs: vcpus, MemoryGiB: mem, StorageGiB: disk, GPUs: gpus},
	}
}

// DefaultCatalog returns a fresh copy of the catalog a Server uses when
// Options.Catalog is nil: realistic single- and multi-GPU types with prices
// and specs, each with the regions that start out with capacity.
func DefaultCatalog() []lambda.InstanceTypeAvailability {
	east, west, south, eu := RegionUSEast1, RegionUSWest1, RegionUSSouth1, RegionEUCentral1
	return []lambda.InstanceTypeAvailability{
		{
			InstanceType:                 itype("gpu_1x_a10", "1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 30, 200, 1400, 1),
			RegionsWithCapacityAvailable: []lambda.Region{east, west, south},
		},
		{
			InstanceType:                 itype("gpu_1x_a100", "1x A100 (40 GB PCIe)", "A100 (40 GB PCIe)", 129, 30, 200, 512, 1),
			RegionsWithCapacityAvailable: []lambda.Region{west, south},
		},
		{
			InstanceType:                 itype("gpu_1x_a100_sxm4", "1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 30, 200, 512, 1),
			RegionsWithCapacityAvailable: []lambda.Region{east, west},
		},
		{
			InstanceType:                 itype("gpu_1x_h100_pcie", "1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 26, 200, 1024, 1),
			RegionsWithCapacityAvailable: []lambda.Region{east, west, south},
		},
		{
			InstanceType:                 itype("gpu_2x_a100", "2x A100 (40 GB PCIe)", "A100 (40 GB PCIe)", 258, 60, 400, 1024, 2),
			RegionsWithCapacityAvailable: []lambda.Region{south},
		},
		{
			InstanceType:                 itype("gpu_8x_a100", "8x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 1032, 124, 1800, 6144, 8),
			RegionsWithCapacityAvailable: []lambda.Region{east, eu},
		},
		{
			InstanceType:                 itype("gpu_8x_h100_sxm5", "8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 208, 1800, 22528, 8),
			RegionsWithCapacityAvailable: []lambda.Region{west, eu},
		},
	}
}

// DefaultRegions returns the regions of the default catalog.
func DefaultRegions() []lambda.Region {
	return []lambda.Region{RegionUSEast1, RegionUSWest1, RegionUSSouth1, RegionEUCentral1}
}
