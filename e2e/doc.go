// Package e2e holds cpbot's end-to-end suite. It builds the real bot binary
// once, runs it as a subprocess configured only through the environment
// contract of DESIGN.md, and drives it from outside against fakes that run in
// the test process on loopback: the fake Slack (bot/slacktest) and the fake
// Lambda Cloud with simulated SSH instances (lambda/lambdatest). Faults come
// from the fakes' controls and from signals to the process.
//
// The package has no code of its own beyond its tests. Run it with
//
//	go test -race -count=1 ./e2e
//	go test -run '^$' -bench . -benchtime 1x ./e2e
//
// Scenarios run in parallel (most of their time is spent waiting on Slack's
// 1 message per second per channel); unless -test.parallel is given the
// suite raises it to 16.
package e2e
