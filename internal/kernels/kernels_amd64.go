package kernels

import "golang.org/x/sys/cpu"

// useAVX chooses the AVX kernels (four float64 or eight float32 per instruction)
// over SSE2 (two float64; float32 then runs the Go loop). Both give the same bits.
var useAVX = cpu.X86.HasAVX

func axpy(s float64, x, y []float64) {
	if useAVX {
		axpyAVX(s, x, y)
		return
	}
	axpySSE2(s, x, y)
}

func axpy32(s float32, x, y []float32) {
	if useAVX {
		axpy32AVX(s, x, y)
		return
	}
	axpyGo(s, x, y)
}

// The assembly kernels (kernels_sse2_amd64.s, kernels_avx_amd64.s).

//go:noescape
func axpySSE2(s float64, x, y []float64)

//go:noescape
func axpy4SSE2(s *[4]float64, x0, x1, x2, x3, y []float64)

//go:noescape
func axpyAVX(s float64, x, y []float64)

//go:noescape
func axpy32AVX(s float32, x, y []float32)

// row and row32 are rowGo for float64 and float32; on AVX the whole row is summed
// in registers, a chunk at a time (kernels_row_amd64.s); else through axpy4 and
// axpy, four of nz at a time (the same operations: axpy4 is four axpy).
func row(a []float64, nz []int, b []float64, ldb int, c []float64, zero bool) {
	if useAVX {
		rowAVX(a, nz, b, ldb, c, zero)
		return
	}
	rowAxpy4(a, nz, b, ldb, c, zero)
}

func row32(a []float32, nz []int, b []float32, ldb int, c []float32, zero bool) {
	if useAVX {
		row32AVX(a, nz, b, ldb, c, zero)
		return
	}
	rowGo(a, nz, b, ldb, c, zero)
}

//go:noescape
func rowAVX(a []float64, nz []int, b []float64, ldb int, c []float64, zero bool)

//go:noescape
func row32AVX(a []float32, nz []int, b []float32, ldb int, c []float32, zero bool)

// rowAxpy4 is rowGo through the SSE2 kernels, four terms at a time where it can
// (axpy4SSE2: the same operations as four axpySSE2 calls, with the row kept in
// registers between them): the path of amd64 CPUs without AVX.
func rowAxpy4(a []float64, nz []int, b []float64, ldb int, c []float64, zero bool) {
	if zero {
		clear(c)
	}
	n := len(c)
	var s [4]float64
	j := 0
	for ; j+4 <= len(nz); j += 4 {
		l0, l1, l2, l3 := nz[j], nz[j+1], nz[j+2], nz[j+3]
		s = [4]float64{a[l0], a[l1], a[l2], a[l3]}
		axpy4SSE2(&s, b[l0*ldb:l0*ldb+n], b[l1*ldb:l1*ldb+n], b[l2*ldb:l2*ldb+n], b[l3*ldb:l3*ldb+n], c)
	}
	for ; j < len(nz); j++ {
		l := nz[j]
		axpySSE2(a[l], b[l*ldb:l*ldb+n], c)
	}
}
