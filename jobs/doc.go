// Package jobs is cpbot's domain: training jobs, their state machine, the
// service that submits, cancels and lists them, the runner that drives one job
// on Lambda Cloud, the training-log parser, cost math and the watchdog.
//
// It declares the interfaces it needs from above (Store, Notifier) and uses
// package lambda directly. It knows nothing of Slack or bbolt.
package jobs
