package store_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

func TestEvents(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	js := mustCreate(t, db, "U1", "obj1", "obj2", "obj3")
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

	// 300 events cross the one-byte key boundary, interleaved over two jobs.
	var want []jobs.Event
	for i := range 300 {
		e := jobs.Event{JobID: js[0].ID, Kind: jobs.EventEpoch, Epoch: i + 1, Loss: 1 / float64(i+1)}
		if i%3 == 0 {
			e.Time = at.Add(time.Duration(i) * time.Minute)
		}
		seq, err := db.AddEvent(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if seq != int64(i+1) {
			t.Fatalf("event %d got sequence %d, want %d", i, seq, i+1)
		}
		e.Seq = seq
		if _, err := db.AddEvent(ctx, jobs.Event{JobID: js[1].ID, Kind: jobs.EventNote, Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	got, err := db.Events(ctx, js[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Events returned %d, want %d", len(got), len(want))
	}
	for i, e := range got {
		w := want[i]
		if e.Epoch != w.Epoch || e.Kind != w.Kind || e.Loss != w.Loss || e.JobID != w.JobID || e.Seq != w.Seq {
			t.Fatalf("event %d = %+v, want %+v", i, e, w)
		}
		switch {
		case !w.Time.IsZero() && !e.Time.Equal(w.Time):
			t.Errorf("event %d time %v, want the given %v", i, e.Time, w.Time)
		case w.Time.IsZero() && e.Time.IsZero():
			t.Errorf("event %d has no time; want the store's clock", i)
		}
	}

	t.Run("no events", func(t *testing.T) {
		got, err := db.Events(ctx, js[2].ID)
		if err != nil || len(got) != 0 {
			t.Errorf("Events of a quiet job = %v, %v; want none", got, err)
		}
	})
	t.Run("non-finite losses", func(t *testing.T) {
		losses := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.2269}
		for i, l := range losses {
			if _, err := db.AddEvent(ctx, jobs.Event{JobID: js[2].ID, Kind: jobs.EventEpoch, Epoch: i + 1, Loss: l}); err != nil {
				t.Fatalf("AddEvent(loss %v): %v", l, err)
			}
		}
		got, err := db.Events(ctx, js[2].ID)
		if err != nil || len(got) != len(losses) {
			t.Fatalf("Events = %d events, %v; want %d", len(got), err, len(losses))
		}
		for i, e := range got {
			w := losses[i]
			if !(e.Loss == w || math.IsNaN(e.Loss) && math.IsNaN(w)) {
				t.Errorf("event %d loss = %v, want %v", i, e.Loss, w)
			}
		}
	})
	t.Run("missing job", func(t *testing.T) {
		_, err := db.Events(ctx, 404)
		assertCode(t, err, jobs.ENOTFOUND)
		_, err = db.AddEvent(ctx, jobs.Event{JobID: 404, Kind: jobs.EventNote})
		assertCode(t, err, jobs.ENOTFOUND)
	})
}
