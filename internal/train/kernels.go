package train

import "unsafe"

// float is the element type of a dense network's training buffers: float64 (the
// default) or float32 (--dtype float32).
type float interface{ ~float32 | ~float64 }

// The kernels of the matrix products. Each comes as a Go loop (below, used on
// every architecture but amd64, and as the reference the tests hold the
// assembly to) and, on amd64, in assembly (kernels_*_amd64.s: SSE2, and AVX
// where the CPU has it). Whatever runs, every element gets the same IEEE 754
// operations in the same order: each product rounded to T before it is added
// (T(x*y): the Go spec forbids fusing an explicitly converted product into a
// multiply-add, and the assembly uses no FMA instruction), each sum rounded. So
// a product gives the same bits on every GOARCH and CPU.

// axpyGo adds s*x[j] to y[j] for each j < min(len(x), len(y)).
func axpyGo[T float](s T, x, y []T) {
	if len(y) < len(x) {
		x = x[:len(y)]
	}
	y = y[:len(x)]
	j := 0
	for ; j+4 <= len(x); j += 4 {
		x4, y4 := x[j:j+4:j+4], y[j:j+4:j+4]
		y4[0] += T(s * x4[0])
		y4[1] += T(s * x4[1])
		y4[2] += T(s * x4[2])
		y4[3] += T(s * x4[3])
	}
	for ; j < len(x); j++ {
		y[j] += T(s * x[j])
	}
}

// axpy4Go adds s[0]*x0[j], then s[1]*x1[j], s[2]*x2[j] and s[3]*x3[j] to y[j],
// for each j < len(y) (every x at least as long): the same operations as four
// axpyGo calls, with y[j] kept in a register between them.
func axpy4Go[T float](s *[4]T, x0, x1, x2, x3, y []T) {
	n := len(y)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for j := range y {
		v := y[j]
		v += T(s[0] * x0[j])
		v += T(s[1] * x1[j])
		v += T(s[2] * x2[j])
		v += T(s[3] * x3[j])
		y[j] = v
	}
}

// is64 reports whether T is float64. It is a constant for each instantiation
// (float32 and float64 are compiled separately), so the branches on it below cost
// nothing.
func is64[T float]() bool {
	var z T
	return unsafe.Sizeof(z) == 8
}

// axpyT is axpy (float64) or axpy32 (float32): the fastest kernel this CPU has.
// The casts reinterpret a slice of T as the slice of the one type T is (is64),
// without a copy or an allocation.
func axpyT[T float](s T, x, y []T) {
	if is64[T]() {
		axpy(*(*float64)(unsafe.Pointer(&s)), *(*[]float64)(unsafe.Pointer(&x)), *(*[]float64)(unsafe.Pointer(&y)))
		return
	}
	axpy32(*(*float32)(unsafe.Pointer(&s)), *(*[]float32)(unsafe.Pointer(&x)), *(*[]float32)(unsafe.Pointer(&y)))
}

// axpy4T is axpy4 or axpy4x32, as axpyT.
func axpy4T[T float](s *[4]T, x0, x1, x2, x3, y []T) {
	if is64[T]() {
		axpy4((*[4]float64)(unsafe.Pointer(s)), *(*[]float64)(unsafe.Pointer(&x0)), *(*[]float64)(unsafe.Pointer(&x1)),
			*(*[]float64)(unsafe.Pointer(&x2)), *(*[]float64)(unsafe.Pointer(&x3)), *(*[]float64)(unsafe.Pointer(&y)))
		return
	}
	axpy4x32((*[4]float32)(unsafe.Pointer(s)), *(*[]float32)(unsafe.Pointer(&x0)), *(*[]float32)(unsafe.Pointer(&x1)),
		*(*[]float32)(unsafe.Pointer(&x2)), *(*[]float32)(unsafe.Pointer(&x3)), *(*[]float32)(unsafe.Pointer(&y)))
}

// rowGo adds, for each l in nz in order, a[l] times row l of b (b[l*ldb:], the
// first len(c) values) to c: the same operations as an axpyGo call for each.
// With zero set c is cleared first, and becomes row i of A·B when a is row i of
// A and nz lists its non-zeros. The callers check that every b[l*ldb+j] exists.
func rowGo[T float](a []T, nz []int, b []T, ldb int, c []T, zero bool) {
	if zero {
		clear(c)
	}
	n := len(c)
	for _, l := range nz {
		axpyGo(a[l], b[l*ldb:l*ldb+n], c)
	}
}

// rowT is row (float64) or row32 (float32), as axpyT.
func rowT[T float](a []T, nz []int, b []T, ldb int, c []T, zero bool) {
	if is64[T]() {
		row(*(*[]float64)(unsafe.Pointer(&a)), nz, *(*[]float64)(unsafe.Pointer(&b)), ldb, *(*[]float64)(unsafe.Pointer(&c)), zero)
		return
	}
	row32(*(*[]float32)(unsafe.Pointer(&a)), nz, *(*[]float32)(unsafe.Pointer(&b)), ldb, *(*[]float32)(unsafe.Pointer(&c)), zero)
}
