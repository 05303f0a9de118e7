package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// pacing is the least gap the fake Slack may see between two new messages
// of one channel: Slack's 1 per second, less a margin for the loopback
// round trip of two calls.
const pacing = 900 * time.Millisecond

// AssertAllTerminated fails the test unless the fake cloud lists every
// cpbot-… instance it ever created as terminated, and it created want of
// them through launch calls (want < 0: any number).
func (w *world) AssertAllTerminated(want int) {
	w.t.Helper()
	for _, in := range w.Cloud.Instances() {
		if strings.HasPrefix(in.Name, "cpbot-") && in.Status != lambda.StatusTerminated {
			w.t.Errorf("instance %s (%s) is %s, want terminated", in.ID, in.Name, in.Status)
		}
	}
	if n := w.Cloud.Launches(); want >= 0 && n != want {
		w.t.Errorf("%d instances launched, want %d", n, want)
	}
}

// InstanceOf waits for the instance of job id to be active with its
// simulated host up, and returns both.
func (w *world) InstanceOf(id int) (lambda.Instance, *lambdatest.Host) {
	w.t.Helper()
	prefix := fmt.Sprintf("cpbot-%d-", id)
	var in lambda.Instance
	var h *lambdatest.Host
	waitFor(w.t, jobWait, "the instance of #"+fmt.Sprint(id), func() bool {
		for _, i := range w.Cloud.Instances() {
			if strings.HasPrefix(i.Name, prefix) && i.Status == lambda.StatusActive {
				in, h = i, w.Sim.Host(i.IP)
				return h != nil
			}
		}
		return false
	})
	return in, h
}

// terminateTimes returns when the bot first asked the cloud to terminate
// each instance, by instance id.
func (w *world) terminateTimes() map[string]time.Time {
	out := map[string]time.Time{}
	for _, r := range w.Cloud.Requests() {
		if r.Operation != lambdatest.OpTerminate || r.Status != 200 {
			continue
		}
		for _, id := range instanceIDs(r.Body) {
			if _, ok := out[id]; !ok {
				out[id] = r.Time
			}
		}
	}
	return out
}

// assertPaced fails the test if any channel got two new messages (posts or
// ephemerals) from one bot process less than a second apart, 429 answers
// aside. (A restarted process does not know when its predecessor last
// posted.)
func (w *world) assertPaced() {
	w.t.Helper()
	last := map[string]time.Time{}
	proc := 0
	for _, c := range w.Slack.Calls() {
		if proc+1 < len(w.starts) && c.At.After(w.starts[proc+1]) {
			proc++
			clear(last)
		}
		if c.Method != "chat.postMessage" && c.Method != "chat.postEphemeral" {
			continue
		}
		if c.Status == 429 {
			continue
		}
		if prev, ok := last[c.Channel]; ok && c.At.Sub(prev) < pacing {
			w.t.Errorf("%s got two new messages %v apart (%s at %s)", c.Channel, c.At.Sub(prev), c.Method, c.At.Format("15:04:05.000"))
		}
		last[c.Channel] = c.At
	}
}

// checkSecrets fails the test if the Slack tokens, the Lambda API key or
// the bot's SSH private key appear in the bot's output or in any message.
func (w *world) checkSecrets() {
	w.t.Helper()
	secrets := map[string]string{
		"the Slack app token": w.Slack.AppToken(),
		"the Slack bot token": w.Slack.BotToken(),
		"the Lambda API key":  w.Cloud.APIKey(),
	}
	key, err := os.ReadFile(filepath.Join(w.DataDir, "id_ed25519"))
	if err != nil {
		w.t.Errorf("the bot's SSH key: %v", err)
	}
	for i, line := range strings.Split(string(key), "\n") {
		if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			secrets[fmt.Sprintf("line %d of the SSH private key", i+1)] = line
		}
	}
	var msgs strings.Builder
	for _, c := range w.Slack.Calls() {
		msgs.WriteString(c.Text + string(c.Blocks) + "\n")
	}
	logs := w.logText()
	if logs == "" {
		w.t.Errorf("the bot wrote no logs")
	}
	names := make([]string, 0, len(secrets))
	for name := range secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := secrets[name]
		if strings.Contains(logs, s) {
			w.t.Errorf("%s appears in the bot's stderr", name)
		}
		if strings.Contains(msgs.String(), s) {
			w.t.Errorf("%s appears in a Slack call", name)
		}
	}
}

// instanceIDs reads the instance_ids of a terminate request body.
func instanceIDs(body []byte) []string {
	var req struct {
		InstanceIDs []string `json:"instance_ids"`
	}
	json.Unmarshal(body, &req)
	return req.InstanceIDs
}

// trainLog returns what the trainer of an instance has written so far.
func (w *world) trainLog(in lambda.Instance) string {
	matches, _ := filepath.Glob(filepath.Join(w.SimRoot, in.IP, "home", "*", "*", "train.log"))
	if len(matches) == 0 {
		return ""
	}
	body, _ := os.ReadFile(matches[0])
	return string(body)
}

// WaitTrained waits until the trainer of job id has finished epoch n, as
// its train.log on the simulated instance shows, and returns the instance.
func (w *world) WaitTrained(id, n int) (lambda.Instance, *lambdatest.Host) {
	w.t.Helper()
	in, h := w.InstanceOf(id)
	want := fmt.Sprintf("Epoch: %02d,", n)
	waitFor(w.t, jobWait, fmt.Sprintf("epoch %d of #%d on its instance", n, id), func() bool {
		return strings.Contains(w.trainLog(in), want)
	})
	return in, h
}
