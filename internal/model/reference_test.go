package model_test

import (
	"testing"

	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/model/modeltest"
	"github.com/stretchr/testify/assert"
)

func TestShares(t *testing.T) {
	// Prometheus "le" semantics: a value on a bound belongs to that bound's bucket.
	s := model.Shares([]float64{0, 1}, []float64{-5, 0, 0.5, 1, 2})
	assert.Equal(t, []float64{0.4, 0.4, 0.2}, s)
	assert.Equal(t, []float64{0, 0, 0}, model.Shares([]float64{0, 1}, nil))
	assert.Equal(t, 0, model.ZBucket(-7))
	assert.Equal(t, len(model.ZBuckets), model.ZBucket(3.5))
}

// A card whose reference does not fit the model is refused with the reason.
func TestReferenceChecked(t *testing.T) {
	fits := func() *model.Reference {
		r := &model.Reference{Buckets: model.ZBuckets, Rows: 2, Predictions: model.PredictionShares{Rows: 2, Classes: []float64{0.5, 0.5}}}
		for _, f := range []string{"a", "b", "c"} {
			r.Features = append(r.Features, model.FeatureShares{Name: f, Shares: model.Shares(model.ZBuckets, []float64{0, 1})})
		}
		return r
	}
	tests := []struct {
		name   string
		damage func(r *model.Reference)
		want   string
	}{
		{"fits", func(*model.Reference) {}, ""},
		{"other buckets", func(r *model.Reference) { r.Buckets = []float64{0, 1} }, "reference: 2 buckets, mlship uses 11"},
		{"a feature short", func(r *model.Reference) { r.Features = r.Features[:2] }, "reference: 2 features, the model has 3"},
		{"renamed feature", func(r *model.Reference) { r.Features[1].Name = "x" }, `reference: feature 2 is "x", the model's is "b"`},
		{"short shares", func(r *model.Reference) { r.Features[0].Shares = r.Features[0].Shares[:3] }, `reference: feature "a" has 3 shares, want 12`},
		{"classes", func(r *model.Reference) { r.Predictions.Classes = []float64{1} }, "reference: 1 prediction shares, the model has 2 classes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkEditedCard(t, modeltest.Dir(t, modeltest.Options{}), func(card map[string]any) {
				r := fits()
				tc.damage(r)
				card["reference"] = r
			}, tc.want)
		})
	}
}
