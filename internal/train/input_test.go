package train

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
)

// heartWith writes the heart data with edit applied to each data row (i from 0;
// the row's line is i+2) and returns its path.
func heartWith(t *testing.T, header func([]string) []string, edit func(i int, row []string) []string) string {
	t.Helper()
	f, err := os.Open(heartCSV)
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	if header != nil {
		recs[0] = header(recs[0])
	}
	for i := range recs[1:] {
		recs[i+1] = edit(i, recs[i+1])
	}
	p := filepath.Join(t.TempDir(), "heart.csv")
	out, err := os.Create(p)
	require.NoError(t, err)
	w := csv.NewWriter(out)
	require.NoError(t, w.WriteAll(recs))
	require.NoError(t, out.Close())
	return p
}

const cholColumn = 4 // age,sex,cp,trestbps,chol,...

// scaleColumn multiplies column c by k.
func scaleColumn(t *testing.T, c int, k float64) func(int, []string) []string {
	return func(_ int, row []string) []string {
		v, err := strconv.ParseFloat(row[c], 64)
		require.NoError(t, err)
		row[c] = strconv.FormatFloat(v*k, 'g', -1, 64)
		return row
	}
}

// TestScaleInvariant: multiplying a column by 1e200 or 1e-200 trains the same
// model, up to the rounding of the products: the statistics are computed on the
// column scaled by a power of two. Computed naively the standard deviation
// overflowed (1e200) or underflowed (1e-200), was replaced by 1 and the model
// fell to accuracy 0.42.
func TestScaleInvariant(t *testing.T) {
	base := heartConfig(t)
	want, err := Run(context.Background(), base)
	require.NoError(t, err)
	for _, k := range []float64{1e200, 1e-200, 0x1p-1000} {
		t.Run(strconv.FormatFloat(k, 'g', -1, 64), func(t *testing.T) {
			cfg := heartConfig(t)
			cfg.DataPath = heartWith(t, nil, scaleColumn(t, cholColumn, k))
			got, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			require.Equal(t, len(want.Metrics), len(got.Metrics))
			for name, v := range want.Metrics {
				assert.InDelta(t, v, got.Metrics[name], 1e-9, name)
			}
			assert.Equal(t, want.Card.Training.EpochsRun, got.Card.Training.EpochsRun)
			assert.InEpsilon(t, want.Card.Preprocess.Std[cholColumn]*k, got.Card.Preprocess.Std[cholColumn], 1e-14)
		})
	}
}

// TestHugeCells: cells of 1e308 used to make the column's sum infinite and the
// training loss NaN ("try a lower learning rate"). They are representable: the
// model trains. A column spanning -1e308..1e308 cannot be centred in float64: an
// error naming the file, line and column, before training.
func TestHugeCells(t *testing.T) {
	cfg := heartConfig(t)
	cfg.DataPath = heartWith(t, nil, func(i int, row []string) []string {
		if i%3 == 0 {
			row[cholColumn] = "1e308"
		}
		return row
	})
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Greater(t, res.Metrics["accuracy"], 0.7)

	cfg = heartConfig(t)
	cfg.DataPath = heartWith(t, nil, func(i int, row []string) []string {
		switch i {
		case 0:
			row[cholColumn] = "-1e308"
		case 1:
			row[cholColumn] = "1.5e308"
		}
		return row
	})
	_, err = Run(context.Background(), cfg)
	var de *dataset.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, cfg.DataPath, de.File)
	assert.Equal(t, 3, de.Line)
	assert.Equal(t, "chol", de.Column)
	assert.Contains(t, err.Error(), "1.5e+308 is too far from -1e+308 (line 2) for float64: their difference overflows; rescale the column")
	assert.Equal(t, fault.Usage, fault.CodeOf(err))
	ents, _ := os.ReadDir(filepath.Dir(cfg.OutDir))
	assert.Empty(t, ents)
}

// TestEmptyColumn: a column empty in every row is left out with a warning and
// recorded in the card; the model is the one trained without it. Asked for as a
// feature, or as the target, it is an error.
func TestEmptyColumn(t *testing.T) {
	base := heartConfig(t)
	want, err := Run(context.Background(), base)
	require.NoError(t, err)

	withEmpty := heartWith(t,
		func(h []string) []string { return append([]string{"notes"}, h...) },
		func(_ int, row []string) []string { return append([]string{""}, row...) })
	var log strings.Builder
	cfg := heartConfig(t)
	cfg.DataPath, cfg.Log = withEmpty, &log
	got, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "warning: left out 1 column empty in every row: notes\n")
	assert.Equal(t, []string{"notes"}, got.Card.Data.Empty)
	assert.Equal(t, want.Card.Features, got.Card.Features)
	assert.Equal(t, want.Card.Data.Missing, got.Card.Data.Missing, "the empty column is not counted as imputed")
	assert.Equal(t, want.Metrics, got.Metrics)
	w1, _ := os.ReadFile(filepath.Join(base.OutDir, model.WeightsFile))
	w2, _ := os.ReadFile(filepath.Join(cfg.OutDir, model.WeightsFile))
	assert.Equal(t, w1, w2)
	card, err := os.ReadFile(filepath.Join(cfg.OutDir, model.CardFile))
	require.NoError(t, err)
	assert.Contains(t, string(card), `"dropped_empty": [`)
	card, _ = os.ReadFile(filepath.Join(base.OutDir, model.CardFile))
	assert.NotContains(t, string(card), "dropped_empty", "cards of data without empty columns are unchanged")

	cfg = heartConfig(t)
	cfg.DataPath, cfg.Features = withEmpty, []string{"age", "notes"}
	_, err = Run(context.Background(), cfg)
	require.EqualError(t, err, `reading dataset "`+withEmpty+`": column "notes": is empty in every row (303 rows), so it cannot be a feature; remove it from the features`)

	cfg = heartConfig(t)
	cfg.DataPath, cfg.Target, cfg.Binarize = withEmpty, "notes", ""
	_, err = Run(context.Background(), cfg)
	require.EqualError(t, err, `reading dataset "`+withEmpty+`": column "notes": the target column is empty in every row (303 rows)`)
}

// TestRegressionTargetUnits: a regression target whose squared errors cannot be
// represented is refused, naming it (the metrics used to be +Inf, which failed
// as "json: unsupported value: +Inf", or 0 with a perfect r2).
func TestRegressionTargetUnits(t *testing.T) {
	const thalach = 7
	for _, tt := range []struct {
		k    float64
		want string
	}{
		{1e200, "spread too far for the regression metrics: their squared errors overflow float64; rescale the target"},
		{1e-200, "are too close together for the regression metrics: their squared errors underflow float64; rescale the target"},
		{1e100, ""},
		{1e-100, ""},
	} {
		t.Run(strconv.FormatFloat(tt.k, 'g', -1, 64), func(t *testing.T) {
			cfg := heartConfig(t)
			cfg.DataPath = heartWith(t, nil, scaleColumn(t, thalach, tt.k))
			cfg.Target, cfg.Binarize, cfg.Epochs = "thalach", "", 3
			res, err := Run(context.Background(), cfg)
			if tt.want == "" {
				require.NoError(t, err)
				assert.Greater(t, res.Metrics["mse"], 0.0)
				return
			}
			var de *dataset.Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, "thalach", de.Column)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestValidateSizes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataPath, cfg.Target = "x.csv", "y"
	cfg.Hidden = make([]int, maxHidden+1)
	for i := range cfg.Hidden {
		cfg.Hidden[i] = 4
	}
	require.EqualError(t, cfg.Validate(), "hidden has 257 layers, at most 256 are supported")

	cfg = DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Kind = "x.csv", "y", model.KindCNN
	cfg.Conv = make([]model.ConvLayer, maxConv+1)
	for i := range cfg.Conv {
		cfg.Conv[i] = model.ConvLayer{Filters: 1, Kernel: 3}
	}
	cfg.Image = &model.Image{Channels: 1 << 32, Height: 1 << 32, Width: 13}
	err := cfg.Validate()
	require.EqualError(t, err, "conv has 65 blocks, at most 64 are supported\ninput-shape 4294967296x4294967296x13 has more values than any data file has columns")
	assert.Len(t, fault.Fields(err), 2)
	assert.True(t, errors.As(err, new(*fault.FieldError)))
}
