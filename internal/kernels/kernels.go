// Package kernels holds the inner loops of mlship's matrix products, shared by
// training (internal/train) and prediction (internal/model, so mlship-serve):
// Axpy and Row, for float64 and float32. Each comes as a Go loop (below, used on
// every architecture but amd64, and as the reference the tests hold the
// assembly to) and, on amd64, in assembly (kernels_*_amd64.s: SSE2, and AVX
// where the CPU has it). Whatever runs, every element gets the same IEEE 754
// operations in the same order: each product rounded to T before it is added
// (T(x*y): the Go spec forbids fusing an explicitly converted product into a
// multiply-add, and the assembly uses no FMA instruction), each sum rounded. So
// a product gives the same bits on every GOARCH and CPU.
package kernels

import (
	"math"
	"unsafe"
)

// Float is the element type of the kernels: float64 or float32.
type Float interface{ ~float32 | ~float64 }

// axpyGo adds s*x[j] to y[j] for each j < min(len(x), len(y)).
func axpyGo[T Float](s T, x, y []T) {
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

// Is64 reports whether T is float64. It is a constant for each instantiation
// (float32 and float64 are compiled separately), so branches on it cost nothing.
func Is64[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 8
}

// Axpy adds s*x[j] to y[j] for each j < min(len(x), len(y)), as axpyGo, with the
// fastest kernel this CPU has. The casts reinterpret a slice of T as the slice of
// the one type T is (Is64), without a copy or an allocation.
func Axpy[T Float](s T, x, y []T) {
	if Is64[T]() {
		axpy(*(*float64)(unsafe.Pointer(&s)), *(*[]float64)(unsafe.Pointer(&x)), *(*[]float64)(unsafe.Pointer(&y)))
		return
	}
	axpy32(*(*float32)(unsafe.Pointer(&s)), *(*[]float32)(unsafe.Pointer(&x)), *(*[]float32)(unsafe.Pointer(&y)))
}

// rowGo adds, for each l in nz in order, a[l] times row l of b (b[l*ldb:], the
// first len(c) values) to c: the same operations as an axpyGo call for each.
// With zero set c is cleared first, and becomes row i of A·B when a is row i of
// A and nz lists its non-zeros. The callers check that every b[l*ldb+j] exists.
func rowGo[T Float](a []T, nz []int, b []T, ldb int, c []T, zero bool) {
	if zero {
		clear(c)
	}
	n := len(c)
	for _, l := range nz {
		axpyGo(a[l], b[l*ldb:l*ldb+n], c)
	}
}

// NZ lists the indices of a row's non-zero values in ascending order, as
// NonZeros made it: the row kernel adds only their terms. Its indices cannot be
// changed from outside the package, which lets Row check its bounds in O(1).
type NZ struct{ idx []int }

// Len is the number of non-zero values.
func (z NZ) Len() int { return len(z.idx) }

// NonZeros lists the indices of v's non-zero values (+0 and -0 are zero; NaN is
// not) in buf, which must be at least as long as v, without a branch on each
// value: about half of a relu's outputs are zero, in no pattern a branch
// predictor could learn.
func NonZeros[T Float](v []T, buf []int) NZ {
	if Is64[T]() {
		return NZ{nonZeros64(*(*[]float64)(unsafe.Pointer(&v)), buf)}
	}
	return NZ{nonZeros32(*(*[]float32)(unsafe.Pointer(&v)), buf)}
}

// nonZeros64 and nonZeros32 are kept out of line so that their loops have
// registers of their own (inlined into a caller's loop they spilled).
//
//go:noinline
func nonZeros64(v []float64, idx []int) []int {
	idx = idx[:len(v)]
	cnt := 0
	for i, x := range v {
		idx[cnt] = i
		b := math.Float64bits(x) << 1 // without the sign: 0 for +0 and -0 only
		cnt += int((b | -b) >> 63)
	}
	return idx[:cnt:cnt]
}

//go:noinline
func nonZeros32(v []float32, idx []int) []int {
	idx = idx[:len(v)]
	cnt := 0
	for i, x := range v {
		idx[cnt] = i
		b := math.Float32bits(x) << 1
		cnt += int((b | -b) >> 31)
	}
	return idx[:cnt:cnt]
}

// Row computes rowGo's result with the fastest kernel this CPU has: for each l
// in nz, in order, a[l] times b[l*ldb : l*ldb+len(c)] is added to c (cleared
// first when zero is set). A row of C = A·B is Row(A's row, NonZeros(A's row),
// B, B's leading dimension, C's row, true). Any len(c) works: below the
// kernel's chunk the elements are summed one at a time, each in a register.
// Row panics, before it writes anything, when a or b is too short for nz.
func Row[T Float](a []T, nz NZ, b []T, ldb int, c []T, zero bool) {
	if n, k := len(c), len(nz.idx); n > 0 && k > 0 {
		if ldb < 0 {
			panic("kernels.Row: negative leading dimension")
		}
		// nz ascends from 0 or more: its last index is its largest
		last := nz.idx[k-1]
		_, _ = a[last], b[last*ldb+n-1]
	}
	if Is64[T]() {
		row(*(*[]float64)(unsafe.Pointer(&a)), nz.idx, *(*[]float64)(unsafe.Pointer(&b)), ldb, *(*[]float64)(unsafe.Pointer(&c)), zero)
		return
	}
	row32(*(*[]float32)(unsafe.Pointer(&a)), nz.idx, *(*[]float32)(unsafe.Pointer(&b)), ldb, *(*[]float32)(unsafe.Pointer(&c)), zero)
}

// Im2col writes a c-channel h x w image (CHW) as the columns of a k x k
// convolution with same padding: row q = (ch*k+ky)*k+kx of col (h*w values)
// holds, for each output position (y, x), the image at (ch, y+ky-k/2,
// x+kx-k/2), or 0 outside it. col must hold c*k*k*h*w values. The trainer's
// conv op and the predictor both build their columns with it, and then sum each
// filter's output row with Row.
func Im2col(img, col []float64, c, h, w, k int) {
	pad, hw := k/2, h*w
	for ch := 0; ch < c; ch++ {
		src := img[ch*hw : (ch+1)*hw]
		for ky := 0; ky < k; ky++ {
			for kx := 0; kx < k; kx++ {
				q := (ch*k+ky)*k + kx
				dy, dx := ky-pad, kx-pad
				// x in [x0, x1) reads inside the image (sx = x+dx); the
				// others, and whole rows outside it, are the zero padding.
				x0, x1 := max(0, -dx), min(w, w-dx)
				for y := 0; y < h; y++ {
					dst := col[q*hw+y*w : q*hw+(y+1)*w]
					sy := y + dy
					if sy < 0 || sy >= h || x0 >= x1 {
						clear(dst)
						continue
					}
					clear(dst[:x0])
					copy(dst[x0:x1], src[sy*w+x0+dx:sy*w+x1+dx])
					clear(dst[x1:])
				}
			}
		}
	}
}
