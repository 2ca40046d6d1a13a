package train

// axpy adds s*x[j] to y[j] for each j < min(len(x), len(y)), rounding the product
// before the addition: axpy_amd64.s, SSE2 (MULPD, then ADDPD), two elements at a
// time, each exactly as axpy_other.go's loop computes it (TestAxpyKernels checks
// the bits). No FMA instruction: SSE2 has none.
//
//go:noescape
func axpy(s float64, x, y []float64)
