package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// special are values the kernels must treat as the Go loop does.
var special = []float64{0, math.Copysign(0, -1), 1e-310, -1e-310, 1e308, math.Inf(1), math.Inf(-1), math.NaN(), 1, -1}

func sameBits[T Float](a, b T) bool {
	if a != a && b != b { // NaN: any payload
		return true
	}
	if Is64[T]() {
		return math.Float64bits(float64(a)) == math.Float64bits(float64(b))
	}
	return math.Float32bits(float32(a)) == math.Float32bits(float32(b))
}

func randT[T Float](rng *rand.Rand, n int, scale float64) []T {
	v := make([]T, n)
	for i := range v {
		v[i] = T(rng.NormFloat64() * scale)
		if rng.IntN(5) == 0 {
			v[i] = T(special[rng.IntN(len(special))])
		}
	}
	return v
}

// checkAxpy holds every axpy kernel of T to axpyGo, bit for bit, for every
// length around the unrolling, both alignments, and special values.
func checkAxpy[T Float](t *testing.T, kernels map[string]func(T, []T, []T)) {
	rng := rand.New(rand.NewPCG(11, 12))
	for name, k := range kernels {
		for n := 0; n <= 70; n++ {
			for off := 0; off < 2; off++ {
				x, y := randT[T](rng, n+off, 1e3), randT[T](rng, n+off+1, 1)
				s := T(rng.NormFloat64() * 1e3)
				want := append([]T(nil), y...)
				axpyGo(s, x[off:], want[off:])
				got := append([]T(nil), y...)
				k(s, x[off:], got[off:])
				for i := range got {
					if !sameBits(got[i], want[i]) {
						t.Fatalf("%s: n %d offset %d: y[%d] = %v, the Go loop gives %v", name, n, off, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func TestAxpyKernels(t *testing.T) {
	k64, k32 := axpyKernels()
	k64["dispatch"], k32["dispatch"] = axpy, axpy32
	t.Run("float64", func(t *testing.T) { checkAxpy(t, k64) })
	t.Run("float32", func(t *testing.T) { checkAxpy(t, k32) })
}

// checkRow holds every row kernel of T to rowGo, bit for bit: lengths around
// each chunk size, a leading dimension wider than the row, rows of a with zeros
// (NonZeros skips them), and special values.
func checkRow[T Float](t *testing.T, kernels map[string]func([]T, NZ, []T, int, []T, bool)) {
	rng := rand.New(rand.NewPCG(13, 14))
	for name, k := range kernels {
		for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 100, 131} {
			for _, kk := range []int{1, 2, 7, 33} {
				ldb := n + rng.IntN(3)
				a, b := randT[T](rng, kk, 1), randT[T](rng, kk*ldb, 1e3)
				for l := range a {
					if rng.IntN(3) == 0 {
						a[l] = 0
					}
				}
				nz := NonZeros(a, make([]int, kk))
				for _, zero := range []bool{false, true} {
					c := randT[T](rng, n, 1)
					want := append([]T(nil), c...)
					if zero {
						clear(want) // what zero means, written out
					}
					rowGo(a, nz.idx, b, ldb, want, false)
					got := append([]T(nil), c...)
					k(a, nz, b, ldb, got, zero)
					for j := range want {
						if !sameBits(got[j], want[j]) {
							t.Fatalf("%s: n %d k %d zero %v: c[%d] = %v, rowGo gives %v", name, n, kk, zero, j, got[j], want[j])
						}
					}
				}
			}
		}
	}
}

func TestRowKernels(t *testing.T) {
	k64, k32 := rowKernels()
	k64["dispatch"], k32["dispatch"] = Row[float64], Row[float32]
	t.Run("float64", func(t *testing.T) { checkRow(t, k64) })
	t.Run("float32", func(t *testing.T) { checkRow(t, k32) })
}

// TestNonZeros: the indices of the non-zero values, ascending; both zeros are
// zero, NaN is not.
func TestNonZeros(t *testing.T) {
	v := []float64{0, 1, math.Copysign(0, -1), math.NaN(), -2, 0, math.Inf(-1), 1e-310}
	want := []int{1, 3, 4, 6, 7}
	assert.Equal(t, want, NonZeros(v, make([]int, len(v))).idx)
	v32 := make([]float32, len(v))
	for i, x := range v {
		v32[i] = float32(x)
	}
	v32[7] = math.SmallestNonzeroFloat32
	assert.Equal(t, want, NonZeros(v32, make([]int, len(v))).idx)
	assert.Zero(t, NonZeros([]float64{}, nil).Len())
}

// TestRowBounds: Row panics, writing nothing, when a or b cannot hold what nz
// and ldb ask for, or ldb is negative.
func TestRowBounds(t *testing.T) {
	a := []float64{1, 2, 3}
	nz := NonZeros(a, make([]int, 3))
	for _, tc := range []struct {
		name string
		a, b []float64
		ldb  int
	}{
		{"b one short", a, make([]float64, 2*4+3), 4},
		{"a shorter than nz", a[:2], make([]float64, 12), 4},
		{"negative ldb", a, make([]float64, 12), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := []float64{7, 7, 7, 7}
			assert.Panics(t, func() { Row(tc.a, nz, tc.b, tc.ldb, c, true) })
			assert.Equal(t, []float64{7, 7, 7, 7}, c)
		})
	}
	c := make([]float64, 4)
	Row(a, nz, make([]float64, 2*4+4), 4, c, true) // exactly long enough
}
