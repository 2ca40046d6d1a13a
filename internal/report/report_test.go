package report

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

func card() *model.Card {
	c := &model.Card{
		Format: model.Format, Name: "heart-disease", Task: "binary", Target: "target", Binarize: ">0",
		Features: []string{"age", "sex", "cp"}, Classes: []string{"0", "1"},
		Network:   model.Network{Kind: model.KindMLP, Inputs: 3, Outputs: 1, Hidden: []int{64, 32}, Activation: "relu", Output: model.OutputSigmoid},
		Params:    2433,
		Metrics:   map[string]float64{"accuracy": 0.8689, "precision": 0.8571, "recall": 0.8571, "f1": 0.8571, "roc_auc": 0.9459, "log_loss": 0.3027},
		Confusion: [][]int{{30, 4}, {4, 23}},
		Data: model.DataInfo{File: "heart.csv", SHA256: "f88a9e86e7925abdbe140ef1e5f31b31e13733f42d38d7177b2ae2f6ee996d19", Rows: 303, Missing: 6,
			Split: model.SplitInfo{Train: 194, Val: 48, Test: 61}},
		Training: model.Training{Optimizer: "adam", LearningRate: 0.001, BatchSize: 32, MaxEpochs: 100, Patience: 10, EpochsRun: 5, BestEpoch: 3,
			StoppedEarly: true, Loss: "binary_cross_entropy"},
		Seed: 42, Weights: model.WeightsInfo{File: "model.safetensors", SHA256: "88d9c82f3b18aa0011223344556677889900aabbccddeeff0011223344556677"},
		Version: "v0.1.0", GitSHA: "0123456789abcdef0123456789abcdef01234567",
	}
	for i, l := range []float64{0.66, 0.58, 0.51, 0.47, 0.44} {
		c.Training.Curve = append(c.Training.Curve, model.Epoch{Epoch: i + 1, Loss: l, ValLoss: l - 0.02 + 0.01*float64(i), ValMetric: 0.8})
	}
	return c
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden.md")
	if *update {
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, string(want), got, "run go test ./internal/report -update to accept the new output")
}

func TestGolden(t *testing.T) {
	base := metrics.Values{"accuracy": 0.8525, "precision": 0.88, "recall": 0.8571, "f1": 0.86, "roc_auc": 0.93, "log_loss": 0.35}
	pass := &gate.Result{
		Metrics: card().Metrics, Baseline: base, BaselineSource: "ghcr.io/acme/heart:main", Passed: true, Reason: "all 3 checks passed",
		Checks: []gate.Check{
			{Metric: "accuracy", Kind: gate.KindMin, Value: 0.8689, Measured: true, Bound: 0.8, Baseline: 0.8525, HasBaseline: true, Verdict: gate.Pass},
			{Metric: "log_loss", Kind: gate.KindMax, Value: 0.3027, Measured: true, Bound: 0.6, Baseline: 0.35, HasBaseline: true, Verdict: gate.Pass},
			{Metric: "f1", Kind: gate.KindMaxDropRel, Value: 0.8571, Measured: true, Bound: 0.05, Baseline: 0.86, HasBaseline: true, Verdict: gate.Pass},
		},
	}
	fail := &gate.Result{
		Metrics: card().Metrics, Passed: false, Reason: "accuracy 0.8689 < min 0.9; macro_f1: not measured",
		Checks: []gate.Check{
			{Metric: "accuracy", Kind: gate.KindMin, Value: 0.8689, Measured: true, Bound: 0.9, Verdict: gate.Fail},
			{Metric: "macro_f1", Kind: gate.KindMin, Bound: 0.5, Verdict: gate.Fail},
			{Metric: "accuracy", Kind: gate.KindMaxDrop, Value: 0.8689, Measured: true, Bound: 0.02, Verdict: gate.Skip},
		},
	}
	tests := []struct {
		name string
		in   Input
	}{
		{"trained", Input{Card: card()}},
		{"passed", Input{Card: card(), Gate: pass,
			Image:  &Image{Ref: "ghcr.io/acme/heart@sha256:ab824b6937008702cd5a1cd3533b666e9915667817beb122d2d63b4368b17f0f", Tags: []string{"pr-12"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Size: 4296217, Smoke: "passed", Pushed: true},
			Deploy: &Deploy{Namespace: "models", Deployment: "heart", Service: "heart", Revision: "4", Image: "ghcr.io/acme/heart@sha256:ab824b6937008702cd5a1cd3533b666e9915667817beb122d2d63b4368b17f0f"},
			RunURL: "https://github.com/acme/models/actions/runs/42"}},
		{"failed", Input{Card: card(), Gate: fail,
			Deploy: &Deploy{Namespace: "models", Deployment: "heart", DryRun: true, Diff: "--- live/Deployment/models/heart\n+++ applied/Deployment/models/heart\n@@ -1,1 +1,1 @@\n-        image: a\n+        image: b\n"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, Markdown(tc.in))
		})
	}
}

// TestLimit: a 200-class model trained for 2000 epochs would give a report far
// over GitHub's limit; it is shortened, with a note saying what was left out.
func TestLimit(t *testing.T) {
	c := card()
	c.Task, c.Classes, c.Confusion = "multiclass", nil, nil
	for i := 0; i < 200; i++ {
		c.Classes = append(c.Classes, fmt.Sprint(i))
		row := make([]int, 200)
		row[i] = 1000 + i
		c.Confusion = append(c.Confusion, row)
	}
	c.Training.Curve = nil
	for i := 0; i < 2000; i++ {
		c.Training.Curve = append(c.Training.Curve, model.Epoch{Epoch: i + 1, Loss: 1 / float64(i+1), ValLoss: 1.1 / float64(i+1)})
	}
	c.Training.EpochsRun = 2000
	md := Markdown(Input{Card: c})
	assert.LessOrEqual(t, utf8.RuneCountInString(md), MaxChars)
	assert.Contains(t, md, "Shortened to fit the comment limit: training curve thinned to 20 points; confusion matrix and deployment diff left out.")
	assert.Contains(t, md, "x-axis \"epoch\" [1, 101, 201,")
	assert.Contains(t, md, ", 2000]", "the curve ends on the last epoch")
	assert.NotContains(t, md, "Confusion matrix")

	// Short enough: everything stays, with at most 100 curve points.
	c.Classes, c.Confusion = c.Classes[:3], [][]int{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	md = Markdown(Input{Card: c})
	assert.Contains(t, md, "Confusion matrix")
	assert.NotContains(t, md, "Shortened")
	xs := md[strings.Index(md, "x-axis"):]
	xs = xs[:strings.Index(xs, "\n")]
	assert.LessOrEqual(t, strings.Count(xs, ",")+1, 101)
}

// TestDType: a float32 model says so in the training row; float64 (the default,
// or a card from before dtype was recorded) goes unsaid.
func TestDType(t *testing.T) {
	c := card()
	row := "| training | adam lr 0.001, batch 32, up to 100 epochs, patience 10, seed 42"
	assert.Contains(t, Markdown(Input{Card: c}), row+" |\n")
	c.Training.DType = "float64"
	assert.Contains(t, Markdown(Input{Card: c}), row+" |\n")
	c.Training.DType = "float32"
	assert.Contains(t, Markdown(Input{Card: c}), row+", float32 |\n")
}

func TestEscaping(t *testing.T) {
	c := card()
	c.Name = "evil|name<script>"
	md := Markdown(Input{Card: c, Gate: &gate.Result{Passed: false, Reason: "x | y <b>"}})
	assert.Contains(t, md, "evil\\|name&lt;script&gt;")
	assert.Contains(t, md, "x \\| y &lt;b&gt;")
	assert.NotContains(t, md, "<script>")
}

// TestBaselineNote: a baseline that is only metrics is shown with the gate's
// note on what was not checked.
func TestBaselineNote(t *testing.T) {
	g := &gate.Result{
		Metrics: card().Metrics, Baseline: metrics.Values{"accuracy": 0.85}, BaselineSource: "prod/metrics.json", Passed: true, Reason: "no checks configured",
		BaselineNote: `baseline "prod/metrics.json" holds metrics only: their names fit a binary model, but its target and classes are unknown and were not checked`,
	}
	md := Markdown(Input{Card: card(), Gate: g})
	assert.Contains(t, md, "Baseline: `prod/metrics.json`\n\n> Note: baseline \"prod/metrics.json\" holds metrics only: their names fit a binary model, but its target and classes are unknown and were not checked.\n\n| metric |")
	g.BaselineNote = ""
	assert.NotContains(t, Markdown(Input{Card: card(), Gate: g}), "Note:")
}
