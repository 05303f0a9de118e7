package lambdatest_test

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cpbot/cpbot/lambda/lambdatest"
)

const referenceLog = "../../../shared/reference/contourpose/training_log_obj1.log"

// lineShapes are the shapes of ContourPose's training output, each with a
// one-letter token for checking their order.
var lineShapes = []struct {
	token byte
	re    *regexp.Regexp
}{
	{'U', regexp.MustCompile(`^using cuda device$`)},
	{'C', regexp.MustCompile(`^current class:obj\d+$`)},
	{'L', regexp.MustCompile(`^loss:(\d+\.\d{6})  heatmap_loss:(\d+\.\d{6})  contour_loss:(\d+\.\d{6})$`)},
	{'T', regexp.MustCompile(`^Time cost:\d+\.\d+$`)},
	{'R', regexp.MustCompile(`^LR:[\d.]+$`)},
	{'E', regexp.MustCompile(`^Epoch: \d{2,}, Loss: \d+\.\d{4}$`)},
}

// standInShapes are the stand-in's documented extra lines.
var standInShapes = []struct {
	token byte
	re    *regexp.Regexp
}{
	{'M', regexp.MustCompile(`^Load model from model/obj\d+/\d+\.pkl$`)},
	{'V', regexp.MustCompile(`^model class type:obj\d+:2D- \d\.\d{2}  ADD-\d\.\d{2}$`)},
}

// tokens maps each line of a log to its shape's token; it fails the test on
// a line of no known shape and on a loss line whose parts do not add up.
func tokens(t *testing.T, log string, extras bool) string {
	t.Helper()
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		tok := byte(0)
		for _, s := range lineShapes {
			if m := s.re.FindStringSubmatch(line); m != nil {
				tok = s.token
				if tok == 'L' {
					checkLossSum(t, i+1, m[1:])
				}
				break
			}
		}
		if tok == 0 && extras {
			for _, s := range standInShapes {
				if s.re.MatchString(line) {
					tok = s.token
				}
			}
		}
		if tok == 0 {
			t.Fatalf("line %d has no known shape: %q", i+1, line)
		}
		b.WriteByte(tok)
	}
	return b.String()
}

// checkLossSum checks loss = heatmap_loss + contour_loss up to rounding to
// six decimals and float32 precision (the real trainer computes in float32).
func checkLossSum(t *testing.T, line int, parts []string) {
	t.Helper()
	var v [3]float64
	for i, p := range parts {
		if _, err := fmt.Sscan(p, &v[i]); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
	}
	if math.Abs(v[0]-(v[1]+v[2])) > 2.5e-6+2e-7*v[0] {
		t.Errorf("line %d: loss %v != heatmap %v + contour %v", line, v[0], v[1], v[2])
	}
}

func TestReferenceLogFormat(t *testing.T) {
	log, err := os.ReadFile(referenceLog)
	if err != nil {
		t.Fatal(err)
	}
	// The reference run was cut off in the middle of epoch 4.
	order := regexp.MustCompile(`^U(CL+TRE)+(CL*)?$`)
	if got := tokens(t, string(log), false); !order.MatchString(got) {
		t.Fatalf("reference log order %q does not match %s", got, order)
	}
}

func TestTrainerOutputFormat(t *testing.T) {
	tests := []struct {
		name       string
		checkpoint string // pre-existing checkpoint, if any
		epochs     int
		order      string
	}{
		{"fresh run", "", 12, `^U(CLLLLTRE){12}V$`},
		{"resumed run", "10.pkl", 12, `^UM(CLLLLTRE){2}V$`},
		{"nothing left to train", "12.pkl", 12, `^UMV$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t)
			h := startHost(t, c, lambdatest.TrainerConfig{ItersPerEpoch: 4})
			prepareCode(t, h.Home())
			cmd := fmt.Sprintf(trainCmd, tt.epochs) + " 2>&1"
			if tt.checkpoint != "" {
				cmd = "mkdir -p model/obj1 && echo old > model/obj1/" + tt.checkpoint + " && " + cmd
			}
			r := run(t, dial(t, h, c), cmd, "")
			if r.code != 0 {
				t.Fatalf("train: %+v", r)
			}
			if got := tokens(t, r.stdout, true); !regexp.MustCompile(tt.order).MatchString(got) {
				t.Fatalf("output order %q does not match %s:\n%s", got, tt.order, r.stdout)
			}
		})
	}
}
