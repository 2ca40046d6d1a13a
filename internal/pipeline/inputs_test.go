package pipeline

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/monitor"
	"github.com/mlship/mlship/internal/spec"
	"github.com/mlship/mlship/internal/train"
)

// TestInputsMatchTheSpec: every input of every step binds to exactly one
// tagged field of the step's inputs struct and every tagged field is an input,
// so an input can be neither dropped nor invented.
func TestInputsMatchTheSpec(t *testing.T) {
	for _, s := range spec.Steps() {
		t.Run(s.Name, func(t *testing.T) {
			dst := Inputs(s.Name)
			require.NotNil(t, dst)
			var names []string
			for _, in := range s.Inputs {
				names = append(names, in.Name)
			}
			slices.Sort(names)
			assert.Equal(t, names, spec.Tagged(dst))
		})
	}
}

// TestOutputsMatchTheSpec: what each step publishes is exactly its spec's outputs.
func TestOutputsMatchTheSpec(t *testing.T) {
	outs := map[string]map[string]string{
		"train":            TrainOutputs(&train.Result{Card: &model.Card{}}),
		"evaluate-gate":    GateOutputs(&gate.Result{}),
		"build-push-image": ImageOutputs(&image.Result{}),
		"kubectl-deploy":   DeployOutputs(&deploy.Result{}, ""),
	}
	run := []string{"report"}
	for step, got := range outs {
		var want []string
		for _, o := range spec.Lookup(step).Outputs {
			want = append(want, o.Name)
		}
		slices.Sort(want)
		assert.Equal(t, want, slices.Sorted(maps.Keys(got)), step)
		run = append(run, want...)
	}
	// monitor is not part of run: its outputs are checked on their own.
	var monWant []string
	for _, o := range spec.Lookup("monitor").Outputs {
		monWant = append(monWant, o.Name)
	}
	slices.Sort(monWant)
	assert.Equal(t, monWant, slices.Sorted(maps.Keys(MonitorOutputs(&monitor.Result{}))), "monitor")
	var runOuts []string
	for _, o := range spec.Lookup("run").Outputs {
		runOuts = append(runOuts, o.Name)
	}
	slices.Sort(runOuts)
	assert.Equal(t, slices.Compact(slices.Sorted(slices.Values(run))), runOuts, "run's outputs are every step's and report")
}

// TestDefaultsLiveInTheSteps: the defaults the flags show are the steps' own.
func TestDefaultsLiveInTheSteps(t *testing.T) {
	d := spec.Defaults(Inputs("kubectl-deploy"))
	assert.Equal(t, "2", d["replicas"])
	assert.Equal(t, "5m", d["timeout"])
	assert.Equal(t, "100m", d["cpu-request"])
	d = spec.Defaults(Inputs("train"))
	assert.Equal(t, "64,32", d["hidden"])
	assert.Equal(t, "42", d["seed"])
	assert.Equal(t, "auto", spec.Defaults(Inputs("build-push-image"))["smoke-test"])
}
