package store_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/store"
)

func TestRecordCostAndSpend(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	type record struct {
		job    int64
		user   string
		month  string
		amount jobs.Money
	}
	type spend struct {
		total  jobs.Money
		byUser map[string]jobs.Money
	}
	tests := []struct {
		name    string
		records []record
		want    map[string]spend // month → expected
	}{
		{
			name:    "empty month",
			records: nil,
			want:    map[string]spend{"2026-12": {0, map[string]jobs.Money{}}},
		},
		{
			name: "sums jobs and splits by user",
			records: []record{
				{1, "alice", "2026-12", 1_500_000},
				{2, "bob", "2026-12", 2_000_000},
				{3, "alice", "2026-12", 250_000},
			},
			want: map[string]spend{"2026-12": {3_750_000, map[string]jobs.Money{"alice": 1_750_000, "bob": 2_000_000}}},
		},
		{
			name: "same figure twice is harmless",
			records: []record{
				{1, "alice", "2026-12", 1_500_000},
				{1, "alice", "2026-12", 1_500_000},
			},
			want: map[string]spend{"2026-12": {1_500_000, map[string]jobs.Money{"alice": 1_500_000}}},
		},
		{
			name: "later figure replaces",
			records: []record{
				{1, "alice", "2026-12", 1_500_000},
				{1, "alice", "2026-12", 4_000_000},
				{1, "alice", "2026-12", 3_000_000},
			},
			want: map[string]spend{"2026-12": {3_000_000, map[string]jobs.Money{"alice": 3_000_000}}},
		},
		{
			name: "months are separate",
			records: []record{
				{1, "alice", "2026-11", 900_000},
				{1, "alice", "2026-12", 100_000},
				{2, "bob", "2027-01", 5},
			},
			want: map[string]spend{
				"2026-11": {900_000, map[string]jobs.Money{"alice": 900_000}},
				"2026-12": {100_000, map[string]jobs.Money{"alice": 100_000}},
				"2027-01": {5, map[string]jobs.Money{"bob": 5}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpenDB(t)
			for _, r := range tt.records {
				if err := db.RecordCost(ctx, r.job, r.user, r.month, r.amount); err != nil {
					t.Fatalf("RecordCost(%+v): %v", r, err)
				}
			}
			for month, w := range tt.want {
				total, byUser, err := db.Spend(ctx, month)
				if err != nil {
					t.Fatal(err)
				}
				if total != w.total || !maps.Equal(byUser, w.byUser) || byUser == nil {
					t.Errorf("Spend(%s) = %d %v, want %d %v", month, total, byUser, w.total, w.byUser)
				}
			}
		})
	}

	t.Run("invalid input", func(t *testing.T) {
		for _, month := range []string{"", "2026-1", "2026-13", "26-12", "2026-12-01", "december"} {
			assertCode(t, db.RecordCost(ctx, 1, "alice", month, 1), jobs.EINVALID)
			_, _, err := db.Spend(ctx, month)
			assertCode(t, err, jobs.EINVALID)
		}
		assertCode(t, db.RecordCost(ctx, 1, "alice", "2026-12", -1), jobs.EINVALID)
		total, _, err := db.Spend(ctx, "2026-12")
		if err != nil || total != 0 {
			t.Errorf("refused records changed the total: %d, %v", total, err)
		}
	})
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	steps := []struct {
		set     bool
		key     string
		value   string
		wantOK  bool
		wantVal string
	}{
		{key: "team_budget", wantOK: false},
		{set: true, key: "team_budget", value: "500"},
		{key: "team_budget", wantOK: true, wantVal: "500"},
		{set: true, key: "team_budget", value: "750"},
		{key: "team_budget", wantOK: true, wantVal: "750"},
		{set: true, key: "empty", value: ""},
		{key: "empty", wantOK: true, wantVal: ""},
		{key: "other", wantOK: false},
	}
	for i, s := range steps {
		if s.set {
			if err := db.SetSetting(ctx, s.key, s.value); err != nil {
				t.Fatalf("step %d: SetSetting: %v", i, err)
			}
			continue
		}
		v, ok, err := db.Setting(ctx, s.key)
		if err != nil || ok != s.wantOK || v != s.wantVal {
			t.Errorf("step %d: Setting(%q) = %q, %v, %v; want %q, %v", i, s.key, v, ok, err, s.wantVal, s.wantOK)
		}
	}
	assertCode(t, db.SetSetting(ctx, "", "x"), jobs.EINVALID)
}

func TestOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cpbot.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		key  string
		want bool
	}{
		{"budget-80:2026-12", true},
		{"budget-80:2026-12", false},
		{"budget-100:2026-12", true},
		{"budget-80:2027-01", true},
		{"budget-80:2026-12", false},
	}
	for i, s := range steps {
		first, err := db.Once(ctx, s.key)
		if err != nil || first != s.want {
			t.Errorf("step %d: Once(%q) = %v, %v; want %v", i, s.key, first, err, s.want)
		}
	}
	_, err = db.Once(ctx, "")
	assertCode(t, err, jobs.EINVALID)
	// A Once key never collides with a CreateJobs dedupe key of the same text.
	if _, created, err := db.CreateJobs(ctx, "budget-100:2026-12", []*jobs.Job{{Spec: spec("obj1", "U1")}}); err != nil || !created {
		t.Errorf("CreateJobs under a used Once key = %v, %v; want created", created, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpen(t, path, store.Options{})
	for _, key := range []string{"budget-80:2026-12", "budget-100:2026-12", "budget-80:2027-01"} {
		if first, err := db.Once(ctx, key); err != nil || first {
			t.Errorf("after reopen Once(%q) = %v, %v; want false", key, first, err)
		}
	}
	if first, err := db.Once(ctx, "fresh"); err != nil || !first {
		t.Errorf("after reopen Once(fresh) = %v, %v; want true", first, err)
	}
}

func TestRecordCostsBatch(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	recs := []jobs.CostRecord{
		{JobID: 1, User: "U1", Month: "2026-12", Amount: jobs.USD(1.5)},
		{JobID: 2, User: "U2", Month: "2026-12", Amount: jobs.USD(2)},
		{JobID: 3, User: "U1", Month: "2026-11", Amount: jobs.USD(4)},
	}
	for i := 0; i < 2; i++ { // set, not add: recording twice changes nothing
		if err := db.RecordCosts(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	total, byUser, err := db.Spend(ctx, "2026-12")
	if err != nil || total != jobs.USD(3.5) || byUser["U1"] != jobs.USD(1.5) || byUser["U2"] != jobs.USD(2) {
		t.Errorf("December: %v %v %v", total, byUser, err)
	}
	if err := db.RecordCosts(ctx, []jobs.CostRecord{{JobID: 4, Month: "Dec", Amount: 1}}); jobs.ErrorCode(err) != jobs.EINVALID {
		t.Errorf("bad month: %v, want EINVALID", err)
	}
	if err := db.RecordCosts(ctx, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}
