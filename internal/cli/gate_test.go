package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const knownMetrics = "accuracy, f1, log_loss, macro_f1, mae, mse, precision, r2, recall, rmse, roc_auc"

// gateFixture is a trained heart model plus files the gate tests point at, all
// under dir: model/ (seed 42), same/ (the same training again), low.json and
// high.json (baselines worse and better than the model), empty/ (a directory
// without metrics), text.txt (a file), badmetrics/ (metrics.json not JSON),
// badcard/ (metrics.json fine, model.json not JSON), nofeat.csv (the heart data
// without the age column).
func gateFixture(t *testing.T) (dir string, acc float64) {
	t.Helper()
	dir = t.TempDir()
	model := trainHeart(t, filepath.Join(dir, "model"))
	trainHeart(t, filepath.Join(dir, "same"))
	acc = readMetrics(t, model)["accuracy"]
	require.Greater(t, acc, 0.6)
	require.Less(t, acc, 0.98)
	writeFile(t, filepath.Join(dir, "low.json"), `{"accuracy": 0.5, "log_loss": 5}`+"\n")
	writeFile(t, filepath.Join(dir, "high", "metrics.json"), fmt.Sprintf(`{"accuracy": %v}`+"\n", acc+0.1))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	writeFile(t, filepath.Join(dir, "text.txt"), "not a model\n")
	writeFile(t, filepath.Join(dir, "badmetrics", "metrics.json"), "{not json")
	writeFile(t, filepath.Join(dir, "badcard", "metrics.json"), `{"accuracy": 0.9}`)
	writeFile(t, filepath.Join(dir, "badcard", "model.json"), "{not json")

	b, err := os.ReadFile(heartCSV)
	require.NoError(t, err)
	var nofeat strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		_, rest, _ := strings.Cut(line, ",")
		nofeat.WriteString(rest + "\n")
	}
	writeFile(t, filepath.Join(dir, "nofeat.csv"), nofeat.String())
	return dir, acc
}

func TestEvaluateGate(t *testing.T) {
	dir, _ := gateFixture(t)
	tests := []struct {
		name string
		args []string // after "evaluate-gate"; {dir} is the fixture directory
		code int
		// wantErr is the whole stderr message after "mlship: "; errPrefix
		// and errContains are used when it is empty.
		wantErr     string
		errPrefix   string
		errContains []string
		wantOut     []string // substrings of stdout
	}{
		{
			name:    "pass",
			args:    []string{"--model", "{dir}/model", "--min", "accuracy=0.5,roc_auc=0.5", "--max", "log_loss=2"},
			code:    0,
			wantOut: []string{"evaluate-gate: {dir}/model (metrics from metrics.json)\n", "METRIC    KIND  VALUE", "BOUND  BASELINE  VERDICT\n", "\naccuracy  min ", "\nlog_loss  max ", "gate PASSED: all 3 checks passed\n"},
		},
		{
			name:    "repeated --min flags",
			args:    []string{"--model", "{dir}/model", "--min", "accuracy=0.5", "--min", "f1=0.1"},
			code:    0,
			wantOut: []string{"gate PASSED: all 2 checks passed\n"},
		},
		{
			name:    "no checks",
			args:    []string{"--model", "{dir}/model"},
			code:    0,
			wantOut: []string{"gate PASSED: no checks configured\n"},
		},
		{
			name:      "failing min",
			args:      []string{"--model", "{dir}/model", "--min", "accuracy=0.99"},
			code:      1,
			errPrefix: "gate failed: accuracy ",
			errContains: []string{
				" < min 0.99",
			},
			wantOut: []string{"gate FAILED: accuracy ", " fail\n"},
		},
		{
			name:        "two failures on one line",
			args:        []string{"--model", "{dir}/model", "--min", "accuracy=0.99", "--max", "log_loss=0.001"},
			code:        1,
			errPrefix:   "gate failed: accuracy ",
			errContains: []string{" < min 0.99; log_loss ", " > max 0.001"},
		},
		{
			name:    "unmeasured metric fails",
			args:    []string{"--model", "{dir}/model", "--min", "r2=0.1"},
			code:    1,
			wantErr: "gate failed: r2 min 0.1: not measured",
		},
		{
			name:    "unmeasured metric allowed",
			args:    []string{"--model", "{dir}/model", "--min", "r2=0.1", "--allow-unmeasured"},
			code:    0,
			wantOut: []string{"gate PASSED: 0 passed, 1 skipped\n"},
		},
		{
			name:    "unknown metric name lists the known ones",
			args:    []string{"--model", "{dir}/model", "--min", "acc=0.5"},
			code:    2,
			wantErr: `--min names an unknown metric "acc" (known: ` + knownMetrics + `)`,
		},
		{
			name: "several config errors on one line",
			args: []string{"--model", "{dir}/model", "--min", "accuracy=0.9", "--max", "accuracy=0.5", "--max-drop", "f1=-1", "--max", "bogus=1"},
			code: 2,
			wantErr: `--max names an unknown metric "bogus" (known: ` + knownMetrics + `); --max-drop f1 is -1, want 0 or more; ` +
				`--min accuracy 0.9 is above --max 0.5`,
		},
		{
			name:    "--min without a value",
			args:    []string{"--model", "{dir}/model", "--min", "accuracy"},
			code:    2,
			wantErr: `--min: "accuracy" is not metric=value`,
		},
		{
			name:    "--min with a non-number",
			args:    []string{"--model", "{dir}/model", "--min", "accuracy=high"},
			code:    2,
			wantErr: `--min: "accuracy=high": "high" is not a number`,
		},
		{
			name:    "--min with NaN",
			args:    []string{"--model", "{dir}/model", "--min", "accuracy=NaN"},
			code:    2,
			wantErr: `--min: "accuracy=NaN": "NaN" is not a number`,
		},
		{
			name:    "no --model",
			args:    []string{"--min", "accuracy=0.5"},
			code:    2,
			wantErr: "--model is required (the model directory)",
		},
		{
			name:    "positional argument",
			args:    []string{"{dir}/model"},
			code:    2,
			wantErr: `unknown command "{dir}/model" for "mlship evaluate-gate"`,
		},
		{
			name:    "--data evaluates the model on a CSV",
			args:    []string{"--model", "{dir}/model", "--data", heartCSV, "--min", "accuracy=0.6,roc_auc=0.6"},
			code:    0,
			wantOut: []string{"evaluate-gate: {dir}/model (metrics from " + heartCSV + ")\n", "gate PASSED: all 2 checks passed\n"},
		},
		{
			name:        "--data file missing",
			args:        []string{"--model", "{dir}/model", "--data", "{dir}/none.csv", "--min", "accuracy=0.5"},
			code:        2,
			errPrefix:   `evaluating model "{dir}/model" on "{dir}/none.csv": `,
			errContains: []string{`reading dataset "{dir}/none.csv": open {dir}/none.csv: no such file or directory`},
		},
		{
			name:        "--data without a feature column",
			args:        []string{"--model", "{dir}/model", "--data", "{dir}/nofeat.csv", "--min", "accuracy=0.5"},
			code:        2,
			errPrefix:   `evaluating model "{dir}/model" on "{dir}/nofeat.csv": `,
			errContains: []string{`the model's feature columns age are missing`},
		},
		{
			name:    "baseline metrics file, improved",
			args:    []string{"--model", "{dir}/model", "--baseline", "{dir}/low.json", "--max-drop", "accuracy=0.01", "--max-drop-rel", "log_loss=0.05"},
			code:    0,
			wantOut: []string{"accuracy  max-drop ", "log_loss  max-drop-rel ", "gate PASSED: all 2 checks passed\n"},
		},
		{
			name:    "baseline model directory, unchanged",
			args:    []string{"--model", "{dir}/model", "--baseline", "{dir}/same", "--max-drop", "accuracy=0,log_loss=0"},
			code:    0,
			wantOut: []string{"gate PASSED: all 2 checks passed\n"},
		},
		{
			name:        "baseline better than the model",
			args:        []string{"--model", "{dir}/model", "--baseline", "{dir}/high", "--max-drop", "accuracy=0.02"},
			code:        1,
			errPrefix:   "gate failed: accuracy dropped by 0.1 (baseline ",
			errContains: []string{"), more than max-drop 0.02"},
		},
		{
			name:    "baseline better, within a large max-drop",
			args:    []string{"--model", "{dir}/model", "--baseline", "{dir}/high", "--max-drop", "accuracy=0.2"},
			code:    0,
			wantOut: []string{"gate PASSED: 1 check passed\n"},
		},
		{
			name:    "baseline without the metric",
			args:    []string{"--model", "{dir}/model", "--baseline", "{dir}/high", "--max-drop", "f1=0.02"},
			code:    1,
			wantErr: "gate failed: f1 max-drop 0.02: baseline has no f1",
		},
		{
			name:    "baseline check without a baseline",
			args:    []string{"--model", "{dir}/model", "--max-drop", "accuracy=0.01"},
			code:    1,
			wantErr: "gate failed: accuracy max-drop 0.01: no baseline",
		},
		{
			name:    "baseline check without a baseline, allowed",
			args:    []string{"--model", "{dir}/model", "--max-drop", "accuracy=0.01", "--allow-missing-baseline"},
			code:    0,
			wantOut: []string{"accuracy  max-drop  ", "  skip\n", "gate PASSED: 0 passed, 1 skipped\n"},
		},
		{
			// A baseline path that does not exist is an input error unless
			// missing baselines are allowed (the first run of a project).
			name:    "missing baseline path",
			args:    []string{"--model", "{dir}/model", "--baseline", "{dir}/none", "--max-drop", "accuracy=0.01"},
			code:    2,
			wantErr: `reading baseline "{dir}/none": no such file or directory`,
		},
		{
			name:    "missing baseline path, allowed",
			args:    []string{"--model", "{dir}/model", "--baseline", "{dir}/none", "--max-drop", "accuracy=0.01", "--min", "accuracy=0.5", "--allow-missing-baseline"},
			code:    0,
			wantOut: []string{"gate PASSED: 1 passed, 1 skipped\n"},
		},
		{
			name:    "baseline directory without metrics.json",
			args:    []string{"--model", "{dir}/model", "--baseline", "{dir}/empty", "--max-drop", "accuracy=0.01"},
			code:    2,
			wantErr: `reading baseline "{dir}/empty": no metrics.json in it: file does not exist`,
		},
		{
			name:        "corrupt baseline, even when allowed",
			args:        []string{"--model", "{dir}/model", "--baseline", "{dir}/badmetrics", "--max-drop", "accuracy=0.01", "--allow-missing-baseline"},
			code:        2,
			errPrefix:   `reading baseline "{dir}/badmetrics": `,
			errContains: []string{"invalid character"},
		},
		{
			name:    "model directory missing",
			args:    []string{"--model", "{dir}/none", "--min", "accuracy=0.5"},
			code:    2,
			wantErr: `reading model dir "{dir}/none": no such file or directory`,
		},
		{
			name:    "model directory without metrics",
			args:    []string{"--model", "{dir}/empty", "--min", "accuracy=0.5"},
			code:    2,
			wantErr: `reading model dir "{dir}/empty": no metrics.json in it (train writes one; or give a data path to evaluate on)`,
		},
		{
			name:    "model is a file",
			args:    []string{"--model", "{dir}/text.txt", "--min", "accuracy=0.5"},
			code:    2,
			wantErr: `reading model dir "{dir}/text.txt": not a directory`,
		},
		{
			name:        "model metrics not JSON",
			args:        []string{"--model", "{dir}/badmetrics", "--min", "accuracy=0.5"},
			code:        2,
			errContains: []string{"{dir}/badmetrics", "invalid character"},
		},
		{
			name:        "model card not JSON, evaluated on --data",
			args:        []string{"--model", "{dir}/badcard", "--data", heartCSV, "--min", "accuracy=0.5"},
			code:        2,
			errPrefix:   `evaluating model "{dir}/badcard" on "` + heartCSV + `": `,
			errContains: []string{"model.json"},
		},
		{
			name:        "model without a card, evaluated on --data",
			args:        []string{"--model", "{dir}/empty", "--data", heartCSV, "--min", "accuracy=0.5"},
			code:        2,
			errPrefix:   `evaluating model "{dir}/empty" on "` + heartCSV + `": `,
			errContains: []string{"model.json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tree(t, dir)
			r := mlship(t, append([]string{"evaluate-gate"}, expandAll(tt.args, dir)...)...)
			assert.Equal(t, tt.code, r.code, "stderr: %s", r.stderr)
			for _, s := range tt.wantOut {
				assert.Contains(t, r.stdout, expand(s, dir))
			}
			if tt.code == 0 {
				assert.Empty(t, r.stderr)
			} else {
				msg := errLine(t, r.stderr)
				if tt.wantErr != "" {
					assert.Equal(t, expand(tt.wantErr, dir), msg)
				}
				assert.True(t, strings.HasPrefix(msg, expand(tt.errPrefix, dir)), "message %q does not start with %q", msg, expand(tt.errPrefix, dir))
				for _, s := range tt.errContains {
					assert.Contains(t, msg, expand(s, dir))
				}
			}
			switch tt.code {
			case 1:
				assert.Contains(t, r.stdout, "gate FAILED: ", "a failed gate still prints its table")
			case 2:
				assert.Empty(t, r.stdout, "an input error prints no table")
			}
			assert.Equal(t, before, tree(t, dir), "the gate writes nothing without --junit")
		})
	}
}

func TestEvaluateGateJUnit(t *testing.T) {
	dir, _ := gateFixture(t)
	tests := []struct {
		name         string
		args         []string
		code         int
		wantTests    int
		wantFailures int
		wantSkipped  int
		wantCases    []string
	}{
		{
			name:      "pass",
			args:      []string{"--min", "accuracy=0.5", "--max", "log_loss=2"},
			code:      0,
			wantTests: 2,
			wantCases: []string{"accuracy min 0.5", "log_loss max 2"},
		},
		{
			name:         "fail and skip",
			args:         []string{"--min", "accuracy=0.99,r2=0", "--allow-unmeasured", "--max-drop", "f1=0.01"},
			code:         1,
			wantTests:    3,
			wantFailures: 2, // accuracy, and f1 without a baseline
			wantSkipped:  1, // r2
			wantCases:    []string{"accuracy min 0.99", "r2 min 0", "f1 max-drop 0.01"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reports", "gate.xml") // the parent is made
			r := mlship(t, append([]string{"evaluate-gate", "--model", filepath.Join(dir, "model"), "--junit", path}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			rep := readJUnit(t, path)
			assert.Equal(t, tt.wantTests, rep.Tests)
			assert.Equal(t, tt.wantFailures, rep.Failures)
			require.Len(t, rep.Suites, 1)
			assert.Equal(t, tt.wantSkipped, rep.Suites[0].Skipped)
			assert.Equal(t, "mlship.evaluate-gate", rep.Suites[0].Name)
			var names []string
			failures := 0
			for _, c := range rep.Suites[0].Cases {
				names = append(names, c.Name)
				if c.Failure != nil {
					failures++
					assert.NotEmpty(t, c.Failure.Message)
				}
			}
			assert.Equal(t, tt.wantCases, names)
			assert.Equal(t, tt.wantFailures, failures)
			assertNoTempFiles(t, filepath.Dir(path))
		})
	}
}

// assertNoTempFiles checks that dir holds no hidden temporary files.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "temporary file left behind: %s", e.Name())
	}
}

func TestEvaluateGateJSON(t *testing.T) {
	dir, acc := gateFixture(t)
	type check struct {
		Metric, Kind, Verdict, Reason string
		Value, Bound                  float64
		Measured                      bool
	}
	type result struct {
		Metrics map[string]float64
		Source  string
		Checks  []check
		Passed  bool
		Reason  string
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		wantPassed bool
		wantSource string
	}{
		{"pass", []string{"--min", "accuracy=0.5"}, 0, true, "metrics.json"},
		{"fail", []string{"--min", "accuracy=0.99"}, 1, false, "metrics.json"},
		{"on data", []string{"--min", "accuracy=0.5", "--data", heartCSV}, 0, true, heartCSV},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mlship(t, append([]string{"evaluate-gate", "--json", "--model", filepath.Join(dir, "model")}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			var got result
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			require.NoError(t, dec.Decode(&got), "stdout: %s", r.stdout)
			assert.False(t, dec.More(), "stdout holds only the JSON document")
			assert.Contains(t, r.stdout, `"passed": `, "keys are snake_case like train --json")
			assert.Contains(t, r.stdout, `"has_baseline": `)
			assert.Equal(t, tt.wantPassed, got.Passed)
			assert.Equal(t, tt.wantSource, got.Source)
			require.Len(t, got.Checks, 1)
			assert.Equal(t, "accuracy", got.Checks[0].Metric)
			assert.Equal(t, "min", got.Checks[0].Kind)
			assert.True(t, got.Checks[0].Measured)
			assert.Equal(t, got.Metrics["accuracy"], got.Checks[0].Value)
			if tt.wantSource == "metrics.json" {
				assert.Equal(t, acc, got.Metrics["accuracy"])
			}
			if tt.code == 1 {
				assert.Equal(t, "fail", got.Checks[0].Verdict)
				assert.Equal(t, "gate failed: "+got.Reason, errLine(t, r.stderr))
			} else {
				assert.Equal(t, "pass", got.Checks[0].Verdict)
				assert.Empty(t, r.stderr)
			}
		})
	}
}

// TestEvaluateGateConfig reads the gate section of mlship.yaml: the model is
// the config's train.out, paths are relative to the file, flags override it.
func TestEvaluateGateConfig(t *testing.T) {
	dir := heartProject(t, t.TempDir())
	r := mlship(t, "train", "-q", "--config", dir, "--epochs", "30")
	require.Equal(t, 0, r.code, r.stderr)
	acc := readMetrics(t, filepath.Join(dir, "model"))["accuracy"]

	r = mlship(t, "evaluate-gate", "--config", dir)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "evaluate-gate: "+filepath.Join(dir, "model")+" (metrics from metrics.json)\n")
	assert.Contains(t, r.stdout, "accuracy  min   ")
	assert.Contains(t, r.stdout, "gate PASSED: 1 check passed\n")

	// A flag overrides the same metric in the file and adds to the others.
	r = mlship(t, "evaluate-gate", "--config", dir, "--min", "accuracy=0.99", "--max", "log_loss=5")
	assert.Equal(t, 1, r.code)
	assert.True(t, strings.HasPrefix(errLine(t, r.stderr), "gate failed: accuracy "), r.stderr)
	assert.Contains(t, r.stdout, "min 0.99")
	assert.Contains(t, r.stdout, "log_loss  max")

	// junit and baseline in the file are relative to the file.
	writeFile(t, filepath.Join(dir, "base", "metrics.json"), fmt.Sprintf(`{"accuracy": %v}`, acc))
	cfg, err := os.ReadFile(filepath.Join(dir, "mlship.yaml"))
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, "mlship.yaml"), string(cfg)+"  baseline: base\n  junit: out/gate.xml\n  max_drop: {accuracy: 0}\n")
	r = mlship(t, "evaluate-gate", "--config", filepath.Join(dir, "mlship.yaml"))
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `\naccuracy  max-drop .* pass\n`, r.stdout)
	rep := readJUnit(t, filepath.Join(dir, "out", "gate.xml"))
	assert.Equal(t, 2, rep.Tests)
	assert.Equal(t, 0, rep.Failures)

	// --model and --baseline flags win over the file.
	other := trainHeart(t, filepath.Join(t.TempDir(), "other"), "--seed", "3")
	r = mlship(t, "evaluate-gate", "--config", dir, "--model", other, "--baseline", filepath.Join(dir, "none"), "--allow-missing-baseline")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "evaluate-gate: "+other+" ")
	assert.Regexp(t, `\naccuracy  max-drop .* skip\n`, r.stdout)
}

func TestEvaluateGateConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mlship.yaml"), "train:\n  out: model\ngate:\n  min: {accuracy: 0.5}\n  minimum: {f1: 0.5}\n")
	r := mlship(t, "evaluate-gate", "--config", dir)
	assert.Equal(t, 2, r.code)
	assert.Equal(t, filepath.Join(dir, "mlship.yaml")+`:5: unknown key "gate.minimum" (gate takes allow_missing_baseline, allow_unmeasured, baseline, baseline_image, data, insecure, junit, max, max_drop, max_drop_rel, min)`, errLine(t, r.stderr))

	writeFile(t, filepath.Join(dir, "mlship.yaml"), "train:\n  out: model\ngate:\n  min: {acc: 0.5}\n")
	r = mlship(t, "evaluate-gate", "--config", dir)
	assert.Equal(t, 2, r.code)
	assert.Equal(t, filepath.Join(dir, "mlship.yaml")+`:4: gate.min names an unknown metric "acc" (known: `+knownMetrics+`)`, errLine(t, r.stderr))

	writeFile(t, filepath.Join(dir, "mlship.yaml"), "gate:\n  min: {accuracy: 0.5}\n")
	r = mlship(t, "evaluate-gate", "--config", dir)
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "--model (or train.out in "+filepath.Join(dir, "mlship.yaml")+") is required (the model directory)", errLine(t, r.stderr))
}
