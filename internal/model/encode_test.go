package model_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/model/modeltest"
)

// cityOptions is modeltest's toy with feature b categorical: categories x and y,
// then the other slot.
var cityOptions = modeltest.Options{Categories: map[string][]string{"b": {"x", "y"}}}

func TestLayout(t *testing.T) {
	card, _ := modeltest.Card(cityOptions)
	ins, width, err := card.Layout()
	require.NoError(t, err)
	assert.Equal(t, 5, width)
	require.Len(t, ins, 3)
	assert.Equal(t, []int{0, 1, 4}, []int{ins[0].Offset, ins[1].Offset, ins[2].Offset})
	assert.Equal(t, []int{1, 3, 1}, []int{ins[0].Width(), ins[1].Width(), ins[2].Width()})
	assert.Nil(t, ins[0].Encoder)
	assert.Equal(t, []string{"x", "y"}, ins[1].Encoder.Categories)
	assert.Equal(t, []string{"a", "b=x", "b=y", "b=(other)", "c"}, card.Inputs)

	numeric, _ := modeltest.Card(modeltest.Options{})
	ins, width, err = numeric.Layout()
	require.NoError(t, err)
	assert.Equal(t, 3, width)
	assert.Equal(t, []int{0, 1, 2}, []int{ins[0].Offset, ins[1].Offset, ins[2].Offset})
}

// TestCategoricalCardChecked: a card whose categories or inputs do not fit
// its features and network is refused with the reason, naming the card.
func TestCategoricalCardChecked(t *testing.T) {
	tests := []struct {
		name   string
		damage func(c map[string]any)
		want   string
	}{
		{"fits", func(map[string]any) {}, ""},
		{"no inputs list is fine", func(c map[string]any) { delete(c, "inputs") }, ""},
		{"a category of no feature", func(c map[string]any) { c["categories"] = map[string]any{"b": []string{"x", "y"}, "zz": []string{"q"}} }, `categories: "zz" is not a feature`},
		{"a category twice", func(c map[string]any) { c["categories"] = map[string]any{"b": []string{"x", "x"}} }, `categories: "b" lists "x" twice`},
		{"an empty category", func(c map[string]any) { c["categories"] = map[string]any{"b": []string{"x", ""}} }, `categories: "b" has an empty category`},
		{"the other slot listed", func(c map[string]any) { c["categories"] = map[string]any{"b": []string{"x", "(other)"}} }, `categories: "b" lists "(other)", the name of the slot of the categories it does not list`},
		{"inputs that are not the features'", func(c map[string]any) { c["inputs"] = []string{"a", "b", "c", "d", "e"} },
			`inputs: 5 names, not the 5 the features and categories make ([a b=x b=y b=(other) c])`},
		{"one category more than the network takes", func(c map[string]any) {
			c["categories"] = map[string]any{"b": []string{"x", "y", "z"}}
			delete(c, "inputs")
		}, `3 features make 6 inputs (categorical ones one-hot) but the network takes 5`},
		{"categories lost", func(c map[string]any) { delete(c, "categories"); delete(c, "inputs") }, `3 features but the network takes 5 inputs`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkEditedCard(t, modeltest.Dir(t, cityOptions), tc.damage, tc.want)
		})
	}
}

// TestPredictCategorical: the predictor takes a raw row with b's slot and
// gives the prediction of the one-hot row.
func TestPredictCategorical(t *testing.T) {
	card, tensors := modeltest.Card(cityOptions)
	m, err := model.New(card, tensors)
	require.NoError(t, err)
	// The same network read as a numeric model of 5 inputs (no categories).
	plainCard, _ := modeltest.Card(cityOptions)
	plainCard.Categories, plainCard.Inputs = nil, nil
	plainCard.Features = []string{"a", "b=x", "b=y", "b=(other)", "c"}
	plain, err := model.New(plainCard, tensors)
	require.NoError(t, err)
	nan := math.NaN()
	for _, tc := range []struct {
		raw, onehot []float64
	}{
		{[]float64{2, 0, 4}, []float64{2, 1, 0, 0, 4}},
		{[]float64{2, 1, 4}, []float64{2, 0, 1, 0, 4}},
		{[]float64{2, 2, 4}, []float64{2, 0, 0, 1, 4}},
		{[]float64{nan, nan, 4}, []float64{nan, 0, 0, 0, 4}},
		{[]float64{2, 7, 4}, []float64{2, 0, 0, 1, 4}},   // out of range: other
		{[]float64{2, 0.5, 4}, []float64{2, 0, 0, 1, 4}}, // not whole: other
	} {
		got, err := m.Predict([][]float64{tc.raw})
		require.NoError(t, err)
		want, err := plain.Predict([][]float64{tc.onehot})
		require.NoError(t, err)
		assert.Equal(t, want, got, "%v", tc.raw)
	}
	_, err = m.Predict([][]float64{{1, 2, 3, 4, 5}})
	assert.EqualError(t, err, "row 1 has 5 values, the model takes 3", "rows are raw: one value per feature")
}

func TestReferenceCategoriesChecked(t *testing.T) {
	fits := func() *model.Reference {
		r := &model.Reference{Buckets: model.ZBuckets, Rows: 2, Predictions: model.PredictionShares{Rows: 2, Classes: []float64{0.5, 0.5}}}
		for _, f := range []string{"a", "c"} {
			r.Features = append(r.Features, model.FeatureShares{Name: f, Shares: model.Shares(model.ZBuckets, []float64{0, 1})})
		}
		r.Categories = []model.FeatureShares{{Name: "b", Shares: []float64{0.5, 0.25, 0.25}}}
		return r
	}
	tests := []struct {
		name   string
		damage func(r *model.Reference)
		want   string
	}{
		{"fits", func(*model.Reference) {}, ""},
		{"the categorical feature among the numeric ones", func(r *model.Reference) {
			r.Features = append(r.Features, model.FeatureShares{Name: "b", Shares: r.Features[0].Shares})
		}, "reference: 3 features, the model has 2 numeric ones"},
		{"no categories", func(r *model.Reference) { r.Categories = nil }, "reference: 0 categorical features, the model has 1"},
		{"renamed", func(r *model.Reference) { r.Categories[0].Name = "a" }, `reference: categorical feature 1 is "a", the model's is "b"`},
		{"no other slot", func(r *model.Reference) { r.Categories[0].Shares = r.Categories[0].Shares[:2] },
			`reference: categorical feature "b" has 2 shares, want 3 (its categories and the other slot)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			card, tensors := modeltest.Card(cityOptions)
			r := fits()
			tc.damage(r)
			card.Reference = r
			dir := filepath.Join(t.TempDir(), "m")
			require.NoError(t, model.WriteDir(dir, card, tensors, nil))
			_, err := model.Load(dir)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// checkEditedCard rewrites the card of model directory dir through edit, loads
// the directory, and wants it to load when want is "", else an error that says
// want and names the card.
func checkEditedCard(t *testing.T, dir string, edit func(card map[string]any), want string) {
	t.Helper()
	p := filepath.Join(dir, model.CardFile)
	var card map[string]any
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &card))
	edit(card)
	b, err = json.Marshal(card)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	_, err = model.Load(dir)
	if want == "" {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), want)
	assert.Contains(t, err.Error(), p)
}
