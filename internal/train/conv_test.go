package train

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convTestOp is large enough (B*f*h*w*c*k*k above convParallelWork) that conv and its
// gradients spread images over goroutines.
var convTestOp = convOp{c: 3, h: 16, w: 12, k: 3, f: 32, p: 1, gradX: true}

const convTestBatch = 16

func randDense(rng *rand.Rand, shape tensor.Shape, zeros bool) *tensor.Dense {
	v := make([]float64, shape.TotalSize())
	for i := range v {
		v[i] = rng.NormFloat64()
		if zeros && rng.IntN(2) == 0 { // gradients after a relu pool are sparse
			v[i] = 0
		}
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

// TestConvMatchesDirect compares conv with the direct sum over the kernel (the
// predictor's loop), and its gradients with the transposed direct sums.
func TestConvMatchesDirect(t *testing.T) {
	o := convTestOp
	rng := rand.New(rand.NewPCG(5, 6))
	B, hw, pad := convTestBatch, o.h*o.w, o.k/2
	x := randDense(rng, tensor.Shape{B, o.c * hw}, false)
	W := randDense(rng, tensor.Shape{o.f, o.ckk()}, false)
	b := randDense(rng, tensor.Shape{1, o.f}, false)
	dz := randDense(rng, tensor.Shape{B, o.f * hw}, true)
	xs, ws, bs, gs := x.Data().([]float64), W.Data().([]float64), b.Data().([]float64), dz.Data().([]float64)

	z := make([]float64, B*o.f*hw)
	dx := make([]float64, B*o.c*hw)
	dW := make([]float64, o.f*o.ckk())
	db := make([]float64, o.f)
	for n := 0; n < B; n++ {
		for f := 0; f < o.f; f++ {
			for y := 0; y < o.h; y++ {
				for xx := 0; xx < o.w; xx++ {
					zi := (n*o.f+f)*hw + y*o.w + xx
					z[zi] = bs[f]
					db[f] += gs[zi]
					for ch := 0; ch < o.c; ch++ {
						for ky := 0; ky < o.k; ky++ {
							for kx := 0; kx < o.k; kx++ {
								sy, sx := y+ky-pad, xx+kx-pad
								if sy < 0 || sy >= o.h || sx < 0 || sx >= o.w {
									continue
								}
								wi := ((f*o.c+ch)*o.k+ky)*o.k + kx
								xi := (n*o.c+ch)*hw + sy*o.w + sx
								z[zi] += ws[wi] * xs[xi]
								dx[xi] += ws[wi] * gs[zi]
								dW[wi] += xs[xi] * gs[zi]
							}
						}
					}
				}
			}
		}
	}
	for _, tc := range []struct {
		kind convKind
		in   []tensor.Tensor
		want []float64
	}{
		{opConv, []tensor.Tensor{x, W, b}, z},
		{opConvGradX, []tensor.Tensor{W, dz}, dx},
		{opConvGradW, []tensor.Tensor{x, dz}, dW},
		{opConvGradB, []tensor.Tensor{dz}, db},
	} {
		op := o.as(tc.kind)
		out, err := op.Do(toValues(tc.in)...)
		require.NoError(t, err, "%v", op)
		assert.InDeltaSlice(t, tc.want, out.Data().([]float64), 1e-10, "%v", op)
	}
}

// TestConvOpsSameBitsForAnyCoreCount runs every convOp with 1 to 4 goroutines'
// worth of GOMAXPROCS and wants the same bits, and the pool ops on windows with ties.
func TestConvOpsSameBitsForAnyCoreCount(t *testing.T) {
	o := convTestOp
	rng := rand.New(rand.NewPCG(7, 8))
	B, hw := convTestBatch, o.h*o.w
	x := randDense(rng, tensor.Shape{B, o.c * hw}, false)
	W := randDense(rng, tensor.Shape{o.f, o.ckk()}, false)
	b := randDense(rng, tensor.Shape{1, o.f}, false)
	dz := randDense(rng, tensor.Shape{B, o.f * hw}, true)
	pool := convOp{kind: opPool, c: o.f, h: o.h, w: o.w, p: 2, relu: true}
	dy := randDense(rng, tensor.Shape{B, o.f * pool.ohw()}, false)
	cases := []struct {
		op convOp
		in []tensor.Tensor
	}{
		{o.as(opConv), []tensor.Tensor{x, W, b}},
		{o.as(opConvGradX), []tensor.Tensor{W, dz}},
		{o.as(opConvGradW), []tensor.Tensor{x, dz}},
		{o.as(opConvGradB), []tensor.Tensor{dz}},
		{pool, []tensor.Tensor{dz}},
		{pool.as(opPoolGrad), []tensor.Tensor{dz, dy}},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range cases {
		var first []uint64
		for procs := 1; procs <= 4; procs++ {
			runtime.GOMAXPROCS(procs)
			out, err := tc.op.Do(toValues(tc.in)...)
			require.NoError(t, err, "%v", tc.op)
			var bits []uint64
			for _, v := range out.Data().([]float64) {
				bits = append(bits, math.Float64bits(v))
			}
			if first == nil {
				first = bits
				continue
			}
			assert.Equal(t, first, bits, "%v with GOMAXPROCS %d", tc.op, procs)
		}
	}
}

// TestPool checks max pooling with relu fused, a window with ties (the first
// maximum gets the gradient) and a size the pool does not divide.
func TestPool(t *testing.T) {
	// one channel of 3x5, pool 2: windows at columns 0-1 and 2-3, row 2 and column 4 dropped
	z := []float64{
		1, 5, -1, -2, 9,
		5, 2, -3, -1, 9,
		9, 9, 9, 9, 9,
	}
	in := tensor.New(tensor.WithShape(1, 15), tensor.WithBacking(z))
	g := tensor.New(tensor.WithShape(1, 2), tensor.WithBacking([]float64{10, 20}))
	for _, relu := range []bool{false, true} {
		o := convOp{kind: opPool, c: 1, h: 3, w: 5, p: 2, relu: relu}
		y, err := o.Do(in)
		require.NoError(t, err)
		dz, err := o.as(opPoolGrad).Do(in, g)
		require.NoError(t, err)
		if relu {
			assert.Equal(t, []float64{5, 0}, y.Data())
			assert.Equal(t, []float64{0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, dz.Data())
		} else {
			assert.Equal(t, []float64{5, -1}, y.Data())
			assert.Equal(t, []float64{0, 10, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, dz.Data())
		}
	}
	_, err := convOp{kind: opPool, c: 2, h: 3, w: 5, p: 2}.Do(in)
	assert.ErrorContains(t, err, "want (1, 30)")
}

func toValues(ts []tensor.Tensor) []G.Value {
	out := make([]G.Value, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// TestCol2imOrder: col2im adds each pixel's terms in the order of the plain loop
// (patches in pixel order, a patch's entries in channel, ky, kx order), so the
// same bits, for odd and even kernels and images narrower than the kernel.
func TestCol2imOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, o := range []convOp{{c: 2, h: 5, w: 4, k: 3, f: 1}, {c: 1, h: 3, w: 2, k: 5, f: 1}, {c: 3, h: 4, w: 6, k: 2, f: 1}, {c: 1, h: 1, w: 1, k: 3, f: 1}} {
		hw, ckk, pad := o.hw(), o.ckk(), o.k/2
		dcol := make([]float64, hw*ckk)
		for i := range dcol {
			dcol[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(17)-8))
		}
		want := make([]float64, o.c*hw)
		for y := 0; y < o.h; y++ {
			for x := 0; x < o.w; x++ {
				for ch := 0; ch < o.c; ch++ {
					for ky := 0; ky < o.k; ky++ {
						for kx := 0; kx < o.k; kx++ {
							sy, sx := y+ky-pad, x+kx-pad
							if sy >= 0 && sy < o.h && sx >= 0 && sx < o.w {
								want[ch*hw+sy*o.w+sx] += dcol[(y*o.w+x)*ckk+(ch*o.k+ky)*o.k+kx]
							}
						}
					}
				}
			}
		}
		got := make([]float64, o.c*hw)
		o.col2im(dcol, got)
		for i := range want {
			require.Equal(t, math.Float64bits(want[i]), math.Float64bits(got[i]), "%+v: pixel %d", o, i)
		}
	}
}

// TestIm2colLayouts: the row-major columns (a pixel's patch per row) are the
// transpose of the q-major ones, which are the image's values at each offset or
// 0 outside it.
func TestIm2colLayouts(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, o := range []convOp{{c: 2, h: 5, w: 4, k: 3}, {c: 1, h: 3, w: 2, k: 5}, {c: 3, h: 4, w: 6, k: 2}, {c: 1, h: 1, w: 1, k: 3}, {c: 2, h: 8, w: 8, k: 1}} {
		hw, ckk, pad := o.hw(), o.ckk(), o.k/2
		img := make([]float64, o.c*hw)
		for i := range img {
			img[i] = rng.NormFloat64()
		}
		qMajor, rowMajor := make([]float64, ckk*hw), make([]float64, ckk*hw)
		for i := range rowMajor {
			qMajor[i], rowMajor[i] = math.NaN(), math.NaN() // every entry must be written
		}
		o.im2col(img, qMajor, false)
		o.im2col(img, rowMajor, true)
		for ch := 0; ch < o.c; ch++ {
			for ky := 0; ky < o.k; ky++ {
				for kx := 0; kx < o.k; kx++ {
					q := (ch*o.k+ky)*o.k + kx
					for y := 0; y < o.h; y++ {
						for x := 0; x < o.w; x++ {
							want := 0.0
							if sy, sx := y+ky-pad, x+kx-pad; sy >= 0 && sy < o.h && sx >= 0 && sx < o.w {
								want = img[ch*hw+sy*o.w+sx]
							}
							p := y*o.w + x
							require.Equal(t, want, qMajor[q*hw+p], "%+v q-major q %d pixel %d", o, q, p)
							require.Equal(t, want, rowMajor[p*ckk+q], "%+v row-major q %d pixel %d", o, q, p)
						}
					}
				}
			}
		}
	}
}
