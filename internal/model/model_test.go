package model

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/dataset"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	in := map[string]Tensor{
		"b":      {Shape: []int{3}, Data: []float64{1, -2, math.Pi}},
		"a":      {Shape: []int{2, 2}, Data: []float64{0.5, 0, -0, 1e-300}},
		"scalar": {Shape: []int{}, Data: []float64{7}},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteSafetensors(&buf, in, map[string]string{"k": "v"}))
	b := buf.Bytes()
	hlen := binary.LittleEndian.Uint64(b)
	assert.Zero(t, (8+hlen)%8, "data must start 8-byte aligned")
	assert.Contains(t, string(b[8:8+hlen]), `"a":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]}`)

	out, meta, err := DecodeSafetensors(b)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k": "v"}, meta)
	require.Len(t, out, 3)
	for name, want := range in {
		assert.Equal(t, want.Shape, out[name].Shape, name)
		assert.Equal(t, want.Data, out[name].Data, name)
	}

	var again bytes.Buffer
	require.NoError(t, WriteSafetensors(&again, in, map[string]string{"k": "v"}))
	assert.Equal(t, b, again.Bytes(), "encoding must be deterministic")
}

func TestDecodeSafetensorsErrors(t *testing.T) {
	header := func(h string) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(b, h...)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2}, "too short"},
		{"header too long", binary.LittleEndian.AppendUint64(nil, 1000), "larger than the file"},
		{"bad json", header("{"), "header"},
		{"bad dtype", header(`{"x":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}`), "dtype I8 is not supported"},
		{"offsets out of range", header(`{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}`), "do not fit"},
		{"negative dim", header(`{"x":{"dtype":"F64","shape":[-1],"data_offsets":[0,0]}}`), "negative dimension"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeSafetensors(tc.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestDecodeSafetensorsF32(t *testing.T) {
	h := `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(b, h...)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(1.5))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(-2))
	out, _, err := DecodeSafetensors(b)
	require.NoError(t, err)
	assert.Equal(t, []float64{1.5, -2}, out["x"].Data)
}

func TestNetworkValidate(t *testing.T) {
	mlp := Network{Kind: KindMLP, Inputs: 4, Outputs: 1, Hidden: []int{3}, Activation: "relu", Output: OutputSigmoid}
	cnn := Network{Kind: KindCNN, Inputs: 64, Outputs: 10, Image: &Image{Channels: 1, Height: 8, Width: 8},
		Conv: []ConvLayer{{Filters: 4, Kernel: 3, Pool: 2}}, Hidden: []int{8}, Activation: "relu", Output: OutputSoftmax}
	tests := []struct {
		name   string
		modify func(n *Network)
		base   Network
		want   string
	}{
		{"mlp ok", func(*Network) {}, mlp, ""},
		{"cnn ok", func(*Network) {}, cnn, ""},
		{"bad kind", func(n *Network) { n.Kind = "rnn" }, mlp, `unknown kind "rnn"`},
		{"sigmoid with 2 outputs", func(n *Network) { n.Outputs = 2 }, mlp, "sigmoid output needs 1 unit"},
		{"bad activation", func(n *Network) { n.Activation = "gelu" }, mlp, `unknown activation "gelu"`},
		{"zero hidden", func(n *Network) { n.Hidden = []int{0} }, mlp, "hidden layer 1 has size 0"},
		{"image size mismatch", func(n *Network) { n.Inputs = 63 }, cnn, "has 64 values but the data has 63 features"},
		{"even kernel", func(n *Network) { n.Conv = []ConvLayer{{Filters: 2, Kernel: 2}} }, cnn, "kernel must be odd"},
		{"pool too big", func(n *Network) { n.Conv = []ConvLayer{{Filters: 2, Kernel: 3, Pool: 16}} }, cnn, "pool 16 is larger"},
		{"mlp with conv", func(n *Network) { n.Conv = cnn.Conv }, mlp, "an mlp has no image or conv layers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.base
			tc.modify(&n)
			err := n.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Equal(t, 4*3+3+3*1+1, mlp.CountParams())
	assert.Equal(t, 4*1*9+4+64*8+8+8*10+10, cnn.CountParams())
	assert.Equal(t, "cnn 1x8x8-c4k3p2-8-10 relu/softmax", cnn.String())
}

// testModel is a tiny binary MLP with known weights.
func testModel() (*Card, map[string]Tensor) {
	card := &Card{
		Format: Format, Name: "t", Task: "binary", Features: []string{"a", "b"}, Target: "y",
		Classes:    []string{"0", "1"},
		Preprocess: dataset.Preprocessor{Impute: []float64{1, 2}, Mean: []float64{1, 2}, Std: []float64{2, 1}},
		Network:    Network{Kind: KindMLP, Inputs: 2, Outputs: 1, Hidden: []int{2}, Activation: "relu", Output: OutputSigmoid},
	}
	tensors := map[string]Tensor{
		"dense0.weight": {Shape: []int{2, 2}, Data: []float64{1, -1, 0.5, 2}},
		"dense0.bias":   {Shape: []int{2}, Data: []float64{0.1, -0.2}},
		"dense1.weight": {Shape: []int{2, 1}, Data: []float64{1.5, -0.5}},
		"dense1.bias":   {Shape: []int{1}, Data: []float64{0.3}},
	}
	return card, tensors
}

func TestPredictByHand(t *testing.T) {
	card, tensors := testModel()
	m, err := New(card, tensors)
	require.NoError(t, err)
	// raw (3, NaN): standardised ((3-1)/2, (2-2)/1) = (1, 0) after imputing b=2.
	// hidden = relu(1*[1,-1] + 0*[0.5,2] + [0.1,-0.2]) = relu(1.1, -1.2) = (1.1, 0)
	// logit = 1.1*1.5 + 0 + 0.3 = 1.95
	p, err := m.Predict([][]float64{{3, math.NaN()}})
	require.NoError(t, err)
	want := 1 / (1 + math.Exp(-1.95))
	assert.InDelta(t, want, p.Probs[0][1], 1e-15)
	assert.InDelta(t, 1-want, p.Probs[0][0], 1e-15)
	assert.Equal(t, []int{1}, p.Class)

	_, err = m.Predict([][]float64{{1}})
	require.EqualError(t, err, "row 1 has 1 values, the model takes 2")
}

func TestNewChecksWeights(t *testing.T) {
	card, tensors := testModel()
	delete(tensors, "dense1.bias")
	_, err := New(card, tensors)
	require.EqualError(t, err, "weights: 3 tensors, the network has 4")

	card, tensors = testModel()
	tensors["dense1.weight"] = Tensor{Shape: []int{1, 2}, Data: []float64{1, 2}}
	_, err = New(card, tensors)
	require.EqualError(t, err, `weights: tensor "dense1.weight" has shape [1 2], the network needs [2 1]`)
}

func TestWriteDirAndLoad(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	card, tensors := testModel()
	require.NoError(t, WriteDir(dir, card, tensors, []byte("{}\n")))
	for _, f := range []string{CardFile, WeightsFile, MetricsFile} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	m, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, "t", m.Card.Name)
	assert.NotEmpty(t, m.Card.Weights.SHA256)

	// Replacing a model directory works and leaves no temporary directories.
	require.NoError(t, WriteDir(dir, card, tensors, []byte("{}\n")))
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, ents, 1)

	// A directory that is not a model is never replaced.
	other := filepath.Join(root, "data")
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "keep.csv"), []byte("x"), 0o644))
	err = WriteDir(other, card, tensors, []byte("{}\n"))
	require.ErrorContains(t, err, "not empty and holds no model.json; refusing to replace it")
	assert.FileExists(t, filepath.Join(other, "keep.csv"))

	// Corrupted weights are detected by their checksum.
	require.NoError(t, os.WriteFile(filepath.Join(dir, WeightsFile), []byte("garbage!"), 0o644))
	_, err = Load(dir)
	require.ErrorContains(t, err, "does not match the card's")
}

func TestReadCardErrors(t *testing.T) {
	root := t.TempDir()
	_, err := ReadCard(filepath.Join(root, "nope"))
	require.EqualError(t, err, `reading model "`+filepath.Join(root, "nope")+`": no such directory`)
	_, err = ReadCard(root)
	require.ErrorContains(t, err, "no model.json in it")
	require.NoError(t, os.WriteFile(filepath.Join(root, CardFile), []byte(`{"format":"other"}`), 0o644))
	_, err = ReadCard(root)
	require.ErrorContains(t, err, `format "other" is not "mlship.model/v1"`)
	require.NoError(t, os.WriteFile(filepath.Join(root, CardFile), []byte(`{`), 0o644))
	_, err = ReadCard(root)
	require.ErrorContains(t, err, "reading model card")
}

// TestActivateRelu: the relu on the bits is x where x > 0, else +0, for every
// special value (NaN and -0 included).
func TestActivateRelu(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, math.Inf(1), math.Inf(-1), math.NaN(), -math.NaN(),
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64, 1e-310, -1e-310}
	got := append([]float64(nil), vals...)
	(&Model{}).activate(got)
	for i, x := range vals {
		want := 0.0
		if x > 0 {
			want = x
		}
		assert.Equal(t, math.Float64bits(want), math.Float64bits(got[i]), "relu(%v)", x)
	}
}
