package train

// axpy4 adds s[0]*x0[j], then s[1]*x1[j], s[2]*x2[j] and s[3]*x3[j] to y[j], for
// each j < len(y) (every x at least as long), each product rounded and each sum
// rounded in that order: the same operations, in the same order, as four axpy
// calls, with y[j] kept in a register between them. axpy4_amd64.s, SSE2 (MULPD,
// then ADDPD), two elements at a time; axpy4_other.go is the Go loop;
// TestAxpy4Kernel checks the bits. No FMA instruction: SSE2 has none.
//
//go:noescape
func axpy4(s *[4]float64, x0, x1, x2, x3, y []float64)
