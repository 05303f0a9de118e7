package lambda

import "sort"

// Candidate is one (instance type, region) pair worth a launch attempt.
type Candidate struct {
	InstanceType InstanceType
	Region       string
	// HasCapacity says the listing advertised capacity: a hint, not a
	// promise; a launch may still fail with a capacity error.
	HasCapacity bool
}

// Candidates turns an instance-types listing into launch candidates.
//
// preferred names the acceptable types in order of preference; empty means
// every listed type. Names missing from the listing are skipped. regions
// lists the allowed regions; empty means any region that appears anywhere in
// the listing. The result is ordered by preference, then regions advertising
// capacity before the others, then price (cheapest first), then region order
// (the given order, or by name when any region is allowed). Pairs without
// advertised capacity are kept at the end of their type's group, because the
// listing is only a hint.
func Candidates(avail []InstanceTypeAvailability, preferred []string, regions []string) []Candidate {
	rank := make(map[string]int, len(preferred))
	for i, name := range preferred {
		if _, dup := rank[name]; !dup {
			rank[name] = i
		}
	}
	universe := regions
	if len(universe) == 0 {
		seen := map[string]bool{}
		for _, a := range avail {
			for _, r := range a.RegionsWithCapacityAvailable {
				if !seen[r.Name] {
					seen[r.Name] = true
					universe = append(universe, r.Name)
				}
			}
		}
		sort.Strings(universe)
	}
	regionOrder := make(map[string]int, len(universe))
	for i, r := range universe {
		if _, dup := regionOrder[r]; !dup {
			regionOrder[r] = i
		}
	}

	var out []Candidate
	for _, a := range avail {
		if _, ok := rank[a.InstanceType.Name]; len(preferred) > 0 && !ok {
			continue
		}
		capacity := map[string]bool{}
		for _, r := range a.RegionsWithCapacityAvailable {
			capacity[r.Name] = true
		}
		for r := range regionOrder {
			out = append(out, Candidate{InstanceType: a.InstanceType, Region: r, HasCapacity: capacity[r]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := rank[a.InstanceType.Name], rank[b.InstanceType.Name]; ra != rb {
			return ra < rb
		}
		if a.HasCapacity != b.HasCapacity {
			return a.HasCapacity
		}
		if pa, pb := a.InstanceType.PriceCentsPerHour, b.InstanceType.PriceCentsPerHour; pa != pb {
			return pa < pb
		}
		if a.InstanceType.Name != b.InstanceType.Name {
			return a.InstanceType.Name < b.InstanceType.Name
		}
		return regionOrder[a.Region] < regionOrder[b.Region]
	})
	return out
}
