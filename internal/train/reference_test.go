package train

import (
	"context"
	"testing"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The card records the training rows' shares in the server's z-score buckets
// and the validation predictions' distribution, recomputed here from the data.
func TestReference(t *testing.T) {
	cfg := heartConfig(t)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	m, err := model.Load(cfg.OutDir)
	require.NoError(t, err)
	ref := m.Card.Reference
	require.NotNil(t, ref, "train writes the reference")
	assert.Equal(t, model.ZBuckets, ref.Buckets)
	assert.Equal(t, res.Card.Data.Split.Train, ref.Rows)

	// Recompute from the data with the card's preprocessing and the same split.
	frame, err := dataset.ReadCSV(cfg.DataPath)
	require.NoError(t, err)
	ds, err := dataset.Build(frame, dataset.Spec{Target: cfg.Target, Binarize: cfg.Binarize})
	require.NoError(t, err)
	split, err := dataset.SplitRows(ds, dataset.SplitConfig{Seed: cfg.Seed, TestFrac: cfg.TestFrac, ValFrac: cfg.ValFrac, Stratify: true})
	require.NoError(t, err)
	require.Len(t, ref.Features, len(m.Card.Features))
	age := -1
	for j, f := range m.Card.Features {
		if f == "age" {
			age = j
		}
	}
	require.GreaterOrEqual(t, age, 0)
	var ages []float64
	s := m.NewScratch()
	for _, r := range split.Train {
		ages = append(ages, m.Preprocess(ds.X[r], s)[age])
	}
	assert.Equal(t, model.Shares(model.ZBuckets, ages), ref.Features[age].Shares)
	for _, f := range ref.Features {
		sum := 0.0
		for _, v := range f.Shares {
			sum += v
		}
		assert.InDelta(t, 1, sum, 1e-9, f.Name)
	}

	var val [][]float64
	for _, r := range split.Val {
		val = append(val, ds.X[r])
	}
	p, err := m.Predict(val)
	require.NoError(t, err)
	ones := 0
	for _, c := range p.Class {
		ones += c
	}
	assert.Equal(t, len(split.Val), ref.Predictions.Rows)
	assert.Equal(t, []float64{float64(len(val)-ones) / float64(len(val)), float64(ones) / float64(len(val))}, ref.Predictions.Classes)
	assert.Nil(t, ref.Predictions.Mean, "classification has no value distribution")
}

func TestMeanStd(t *testing.T) {
	mean, std := meanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	assert.InDelta(t, 5, mean, 1e-12)
	assert.InDelta(t, 2, std, 1e-12)
	// Shifted far from zero, Welford keeps the variance.
	mean, std = meanStd([]float64{1e9 + 2, 1e9 + 4, 1e9 + 4, 1e9 + 4, 1e9 + 5, 1e9 + 5, 1e9 + 7, 1e9 + 9})
	assert.InDelta(t, 1e9+5, mean, 1e-6)
	assert.InDelta(t, 2, std, 1e-6)
}
