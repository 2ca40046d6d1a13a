package kernels

import "golang.org/x/sys/cpu"

// axpyKernels and axpy4Kernels are this GOARCH's assembly kernels that this CPU
// can run, by name, for TestAxpyKernels and TestAxpy4Kernels.
func axpyKernels() (map[string]func(float64, []float64, []float64), map[string]func(float32, []float32, []float32)) {
	k64 := map[string]func(float64, []float64, []float64){"sse2": axpySSE2}
	k32 := map[string]func(float32, []float32, []float32){}
	if cpu.X86.HasAVX {
		k64["avx"], k32["avx"] = axpyAVX, axpy32AVX
	}
	return k64, k32
}

func axpy4Kernels() (map[string]func(*[4]float64, []float64, []float64, []float64, []float64, []float64), map[string]func(*[4]float32, []float32, []float32, []float32, []float32, []float32)) {
	k64 := map[string]func(*[4]float64, []float64, []float64, []float64, []float64, []float64){"sse2": axpy4SSE2}
	k32 := map[string]func(*[4]float32, []float32, []float32, []float32, []float32, []float32){}
	if cpu.X86.HasAVX {
		k64["avx"], k32["avx"] = axpy4AVX, axpy4x32AVX
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
