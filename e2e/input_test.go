package e2e_test

import (
	"strings"
	"testing"
)

// TestBadInput sends every kind of bad input of the command grammar and
// checks that each gets a clear answer shown only to its author, and that
// nothing is launched or posted in the channel.
func TestBadInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	for _, tc := range []struct{ name, text, want string }{
		{"unknown class", "train obj99 3", `unknown class "obj99"`},
		{"epochs 0", "train obj1 0", "epochs must be"},
		{"epochs 1001", "train obj1 1001", "epochs must be"},
		{"epochs abc", "train obj1 abc", "epochs must be"},
		{"batch 0", "train obj1 3 --batch 0", "batch must be"},
		{"batch 257", "train obj1 3 --batch 257", "batch must be"},
		{"lr 0", "train obj1 3 --lr 0", "learning rate (--lr)"},
		{"lr 2", "train obj1 3 --lr 2", "learning rate (--lr)"},
		{"budget -1", "train obj1 3 --budget -1", "budget must be"},
		{"unknown flag", "train obj1 3 --gpus 2", "unknown flag"},
		{"semicolon", "train obj1; rm -rf /", "usage: /contourpose train"},
		{"command substitution", "train $(reboot) 3", "usage: /contourpose train"},
		{"backticks in a flag", "train obj1 3 --gpu `id`", "usage: /contourpose train"},
		{"pipe", "train obj1 3 | sh", "usage: /contourpose train"},
		{"unknown GPU type", "train obj1 3 --gpu gpu_9x_nothing", "unknown GPU type"},
		{"non-existent job", "stop #42", "no job #42"},
		{"logs of a non-existent job", "logs 42", "no job #42"},
		{"unknown verb", "fly me to the moon", "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := w.Reply(userA, chanA, tc.text)
			if !strings.Contains(got, tc.want) {
				t.Errorf("%q answered %q, want it to mention %q", tc.text, got, tc.want)
			}
		})
	}
	if n := w.Cloud.Launches(); n != 0 {
		t.Errorf("bad input launched %d instances", n)
	}
	for _, c := range w.Slack.Calls() {
		if c.Method == "chat.postMessage" {
			t.Errorf("bad input posted in %s: %q", c.Channel, c.Text)
		}
	}
}
