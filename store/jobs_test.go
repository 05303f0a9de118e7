package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/store"
)

// spec returns a small valid spec for class, asked for by user.
func spec(class, user string) jobs.Spec {
	return jobs.Spec{
		Class: class, Epochs: 150, Batch: 8, LR: 0.001,
		GPUTypes: []string{"gpu_1x_a100"}, Budget: jobs.Money(25_000_000),
		Requester: user, Channel: "C1",
	}
}

// assertJob fails unless got and want encode to the same JSON (the stored
// form, which sidesteps time.Time's internal representation).
func assertJob(t *testing.T, got, want *jobs.Job) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("job mismatch\n got %s\nwant %s", g, w)
	}
}

// assertCode fails unless err carries the jobs error code.
func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := jobs.ErrorCode(err); got != code {
		t.Errorf("error %v has code %q, want %q", err, got, code)
	}
}

// ids returns the IDs of js in order.
func ids(js []*jobs.Job) []int64 {
	out := make([]int64, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

// mustCreate stores one job per class for user and returns them.
func mustCreate(t testing.TB, db *store.DB, user string, classes ...string) []*jobs.Job {
	t.Helper()
	in := make([]*jobs.Job, len(classes))
	for i, c := range classes {
		in[i] = &jobs.Job{Spec: spec(c, user)}
	}
	out, created, err := db.CreateJobs(context.Background(), "", in)
	if err != nil || !created {
		t.Fatalf("CreateJobs = %v, %v", created, err)
	}
	return out
}

// walk moves a job through states, one UpdateJob each.
func walk(t testing.TB, db *store.DB, id int64, states ...jobs.State) {
	t.Helper()
	for _, s := range states {
		_, err := db.UpdateJob(context.Background(), id, "", func(j *jobs.Job) error {
			j.State = s
			return nil
		})
		if err != nil {
			t.Fatalf("walk job #%d to %s: %v", id, s, err)
		}
	}
}

func TestCreateJobs(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	in := []*jobs.Job{
		{Spec: spec("obj1", "U1"), State: jobs.StateTraining, ID: 77},
		{Spec: spec("obj2", "U1")},
		{Spec: spec("obj3", "U1")},
	}
	out, created, err := db.CreateJobs(ctx, "", in)
	if err != nil || !created {
		t.Fatalf("CreateJobs = %v, %v; want created", created, err)
	}
	if got := ids(out); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("IDs = %v, want [1 2 3]", got)
	}
	if in[0].ID != 77 || in[0].State != jobs.StateTraining || in[1].ID != 0 {
		t.Errorf("CreateJobs changed its input: %+v", in[0])
	}
	for i, j := range out {
		if j.State != jobs.StateQueued {
			t.Errorf("job #%d state = %s, want queued", j.ID, j.State)
		}
		if j.CreatedAt.IsZero() || !j.UpdatedAt.Equal(j.CreatedAt) {
			t.Errorf("job #%d times: created %v updated %v", j.ID, j.CreatedAt, j.UpdatedAt)
		}
		if j.Spec.Class != in[i].Spec.Class || !slices.Equal(j.Spec.GPUTypes, in[i].Spec.GPUTypes) {
			t.Errorf("job #%d spec = %+v, want %+v", j.ID, j.Spec, in[i].Spec)
		}
		got, err := db.Job(ctx, j.ID)
		if err != nil {
			t.Fatalf("Job(%d): %v", j.ID, err)
		}
		assertJob(t, got, j)
	}

	_, err = db.Job(ctx, 99)
	assertCode(t, err, jobs.ENOTFOUND)
	if got := jobs.ErrorMessage(err); got != "no job #99" {
		t.Errorf("missing job message = %q", got)
	}
	_, _, err = db.CreateJobs(ctx, "", nil)
	assertCode(t, err, jobs.EINVALID)
}

func TestJobsFilter(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	mustCreate(t, db, "alice", "obj1", "obj2") // #1 #2
	mustCreate(t, db, "bob", "obj3")           // #3
	mustCreate(t, db, "alice", "obj6")         // #4
	mustCreate(t, db, "bob", "obj7")           // #5
	walk(t, db, 2, jobs.StateFinished)
	walk(t, db, 5, jobs.StateTerminating, jobs.StateFinished)
	j3, err := db.Job(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    jobs.JobFilter
		want []int64
	}{
		{"all newest first", jobs.JobFilter{}, []int64{5, 4, 3, 2, 1}},
		{"unfinished", jobs.JobFilter{Unfinished: true}, []int64{4, 3, 1}},
		{"requester", jobs.JobFilter{Requester: "alice"}, []int64{4, 2, 1}},
		{"requester unfinished", jobs.JobFilter{Requester: "bob", Unfinished: true}, []int64{3}},
		{"since", jobs.JobFilter{Since: j3.CreatedAt}, []int64{5, 4, 3}},
		{"limit", jobs.JobFilter{Limit: 2}, []int64{5, 4}},
		{"limit after filter", jobs.JobFilter{Unfinished: true, Limit: 2}, []int64{4, 3}},
		{"nobody", jobs.JobFilter{Requester: "carol"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Jobs(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("Jobs(%+v) = %v, want %v", tt.f, ids(got), tt.want)
			}
		})
	}
}

func TestCreateJobsDedupe(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	first, created, err := db.CreateJobs(ctx, "slack:trigger-1", []*jobs.Job{
		{Spec: spec("obj1", "U1")}, {Spec: spec("obj2", "U1")},
	})
	if err != nil || !created {
		t.Fatalf("first CreateJobs = %v, %v", created, err)
	}
	for _, j := range first {
		if j.DedupeKey != "slack:trigger-1" {
			t.Errorf("job #%d DedupeKey = %q", j.ID, j.DedupeKey)
		}
	}
	walk(t, db, first[0].ID, jobs.StateLaunching)

	tests := []struct {
		name    string
		key     string
		created bool
		want    []int64
	}{
		{"repeat returns the originals", "slack:trigger-1", false, []int64{1, 2}},
		{"repeat again", "slack:trigger-1", false, []int64{1, 2}},
		{"other key creates", "slack:trigger-2", true, []int64{3}},
		{"no key creates", "", true, []int64{4}},
		{"no key creates again", "", true, []int64{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, created, err := db.CreateJobs(ctx, tt.key, []*jobs.Job{{Spec: spec("obj13", "U2")}})
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.created || !slices.Equal(ids(out), tt.want) {
				t.Errorf("CreateJobs(%q) = %v, %v; want %v, %v", tt.key, ids(out), created, tt.want, tt.created)
			}
		})
	}
	again, _, err := db.CreateJobs(ctx, "slack:trigger-1", []*jobs.Job{{Spec: spec("obj13", "U2")}})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].State != jobs.StateLaunching || again[1].Spec.Class != "obj2" {
		t.Errorf("repeat returned stale or wrong jobs: %+v %+v", again[0], again[1])
	}
	all, err := db.Jobs(ctx, jobs.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 {
		t.Errorf("stored %d jobs, want 5", len(all))
	}
}

func TestUpdateJob(t *testing.T) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		setup    []jobs.State // states to walk the job through first
		id       int64        // 0 = the created job
		from     jobs.State
		fn       func(*jobs.Job) error
		wantCode string // "" = success
		wantErr  error  // returned as is
		want     func(*jobs.Job) bool
	}{
		{
			name: "matching from",
			from: jobs.StateQueued,
			fn: func(j *jobs.Job) error {
				j.State, j.InstanceName = jobs.StateLaunching, "cpbot-1-1"
				return nil
			},
			want: func(j *jobs.Job) bool { return j.State == jobs.StateLaunching && j.InstanceName == "cpbot-1-1" },
		},
		{
			name: "empty from",
			fn:   func(j *jobs.Job) error { j.Reason = "note"; return nil },
			want: func(j *jobs.Job) bool { return j.Reason == "note" },
		},
		{
			name:  "finished job may still change fields",
			setup: []jobs.State{jobs.StateFinished},
			from:  jobs.StateFinished,
			fn:    func(j *jobs.Job) error { j.NotifyRef = "C1/123.4"; return nil },
			want:  func(j *jobs.Job) bool { return j.NotifyRef == "C1/123.4" },
		},
		{
			name:     "stale from",
			setup:    []jobs.State{jobs.StateLaunching},
			from:     jobs.StateQueued,
			fn:       func(j *jobs.Job) error { panic("fn called despite a stale from") },
			wantCode: jobs.ECONFLICT,
		},
		{
			name:     "forbidden transition",
			from:     jobs.StateQueued,
			fn:       func(j *jobs.Job) error { j.State, j.Reason = jobs.StateTraining, "skip"; return nil },
			wantCode: jobs.ECONFLICT,
		},
		{
			name:     "finished is final",
			setup:    []jobs.State{jobs.StateTerminating, jobs.StateFinished},
			fn:       func(j *jobs.Job) error { j.State = jobs.StateLaunching; return nil },
			wantCode: jobs.ECONFLICT,
		},
		{
			name:    "fn error",
			fn:      func(j *jobs.Job) error { j.Reason = "half"; return errBoom },
			wantErr: errBoom,
		},
		{
			name:     "id change",
			fn:       func(j *jobs.Job) error { j.ID = 4242; return nil },
			wantCode: jobs.EINTERNAL,
		},
		{
			name:     "missing job",
			id:       999,
			fn:       func(j *jobs.Job) error { panic("fn called for a missing job") },
			wantCode: jobs.ENOTFOUND,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpenDB(t)
			created := mustCreate(t, db, "U1", "obj1")[0]
			walk(t, db, created.ID, tt.setup...)
			before, err := db.Job(ctx, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			id := tt.id
			if id == 0 {
				id = created.ID
			}

			got, err := db.UpdateJob(ctx, id, tt.from, tt.fn)
			after, gerr := db.Job(ctx, created.ID)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if tt.wantCode != "" || tt.wantErr != nil {
				if tt.wantErr != nil && err != tt.wantErr {
					t.Errorf("UpdateJob error = %v, want %v as is", err, tt.wantErr)
				}
				if tt.wantCode != "" {
					assertCode(t, err, tt.wantCode)
				}
				if got != nil {
					t.Errorf("UpdateJob returned a job with an error: %+v", got)
				}
				assertJob(t, after, before) // nothing written, not even UpdatedAt
				return
			}
			if err != nil {
				t.Fatalf("UpdateJob: %v", err)
			}
			if !tt.want(got) || !tt.want(after) {
				t.Errorf("update not applied: returned %+v, stored %+v", got, after)
			}
			if !after.UpdatedAt.After(before.UpdatedAt) {
				t.Errorf("UpdatedAt %v not after %v", after.UpdatedAt, before.UpdatedAt)
			}
			assertJob(t, got, after)
		})
	}
}

func TestUpdateJobConcurrentCompareAndSet(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	id := mustCreate(t, db, "U1", "obj1")[0].ID

	const workers = 24
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   []int
		conflicts int
		others    []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.UpdateJob(ctx, id, jobs.StateQueued, func(j *jobs.Job) error {
				j.State = jobs.StateLaunching
				j.InstanceName = fmt.Sprintf("cpbot-%d-%d", id, w)
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			switch jobs.ErrorCode(err) {
			case "":
				winners = append(winners, w)
			case jobs.ECONFLICT:
				conflicts++
			default:
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 || conflicts != workers-1 || len(others) != 0 {
		t.Fatalf("winners %v, conflicts %d, other errors %v; want exactly one winner", winners, conflicts, others)
	}
	j, err := db.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("cpbot-%d-%d", id, winners[0]); j.InstanceName != want {
		t.Errorf("stored InstanceName %q, want the winner's %q", j.InstanceName, want)
	}
}

func BenchmarkUpdateJob(b *testing.B) {
	ctx := context.Background()
	db := MustOpenDB(b)
	id := mustCreate(b, db, "U1", "obj1")[0].ID
	n := 0
	for b.Loop() {
		n++
		_, err := db.UpdateJob(ctx, id, "", func(j *jobs.Job) error {
			j.LogOffset = int64(n)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkCreateJobs(b *testing.B) {
	ctx := context.Background()
	db := MustOpenDB(b)
	in := []*jobs.Job{{Spec: spec("obj1", "U1")}}
	for b.Loop() {
		if _, _, err := db.CreateJobs(ctx, "", in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
