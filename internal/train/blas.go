package train

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"

	"github.com/mlship/mlship/internal/kernels"
)

// portableBLAS is the BLAS gorgonia trains with. Its float64 products (Dgemm, and
// Dgemv, Ddot and Dger through it: every product gorgonia's and tensor's float64
// ops call) give the same bits on every GOARCH, which gonum's Dgemm does not: it
// sums some products in several partial sums in SSE2 assembly on amd64, and runs
// pure Go elsewhere, where arm64 fuses x*y + z into one FMA instruction. Here
// every entry of C is computed by the same sequence of IEEE 754 operations
// everywhere:
//
//	s = 0; for l = 0, 1, ..., k-1 with A[i,l] != 0: s += A[i,l] * B[l,j]
//	C[i,j] = alpha*s + beta*C[i,j]   (alpha*s when beta is 0)
//
// with each product rounded before it is added (float64(x*y) forbids the fusion:
// Go spec, "Floating-point operators"). Skipping the zeros of A (the relu's, in
// the activations and their gradients, about half of them) is what gonum does
// too; it changes at most the sign of a zero sum, or a NaN of 0*Inf. A row of C
// is summed as a row by internal/kernels' row kernel: for each non-zero A[i,l]
// in turn, A[i,l] times row l of op(B) is added to it, held in registers a chunk
// at a time (AVX on amd64 CPUs that have it, else SSE2; a Go loop elsewhere; all
// compute each element the same way); a transposed A's row is gathered and a
// transposed B transposed once first. Rows are spread over goroutines for large
// products. None of that changes an entry's operations, so the result is also
// the same for any core count and CPU. gemmT is the same code for float32 (the
// dense network at --dtype float32). The remaining methods (float32, complex,
// the other float64 routines) are gonum's, and training calls none.
type portableBLAS struct{ gonum.Implementation }

var portableBLASOnce sync.Once

// usePortableBLAS makes gorgonia (and gorgonia.org/tensor) use portableBLAS, once
// per process. newNet calls it before it builds a graph, so every path that trains
// (fit, the tests, the benchmarks) has it, while importing the package changes no
// global state: gorgonia.Use sets a process-wide BLAS, which a program that only
// imports train (for its Config, say) should not have swapped under it.
func usePortableBLAS() { portableBLASOnce.Do(func() { G.Use(portableBLAS{}) }) }

// parallelWork is the number of multiply-adds from which Dgemm spreads rows over
// goroutines (below it, starting them costs more than they save). Measured on
// the project's 2-vCPU machine: at 1 << 18 a 20-64-32-1 MLP's step at batch 256
// (products of 300k-500k) took 55% longer on two goroutines than on one, and no
// product size gained from the second vCPU there (1024x256x256: 6.7 ms either
// way); the split stays for larger products on machines with real cores.
const parallelWork = 1 << 20

// Dgemm computes C = alpha * op(A) * op(B) + beta * C in row-major layout, op(X)
// being X or its transpose, as documented on portableBLAS.
func (portableBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemmT(tA != blas.NoTrans, tB != blas.NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmT is Dgemm for either type (the dense network's products at --dtype
// float32 are float32): the same operations in T.
func gemmT[T float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("portableBLAS: negative dimension")
	}
	if m == 0 || n == 0 {
		return
	}
	_ = c[(m-1)*ldc+n-1] // a short C panics here, before anything is written
	// A[i,l] = a[i*ai + l*al]
	g := gemm[T]{n: n, k: k, alpha: alpha, beta: beta, a: a, ai: lda, al: 1, b: b, ldb: ldb, c: c, ldc: ldc}
	if tA {
		g.aT, g.ai, g.al = true, 1, lda
	}
	if k > 0 {
		_ = a[(m-1)*g.ai+(k-1)*g.al]
		if tB {
			// B's rows are op(B)'s columns: transpose it once, so that the
			// kernel reads op(B)'s rows contiguously.
			_ = b[(n-1)*ldb+k-1]
			bt := getBuf[T](k * n)
			defer putBuf(bt)
			for l := 0; l < k; l++ {
				row := (*bt)[l*n : (l+1)*n]
				for j := range row {
					row[j] = b[j*ldb+l]
				}
			}
			g.b, g.ldb = *bt, n
		} else {
			_ = b[(k-1)*ldb+n-1]
		}
	}
	workers := min(runtime.GOMAXPROCS(0), m)
	if m*n*k < parallelWork || workers < 2 {
		g.rows(0, m)
		return
	}
	var wg sync.WaitGroup
	per := (m + workers - 1) / workers
	for i0 := 0; i0 < m; i0 += per {
		wg.Add(1)
		go func(i0, i1 int) {
			defer wg.Done()
			g.rows(i0, i1)
		}(i0, min(i0+per, m))
	}
	wg.Wait()
}

// gemm is one product: op(B) is row-major in b with leading dimension ldb.
type gemm[T float] struct {
	aT          bool
	n, k        int
	alpha, beta T
	a           []T
	ai, al      int
	b           []T
	ldb         int
	c           []T
	ldc         int
}

// rows computes rows i0 to i1-1 of C, first their sums (in C's rows themselves
// unless C's old values are needed), then alpha and beta.
func (g *gemm[T]) rows(i0, i1 int) {
	n := g.n
	sums := g.c[i0*g.ldc:]
	ld := g.ldc
	var tmp *[]T
	if g.beta != 0 {
		tmp = getBuf[T]((i1 - i0) * n)
		defer putBuf(tmp)
		sums, ld = *tmp, n
	}
	g.sumRows(i0, i1, sums, ld)
	for r := 0; r < i1-i0; r++ {
		crow := g.c[(i0+r)*g.ldc : (i0+r)*g.ldc+n]
		switch {
		case tmp != nil:
			for j, sj := range sums[r*ld : r*ld+n] {
				crow[j] = T(g.alpha*sj) + T(g.beta*crow[j])
			}
		case g.alpha != 1:
			for j := range crow {
				crow[j] *= g.alpha
			}
		}
	}
}

// sumRows writes the sums of rows i0 to i1-1 of op(A)·B into sums (leading
// dimension ld): each row from 0, adding A[i,l] times row l of op(B) for each
// non-zero A[i,l], l in order (the row kernel, kernels.Row). A transposed A's row is
// gathered into a buffer first. The non-zeros are listed without a branch on
// each (about half of a relu's outputs are zero, in no pattern a branch
// predictor could learn).
func (g *gemm[T]) sumRows(i0, i1 int, sums []T, ld int) {
	n := g.n
	var idxBuf [512]int
	var rowBuf [512]T
	idx, arow := idxBuf[:], rowBuf[:]
	if g.k > len(idxBuf) {
		idx, arow = make([]int, g.k), make([]T, g.k)
	}
	arow = arow[:g.k]
	for r := 0; r < i1-i0; r++ {
		i := i0 + r
		var a []T
		if g.aT {
			a = arow
			gather(a, g.a, i, g.al)
		} else {
			a = g.a[i*g.ai : i*g.ai+g.k]
		}
		// every row through the kernel, however short: its scalar tail
		// keeps each sum in a register
		kernels.Row(a, kernels.NonZeros(a, idx), g.b, g.ldb, sums[r*ld:r*ld+n], true)
	}
}

// gather copies column i of A (k values, stride al) into a.
//
//go:noinline
func gather[T float](a, src []T, i, al int) {
	for l := range a {
		a[l] = src[l*al+i]
	}
}

// bufs64 and bufs32 hold scratch slices for the products (B transposed, sums).
var bufs64, bufs32 sync.Pool

func getBuf[T float](n int) *[]T {
	pool := &bufs32
	if is64[T]() {
		pool = &bufs64
	}
	if p, ok := pool.Get().(*[]T); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]T, n)
	return &b
}

func putBuf[T float](p *[]T) {
	if is64[T]() {
		bufs64.Put(p)
		return
	}
	bufs32.Put(p)
}

// Dgemv computes y = alpha * op(A) * x + beta * y through Dgemm, x and y as
// columns (positive increments only: gorgonia passes 1).
func (p portableBLAS) Dgemv(tA blas.Transpose, m, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
	checkInc(incX, incY)
	rows, cols := m, n
	if tA != blas.NoTrans {
		rows, cols = n, m
	}
	p.Dgemm(tA, blas.NoTrans, rows, 1, cols, alpha, a, lda, x, incX, beta, y, incY)
}

// Ddot returns the sum of x[i]*y[i] in index order, through Dgemm.
func (p portableBLAS) Ddot(n int, x []float64, incX int, y []float64, incY int) float64 {
	checkInc(incX, incY)
	var out [1]float64
	p.Dgemm(blas.Trans, blas.NoTrans, 1, 1, n, 1, x, incX, y, incY, 0, out[:], 1)
	return out[0]
}

// Dger computes A += alpha * x * yᵀ through Dgemm.
func (p portableBLAS) Dger(m, n int, alpha float64, x []float64, incX int, y []float64, incY int, a []float64, lda int) {
	checkInc(incX, incY)
	p.Dgemm(blas.NoTrans, blas.Trans, m, n, 1, alpha, x, incX, y, incY, 1, a, lda)
}

func checkInc(incs ...int) {
	for _, inc := range incs {
		if inc <= 0 {
			panic("portableBLAS: only positive increments are supported")
		}
	}
}
