package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/store"
)

// BenchmarkScrape measures one /metrics scrape of a store holding a year
// of jobs (the jobs collector reads them all).
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{100, 5000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "cpbot.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			batch := make([]*jobs.Job, 0, 100)
			for i := 0; i < n; i++ {
				batch = append(batch, &jobs.Job{Spec: jobs.Spec{Class: "obj1", Epochs: 150, Batch: 8, LR: 0.001, Budget: jobs.USD(25), Requester: "U1", Channel: "C1"}})
				if len(batch) == cap(batch) || i == n-1 {
					if _, _, err := db.CreateJobs(context.Background(), "", batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			client, err := lambda.NewClient(lambda.Config{BaseURL: "http://127.0.0.1:1/api/v1", APIKey: "unused"})
			if err != nil {
				b.Fatal(err)
			}
			m := NewMetrics("bench", nil)
			if err := m.RegisterJobs(jobs.NewService(jobs.Config{TeamBudget: jobs.USD(500)}, db, nil, client)); err != nil {
				b.Fatal(err)
			}
			h := m.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
