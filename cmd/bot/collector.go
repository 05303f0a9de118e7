package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpbot/cpbot/jobs"
)

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 5 * time.Second

// allStates are reported even when no job is in them, so a dashboard sees
// 0 rather than no series.
var allStates = []jobs.State{
	jobs.StateQueued, jobs.StateLaunching, jobs.StateBooting, jobs.StatePreparing,
	jobs.StateTraining, jobs.StateCollecting, jobs.StateTerminating, jobs.StateFinished,
}

// jobsCollector reads jobs, spend and budget from the store at scrape time:
// the store is the truth, so there is nothing to keep in step.
type jobsCollector struct {
	src               StatsSource
	byState           *prometheus.Desc
	spend, teamBudget *prometheus.Desc
}

func newJobsCollector(src StatsSource) *jobsCollector {
	return &jobsCollector{
		src:        src,
		byState:    prometheus.NewDesc("cpbot_jobs", "Jobs in the store, by state.", []string{"state"}, nil),
		spend:      prometheus.NewDesc("cpbot_spend_month_usd", "Month-to-date spend of the team, in US dollars.", nil, nil),
		teamBudget: prometheus.NewDesc("cpbot_team_budget_usd", "Monthly team budget in force, in US dollars.", nil, nil),
	}
}

// Describe sends the descriptors of the three metric families.
func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.byState
	ch <- c.spend
	ch <- c.teamBudget
}

// Collect reads the store. A failed read becomes an invalid metric, which
// the handler logs while serving everything else.
func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()

	if all, err := c.src.List(ctx, jobs.JobFilter{}); err != nil {
		ch <- prometheus.NewInvalidMetric(c.byState, err)
	} else {
		counts := make(map[jobs.State]int, len(allStates))
		for _, s := range allStates {
			counts[s] = 0
		}
		for _, j := range all {
			counts[j.State]++
		}
		for s, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.byState, prometheus.GaugeValue, float64(n), string(s))
		}
	}
	if total, _, err := c.src.MonthSpend(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.spend, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.spend, prometheus.GaugeValue, total.Dollars())
	}
	if budget, err := c.src.TeamBudget(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.teamBudget, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.teamBudget, prometheus.GaugeValue, budget.Dollars())
	}
}
