// Package store persists cpbot's state in a single bbolt file: jobs, per-job
// events, the cost ledger, settings and dedupe keys. Every state transition is
// one read-check-write Update, which bbolt's single writer makes a
// compare-and-set. It satisfies jobs.Store.
package store
