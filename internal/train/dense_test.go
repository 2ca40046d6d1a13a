package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fpmath"
	"github.com/mlship/mlship/internal/model"
)

// TestDenseNetMatchesGraph runs denseNet and the gorgonia graph (newNet) side by side on
// the same initial weights and batches (with a padding row) for a few Adam steps:
// the losses and the weights after each step must agree to 1e-9 (they differ only
// in the order of a few sums).
func TestDenseNetMatchesGraph(t *testing.T) {
	for _, tc := range testNets {
		if tc.net.Kind == model.KindCNN {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg := fitConfig{Net: tc.net, BatchSize: 6, LearningRate: 1e-2, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}
			init := initParams(tc.net, 7)
			g, err := newNet(cfg, init, false)
			require.NoError(t, err)
			defer g.close()
			m, err := newDenseNet(cfg, init)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(3, 4))
			for step := 0; step < 5; step++ {
				fillBatch(g, rng, step%2 == 1)
				copy(m.xBuf, g.xBuf)
				copy(m.tBuf, g.tBuf)
				copy(m.wBuf, g.wBuf)
				lg, err := g.runStep()
				require.NoError(t, err)
				lm, err := m.runStep()
				require.NoError(t, err)
				require.InDelta(t, lg, lm, 1e-9, "loss at step %d", step)
				want, got := g.export(), m.export()
				for name, w := range want {
					require.Equal(t, w.Shape, got[name].Shape, name)
					for i, v := range w.Data {
						require.InDelta(t, v, got[name].Data[i], 1e-9, "%s[%d] after step %d", name, i, step)
					}
				}
			}
		})
	}
}

// TestDenseNetSameBitsForAnyCoreCount trains a batch large enough for
// portableBLAS to spread rows over goroutines with GOMAXPROCS 1 and 2: the
// weights must be the same bits.
func TestDenseNetSameBitsForAnyCoreCount(t *testing.T) {
	spec := model.Network{Kind: model.KindMLP, Inputs: 20, Outputs: 1, Hidden: []int{64, 32}, Activation: "relu", Output: model.OutputSigmoid}
	run := func(procs int) map[string]model.Tensor {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		cfg := fitConfig{Net: spec, BatchSize: 512, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}
		m, err := newDenseNet(cfg, initParams(spec, 1))
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(1, 2))
		for step := 0; step < 3; step++ {
			for i := range m.xBuf {
				m.xBuf[i] = rng.NormFloat64()
			}
			for r := range m.wBuf {
				m.wBuf[r] = 1.0 / 512
				m.tBuf[r] = float64(rng.IntN(2)) / 512
			}
			loss, err := m.runStep()
			require.NoError(t, err)
			require.False(t, math.IsNaN(loss))
		}
		return m.export()
	}
	one, two := run(1), run(2)
	for name, w := range one {
		for i, v := range w.Data {
			require.Equal(t, math.Float64bits(v), math.Float64bits(two[name].Data[i]), "%s[%d]", name, i)
		}
	}
}

// TestValLossSameBitsForAnyCoreCount: the validation loss and metric, computed
// over goroutines, are the same bits with GOMAXPROCS 1 and 2, and the same as
// the row-by-row sum.
func TestValLossSameBitsForAnyCoreCount(t *testing.T) {
	spec := model.Network{Kind: model.KindMLP, Inputs: 4, Outputs: 3, Hidden: []int{8}, Activation: "relu", Output: model.OutputSoftmax}
	init := initParams(spec, 2)
	tensors := map[string]model.Tensor{}
	for i, p := range spec.Params() {
		tensors[p.Name] = model.Tensor{Shape: p.Shape, Data: init[i]}
	}
	m := pureModel(t, spec, tensors)
	rng := rand.New(rand.NewPCG(5, 6))
	var xs [][]float64
	var ys []float64
	for range 3*valRowsPerWorker + 17 {
		xs = append(xs, []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()})
		ys = append(ys, float64(rng.IntN(3)))
	}
	var want float64
	s := m.NewScratch()
	for i, x := range xs {
		want -= fpmath.Log(max(m.Forward(x, s)[int(ys[i])], 1e-15))
	}
	want /= float64(len(xs))
	for _, procs := range []int{1, 2} {
		prev := runtime.GOMAXPROCS(procs)
		l, acc := valLoss(m, spec.Output, xs, ys)
		runtime.GOMAXPROCS(prev)
		require.Equal(t, math.Float64bits(want), math.Float64bits(l), "GOMAXPROCS %d", procs)
		require.Greater(t, acc, 0.0)
	}
}

// BenchmarkDenseStep measures one optimiser step of denseNet on the 100k-row
// benchmark's network (20-64-32-1) at batch 32 and 256, in float64 and float32.
func BenchmarkDenseStep(b *testing.B) {
	for _, bs := range []int{32, 256} {
		b.Run(fmt.Sprintf("batch%d/float64", bs), func(b *testing.B) { benchDenseStep[float64](b, bs) })
		b.Run(fmt.Sprintf("batch%d/float32", bs), func(b *testing.B) { benchDenseStep[float32](b, bs) })
	}
}

func benchDenseStep[T float](b *testing.B, bs int) {
	spec := model.Network{Kind: model.KindMLP, Inputs: 20, Outputs: 1, Hidden: []int{64, 32}, Activation: "relu", Output: model.OutputSigmoid}
	n, err := newDenseNetT[T](fitConfig{Net: spec, BatchSize: bs, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}, initParams(spec, 1))
	if err != nil {
		b.Fatal(err)
	}
	fillDense(n.xBuf, n.tBuf, n.wBuf, spec, rand.New(rand.NewPCG(1, 1)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.runStep(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bs)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
