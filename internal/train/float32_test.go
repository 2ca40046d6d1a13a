package train

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/model"
)

// fillDense puts random rows and targets into a dense engine's batch buffers,
// as fit does (weighted targets for classification, row weights 1/B).
func fillDense(x, t, w []float64, spec model.Network, rng *rand.Rand) {
	B := len(w)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	clear(t)
	for r := range B {
		w[r] = 1 / float64(B)
		switch spec.Output {
		case model.OutputSigmoid:
			t[r] = float64(rng.IntN(2)) / float64(B)
		case model.OutputSoftmax:
			t[r*spec.Outputs+rng.IntN(spec.Outputs)] = 1 / float64(B)
		case model.OutputLinear:
			t[r] = rng.NormFloat64()
		}
	}
}

// TestFloat32FollowsFloat64 trains each dense test network in float32 and in
// float64 side by side from the same weights and batches: the float32 engine
// computes the same maths, to float32's precision (losses to 1e-5 relative,
// weights to 1e-5 after 20 Adam steps).
func TestFloat32FollowsFloat64(t *testing.T) {
	for _, tc := range testNets {
		if tc.net.Kind == model.KindCNN {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg := fitConfig{Net: tc.net, BatchSize: 8, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}
			init := initParams(tc.net, 7)
			n64, err := newDenseNetT[float64](cfg, init)
			require.NoError(t, err)
			n32, err := newDenseNetT[float32](cfg, init)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(3, 4))
			for step := 0; step < 20; step++ {
				fillDense(n64.xBuf, n64.tBuf, n64.wBuf, tc.net, rng)
				copy(n32.xBuf, n64.xBuf)
				copy(n32.tBuf, n64.tBuf)
				copy(n32.wBuf, n64.wBuf)
				l64, err := n64.runStep()
				require.NoError(t, err)
				l32, err := n32.runStep()
				require.NoError(t, err)
				require.InEpsilon(t, l64, l32, 1e-5, "loss at step %d", step)
			}
			want, got := n64.export(), n32.export()
			for name, w := range want {
				for i, v := range w.Data {
					g := got[name].Data[i]
					require.Equal(t, float64(float32(g)), g, "%s[%d] is a float32", name, i)
					require.InDelta(t, v, g, 1e-5, "%s[%d]", name, i)
				}
			}
		})
	}
}

// Float32Tolerance is what TestFloat32PredictorMatchesTrainer holds the
// predictor to on a float32 model: its outputs (probabilities, or the scaled
// regression value), computed in float64 from the F32 weights, agree with the
// trainer's float32 forward pass to this, absolute (README, "Training in
// float32").
const float32Tolerance = 1e-5

// TestFloat32PredictorMatchesTrainer: the predictor (model.Forward, as served)
// on a float32-trained model's exported weights gives the trainer's float32
// outputs to float32Tolerance.
func TestFloat32PredictorMatchesTrainer(t *testing.T) {
	nets := append(testNets[:len(testNets):len(testNets)], struct {
		name string
		net  model.Network
	}{"benchmark mlp", model.Network{Kind: model.KindMLP, Inputs: 20, Outputs: 1, Hidden: []int{64, 32}, Activation: "relu", Output: model.OutputSigmoid}})
	for _, tc := range nets {
		if tc.net.Kind == model.KindCNN {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg := fitConfig{Net: tc.net, BatchSize: 16, LearningRate: 1e-2, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, DType: DTypeFloat32}
			n, err := newDenseNetT[float32](cfg, initParams(tc.net, 9))
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(5, 6))
			for range 30 {
				fillDense(n.xBuf, n.tBuf, n.wBuf, tc.net, rng)
				_, err := n.runStep()
				require.NoError(t, err)
			}
			fillDense(n.xBuf, n.tBuf, n.wBuf, tc.net, rng)
			n.load()
			n.forward()
			m := pureModel(t, tc.net, n.export())
			s := m.NewScratch()
			logits := n.z[len(n.z)-1]
			outs := tc.net.Outputs
			worst := 0.0
			for r := range n.B {
				want := m.Forward(n.xBuf[r*tc.net.Inputs:(r+1)*tc.net.Inputs], s)
				z := make([]float64, outs)
				for j := range z {
					z[j] = float64(logits[r*outs+j])
				}
				var got []float64
				switch tc.net.Output {
				case model.OutputSigmoid:
					got = []float64{sigmoid(z[0])}
				case model.OutputSoftmax:
					ls := make([]float64, outs)
					logSoftmaxRow(z, ls)
					for _, v := range ls {
						got = append(got, math.Exp(v))
					}
				case model.OutputLinear:
					got = z
				}
				for j := range got {
					worst = max(worst, math.Abs(got[j]-want[j]))
				}
			}
			t.Logf("largest difference: %.3g", worst)
			assert.Less(t, worst, float32Tolerance)
		})
	}
}

// TestFloat32SameBitsForAnyCoreCount: float32 training gives the same bits with
// GOMAXPROCS 1 and 2 (products large enough to be spread over goroutines).
func TestFloat32SameBitsForAnyCoreCount(t *testing.T) {
	spec := model.Network{Kind: model.KindMLP, Inputs: 64, Outputs: 1, Hidden: []int{64, 32}, Activation: "relu", Output: model.OutputSigmoid}
	run := func(procs int) map[string]model.Tensor {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		cfg := fitConfig{Net: spec, BatchSize: 512, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, DType: DTypeFloat32}
		m, err := newDenseNetT[float32](cfg, initParams(spec, 1))
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(1, 2))
		for step := 0; step < 3; step++ {
			fillDense(m.xBuf, m.tBuf, m.wBuf, spec, rng)
			loss, err := m.runStep()
			require.NoError(t, err)
			require.False(t, math.IsNaN(loss))
		}
		return m.export()
	}
	require.GreaterOrEqual(t, 512*64*64, parallelWork, "the first layer's product is spread over goroutines")
	one, two := run(1), run(2)
	for name, w := range one {
		for i, v := range w.Data {
			require.Equal(t, math.Float64bits(v), math.Float64bits(two[name].Data[i]), "%s[%d]", name, i)
		}
	}
}
