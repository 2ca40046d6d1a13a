package gate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/model/modeltest"
)

var binaryMetrics = metrics.Values{"accuracy": 0.869, "f1": 0.85, "log_loss": 0.35, "precision": 0.84, "recall": 0.86, "roc_auc": 0.92}

// TestRunRefusesDamagedModel: without --data the gate trusts metrics.json
// only when the directory is the one train wrote: weights with the card's
// sha256 and metrics.json saying what the card says. Anything else is an
// input error (exit 2) naming the file, never a pass.
func TestRunRefusesDamagedModel(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		file   string // the file the error names
		want   string // the rest of the message
	}{
		{
			name: "truncated weights",
			damage: func(t *testing.T, dir string) {
				p := filepath.Join(dir, model.WeightsFile)
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(p, b[:len(b)/2], 0o644))
			},
			file: model.WeightsFile,
			want: "does not match the card's",
		},
		{
			name:   "weights missing",
			damage: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, model.WeightsFile))) },
			file:   model.WeightsFile,
			want:   "missing (the card names it)",
		},
		{
			name:   "metrics.json edited by hand",
			damage: func(t *testing.T, dir string) { editMetrics(t, dir, "accuracy", 0.99) },
			file:   MetricsFile,
			want:   "disagrees with model.json: accuracy is 0.99, the card says 0.869 (was it edited by hand?)",
		},
		{
			name:   "metric added to metrics.json",
			damage: func(t *testing.T, dir string) { editMetrics(t, dir, "macro_f1", 0.9) },
			file:   MetricsFile,
			want:   "disagrees with model.json: macro_f1 is 0.9, the card has no macro_f1",
		},
		{
			name:   "metric removed from metrics.json",
			damage: func(t *testing.T, dir string) { editMetrics(t, dir, "log_loss", -1) },
			file:   MetricsFile,
			want:   "disagrees with model.json: log_loss is missing, the card says 0.35",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := modelDir(t, binaryMetrics)
			tt.damage(t, dir)
			junit := filepath.Join(t.TempDir(), "junit.xml")
			res, err := Run(context.Background(), Config{ModelDir: dir, Min: map[string]float64{"accuracy": 0.5}, JUnitPath: junit})
			assert.Nil(t, res)
			require.Error(t, err)
			assert.Equal(t, 2, fault.CodeOf(err))
			assert.Contains(t, err.Error(), `reading model "`+dir+`": `+filepath.Join(dir, tt.file)+": ")
			assert.Contains(t, err.Error(), tt.want)
			var fe *FailedError
			assert.False(t, errors.As(err, &fe), "a damaged model is an input error, not a gate verdict")
			assert.NoFileExists(t, junit, "nothing is written")
		})
	}

	t.Run("card missing", func(t *testing.T) {
		dir := modelDir(t, binaryMetrics)
		require.NoError(t, os.Remove(filepath.Join(dir, model.CardFile)))
		_, err := Run(context.Background(), Config{ModelDir: dir, Min: map[string]float64{"accuracy": 0.5}})
		require.EqualError(t, err, `reading model "`+dir+`": no model.json in it (is it a model directory written by mlship train?)`)
	})
	t.Run("an intact model passes", func(t *testing.T) {
		res, err := Run(context.Background(), Config{ModelDir: modelDir(t, binaryMetrics), Min: map[string]float64{"accuracy": 0.5}})
		require.NoError(t, err)
		assert.Equal(t, binaryMetrics, res.Metrics)
	})
}

// editMetrics sets (v >= 0) or removes (v < 0) one metric in dir's metrics.json.
func editMetrics(t *testing.T, dir, name string, v float64) {
	t.Helper()
	p := filepath.Join(dir, MetricsFile)
	m, err := metrics.ReadFile(p)
	require.NoError(t, err)
	if v < 0 {
		delete(m, name)
	} else {
		m[name] = v
	}
	require.NoError(t, metrics.WriteFile(p, m))
}

// TestRunBaselineOfAnotherModel: a baseline that predicts something else is
// refused (exit 2), whatever the --allow flags; a baseline that is only
// metrics is compared by name and the result says what was not checked.
func TestRunBaselineOfAnotherModel(t *testing.T) {
	binary := modeltest.Options{Target: "target", Binarize: ">0", Metrics: binaryMetrics}
	metricsFile := func(v metrics.Values) func(t *testing.T) string {
		return func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "baseline.json")
			require.NoError(t, metrics.WriteFile(p, v))
			return p
		}
	}
	toy := func(o modeltest.Options) func(t *testing.T) string {
		return func(t *testing.T) string { return modeltest.Dir(t, o) }
	}
	tests := []struct {
		name     string
		baseline func(t *testing.T) string
		data     bool   // evaluate on --data (the card is read for the comparison)
		wantErr  string // after `comparing with baseline "PATH": `; "" passes
		wantNote bool
	}{
		{
			name:     "25-class baseline against a binary model",
			baseline: toy(modeltest.Options{Task: dataset.Multiclass, Target: "label", NClasses: 25, Metrics: metrics.Values{"accuracy": 0.95, "macro_f1": 0.9, "log_loss": 0.2}}),
			wantErr: `it is a multiclass model of "label" with 25 classes (0, 1, 2, 3, 4, ...), the model is a binary model of "target" >0 with 2 classes (0, 1); ` +
				`a baseline must predict the same target the same way`,
		},
		{
			name:     "same task, another target",
			baseline: toy(modeltest.Options{Target: "churn", Metrics: binaryMetrics}),
			wantErr:  `it is a binary model of "churn" with 2 classes (0, 1), the model is a binary model of "target" >0 with 2 classes (0, 1); a baseline must predict the same target the same way`,
		},
		{
			name:     "same target, another binarize rule",
			baseline: toy(modeltest.Options{Target: "target", Binarize: ">1", Metrics: binaryMetrics}),
			wantErr:  `it is a binary model of "target" >1 with 2 classes (0, 1), the model is a binary model of "target" >0 with 2 classes (0, 1); a baseline must predict the same target the same way`,
		},
		{
			name:     "regression baseline, evaluated on --data",
			baseline: toy(modeltest.Options{Task: dataset.Regression, Target: "target", Metrics: metrics.Values{"mse": 1, "rmse": 1, "mae": 1, "r2": 0.5}}),
			data:     true,
			wantErr:  `it is a regression model of "target", the model is a binary model of "target" >0 with 2 classes (0, 1); a baseline must predict the same target the same way`,
		},
		{
			name:     "same model",
			baseline: toy(binary),
		},
		{
			name:     "multiclass metrics file against a binary model",
			baseline: metricsFile(metrics.Values{"accuracy": 0.95, "macro_f1": 0.9, "log_loss": 0.2}),
			wantErr:  `it has "macro_f1", which a binary model does not report (it reports accuracy, precision, recall, f1, roc_auc, log_loss); is it the baseline of another task?`,
		},
		{
			name:     "regression metrics file",
			baseline: metricsFile(metrics.Values{"mse": 1, "r2": 0.5}),
			wantErr:  `it has "mse", "r2", which a binary model does not report (it reports accuracy, precision, recall, f1, roc_auc, log_loss); is it the baseline of another task?`,
		},
		{
			name:     "binary metrics file: compared, with a note",
			baseline: metricsFile(metrics.Values{"accuracy": 0.85, "log_loss": 0.4}),
			wantNote: true,
		},
		{
			name: "directory holding only metrics.json: compared, with a note",
			baseline: func(t *testing.T) string {
				dir := t.TempDir()
				require.NoError(t, metrics.WriteFile(filepath.Join(dir, MetricsFile), metrics.Values{"accuracy": 0.85}))
				return dir
			},
			wantNote: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := modeltest.Dir(t, binary)
			base := tt.baseline(t)
			cfg := Config{
				ModelDir: dir, Baseline: base, MaxDrop: map[string]float64{"accuracy": 0.5},
				AllowMissingBaseline: true, AllowUnmeasured: true,
			}
			if tt.data {
				cfg.DataPath = "holdout.csv"
				cfg.Evaluate = func(context.Context, string, string) (metrics.Values, error) { return binaryMetrics, nil }
			}
			res, err := Run(context.Background(), cfg)
			if tt.wantErr != "" {
				assert.Nil(t, res)
				require.Error(t, err)
				assert.Equal(t, `comparing with baseline "`+base+`": `+tt.wantErr, err.Error())
				assert.Equal(t, 2, fault.CodeOf(err))
				return
			}
			require.NoError(t, err)
			require.NotNil(t, res.Baseline)
			if tt.wantNote {
				assert.Equal(t, `baseline "`+base+`" holds metrics only: their names fit a binary model, but its target and classes are unknown and were not checked`, res.BaselineNote)
				assert.Contains(t, res.Table(), "\nnote: "+res.BaselineNote+"\n")
			} else {
				assert.Empty(t, res.BaselineNote)
				assert.NotContains(t, res.Table(), "note:")
			}
		})
	}
}

func TestRunBaselineImageOfAnotherTask(t *testing.T) {
	dir := modeltest.Dir(t, modeltest.Options{Metrics: binaryMetrics})
	run := func(base metrics.Values) (*Result, error) {
		return Run(context.Background(), Config{
			ModelDir: dir, BaselineImage: "reg.example/m:prod", MaxDrop: map[string]float64{"accuracy": 0.5},
			LoadBaseline: func(context.Context) (metrics.Values, error) { return base, nil },
		})
	}
	_, err := run(metrics.Values{"accuracy": 0.9, "macro_f1": 0.8})
	require.EqualError(t, err, `comparing with baseline image "reg.example/m:prod": it has "macro_f1", which a binary model does not report `+
		`(it reports accuracy, precision, recall, f1, roc_auc, log_loss); is it the baseline of another task?`)
	res, err := run(metrics.Values{"accuracy": 0.9})
	require.NoError(t, err)
	assert.Equal(t, `baseline image "reg.example/m:prod" holds metrics only: their names fit a binary model, but its target and classes are unknown and were not checked`, res.BaselineNote)
}

// TestRunDamagedBaseline: a baseline model directory is verified like the
// model; a damaged one is an input error even when missing baselines are
// allowed (it is there, and wrong).
func TestRunDamagedBaseline(t *testing.T) {
	base := modelDir(t, binaryMetrics)
	editMetrics(t, base, "accuracy", 0.5)
	_, err := Run(context.Background(), Config{
		ModelDir: modelDir(t, binaryMetrics), Baseline: base, MaxDrop: map[string]float64{"accuracy": 0.1}, AllowMissingBaseline: true,
	})
	require.EqualError(t, err, `reading baseline "`+base+`": `+filepath.Join(base, MetricsFile)+
		`: disagrees with model.json: accuracy is 0.5, the card says 0.869 (was it edited by hand?)`)
	assert.Equal(t, 2, fault.CodeOf(err))
}
