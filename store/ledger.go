package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cpbot/cpbot/jobs"
)

// monthFormat is the layout of ledger months, "2026-12".
const monthFormat = "2006-01"

// oncePrefix namespaces Once keys in the dedupe bucket.
const oncePrefix = "once:"

// ledgerEntry is what one job cost in one month, with the person who asked
// for it so Spend can split the total by user.
type ledgerEntry struct {
	User   string     `json:"user"`
	Amount jobs.Money `json:"amount"`
}

// RecordCost sets (not adds) what a job has cost in a month ("2026-12"), so
// recording the same figure again is harmless. A malformed month or a
// negative amount is an *jobs.Error with code EINVALID.
func (d *DB) RecordCost(ctx context.Context, jobID int64, user, month string, amount jobs.Money) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkMonth(month); err != nil {
		return err
	}
	if amount < 0 {
		return jobs.Errorf(jobs.EINVALID, "negative cost %v for job #%d", amount, jobID)
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketLedger).CreateBucketIfNotExists([]byte(month))
		if err != nil {
			return fmt.Errorf("record cost of job #%d: %w", jobID, err)
		}
		return putJSON(b, itob(uint64(jobID)), ledgerEntry{User: user, Amount: amount})
	})
}

// RecordCosts sets several ledger entries in one transaction, as
// RecordCost does one; the watchdog records every live job each tick.
func (d *DB) RecordCosts(ctx context.Context, recs []jobs.CostRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range recs {
		if err := checkMonth(r.Month); err != nil {
			return err
		}
		if r.Amount < 0 {
			return jobs.Errorf(jobs.EINVALID, "negative cost %v for job #%d", r.Amount, r.JobID)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		for _, r := range recs {
			b, err := tx.Bucket(bucketLedger).CreateBucketIfNotExists([]byte(r.Month))
			if err != nil {
				return fmt.Errorf("record cost of job #%d: %w", r.JobID, err)
			}
			if err := putJSON(b, itob(uint64(r.JobID)), ledgerEntry{User: r.User, Amount: r.Amount}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Spend returns a month's total and its split by user, summed from the
// per-job entries. A month with no entries has total zero and an empty map.
func (d *DB) Spend(ctx context.Context, month string) (jobs.Money, map[string]jobs.Money, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if err := checkMonth(month); err != nil {
		return 0, nil, err
	}
	var total jobs.Money
	byUser := map[string]jobs.Money{}
	err := d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLedger).Bucket([]byte(month))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e ledgerEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("spend %s: job #%d: %w", month, btoi(k), err)
			}
			total += e.Amount
			byUser[e.User] += e.Amount
			return nil
		})
	})
	if err != nil {
		return 0, nil, err
	}
	return total, byUser, nil
}

// checkMonth accepts exactly "YYYY-MM".
func checkMonth(month string) error {
	t, err := time.Parse(monthFormat, month)
	if err != nil || t.Format(monthFormat) != month {
		return jobs.Errorf(jobs.EINVALID, "bad month %q; want YYYY-MM", month)
	}
	return nil
}

// Setting returns a stored setting, ok false if unset.
func (d *DB) Setting(ctx context.Context, key string) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	var (
		value string
		ok    bool
	)
	err := d.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSettings).Get([]byte(key)); v != nil {
			value, ok = string(v), true // string() copies out of the mmap
		}
		return nil
	})
	return value, ok, err
}

// SetSetting stores a setting. An empty key is an *jobs.Error with code
// EINVALID.
func (d *DB) SetSetting(ctx context.Context, key, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return jobs.Errorf(jobs.EINVALID, "empty setting name")
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSettings).Put([]byte(key), []byte(value)); err != nil {
			return fmt.Errorf("set setting %q: %w", key, err)
		}
		return nil
	})
}

// Once records key and reports whether this was the first time. The record
// is durable: after a restart the same key still reports false. An empty
// key is an *jobs.Error with code EINVALID.
func (d *DB) Once(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if key == "" {
		return false, jobs.Errorf(jobs.EINVALID, "empty once key")
	}
	var first bool
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDedupe)
		k := []byte(oncePrefix + key)
		if b.Get(k) != nil {
			first = false
			return nil
		}
		first = true
		return putJSON(b, k, dedupeRecord{At: d.now()})
	})
	if err != nil {
		return false, err
	}
	return first, nil
}
