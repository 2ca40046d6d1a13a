package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
)

const heartCSV = "../../examples/heart-disease/heart.csv"

func heartConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.DataPath = heartCSV
	cfg.Target = "target"
	cfg.Binarize = ">0"
	cfg.OutDir = filepath.Join(t.TempDir(), "model")
	return cfg
}

// TestSameInputsSameBytes trains twice with the same data, config and seed and
// requires byte-identical model directories; a different seed changes the weights.
func TestSameInputsSameBytes(t *testing.T) {
	a, b, c := heartConfig(t), heartConfig(t), heartConfig(t)
	c.Seed = 7
	for _, cfg := range []Config{a, b, c} {
		_, err := Run(context.Background(), cfg)
		require.NoError(t, err)
	}
	for _, f := range []string{model.CardFile, model.WeightsFile, model.MetricsFile} {
		x, err := os.ReadFile(filepath.Join(a.OutDir, f))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b.OutDir, f))
		require.NoError(t, err)
		assert.Equal(t, x, y, "%s differs between two runs with the same seed", f)
	}
	x, _ := os.ReadFile(filepath.Join(a.OutDir, model.WeightsFile))
	z, _ := os.ReadFile(filepath.Join(c.OutDir, model.WeightsFile))
	assert.NotEqual(t, x, z, "a different seed must give different weights")
}

func TestHeartRecipe(t *testing.T) {
	cfg := heartConfig(t)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	card := res.Card
	assert.Equal(t, dataset.Task("binary"), card.Task)
	assert.Equal(t, 6, card.Data.Missing)
	assert.Equal(t, map[string]int{"ca": 4, "thal": 2}, card.Data.MissingBy)
	assert.Equal(t, 303, card.Data.Split.Train+card.Data.Split.Val+card.Data.Split.Test)
	assert.Equal(t, 61, card.Data.Split.Test)
	assert.Len(t, card.Features, 13)
	assert.Equal(t, len(card.Training.Curve), card.Training.EpochsRun)
	assert.LessOrEqual(t, card.Training.BestEpoch, card.Training.EpochsRun)
	if card.Training.StoppedEarly {
		assert.Equal(t, card.Training.BestEpoch+cfg.Patience, card.Training.EpochsRun)
	}
	// The restored weights are the best epoch's: their validation loss is the minimum.
	best := card.Training.Curve[card.Training.BestEpoch-1].ValLoss
	for _, e := range card.Training.Curve {
		assert.GreaterOrEqual(t, e.ValLoss, best)
	}
	// The heart data is learnable: a real model beats the majority class (54%) clearly.
	assert.Greater(t, res.Metrics["accuracy"], 0.75)
	assert.Greater(t, res.Metrics["roc_auc"], 0.85)
	// The confusion matrix covers the test split.
	total := 0
	for _, row := range card.Confusion {
		for _, v := range row {
			total += v
		}
	}
	assert.Equal(t, 61, total)
}

// writeCSV writes rows of a synthetic data set and returns its path.
func writeCSV(t *testing.T, header string, rows []string) string {
	p := filepath.Join(t.TempDir(), "data.csv")
	require.NoError(t, os.WriteFile(p, []byte(header+"\n"+strings.Join(rows, "\n")+"\n"), 0o644))
	return p
}

func TestTasks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var reg, multi []string
	for i := 0; i < 400; i++ {
		x1, x2 := rng.NormFloat64(), rng.NormFloat64()
		// y in the thousands: the target scaling must handle it.
		reg = append(reg, fmt.Sprintf("%g,%g,%g", x1, x2, 5000+1000*(2*x1-x2)+10*rng.NormFloat64()))
		cls := 0
		switch {
		case x1 > 0.5:
			cls = 2
		case x2 > 0:
			cls = 1
		}
		multi = append(multi, fmt.Sprintf("%g,%g,%d", x1, x2, cls))
	}
	tests := []struct {
		name   string
		path   string
		task   string
		metric string
		min    float64
	}{
		{"regression", writeCSV(t, "x1,x2,y", reg), "regression", "r2", 0.95},
		{"multiclass", writeCSV(t, "x1,x2,y", multi), "multiclass", "accuracy", 0.85},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataPath, cfg.Target = tc.path, "y"
			cfg.OutDir = filepath.Join(t.TempDir(), "m")
			cfg.Epochs, cfg.Patience, cfg.LearningRate = 200, 20, 0.01
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			assert.Equal(t, tc.task, string(res.Card.Task))
			assert.Greater(t, res.Metrics[tc.metric], tc.min, "%v", res.Metrics)
			m, err := model.Load(cfg.OutDir)
			require.NoError(t, err)
			if tc.task == "regression" {
				// Predictions come back in the target's units.
				p, err := m.Predict([][]float64{{0, 0}})
				require.NoError(t, err)
				assert.InDelta(t, 5000, p.Value[0], 300)
				// The reference holds the validation predictions' distribution.
				pr := m.Card.Reference.Predictions
				require.NotNil(t, pr.Mean)
				assert.InDelta(t, 5000, *pr.Mean, 500)
				assert.InDelta(t, 2236, *pr.Std, 400) // std of 1000*(2*x1-x2) is 1000*sqrt(5)
				assert.Len(t, pr.Values, len(model.ZBuckets)+1)
			} else {
				assert.Len(t, m.Card.Reference.Predictions.Classes, 3)
			}
		})
	}
}

func TestNoPartialOutput(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		ctx    func() context.Context
		want   string
	}{
		{"missing data", func(c *Config) { c.DataPath = "nope.csv" }, context.Background, "nope.csv"},
		{"unknown target", func(c *Config) { c.Target = "nope" }, context.Background, `target column "nope" not found`},
		{"cnn shape mismatch", func(c *Config) {
			c.Kind, c.Image, c.Conv = model.KindCNN, &model.Image{Channels: 1, Height: 4, Width: 4}, []model.ConvLayer{{Filters: 2, Kernel: 3}}
		}, context.Background, "image 1x4x4 has 16 values but the data has 13 features"},
		{"cancelled", func(*Config) {}, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, "context canceled"},
		{"diverges", func(c *Config) { c.LearningRate = 1e300 }, context.Background, "the training loss became"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := heartConfig(t)
			tc.modify(&cfg)
			_, err := Run(tc.ctx(), cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			ents, _ := os.ReadDir(filepath.Dir(cfg.OutDir))
			assert.Empty(t, ents, "nothing may be written on failure")
		})
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.Validate()
	require.EqualError(t, err, "data is required (the training CSV)\ntarget is required (the column to predict)")
	cfg.DataPath, cfg.Target = "x.csv", "y"
	require.NoError(t, cfg.Validate())
	cfg.BatchSize, cfg.TestFrac, cfg.LearningRate = 0, 1, math.Inf(1)
	require.EqualError(t, cfg.Validate(), "batch-size must be at least 1, got 0\nlearning-rate must be positive, got +Inf\ntest-size must be between 0 and 1, got 1")
}

// TestFloat32Model trains the heart recipe with --dtype float32: the card says
// float32 and F32, every tensor in the file is F32, the run is deterministic,
// and the model is as good as the float64 one (test accuracy within one
// percentage point, the bar).
func TestFloat32Model(t *testing.T) {
	a, b, c := heartConfig(t), heartConfig(t), heartConfig(t)
	a.DType, b.DType = DTypeFloat32, DTypeFloat32
	var res [3]*Result
	for i, cfg := range []Config{a, b, c} {
		r, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		res[i] = r
	}
	card := res[0].Card
	assert.Equal(t, "float32", card.Training.DType)
	assert.Equal(t, model.Determinism, card.Training.Determinism)
	assert.Equal(t, "F32", card.Weights.DType)
	assert.Equal(t, "float64", res[2].Card.Training.DType)
	assert.Equal(t, "F64", res[2].Card.Weights.DType)
	w, err := os.ReadFile(filepath.Join(a.OutDir, model.WeightsFile))
	require.NoError(t, err)
	hlen := int(w[0]) | int(w[1])<<8 | int(w[2])<<16
	header := string(w[8 : 8+hlen])
	assert.Equal(t, 2*(len(card.Network.Hidden)+1), strings.Count(header, `"dtype":"F32"`), header)
	assert.NotContains(t, header, `"F64"`)
	assert.Equal(t, 8+hlen+4*card.Params, len(w), "4 bytes a weight")
	w2, err := os.ReadFile(filepath.Join(b.OutDir, model.WeightsFile))
	require.NoError(t, err)
	assert.Equal(t, w, w2, "two float32 runs with the same seed")
	m, err := model.Load(a.OutDir)
	require.NoError(t, err)
	assert.Equal(t, card.Metrics, m.Card.Metrics)
	assert.InDelta(t, res[2].Card.Metrics["accuracy"], card.Metrics["accuracy"], 0.01+1e-9, "float32 vs float64 test accuracy")
}

func TestValidateDType(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.DType = "x.csv", "y", "float16"
	require.EqualError(t, cfg.Validate(), `dtype must be float32 or float64, got "float16"`)
	cfg.DType, cfg.Kind, cfg.Image, cfg.Conv = DTypeFloat32, model.KindCNN, &model.Image{Channels: 1, Height: 4, Width: 4}, []model.ConvLayer{{Filters: 2, Kernel: 3}}
	require.EqualError(t, cfg.Validate(), "dtype float32 trains an mlp only; a cnn trains in float64")
}
