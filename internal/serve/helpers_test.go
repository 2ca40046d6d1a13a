package serve

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
)

var features = []string{"a", "b", "c"}

// writeModel writes a small model directory by hand: binary (sigmoid), multiclass
// (softmax, 3 classes) or regression (linear).
func writeModel(t testing.TB, task string) string {
	t.Helper()
	return writeModelWith(t, task, 1, nil)
}

// writeModelScaled is writeModel with every weight multiplied by wscale.
func writeModelScaled(t testing.TB, task string, wscale float64) string {
	t.Helper()
	return writeModelWith(t, task, wscale, nil)
}

// writeModelWith is writeModel with every weight multiplied by wscale and, when
// labels is not nil, those class labels.
func writeModelWith(t testing.TB, task string, wscale float64, labels []string) string {
	t.Helper()
	outputs, output := 1, model.OutputSigmoid
	classes := []string{"0", "1"}
	var scale *model.Scale
	switch task {
	case "multiclass":
		outputs, output, classes = 3, model.OutputSoftmax, []string{"0", "1", "2"}
	case "regression":
		output, classes, scale = model.OutputLinear, nil, &model.Scale{Mean: 100, Std: 10}
	}
	if labels != nil {
		classes = labels
	}
	card := &model.Card{
		Format: model.Format, Name: "toy-" + task, Task: dataset.Task(task), Features: features, Target: "y", Classes: classes,
		Preprocess:  dataset.Preprocessor{Impute: []float64{1, 2, 3}, Mean: []float64{1, 2, 3}, Std: []float64{1, 2, 0.5}},
		TargetScale: scale,
		Network:     model.Network{Kind: model.KindMLP, Inputs: 3, Outputs: outputs, Hidden: []int{4}, Activation: "relu", Output: output},
		Metrics:     map[string]float64{"accuracy": 0.9},
		Data:        model.DataInfo{SHA256: "abc123"},
	}
	// The binary and regression toys carry a training reference as train
	// writes it; the multiclass one has none, like cards of older mlship.
	if task != "multiclass" {
		ref := &model.Reference{Buckets: model.ZBuckets, Rows: 4, Predictions: model.PredictionShares{Rows: 4}}
		for _, f := range features {
			ref.Features = append(ref.Features, model.FeatureShares{Name: f, Shares: model.Shares(model.ZBuckets, []float64{-1, 0, 0, 1})})
		}
		if classes != nil {
			ref.Predictions.Classes = make([]float64, len(classes))
			ref.Predictions.Classes[0], ref.Predictions.Classes[1] = 0.25, 0.75
		} else {
			mean, std := 101.0, 9.0
			ref.Predictions.Mean, ref.Predictions.Std = &mean, &std
			ref.Predictions.Values = model.Shares(card.ValueBuckets(), []float64{95, 101, 110, 98})
		}
		card.Reference = ref
	}
	tensors := map[string]model.Tensor{}
	v := 0.1
	for _, p := range card.Network.Params() {
		data := make([]float64, p.Size())
		for i := range data {
			data[i] = v * wscale
			v = -v*1.1 + 0.05
		}
		tensors[p.Name] = model.Tensor{Shape: p.Shape, Data: data}
	}
	dir := filepath.Join(t.TempDir(), task)
	// metrics.json says what the card says (model.Load checks that they agree).
	require.NoError(t, model.WriteDir(dir, card, tensors, []byte(`{"accuracy": 0.9}`+"\n")))
	return dir
}

func newTestServer(t testing.TB, task string, mod func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	cfg := Config{ModelDir: writeModel(t, task)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

type response struct {
	code   int
	body   string
	header http.Header
}

func do(t testing.TB, method, url, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewBufferString(body))
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{res.StatusCode, string(b), res.Header}
}
