package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/mlship/mlship/internal/fpmath"
)

// portableGraphOps are the gorgonia ops a training graph may hold: each computes
// the same bits on every GOARCH. Products go through portableBLAS; the elementwise
// ops do one IEEE 754 operation per element (no multiply-add to fuse); the
// others copy, compare or add in a fixed order; the nonlinear functions are
// mlship's portableOp; and the convolution blocks are mlship's convOp (its
// products are portableBLAS's kernel, its sums over images and pixels in a fixed
// order whatever the goroutines, its pooling compares). Any other gorgonia op
// (Exp, Log, Tanh, Sigmoid, Softplus, SoftMax, Pow, ...) calls the math package
// or a fusable kernel.
var portableGraphOps = map[string][]string{
	"train.convOp": nil, "*gorgonia.repeatOp": nil, "gorgonia.constantScalar": nil,
	"gorgonia.linAlgBinOp": nil, "gorgonia.reshapeOp": nil, "gorgonia.sizeOp": nil,
	"gorgonia.sumOp": nil, "gorgonia.transposeOp": nil, "train.portableOp": nil,
	"gorgonia.elemBinOp":   {"+ ", "- ", ">= ", "⊙ "},
	"gorgonia.elemUnaryOp": {"neg", "square"},
}

// TestGraphOpsArePortable builds every kind of network (both activations, every
// output) and checks each node's op against portableGraphOps.
func TestGraphOpsArePortable(t *testing.T) {
	for _, tc := range testNets {
		for _, act := range []string{"relu", "tanh"} {
			spec := tc.net
			spec.Activation = act
			t.Run(tc.name+"/"+act, func(t *testing.T) {
				n, err := newNet(fitConfig{Net: spec, BatchSize: 3}, initParams(spec, 1), false)
				require.NoError(t, err)
				defer n.vm.Close()
				for _, node := range n.g.AllNodes() {
					op := node.Op()
					if op == nil { // an input
						continue
					}
					typ := fmt.Sprintf("%T", op)
					prefixes, ok := portableGraphOps[typ]
					if ok && len(prefixes) > 0 {
						ok = false
						for _, p := range prefixes {
							ok = ok || strings.HasPrefix(op.String(), p)
						}
					}
					assert.True(t, ok, "node %s computes %s (%s), which is not known to give the same bits on every architecture; see portableGraphOps", node.Name(), op, typ)
				}
			})
		}
	}
}

func dense(shape []int, v []float64) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

// TestPortableOps checks the ops' values against their definitions, the same
// results through a preallocated output (also when it is the input itself) and a
// fresh one, and their errors.
func TestPortableOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float64, 12)
	g := make([]float64, 12)
	for i := range x {
		x[i], g[i] = 3*rng.NormFloat64(), rng.NormFloat64()
	}
	x[0], x[1] = 800, -800 // softplus must neither overflow nor lose its small term
	shape := []int{4, 3}
	want := map[opKind]func(i int) float64{
		opTanh:         func(i int) float64 { return fpmath.Tanh(x[i]) },
		opTanhGrad:     func(i int) float64 { return g[i] * (1 - x[i]*x[i]) },
		opSoftplus:     func(i int) float64 { return math.Log1p(math.Exp(-math.Abs(x[i]))) + math.Max(x[i], 0) },
		opSoftplusGrad: func(i int) float64 { return g[i] / (1 + math.Exp(-x[i])) },
		opLogSoftmax: func(i int) float64 {
			r := i / 3 * 3
			mx := math.Max(x[r], math.Max(x[r+1], x[r+2]))
			return x[i] - mx - math.Log(math.Exp(x[r]-mx)+math.Exp(x[r+1]-mx)+math.Exp(x[r+2]-mx))
		},
		opLogSoftmaxGrad: func(i int) float64 { r := i / 3 * 3; return g[i] - math.Exp(x[i])*(g[r]+g[r+1]+g[r+2]) },
	}
	for kind, f := range want {
		op := portableOp{kind}
		t.Run(op.String(), func(t *testing.T) {
			in := []G.Value{dense(shape, append([]float64(nil), x...))}
			if op.Arity() == 2 {
				in = append(in, dense(shape, append([]float64(nil), g...)))
			}
			fresh, err := op.Do(in...)
			require.NoError(t, err)
			got := fresh.Data().([]float64)
			for i := range x {
				assert.InDelta(t, f(i), got[i], 1e-12*math.Max(1, math.Abs(f(i))), "%s at %d (x %v)", op, i, x[i])
			}
			// into the input itself, as the tape machine may hand it over
			aliased, err := op.UsePreallocDo(in[0], in...)
			require.NoError(t, err)
			assert.Same(t, in[0], aliased)
			assert.Equal(t, got, aliased.Data().([]float64))
			// a register of another shape is not written
			other := dense([]int{2, 2}, make([]float64, 4))
			in = []G.Value{dense(shape, append([]float64(nil), x...)), dense(shape, g)}
			v, err := op.UsePreallocDo(other, in[:op.Arity()]...)
			require.NoError(t, err)
			assert.Equal(t, tensor.Shape(shape), v.Shape())
			assert.Equal(t, got, v.Data().([]float64))
			assert.Equal(t, make([]float64, 4), other.Data())
		})
	}
	_, err := portableOp{opTanhGrad}.Do(dense(shape, x), dense([]int{3}, g[:3]))
	assert.ErrorContains(t, err, "inputs of")
	_, err = portableOp{opTanh}.Do(dense(shape, x), dense(shape, g))
	assert.ErrorContains(t, err, "2 inputs, want 1")
	_, err = portableOp{opTanh}.Do(tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2})))
	assert.ErrorContains(t, err, "want float64")
}
