package train

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// portableBLAS is the BLAS gorgonia trains with. Its float64 products (Dgemm, and
// Dgemv, Ddot and Dger through it: every product gorgonia's and tensor's float64
// ops call) are mlship's own and give the same bits on every GOARCH, which gonum's
// do not: gonum's kernels are SSE2 assembly on amd64 that sum a dot product in
// several partial sums, and pure Go elsewhere, where arm64 fuses x*y + z into one
// FMA instruction. Here every entry of C is computed by the same sequence of
// IEEE 754 operations everywhere:
//
//	s = 0; for l = 0, 1, ..., k-1: s += A[i,l] * B[l,j]
//	C[i,j] = alpha*s + beta*C[i,j]   (alpha*s when beta is 0)
//
// with each product rounded before it is added: float64(x*y) forbids the fusion
// (Go spec, "Floating-point operators"). Blocks of 4x2 entries are computed at
// once, each in its own register, and rows are spread over goroutines for large
// products; neither changes an entry's operations, so the result is also the same
// for any core count. The remaining methods (float32, complex, the other float64
// routines) are gonum's, and training calls none.
type portableBLAS struct{ gonum.Implementation }

var portableBLASOnce sync.Once

// usePortableBLAS makes gorgonia (and gorgonia.org/tensor) use portableBLAS, once
// per process. newNet calls it before it builds a graph, so every path that trains
// (fit, the tests, the benchmarks) has it, while importing the package changes no
// global state: gorgonia.Use sets a process-wide BLAS, which a program that only
// imports train (for its Config, say) should not have swapped under it.
func usePortableBLAS() { portableBLASOnce.Do(func() { G.Use(portableBLAS{}) }) }

// parallelWork is the number of multiply-adds from which Dgemm spreads rows over
// goroutines.
const parallelWork = 1 << 16

// Dgemm computes C = alpha * op(A) * op(B) + beta * C in row-major layout, op(X)
// being X or its transpose, as documented on portableBLAS.
func (portableBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("portableBLAS: negative dimension")
	}
	if m == 0 || n == 0 {
		return
	}
	// A[i,l] = a[i*ai + l*al], B[l,j] = b[l*bl + j*bj]
	g := gemm{n: n, k: k, alpha: alpha, beta: beta, a: a, ai: lda, al: 1, b: b, bl: ldb, bj: 1, c: c, ldc: ldc}
	if tA != blas.NoTrans {
		g.ai, g.al = 1, lda
	}
	if tB != blas.NoTrans {
		g.bl, g.bj = 1, ldb
	}
	if k > 0 { // the last element each operand is read at, so a short slice panics here
		_ = a[(m-1)*g.ai+(k-1)*g.al]
		_ = b[(k-1)*g.bl+(n-1)*g.bj]
	}
	_ = c[(m-1)*ldc+n-1]
	workers := min(runtime.GOMAXPROCS(0), (m+3)/4)
	if m*n*k < parallelWork || workers < 2 {
		g.rows(0, m)
		return
	}
	var wg sync.WaitGroup
	per := ((m+workers-1)/workers + 3) &^ 3 // whole 4-row blocks
	for i0 := 0; i0 < m; i0 += per {
		wg.Add(1)
		go func(i0, i1 int) {
			defer wg.Done()
			g.rows(i0, i1)
		}(i0, min(i0+per, m))
	}
	wg.Wait()
}

type gemm struct {
	n, k        int
	alpha, beta float64
	a           []float64
	ai, al      int
	b           []float64
	bl, bj      int
	c           []float64
	ldc         int
}

// rows computes rows i0 to i1-1 of C.
func (g *gemm) rows(i0, i1 int) {
	i := i0
	for ; i+4 <= i1; i += 4 {
		j := 0
		for ; j+2 <= g.n; j += 2 {
			g.block42(i, j)
		}
		for ; j < g.n; j++ {
			for r := i; r < i+4; r++ {
				g.entry(r, j)
			}
		}
	}
	for ; i < i1; i++ {
		for j := 0; j < g.n; j++ {
			g.entry(i, j)
		}
	}
}

// set stores alpha*s + beta*C[i,j] into C[i,j].
func (g *gemm) set(i, j int, s float64) {
	p := &g.c[i*g.ldc+j]
	if g.beta == 0 {
		*p = g.alpha * s
		return
	}
	*p = float64(g.alpha*s) + float64(g.beta**p)
}

// entry computes C[i,j] alone.
func (g *gemm) entry(i, j int) {
	a, b := g.a, g.b
	ia, ib := i*g.ai, j*g.bj
	s := 0.0
	for l := 0; l < g.k; l++ {
		s += float64(a[ia] * b[ib])
		ia += g.al
		ib += g.bl
	}
	g.set(i, j, s)
}

// block42 computes C[i..i+3, j..j+1], each entry in its own accumulator.
func (g *gemm) block42(i, j int) {
	a, b := g.a, g.b
	ai, al, bl, bj := g.ai, g.al, g.bl, g.bj
	ia, ib := i*ai, j*bj
	var s00, s01, s10, s11, s20, s21, s30, s31 float64
	for l := 0; l < g.k; l++ {
		b0, b1 := b[ib], b[ib+bj]
		a0, a1, a2, a3 := a[ia], a[ia+ai], a[ia+2*ai], a[ia+3*ai]
		s00 += float64(a0 * b0)
		s01 += float64(a0 * b1)
		s10 += float64(a1 * b0)
		s11 += float64(a1 * b1)
		s20 += float64(a2 * b0)
		s21 += float64(a2 * b1)
		s30 += float64(a3 * b0)
		s31 += float64(a3 * b1)
		ia += al
		ib += bl
	}
	g.set(i, j, s00)
	g.set(i, j+1, s01)
	g.set(i+1, j, s10)
	g.set(i+1, j+1, s11)
	g.set(i+2, j, s20)
	g.set(i+2, j+1, s21)
	g.set(i+3, j, s30)
	g.set(i+3, j+1, s31)
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
