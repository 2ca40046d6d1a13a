package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/model"
)

var testNets = []struct {
	name string
	net  model.Network
}{
	{"binary mlp", model.Network{Kind: model.KindMLP, Inputs: 5, Outputs: 1, Hidden: []int{7, 4}, Activation: "relu", Output: model.OutputSigmoid}},
	{"multiclass mlp tanh", model.Network{Kind: model.KindMLP, Inputs: 4, Outputs: 3, Hidden: []int{6}, Activation: "tanh", Output: model.OutputSoftmax}},
	{"regression mlp", model.Network{Kind: model.KindMLP, Inputs: 3, Outputs: 1, Hidden: []int{5}, Activation: "relu", Output: model.OutputLinear}},
	{"cnn", model.Network{Kind: model.KindCNN, Inputs: 2 * 6 * 6, Outputs: 4, Image: &model.Image{Channels: 2, Height: 6, Width: 6},
		Conv: []model.ConvLayer{{Filters: 3, Kernel: 3, Pool: 2}, {Filters: 2, Kernel: 1, Pool: 1}}, Hidden: []int{5}, Activation: "relu", Output: model.OutputSoftmax}},
	// pools that do not divide the image (7x5 -> 3x2 -> 1x1), tanh before the pool
	{"cnn tanh", model.Network{Kind: model.KindCNN, Inputs: 2 * 7 * 5, Outputs: 3, Image: &model.Image{Channels: 2, Height: 7, Width: 5},
		Conv: []model.ConvLayer{{Filters: 3, Kernel: 3, Pool: 2}, {Filters: 2, Kernel: 3, Pool: 2}}, Hidden: []int{4}, Activation: "tanh", Output: model.OutputSoftmax}},
}

// fillBatch puts random rows and targets into the net's input buffers, with the last
// row as padding when pad is set, and returns the rows and targets used.
func fillBatch(n *net, rng *rand.Rand, pad bool) ([][]float64, []float64) {
	B, in, outs := n.cfg.BatchSize, n.cfg.Net.Inputs, n.cfg.Net.Outputs
	cnt := B
	if pad {
		cnt = B - 1
	}
	clear(n.tBuf)
	var xs [][]float64
	var ys []float64
	for r := 0; r < B; r++ {
		row := n.xBuf[r*in : (r+1)*in]
		for i := range row {
			row[i] = rng.NormFloat64()
		}
		if r >= cnt {
			n.wBuf[r] = 0
			continue
		}
		n.wBuf[r] = 1 / float64(cnt)
		var y float64
		switch n.cfg.Net.Output {
		case model.OutputSigmoid:
			y = float64(rng.IntN(2))
			n.tBuf[r] = y / float64(cnt)
		case model.OutputSoftmax:
			y = float64(rng.IntN(outs))
			n.tBuf[r*outs+int(y)] = 1 / float64(cnt)
		case model.OutputLinear:
			y = rng.NormFloat64()
			n.tBuf[r] = y
		}
		xs = append(xs, append([]float64(nil), row...))
		ys = append(ys, y)
	}
	return xs, ys
}

func pureModel(t *testing.T, spec model.Network, tensors map[string]model.Tensor) *model.Model {
	m, err := model.New(&model.Card{Network: spec, TargetScale: &model.Scale{Std: 1}}, tensors)
	require.NoError(t, err)
	return m
}

// TestPureGoForwardMatchesGorgonia runs the gorgonia graph and the pure-Go predictor
// on the same weights and rows and requires the outputs to agree to 1e-9.
func TestPureGoForwardMatchesGorgonia(t *testing.T) {
	for _, tc := range testNets {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.net.Validate())
			cfg := fitConfig{Net: tc.net, BatchSize: 4, LearningRate: 0.01, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}
			init := initParams(tc.net, 7)
			rng := rand.New(rand.NewPCG(1, 2))
			for _, v := range init { // non-zero biases so they are checked too
				for i := range v {
					v[i] += 0.1 * rng.NormFloat64()
				}
			}
			n, err := newNet(cfg, init, true)
			require.NoError(t, err)
			defer n.vm.Close()
			fillBatch(n, rng, false)
			require.NoError(t, n.vm.RunAll())
			logits := append([]float64(nil), n.logits.Data().([]float64)...)
			n.vm.Reset()
			m := pureModel(t, tc.net, n.export())
			s := m.NewScratch()
			outs := tc.net.Outputs
			for r := 0; r < cfg.BatchSize; r++ {
				got := m.Forward(n.xBuf[r*tc.net.Inputs:(r+1)*tc.net.Inputs], s)
				want := append([]float64(nil), logits[r*outs:(r+1)*outs]...)
				switch tc.net.Output {
				case model.OutputSigmoid:
					want[0] = 1 / (1 + math.Exp(-want[0]))
				case model.OutputSoftmax:
					mx, sum := math.Inf(-1), 0.0
					for _, v := range want {
						mx = math.Max(mx, v)
					}
					for i := range want {
						want[i] = math.Exp(want[i] - mx)
						sum += want[i]
					}
					for i := range want {
						want[i] /= sum
					}
				}
				assert.InDeltaSlice(t, want, got, 1e-9, "row %d", r)
			}
		})
	}
}

// TestGradientsMatchFiniteDifferences checks gorgonia's gradients of the masked loss
// against central differences of the same loss computed with the pure-Go forward pass.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range testNets {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fitConfig{Net: tc.net, BatchSize: 5}
			n, err := newNet(cfg, initParams(tc.net, 3), false)
			require.NoError(t, err)
			defer n.vm.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			xs, ys := fillBatch(n, rng, true) // last row is padding: must not count
			require.NoError(t, n.vm.RunAll())
			gl := n.loss.Value().Data().(float64)
			var grads [][]float64
			for _, p := range n.params {
				g, err := p.Grad()
				require.NoError(t, err)
				grads = append(grads, append([]float64(nil), g.Data().([]float64)...))
			}
			n.vm.Reset()
			lossAt := func() float64 {
				m := pureModel(t, tc.net, n.export())
				l, _ := valLoss(m, tc.net.Output, xs, ys)
				return l
			}
			assert.InDelta(t, lossAt(), gl, 1e-9, "loss")
			const h = 1e-6
			for i, p := range n.params {
				w := p.Value().Data().([]float64)
				for j := range w {
					orig := w[j]
					w[j] = orig + h
					up := lossAt()
					w[j] = orig - h
					down := lossAt()
					w[j] = orig
					num := (up - down) / (2 * h)
					assert.InDelta(t, num, grads[i][j], 1e-5, "%s[%d]", p.Name(), j)
				}
			}
		})
	}
}

// TestStepDoesNotAccumulateGradients runs two optimiser steps with a zero learning
// rate on one batch: Adam's first moment must be 0.1g then 0.19g, which holds only
// if each run starts from zeroed gradients (gorgonia adds into bound gradients).
func TestStepDoesNotAccumulateGradients(t *testing.T) {
	tc := testNets[0]
	cfg := fitConfig{Net: tc.net, BatchSize: 4, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}
	ref, err := newNet(cfg, initParams(tc.net, 3), false)
	require.NoError(t, err)
	fillBatch(ref, rand.New(rand.NewPCG(1, 1)), false)
	require.NoError(t, ref.vm.RunAll())
	gv, err := ref.params[0].Grad()
	require.NoError(t, err)
	g := append([]float64(nil), gv.Data().([]float64)...)

	n, err := newNet(cfg, initParams(tc.net, 3), false)
	require.NoError(t, err)
	fillBatch(n, rand.New(rand.NewPCG(1, 1)), false)
	for step, factor := range []float64{0.1, 0.19} {
		_, err := n.runStep()
		require.NoError(t, err)
		for j := range g {
			require.InDelta(t, factor*g[j], n.adamM[0][j], 1e-12, "step %d, weight %d", step+1, j)
		}
	}
}

// TestRewindMatchesReset trains the same batches with the register-keeping rewind
// and with gorgonia's full Reset: the weights must be bit-identical.
func TestRewindMatchesReset(t *testing.T) {
	for _, tc := range testNets {
		t.Run(tc.name, func(t *testing.T) {
			run := func(noRewind bool) map[string]model.Tensor {
				cfg := fitConfig{Net: tc.net, BatchSize: 4, LearningRate: 0.01, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, NoRewind: noRewind}
				n, err := newNet(cfg, initParams(tc.net, 5), false)
				require.NoError(t, err)
				defer n.vm.Close()
				if !noRewind {
					require.NotNil(t, n.rw, "the tape machine's fields were not found")
				}
				rng := rand.New(rand.NewPCG(9, 9))
				for step := 0; step < 25; step++ {
					fillBatch(n, rng, step%3 == 2)
					_, err := n.runStep()
					require.NoError(t, err)
				}
				return n.export()
			}
			want, got := run(true), run(false)
			for name, w := range want {
				require.Equal(t, w.Data, got[name].Data, name)
			}
		})
	}
}
