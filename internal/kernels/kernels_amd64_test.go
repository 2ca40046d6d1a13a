package kernels

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// axpyKernels and rowKernels are this GOARCH's assembly kernels that this CPU
// can run, by name, for TestAxpyKernels and TestRowKernels.
func axpyKernels() (map[string]func(float64, []float64, []float64), map[string]func(float32, []float32, []float32)) {
	k64 := map[string]func(float64, []float64, []float64){"sse2": axpySSE2}
	k32 := map[string]func(float32, []float32, []float32){}
	if cpu.X86.HasAVX {
		k64["avx"], k32["avx"] = axpyAVX, axpy32AVX
	}
	return k64, k32
}

func rowKernels() (map[string]func([]float64, NZ, []float64, int, []float64, bool), map[string]func([]float32, NZ, []float32, int, []float32, bool)) {
	k64 := map[string]func([]float64, NZ, []float64, int, []float64, bool){
		"axpy4": func(a []float64, nz NZ, b []float64, ldb int, c []float64, zero bool) {
			rowAxpy4(a, nz.idx, b, ldb, c, zero)
		},
	}
	k32 := map[string]func([]float32, NZ, []float32, int, []float32, bool){}
	if cpu.X86.HasAVX {
		k64["avx"] = func(a []float64, nz NZ, b []float64, ldb int, c []float64, zero bool) {
			rowAVX(a, nz.idx, b, ldb, c, zero)
		}
		k32["avx"] = func(a []float32, nz NZ, b []float32, ldb int, c []float32, zero bool) {
			row32AVX(a, nz.idx, b, ldb, c, zero)
		}
	}
	return k64, k32
}

// TestAxpy4SSE2 holds axpy4SSE2 (rowAxpy4's four-term kernel) to four axpyGo
// calls, bit for bit, for lengths around its unrolling.
func TestAxpy4SSE2(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for n := 0; n <= 40; n++ {
		var s [4]float64
		var xs [4][]float64
		for i := range xs {
			s[i] = rng.NormFloat64()
			xs[i] = randT[float64](rng, n+1, 1e3) // longer than y: only len(y) is used
		}
		y := randT[float64](rng, n, 1)
		want := append([]float64(nil), y...)
		for i := range xs {
			axpyGo(s[i], xs[i][:n], want)
		}
		got := append([]float64(nil), y...)
		axpy4SSE2(&s, xs[0], xs[1], xs[2], xs[3], got)
		for j := range want {
			if !sameBits(got[j], want[j]) {
				t.Fatalf("n %d: y[%d] = %v, four axpy give %v", n, j, got[j], want[j])
			}
		}
	}
}
