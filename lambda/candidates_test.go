package lambda_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cpbot/cpbot/lambda"
)

func avail(name string, cents int, regions ...string) lambda.InstanceTypeAvailability {
	a := lambda.InstanceTypeAvailability{InstanceType: lambda.InstanceType{Name: name, PriceCentsPerHour: cents}}
	for _, r := range regions {
		a.RegionsWithCapacityAvailable = append(a.RegionsWithCapacityAvailable, lambda.Region{Name: r})
	}
	return a
}

func TestCandidates(t *testing.T) {
	listing := []lambda.InstanceTypeAvailability{
		avail("gpu_1x_a10", 75, "us-east-1"),
		avail("gpu_1x_a100", 129, "us-west-1", "us-south-1"),
		avail("gpu_1x_a100_sxm4", 129),
		avail("gpu_1x_h100_pcie", 249, "us-east-1"),
	}
	tests := []struct {
		name      string
		preferred []string
		regions   []string
		want      []string // "type@region" with "+" when capacity is advertised
	}{
		{
			name:      "preference then capacity then region name",
			preferred: []string{"gpu_1x_a100_sxm4", "gpu_1x_a100"},
			want: []string{
				"gpu_1x_a100_sxm4@us-east-1", "gpu_1x_a100_sxm4@us-south-1", "gpu_1x_a100_sxm4@us-west-1",
				"gpu_1x_a100@us-south-1+", "gpu_1x_a100@us-west-1+", "gpu_1x_a100@us-east-1",
			},
		},
		{
			name:      "allowed regions keep their order; unknown preferred types are skipped",
			preferred: []string{"gpu_9x_none", "gpu_1x_a100", "gpu_1x_a10"},
			regions:   []string{"us-west-1", "us-east-1"},
			want:      []string{"gpu_1x_a100@us-west-1+", "gpu_1x_a100@us-east-1", "gpu_1x_a10@us-east-1+", "gpu_1x_a10@us-west-1"},
		},
		{
			name:    "no preference: capacity first, then price",
			regions: []string{"us-east-1"},
			want:    []string{"gpu_1x_a10@us-east-1+", "gpu_1x_h100_pcie@us-east-1+", "gpu_1x_a100@us-east-1", "gpu_1x_a100_sxm4@us-east-1"},
		},
		{name: "empty listing", preferred: []string{"gpu_1x_a10"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := listing
			if tt.name == "empty listing" {
				in = nil
			}
			var got []string
			for _, c := range lambda.Candidates(in, tt.preferred, tt.regions) {
				s := fmt.Sprintf("%s@%s", c.InstanceType.Name, c.Region)
				if c.HasCapacity {
					s += "+"
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Candidates =\n %v\nwant\n %v", got, tt.want)
			}
		})
	}
}
