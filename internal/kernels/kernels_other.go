//go:build !amd64

package kernels

// Elsewhere than amd64 the kernels are kernels.go's Go loops.

func axpy(s float64, x, y []float64)   { axpyGo(s, x, y) }
func axpy32(s float32, x, y []float32) { axpyGo(s, x, y) }

func row(a []float64, nz []int, b []float64, ldb int, c []float64, zero bool) {
	rowGo(a, nz, b, ldb, c, zero)
}

func row32(a []float32, nz []int, b []float32, ldb int, c []float32, zero bool) {
	rowGo(a, nz, b, ldb, c, zero)
}
