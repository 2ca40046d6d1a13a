package serve

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/category"
	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/model/modeltest"
	"github.com/mlship/mlship/internal/serve/wire"
)

// Models with a categorical feature and class labels of text: b takes the
// categories x and y (then the other slot), the classes are no and yes.

func newCategoricalServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	card, tensors := modeltest.Card(modeltest.Options{
		Name: "toy-city", Task: dataset.Binary, Classes: []string{"no", "yes"},
		Categories: map[string][]string{"b": {"x", "y"}}, Metrics: map[string]float64{"accuracy": 0.9},
	})
	card.Reference = &model.Reference{
		Buckets: model.ZBuckets, Rows: 4,
		Features: []model.FeatureShares{
			{Name: "a", Shares: model.Shares(model.ZBuckets, []float64{-1, 0, 0, 1})},
			{Name: "c", Shares: model.Shares(model.ZBuckets, []float64{-1, 0, 0, 1})},
		},
		Categories:  []model.FeatureShares{{Name: "b", Shares: []float64{0.5, 0.25, 0.25}}},
		Predictions: model.PredictionShares{Rows: 4, Classes: []float64{0.5, 0.5}},
	}
	dir := filepath.Join(t.TempDir(), "model")
	require.NoError(t, model.WriteDir(dir, card, tensors, nil))
	s, err := New(Config{ModelDir: dir})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func TestPredictCategorical(t *testing.T) {
	s, ts := newCategoricalServer(t)
	nan := math.NaN()
	// The raw rows the predictor takes: b as its slot (x 0, y 1, other 2).
	want, err := s.Model().Predict([][]float64{{1, 0, 3}, {1, 1, 3}, {1, 2, 3}, {1, nan, 3}, {1, 2, 0}})
	require.NoError(t, err)
	answer := func(i int) string {
		label := []string{"no", "yes"}[want.Class[i]]
		b, _ := json.Marshal(map[string]any{"output": label, "probabilities": map[string]float64{"no": want.Probs[i][0], "yes": want.Probs[i][1]}})
		return string(b)
	}
	tests := []struct {
		name, body string
		row        int
	}{
		{"an object by name", `{"input":{"a":1,"b":"x","c":3}}`, 0},
		{"an array with a string", `{"input":[1,"y",3]}`, 1},
		{"surrounding space and case of a category", `{"input":[1," y ",3]}`, 1},
		{"an unseen category is the other slot", `{"input":[1,"zz",3]}`, 2},
		{"a number is the category of its text", `{"input":[1,17,3]}`, 2},
		{"null is missing", `{"input":{"a":1,"b":null,"c":3}}`, 3},
		{"a missing marker is missing", `{"input":[1,"NA",3]}`, 3},
		{"booleans are 1 and 0", `{"input":[true,"zz",false]}`, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", ts.URL+"/predict", tc.body)
			require.Equal(t, 200, r.code, r.body)
			assert.JSONEq(t, answer(tc.row), r.body)
		})
	}
	t.Run("a batch answers labels", func(t *testing.T) {
		r := do(t, "POST", ts.URL+"/predict", `{"inputs":[[1,"x",3],{"c":3,"b":"y","a":1}]}`)
		require.Equal(t, 200, r.code, r.body)
		var got struct {
			Outputs       []string
			Probabilities []map[string]float64
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &got))
		assert.Equal(t, []string{[]string{"no", "yes"}[want.Class[0]], []string{"no", "yes"}[want.Class[1]]}, got.Outputs)
		assert.Equal(t, map[string]float64{"no": want.Probs[1][0], "yes": want.Probs[1][1]}, got.Probabilities[1])
	})
	for _, tc := range []struct{ body, want string }{
		{`{"input":[1,["x"],3]}`, `input[1] (b): is an array, want a category (a string or a number; null for missing)`},
		{`{"input":{"a":"1","b":"x","c":3}}`, `input.a: is a string, want a number (or null for missing)`},
		{`{"input":[1,"x"]}`, `input has 2 values, the model takes 3: a, b, c`},
		{`{"input":"x"}`, `input must be an array of 3 values or an object keyed by feature name`},
	} {
		r := do(t, "POST", ts.URL+"/predict", tc.body)
		assert.Equal(t, 400, r.code)
		assert.Contains(t, r.body, tc.want, tc.body)
	}
}

func TestCategoricalMetrics(t *testing.T) {
	_, ts := newCategoricalServer(t)
	require.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"inputs":[[1,"x",3],[1,"zz",3],[1,"zz",3],[1,null,3],[1,"y",3]]}`).code)
	// A request that fails counts nothing.
	require.Equal(t, 400, do(t, "POST", ts.URL+"/predict", `{"inputs":[[1,"qq",3],[1,"x"]]}`).code)
	fams := scrape(t, ts.URL)
	count := func(name string, labels map[string]string) float64 {
		return sample(t, fams, name, labels).GetCounter().GetValue()
	}
	assert.Equal(t, 2.0, count("mlship_input_unseen_category_total", map[string]string{"feature": "b"}))
	assert.Equal(t, 1.0, count("mlship_input_category_total", map[string]string{"feature": "b", "category": "x"}))
	assert.Equal(t, 1.0, count("mlship_input_category_total", map[string]string{"feature": "b", "category": "y"}))
	assert.Equal(t, 2.0, count("mlship_input_category_total", map[string]string{"feature": "b", "category": category.Other}))
	assert.Equal(t, 1.0, count("mlship_input_missing_total", map[string]string{"feature": "b"}))
	assert.Equal(t, 0.0, count("mlship_input_missing_total", map[string]string{"feature": "a"}))

	// The z-score histogram has the numeric features only, like the card's reference.
	var zs []string
	for _, m := range fams["mlship_input_feature_zscore"].Metric {
		zs = append(zs, m.Label[0].GetValue())
		assert.Equal(t, uint64(5), m.GetHistogram().GetSampleCount())
	}
	assert.Equal(t, []string{"a", "c"}, zs)
	var shares []string
	for _, m := range fams["mlship_reference_feature_share"].Metric {
		shares = append(shares, m.Label[0].GetValue())
	}
	assert.NotContains(t, shares, "b")
	assert.Equal(t, 0.5, sample(t, fams, "mlship_reference_category_share", map[string]string{"feature": "b", "category": "x"}).GetGauge().GetValue())
	assert.Equal(t, 0.25, sample(t, fams, "mlship_reference_category_share", map[string]string{"feature": "b", "category": category.Other}).GetGauge().GetValue())
	assert.Equal(t, 5.0, count("mlship_predicted_class_total", map[string]string{"class": "no"})+count("mlship_predicted_class_total", map[string]string{"class": "yes"}))

	// A numeric model has none of the categorical metrics.
	_, plain := newTestServer(t, "binary", nil)
	fams = scrape(t, plain.URL)
	assert.NotContains(t, fams, "mlship_input_category_total")
	assert.NotContains(t, fams, "mlship_input_unseen_category_total")
	assert.NotContains(t, fams, "mlship_reference_category_share")
}

func TestOpenInferenceProtocolCategorical(t *testing.T) {
	s, ts := newCategoricalServer(t)
	base := ts.URL + "/v2/models/toy-city"

	r := do(t, "GET", base, "")
	require.Equal(t, 200, r.code)
	var meta struct {
		Inputs, Outputs []struct {
			Name, Datatype string
			Shape          []int64
		}
		Parameters map[string]string
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &meta))
	require.Len(t, meta.Inputs, 1)
	assert.Equal(t, "BYTES", meta.Inputs[0].Datatype, "input-0 takes strings")
	assert.Equal(t, []int64{-1, 3}, meta.Inputs[0].Shape)
	assert.Equal(t, "BYTES", meta.Outputs[0].Datatype, "the labels are strings")
	assert.Equal(t, "b", meta.Parameters["categorical_features"])
	assert.Equal(t, "no,yes", meta.Parameters["classes"])
	assert.Contains(t, meta.Parameters["input_layout"], "BYTES")

	nan := math.NaN()
	want, err := s.Model().Predict([][]float64{{1, 0, 3}, {2, 2, nan}})
	require.NoError(t, err)
	labels := []string{[]string{"no", "yes"}[want.Class[0]], []string{"no", "yes"}[want.Class[1]]}
	probs := []float64{want.Probs[0][0], want.Probs[0][1], want.Probs[1][0], want.Probs[1][1]}
	type out struct {
		Name     string
		Shape    []int64
		Datatype string
		Data     json.RawMessage
	}
	for _, body := range []string{
		`{"inputs":[{"name":"input-0","shape":[2,3],"datatype":"BYTES","data":[1,"x",3,"2","zz",null]}]}`,
		`{"inputs":[{"name":"input-0","shape":[2,3],"datatype":"BYTES","data":[["1","x","3"],[2,"zz","NA"]]}]}`,
		`{"inputs":[{"name":"c","shape":[2],"datatype":"FP64","data":[3,null]},{"name":"b","shape":[2,1],"datatype":"BYTES","data":["x","zz"]},{"name":"a","shape":[2],"datatype":"INT32","data":[1,2]}]}`,
	} {
		r := do(t, "POST", base+"/infer", body)
		require.Equal(t, 200, r.code, r.body)
		var resp struct{ Outputs []out }
		require.NoError(t, json.Unmarshal([]byte(r.body), &resp))
		require.Len(t, resp.Outputs, 2)
		assert.Equal(t, "BYTES", resp.Outputs[0].Datatype)
		var gotLabels []string
		require.NoError(t, json.Unmarshal(resp.Outputs[0].Data, &gotLabels))
		assert.Equal(t, labels, gotLabels, body)
		var gotProbs []float64
		require.NoError(t, json.Unmarshal(resp.Outputs[1].Data, &gotProbs))
		assert.Equal(t, probs, gotProbs, body)
	}
	fams := scrape(t, ts.URL)
	assert.Equal(t, 3.0, sample(t, fams, "mlship_input_unseen_category_total", map[string]string{"feature": "b"}).GetCounter().GetValue())

	for body, want := range map[string]string{
		`{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"BYTES","data":["old","x",3]}]}`: `inputs[0] (input-0): data element 0 is "old", and feature "a" takes numbers`,
		`{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"BYTES","data":[1,{},3]}]}`:      `inputs[0] (input-0): data[1] is an object; datatype BYTES takes strings (or numbers)`,
		`{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"TEXT","data":[1,"x",3]}]}`:      `datatype "TEXT" is not one this model takes`,
	} {
		r := do(t, "POST", base+"/infer", body)
		assert.Equal(t, 400, r.code, body)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
		assert.Contains(t, e.Error, want, body)
	}
}

func TestDecodeCategorical(t *testing.T) {
	s := wire.NewSchema(features)
	s.Encoders = []*category.Encoder{nil, category.NewEncoder([]string{"x", "1"}), nil}
	var req wire.PredictRequest
	require.NoError(t, s.DecodePredict([]byte(`{"inputs":[[1,"x",2],[1,1.0,2],[1,"1.00",2],[1,true,2],[1,"new",2],{"a":1,"b":null,"c":2}]}`), &req))
	nan := math.NaN()
	assertRows := func(want []float64, got []float64) {
		require.Len(t, got, len(want))
		for i := range want {
			if math.IsNaN(want[i]) {
				assert.True(t, math.IsNaN(got[i]), "value %d", i)
			} else {
				assert.Equal(t, want[i], got[i], "value %d", i)
			}
		}
	}
	assertRows([]float64{1, 0, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 2, 2, 1, nan, 2}, req.Flat)
	assert.Equal(t, []int{0, 1, 0}, req.Unseen, "new is the only unseen category")
	// The counts start again with each request.
	require.NoError(t, s.DecodePredict([]byte(`{"input":[1,"x",2]}`), &req))
	assert.Equal(t, []int{0, 0, 0}, req.Unseen)
	// A numeric schema has no counts.
	plain := wire.NewSchema(features)
	require.NoError(t, plain.DecodePredict([]byte(`{"input":[1,2,3]}`), &req))
	assert.Nil(t, req.Unseen)

	vals, texts, err := wire.FlattenTensor([]byte(`[1, "x", true, null, "", -2.5]`), "BYTES", []int64{6})
	require.NoError(t, err)
	assertRows([]float64{1, nan, 1, nan, nan, -2.5}, vals)
	assert.Equal(t, []string{"", "x", "", "", "", ""}, texts)
	vals, texts, err = wire.FlattenTensor([]byte(`[1, 2]`), "FP32", []int64{2})
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 2}, vals)
	assert.Nil(t, texts)
	_, _, err = wire.FlattenTensor([]byte(`["a", "b"]`), "BYTES", []int64{3})
	assert.EqualError(t, err, "shape [3] does not match 2 data values")
	_, err = wire.FlattenNumbers([]byte(`["a"]`), "BYTES", []int64{1})
	assert.True(t, strings.HasPrefix(err.Error(), `datatype "BYTES" is not numeric`), "FlattenNumbers stays numeric")
}
