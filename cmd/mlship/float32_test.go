package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFloat32EndToEnd trains the heart example with --dtype float32 and takes
// the model through the gate (against the float64 model as the baseline),
// mlship-serve and the report, as a pipeline does.
func TestFloat32EndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join("..", "..", "examples", "heart-disease", "heart.csv")
	m32, m64 := filepath.Join(dir, "m32"), filepath.Join(dir, "m64")
	common := []string{"train", "--data", data, "--target", "target", "--binarize", ">0", "-q"}
	r := run(t, append(common, "--out", m32, "--dtype", "float32")...)
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, append(common, "--out", m64)...)
	require.Equal(t, 0, r.code, r.stderr)

	var card struct {
		Training struct{ DType string }
		Weights  struct{ DType string }
	}
	b, err := os.ReadFile(filepath.Join(m32, "model.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &card))
	assert.Equal(t, "float32", card.Training.DType)
	assert.Equal(t, "F32", card.Weights.DType)
	w32, err := os.Stat(filepath.Join(m32, "model.safetensors"))
	require.NoError(t, err)
	w64, err := os.Stat(filepath.Join(m64, "model.safetensors"))
	require.NoError(t, err)
	assert.Less(t, w32.Size(), w64.Size()*6/10, "F32 weights take half the bytes")

	// the gate: the float32 model against the float64 one in production
	r = run(t, "evaluate-gate", "--model", m32, "--baseline", m64, "--min", "accuracy=0.75", "--max-drop", "accuracy=0.02", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var gate struct {
		Passed  bool
		Metrics map[string]float64
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gate))
	assert.True(t, gate.Passed)

	// mlship-serve answers from the F32 weights
	_, post := serveModel(t, m32)
	code, body := post("/predict", `{"inputs":[[63,1,1,145,233,1,2,150,0,2.3,3,0,6],[67,1,4,160,286,0,2,108,1,1.5,2,3,3]]}`)
	require.Equal(t, 200, code, body)
	var pred struct{ Probabilities []map[string]float64 }
	require.NoError(t, json.Unmarshal([]byte(body), &pred))
	require.Len(t, pred.Probabilities, 2, body)
	for _, p := range pred.Probabilities {
		require.Len(t, p, 2, body)
		sum := 0.0
		for _, v := range p {
			assert.True(t, v > 0 && v < 1, "probability %v", v)
			sum += v
		}
		assert.InDelta(t, 1, sum, 1e-12)
	}

	r = run(t, "report", "--model", m32)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "seed 42, float32 |")
}
