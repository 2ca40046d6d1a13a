package gate

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model/modeltest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// modelDir makes a model directory (a toy binary model of target "y", as
// train writes it) whose card and metrics.json hold v.
func modelDir(t *testing.T, v metrics.Values) string {
	t.Helper()
	return modeltest.Dir(t, modeltest.Options{Metrics: v})
}

// verdict is the part of a Check most tests look at.
type verdict struct {
	Metric, Kind string
	Verdict      Verdict
	Reason       string
}

func verdicts(cs []Check) []verdict {
	out := make([]verdict, 0, len(cs))
	for _, c := range cs {
		out = append(out, verdict{c.Metric, c.Kind, c.Verdict, c.Reason})
	}
	return out
}

func TestRun(t *testing.T) {
	binary := metrics.Values{"accuracy": 0.85, "f1": 0.8, "log_loss": 0.4, "roc_auc": 0.9}
	tests := []struct {
		name       string
		model      metrics.Values
		baseline   metrics.Values // nil: no baseline
		cfg        Config         // ModelDir and Baseline are filled in
		want       []verdict
		wantReason string
	}{
		{
			name:  "pass",
			model: binary,
			cfg:   Config{Min: map[string]float64{"accuracy": 0.8, "roc_auc": 0.85}, Max: map[string]float64{"log_loss": 0.5}},
			want: []verdict{
				{"accuracy", "min", Pass, "accuracy 0.85 >= min 0.8"},
				{"roc_auc", "min", Pass, "roc_auc 0.9 >= min 0.85"},
				{"log_loss", "max", Pass, "log_loss 0.4 <= max 0.5"},
			},
			wantReason: "all 3 checks passed",
		},
		{
			name:  "value equal to bound passes",
			model: binary,
			cfg:   Config{Min: map[string]float64{"accuracy": 0.85}, Max: map[string]float64{"log_loss": 0.4}},
			want: []verdict{
				{"accuracy", "min", Pass, "accuracy 0.85 >= min 0.85"},
				{"log_loss", "max", Pass, "log_loss 0.4 <= max 0.4"},
			},
			wantReason: "all 2 checks passed",
		},
		{
			name:  "min fail",
			model: metrics.Values{"accuracy": 0.71},
			cfg:   Config{Min: map[string]float64{"accuracy": 0.8}},
			want: []verdict{
				{"accuracy", "min", Fail, "accuracy 0.71 < min 0.8"},
			},
			wantReason: "accuracy 0.71 < min 0.8",
		},
		{
			name:  "min fail just below the bound shows enough digits",
			model: metrics.Values{"accuracy": 0.7999999},
			cfg:   Config{Min: map[string]float64{"accuracy": 0.8}},
			want: []verdict{
				{"accuracy", "min", Fail, "accuracy 0.7999999 < min 0.8"},
			},
			wantReason: "accuracy 0.7999999 < min 0.8",
		},
		{
			name:  "max fail",
			model: metrics.Values{"log_loss": 0.61, "mse": 2},
			cfg:   Config{Max: map[string]float64{"log_loss": 0.5, "mse": 3}},
			want: []verdict{
				{"log_loss", "max", Fail, "log_loss 0.61 > max 0.5"},
				{"mse", "max", Pass, "mse 2 <= max 3"},
			},
			wantReason: "log_loss 0.61 > max 0.5",
		},
		{
			name:     "max-drop on accuracy: exactly the allowed drop passes",
			model:    metrics.Values{"accuracy": 0.85},
			baseline: metrics.Values{"accuracy": 0.87}, // 0.87-0.85 = 0.020000000000000018
			cfg:      Config{MaxDrop: map[string]float64{"accuracy": 0.02}},
			want: []verdict{
				{"accuracy", "max-drop", Pass, "accuracy dropped by 0.02 (baseline 0.87, now 0.85), within max-drop 0.02"},
			},
			wantReason: "1 check passed",
		},
		{
			name:     "max-drop on accuracy fails",
			model:    metrics.Values{"accuracy": 0.85},
			baseline: metrics.Values{"accuracy": 0.9},
			cfg:      Config{MaxDrop: map[string]float64{"accuracy": 0.02}},
			want: []verdict{
				{"accuracy", "max-drop", Fail, "accuracy dropped by 0.05 (baseline 0.9, now 0.85), more than max-drop 0.02"},
			},
			wantReason: "accuracy dropped by 0.05 (baseline 0.9, now 0.85), more than max-drop 0.02",
		},
		{
			name:     "max-drop on accuracy: an improvement passes",
			model:    metrics.Values{"accuracy": 0.95},
			baseline: metrics.Values{"accuracy": 0.9},
			cfg:      Config{MaxDrop: map[string]float64{"accuracy": 0}},
			want: []verdict{
				{"accuracy", "max-drop", Pass, "accuracy improved by 0.05 (baseline 0.9, now 0.95)"},
			},
			wantReason: "1 check passed",
		},
		{
			name:     "max-drop on log_loss: an increase is a drop",
			model:    metrics.Values{"log_loss": 0.5},
			baseline: metrics.Values{"log_loss": 0.4},
			cfg:      Config{MaxDrop: map[string]float64{"log_loss": 0.05}},
			want: []verdict{
				{"log_loss", "max-drop", Fail, "log_loss rose by 0.1 (baseline 0.4, now 0.5), more than max-drop 0.05"},
			},
			wantReason: "log_loss rose by 0.1 (baseline 0.4, now 0.5), more than max-drop 0.05",
		},
		{
			name:     "max-drop on log_loss: a decrease passes",
			model:    metrics.Values{"log_loss": 0.1},
			baseline: metrics.Values{"log_loss": 0.4},
			cfg:      Config{MaxDrop: map[string]float64{"log_loss": 0}},
			want: []verdict{
				{"log_loss", "max-drop", Pass, "log_loss improved by 0.3 (baseline 0.4, now 0.1)"},
			},
			wantReason: "1 check passed",
		},
		{
			name:     "max-drop on log_loss: exactly the allowed rise passes",
			model:    metrics.Values{"log_loss": 0.33},
			baseline: metrics.Values{"log_loss": 0.3}, // 0.33-0.3 = 0.030000000000000027
			cfg:      Config{MaxDrop: map[string]float64{"log_loss": 0.03}},
			want: []verdict{
				{"log_loss", "max-drop", Pass, "log_loss rose by 0.03 (baseline 0.3, now 0.33), within max-drop 0.03"},
			},
			wantReason: "1 check passed",
		},
		{
			name:     "max-drop unchanged",
			model:    metrics.Values{"r2": 0.5},
			baseline: metrics.Values{"r2": 0.5},
			cfg:      Config{MaxDrop: map[string]float64{"r2": 0}},
			want: []verdict{
				{"r2", "max-drop", Pass, "r2 unchanged (baseline 0.5, now 0.5)"},
			},
			wantReason: "1 check passed",
		},
		{
			name:     "max-drop-rel",
			model:    metrics.Values{"accuracy": 0.76, "f1": 0.6, "log_loss": 0.42, "mse": 1.3},
			baseline: metrics.Values{"accuracy": 0.8, "f1": 0.8, "log_loss": 0.4, "mse": 1},
			cfg: Config{MaxDropRel: map[string]float64{
				"accuracy": 0.05, // (0.8-0.76)/0.8 = 0.050000000000000044
				"f1":       0.1,
				"log_loss": 0.05,
				"mse":      0.25,
			}},
			want: []verdict{
				{"accuracy", "max-drop-rel", Pass, "accuracy dropped by 5% (baseline 0.8, now 0.76), within max-drop-rel 5%"},
				{"f1", "max-drop-rel", Fail, "f1 dropped by 25% (baseline 0.8, now 0.6), more than max-drop-rel 10%"},
				{"log_loss", "max-drop-rel", Pass, "log_loss rose by 5% (baseline 0.4, now 0.42), within max-drop-rel 5%"},
				{"mse", "max-drop-rel", Fail, "mse rose by 30% (baseline 1, now 1.3), more than max-drop-rel 25%"},
			},
			wantReason: "f1 dropped by 25% (baseline 0.8, now 0.6), more than max-drop-rel 10%; " +
				"mse rose by 30% (baseline 1, now 1.3), more than max-drop-rel 25%",
		},
		{
			name:     "max-drop-rel from a zero baseline",
			model:    metrics.Values{"r2": -0.1},
			baseline: metrics.Values{"r2": 0},
			cfg:      Config{MaxDropRel: map[string]float64{"r2": 0.5}},
			want: []verdict{
				{"r2", "max-drop-rel", Fail, "r2 dropped by +Inf% (baseline 0, now -0.1), more than max-drop-rel 50%"},
			},
			wantReason: "r2 dropped by +Inf% (baseline 0, now -0.1), more than max-drop-rel 50%",
		},
		{
			name:  "unmeasured metric fails",
			model: metrics.Values{"mse": 1, "r2": 0.9},
			cfg:   Config{Min: map[string]float64{"accuracy": 0.8, "r2": 0.5}},
			want: []verdict{
				{"accuracy", "min", Fail, "not measured"},
				{"r2", "min", Pass, "r2 0.9 >= min 0.5"},
			},
			wantReason: "accuracy min 0.8: not measured",
		},
		{
			name:  "unmeasured metric skips when allowed",
			model: metrics.Values{"mse": 1, "r2": 0.9},
			cfg:   Config{Min: map[string]float64{"accuracy": 0.8, "r2": 0.5}, AllowUnmeasured: true},
			want: []verdict{
				{"accuracy", "min", Skip, "not measured (allowed)"},
				{"r2", "min", Pass, "r2 0.9 >= min 0.5"},
			},
			wantReason: "1 passed, 1 skipped",
		},
		{
			name:  "unmeasured metric in a baseline check",
			model: metrics.Values{"mse": 1},
			cfg:   Config{MaxDrop: map[string]float64{"accuracy": 0.1}, AllowUnmeasured: true},
			want: []verdict{
				{"accuracy", "max-drop", Skip, "not measured (allowed)"},
			},
			wantReason: "0 passed, 1 skipped",
		},
		{
			name:  "missing baseline fails",
			model: binary,
			cfg:   Config{Min: map[string]float64{"accuracy": 0.8}, MaxDrop: map[string]float64{"accuracy": 0.02}, MaxDropRel: map[string]float64{"f1": 0.1}},
			want: []verdict{
				{"accuracy", "min", Pass, "accuracy 0.85 >= min 0.8"},
				{"accuracy", "max-drop", Fail, "no baseline"},
				{"f1", "max-drop-rel", Fail, "no baseline"},
			},
			wantReason: "accuracy max-drop 0.02: no baseline; f1 max-drop-rel 0.1: no baseline",
		},
		{
			name:  "missing baseline skips when allowed",
			model: binary,
			cfg:   Config{Min: map[string]float64{"accuracy": 0.8}, MaxDrop: map[string]float64{"accuracy": 0.02}, AllowMissingBaseline: true},
			want: []verdict{
				{"accuracy", "min", Pass, "accuracy 0.85 >= min 0.8"},
				{"accuracy", "max-drop", Skip, "no baseline (allowed)"},
			},
			wantReason: "1 passed, 1 skipped",
		},
		{
			name:     "baseline without the metric fails",
			model:    binary,
			baseline: metrics.Values{"accuracy": 0.8},
			cfg:      Config{MaxDrop: map[string]float64{"f1": 0.02}},
			want: []verdict{
				{"f1", "max-drop", Fail, "baseline has no f1"},
			},
			wantReason: "f1 max-drop 0.02: baseline has no f1",
		},
		{
			name:     "baseline without the metric skips when allowed",
			model:    binary,
			baseline: metrics.Values{"accuracy": 0.8},
			cfg:      Config{MaxDrop: map[string]float64{"f1": 0.02}, AllowMissingBaseline: true},
			want: []verdict{
				{"f1", "max-drop", Skip, "baseline has no f1 (allowed)"},
			},
			wantReason: "0 passed, 1 skipped",
		},
		{
			name:       "no checks",
			model:      binary,
			want:       []verdict{},
			wantReason: "no checks configured",
		},
		{
			name:     "order: min, max, max-drop, max-drop-rel, each by metric",
			model:    binary,
			baseline: binary,
			cfg: Config{
				MaxDropRel: map[string]float64{"roc_auc": 0.1, "accuracy": 0.1},
				MaxDrop:    map[string]float64{"log_loss": 0.1, "f1": 0.1},
				Max:        map[string]float64{"log_loss": 1},
				Min:        map[string]float64{"roc_auc": 0.1, "accuracy": 0.1, "f1": 0.1},
			},
			want: []verdict{
				{"accuracy", "min", Pass, "accuracy 0.85 >= min 0.1"},
				{"f1", "min", Pass, "f1 0.8 >= min 0.1"},
				{"roc_auc", "min", Pass, "roc_auc 0.9 >= min 0.1"},
				{"log_loss", "max", Pass, "log_loss 0.4 <= max 1"},
				{"f1", "max-drop", Pass, "f1 unchanged (baseline 0.8, now 0.8)"},
				{"log_loss", "max-drop", Pass, "log_loss unchanged (baseline 0.4, now 0.4)"},
				{"accuracy", "max-drop-rel", Pass, "accuracy unchanged (baseline 0.85, now 0.85)"},
				{"roc_auc", "max-drop-rel", Pass, "roc_auc unchanged (baseline 0.9, now 0.9)"},
			},
			wantReason: "all 8 checks passed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.ModelDir = modelDir(t, tt.model)
			if tt.baseline != nil {
				cfg.Baseline = modelDir(t, tt.baseline)
			}
			res, err := Run(context.Background(), cfg)
			require.NotNil(t, res)
			assert.Equal(t, tt.want, verdicts(res.Checks))
			assert.Equal(t, tt.wantReason, res.Reason)
			assert.Equal(t, tt.model, res.Metrics)
			assert.Equal(t, MetricsFile, res.Source)
			if tt.baseline != nil {
				assert.Equal(t, tt.baseline, res.Baseline)
			} else {
				assert.Nil(t, res.Baseline)
			}

			failed := false
			for _, c := range res.Checks {
				failed = failed || c.Verdict == Fail
			}
			assert.Equal(t, !failed, res.Passed)
			if !failed {
				require.NoError(t, err)
				return
			}
			var fe *FailedError
			require.ErrorAs(t, err, &fe)
			assert.Same(t, res, fe.Result)
			assert.Equal(t, "gate failed: "+tt.wantReason, err.Error())
		})
	}
}

func TestRunCheckFields(t *testing.T) {
	dir := modelDir(t, metrics.Values{"accuracy": 0.75, "log_loss": 0.5})
	base := modelDir(t, metrics.Values{"accuracy": 0.875, "mse": 3})
	res, err := Run(context.Background(), Config{
		ModelDir:        dir,
		Baseline:        base,
		Min:             map[string]float64{"accuracy": 0.5, "mse": 1},
		MaxDrop:         map[string]float64{"accuracy": 0.25},
		AllowUnmeasured: true,
	})
	require.NoError(t, err)
	assert.Equal(t, []Check{
		{Metric: "accuracy", Kind: "min", Value: 0.75, Measured: true, Bound: 0.5, Baseline: 0.875, HasBaseline: true, Verdict: Pass, Reason: "accuracy 0.75 >= min 0.5"},
		{Metric: "mse", Kind: "min", Bound: 1, Baseline: 3, HasBaseline: true, Verdict: Skip, Reason: "not measured (allowed)"},
		{Metric: "accuracy", Kind: "max-drop", Value: 0.75, Measured: true, Bound: 0.25, Baseline: 0.875, HasBaseline: true, Verdict: Pass, Reason: "accuracy dropped by 0.125 (baseline 0.875, now 0.75), within max-drop 0.25"},
	}, res.Checks)
	assert.True(t, res.Passed)
}

func TestRunBaselineForms(t *testing.T) {
	model := metrics.Values{"accuracy": 0.8}
	base := metrics.Values{"accuracy": 0.9}
	tests := []struct {
		name     string
		baseline func(t *testing.T) string
		allow    bool
		want     Verdict
		wantErr  string // substring of a plain (non-gate) error
	}{
		{
			name:     "model dir",
			baseline: func(t *testing.T) string { return modelDir(t, base) },
			want:     Fail,
		},
		{
			name: "metrics file",
			baseline: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "baseline-metrics.json")
				require.NoError(t, metrics.WriteFile(p, base))
				return p
			},
			want: Fail,
		},
		{
			name:     "missing path",
			baseline: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			wantErr:  `reading baseline "`,
		},
		{
			name:     "missing path, allowed",
			baseline: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			allow:    true,
			want:     Skip,
		},
		{
			name:     "dir without metrics.json",
			baseline: func(t *testing.T) string { return t.TempDir() },
			wantErr:  "no metrics.json in it",
		},
		{
			name:     "dir without metrics.json, allowed",
			baseline: func(t *testing.T) string { return t.TempDir() },
			allow:    true,
			want:     Skip,
		},
		{
			name: "corrupt metrics file, even when allowed",
			baseline: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "metrics.json")
				require.NoError(t, os.WriteFile(p, []byte("{not json"), 0o644))
				return p
			},
			allow:   true,
			wantErr: "invalid character",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.baseline(t)
			res, err := Run(context.Background(), Config{
				ModelDir:             modelDir(t, model),
				Baseline:             path,
				MaxDrop:              map[string]float64{"accuracy": 0.05},
				AllowMissingBaseline: tt.allow,
			})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Nil(t, res)
				assert.Contains(t, err.Error(), `reading baseline "`+path+`": `)
				assert.Contains(t, err.Error(), tt.wantErr)
				var fe *FailedError
				assert.False(t, errors.As(err, &fe), "input errors are not gate failures")
				return
			}
			require.NotNil(t, res)
			require.Len(t, res.Checks, 1)
			assert.Equal(t, tt.want, res.Checks[0].Verdict)
			if tt.want == Fail {
				assert.Equal(t, base, res.Baseline)
				assert.Equal(t, 0.9, res.Checks[0].Baseline)
				var fe *FailedError
				assert.ErrorAs(t, err, &fe)
			} else {
				require.NoError(t, err)
				assert.Nil(t, res.Baseline)
				assert.Equal(t, "no baseline (allowed)", res.Checks[0].Reason)
			}
		})
	}
}

func TestRunEvaluate(t *testing.T) {
	dir := t.TempDir() // no metrics.json: Run must not read it
	data := filepath.Join(t.TempDir(), "holdout.csv")
	type call struct{ modelDir, dataPath string }
	var calls []call
	type markerKey struct{}
	ctx := context.WithValue(context.Background(), markerKey{}, "marker")
	cfg := Config{
		ModelDir: dir,
		DataPath: data,
		Min:      map[string]float64{"accuracy": 0.9},
		Evaluate: func(got context.Context, modelDir, dataPath string) (metrics.Values, error) {
			assert.Equal(t, "marker", got.Value(markerKey{}), "Run passes its context on")
			calls = append(calls, call{modelDir, dataPath})
			return metrics.Values{"accuracy": 0.95}, nil
		},
	}
	res, err := Run(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, []call{{dir, data}}, calls)
	assert.Equal(t, data, res.Source)
	assert.Equal(t, metrics.Values{"accuracy": 0.95}, res.Metrics)
	assert.True(t, res.Passed)

	t.Run("evaluate error is an input error", func(t *testing.T) {
		boom := errors.New("model.json: unsupported version 9")
		cfg := cfg
		cfg.Evaluate = func(context.Context, string, string) (metrics.Values, error) { return nil, boom }
		res, err := Run(ctx, cfg)
		assert.Nil(t, res)
		require.ErrorIs(t, err, boom)
		assert.Equal(t, `evaluating model "`+dir+`" on "`+data+`": model.json: unsupported version 9`, err.Error())
	})

	t.Run("metrics.json ignored when evaluating", func(t *testing.T) {
		cfg := cfg
		cfg.ModelDir = modelDir(t, metrics.Values{"accuracy": 0.1})
		res, err := Run(ctx, cfg)
		require.NoError(t, err)
		assert.Equal(t, 0.95, res.Metrics["accuracy"])
	})
}

func TestRunInputErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "model.json")
	require.NoError(t, os.WriteFile(file, []byte("{}"), 0o644))
	corrupt := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(corrupt, MetricsFile), []byte(`{"accuracy": "high"}`), 0o644))
	missing := filepath.Join(t.TempDir(), "nope")
	empty := t.TempDir()

	tests := []struct {
		name    string
		cfg     Config
		want    string
		notExit bool // wraps fs.ErrNotExist
	}{
		{name: "invalid config", cfg: Config{}, want: "model is required (the model directory)"},
		{name: "missing model dir", cfg: Config{ModelDir: missing}, want: `reading model dir "` + missing + `": no such file or directory`, notExit: true},
		{name: "model dir is a file", cfg: Config{ModelDir: file}, want: `reading model dir "` + file + `": not a directory`},
		{name: "no metrics.json", cfg: Config{ModelDir: empty}, want: `reading model dir "` + empty + `": no metrics.json in it (train writes one; or give a data path to evaluate on)`},
		{name: "corrupt metrics.json", cfg: Config{ModelDir: corrupt}, want: `reading metrics "` + filepath.Join(corrupt, MetricsFile) + `": accuracy is a JSON string, want a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), tt.cfg)
			assert.Nil(t, res)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			var fe *FailedError
			assert.False(t, errors.As(err, &fe))
			assert.Equal(t, tt.notExit, errors.Is(err, fs.ErrNotExist))
		})
	}
}

func TestValidate(t *testing.T) {
	known := "(known: accuracy, f1, log_loss, macro_f1, mae, mse, precision, r2, recall, rmse, roc_auc)"
	eval := func(context.Context, string, string) (metrics.Values, error) { return nil, nil }
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{name: "minimal", cfg: Config{ModelDir: "m"}},
		{
			name: "full",
			cfg: Config{
				ModelDir: "m", DataPath: "d.csv", Evaluate: eval, Baseline: "b",
				Min: map[string]float64{"accuracy": 0.8, "r2": -1}, Max: map[string]float64{"accuracy": 0.99, "log_loss": 0.5},
				MaxDrop: map[string]float64{"f1": 0}, MaxDropRel: map[string]float64{"mse": 0.1},
			},
		},
		{name: "min equal to max", cfg: Config{ModelDir: "m", Min: map[string]float64{"f1": 0.5}, Max: map[string]float64{"f1": 0.5}}},
		{name: "no model dir", cfg: Config{}, want: "model is required (the model directory)"},
		{name: "data path without evaluator", cfg: Config{ModelDir: "m", DataPath: "d.csv"}, want: `data is set but no evaluator is (a bug in the adapter)`},
		{name: "unknown min", cfg: Config{ModelDir: "m", Min: map[string]float64{"acc": 0.8}}, want: `min names an unknown metric "acc" ` + known},
		{name: "unknown max", cfg: Config{ModelDir: "m", Max: map[string]float64{"loss": 0.8}}, want: `max names an unknown metric "loss" ` + known},
		{name: "unknown max-drop", cfg: Config{ModelDir: "m", MaxDrop: map[string]float64{"AUC": 0.1}}, want: `max-drop names an unknown metric "AUC" ` + known},
		{name: "unknown max-drop-rel", cfg: Config{ModelDir: "m", MaxDropRel: map[string]float64{"": 0.1}}, want: `max-drop-rel names an unknown metric "" ` + known},
		{name: "negative max-drop", cfg: Config{ModelDir: "m", MaxDrop: map[string]float64{"accuracy": -0.01}}, want: "max-drop accuracy is -0.01, want 0 or more"},
		{name: "negative max-drop-rel", cfg: Config{ModelDir: "m", MaxDropRel: map[string]float64{"mae": -1}}, want: "max-drop-rel mae is -1, want 0 or more"},
		{name: "NaN bound", cfg: Config{ModelDir: "m", Min: map[string]float64{"accuracy": nan()}}, want: "min accuracy is NaN, want a finite number"},
		{name: "min above max", cfg: Config{ModelDir: "m", Min: map[string]float64{"f1": 0.9}, Max: map[string]float64{"f1": 0.8}}, want: "min f1 0.9 is above max 0.8"},
		{
			name: "all errors, in a fixed order",
			cfg:  Config{Min: map[string]float64{"zz": 1, "aa": 1}, MaxDrop: map[string]float64{"f1": -1}},
			want: "model is required (the model directory)\n" +
				`min names an unknown metric "aa" ` + known + "\n" +
				`min names an unknown metric "zz" ` + known + "\n" +
				"max-drop f1 is -1, want 0 or more",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestFailedError(t *testing.T) {
	tests := []struct {
		name string
		err  *FailedError
		want string
	}{
		{"with reason", &FailedError{Result: &Result{Reason: "accuracy 0.71 < min 0.8; f1 0.5 < min 0.6"}}, "gate failed: accuracy 0.71 < min 0.8; f1 0.5 < min 0.6"},
		{"no result", &FailedError{}, "gate failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestTableGolden(t *testing.T) {
	model := modelDir(t, metrics.Values{"accuracy": 0.7999999, "f1": 0.8125, "log_loss": 0.4123456789, "roc_auc": 0.9})
	base := modelDir(t, metrics.Values{"accuracy": 0.85, "log_loss": 0.4, "roc_auc": 0.875})
	res, err := Run(context.Background(), Config{
		ModelDir:             model,
		Baseline:             base,
		Min:                  map[string]float64{"accuracy": 0.8, "roc_auc": 0.85, "macro_f1": 0.5},
		Max:                  map[string]float64{"log_loss": 0.5},
		MaxDrop:              map[string]float64{"accuracy": 0.02, "log_loss": 0.05},
		MaxDropRel:           map[string]float64{"f1": 0.1, "roc_auc": 0.05},
		AllowUnmeasured:      true,
		AllowMissingBaseline: true,
	})
	var fe *FailedError
	require.ErrorAs(t, err, &fe)
	got := res.Table()

	golden := filepath.Join("testdata", "table.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got)

	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	assert.Len(t, lines, 1+len(res.Checks))
	col := strings.Index(lines[0], "VERDICT")
	for _, l := range lines[1:] {
		assert.Equal(t, col, strings.LastIndex(l, "  ")+2, "verdict column aligned: %q", l)
		assert.Equal(t, l, strings.TrimRight(l, " "), "no trailing spaces")
	}
}

func TestTableEmpty(t *testing.T) {
	assert.Equal(t, "METRIC  KIND  VALUE  BOUND  BASELINE  VERDICT\n", (&Result{}).Table())
}

func nan() float64 {
	var zero float64
	return zero / zero
}
