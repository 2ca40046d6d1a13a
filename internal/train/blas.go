package train

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
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
// is summed as a row: for each non-zero A[i,l] in turn, A[i,l] times row l of
// op(B) is added to it (axpy: on amd64 gonum's SSE2 kernel, which computes each
// element the same way two at a time, elsewhere a Go loop); a row shorter than 4
// is summed entry by entry in a register instead, and a transposed B is
// transposed once first. Rows are spread over goroutines for large products.
// None of that changes an entry's operations, so the result is also the same for
// any core count. The remaining methods (float32, complex, the other float64
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
// goroutines (below it, starting them costs more than they save). Measured on
// the project's 2-vCPU machine: at 1 << 18 a 20-64-32-1 MLP's step at batch 256
// (products of 300k-500k) took 55% longer on two goroutines than on one, and no
// product size gained from the second vCPU there (1024x256x256: 6.7 ms either
// way); the split stays for larger products on machines with real cores.
const parallelWork = 1 << 20

// Dgemm computes C = alpha * op(A) * op(B) + beta * C in row-major layout, op(X)
// being X or its transpose, as documented on portableBLAS.
func (portableBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("portableBLAS: negative dimension")
	}
	if m == 0 || n == 0 {
		return
	}
	_ = c[(m-1)*ldc+n-1] // a short C panics here, before anything is written
	// A[i,l] = a[i*ai + l*al]
	g := gemm{n: n, k: k, alpha: alpha, beta: beta, a: a, ai: lda, al: 1, b: b, ldb: ldb, c: c, ldc: ldc}
	if tA != blas.NoTrans {
		g.aT, g.ai, g.al = true, 1, lda
	}
	if k > 0 {
		_ = a[(m-1)*g.ai+(k-1)*g.al]
		if tB != blas.NoTrans {
			// B's rows are op(B)'s columns: transpose it once, so that the
			// kernel reads op(B)'s rows contiguously.
			_ = b[(n-1)*ldb+k-1]
			bt := getBuf(k * n)
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

// gemm is one Dgemm call: op(B) is row-major in b with leading dimension ldb.
type gemm struct {
	aT          bool
	n, k        int
	alpha, beta float64
	a           []float64
	ai, al      int
	b           []float64
	ldb         int
	c           []float64
	ldc         int
}

// rows computes rows i0 to i1-1 of C, first their sums (in C's rows themselves
// unless C's old values are needed), then alpha and beta.
func (g *gemm) rows(i0, i1 int) {
	n := g.n
	sums := g.c[i0*g.ldc:]
	ld := g.ldc
	var tmp *[]float64
	if g.beta != 0 {
		tmp = getBuf((i1 - i0) * n)
		defer putBuf(tmp)
		sums, ld = *tmp, n
	}
	switch {
	case n < 4 && g.aT:
		// Rows this short are summed element by element (the axpy calls would
		// cost more than their work), A's rows (l) outermost as in axpyRows.
		for r := 0; r < i1-i0; r++ {
			clear(sums[r*ld : r*ld+n])
		}
		for l := 0; l < g.k; l++ {
			brow := g.b[l*g.ldb : l*g.ldb+n]
			for r, v := range g.a[l*g.al+i0 : l*g.al+i1] {
				if v != 0 {
					for j, bj := range brow {
						sums[r*ld+j] += float64(v * bj)
					}
				}
			}
		}
	case n < 4:
		// the same, each sum in a register
		for r := 0; r < i1-i0; r++ {
			i := i0 + r
			for j := 0; j < n; j++ {
				var s float64
				for l := 0; l < g.k; l++ {
					if v := g.a[i*g.ai+l*g.al]; v != 0 {
						s += float64(v * g.b[l*g.ldb+j])
					}
				}
				sums[r*ld+j] = s
			}
		}
	default:
		g.axpyRows(i0, i1, sums, ld)
	}
	for r := 0; r < i1-i0; r++ {
		crow := g.c[(i0+r)*g.ldc : (i0+r)*g.ldc+n]
		switch {
		case tmp != nil:
			for j, sj := range sums[r*ld : r*ld+n] {
				crow[j] = float64(g.alpha*sj) + float64(g.beta*crow[j])
			}
		case g.alpha != 1:
			for j := range crow {
				crow[j] *= g.alpha
			}
		}
	}
}

// axpyRows sums rows i0 to i1-1 of C into sums (leading dimension ld): for each
// non-zero A[i,l], A[i,l] times row l of op(B) is added to row i's, l in order,
// four at a time where it can (axpy4: the same operations as four axpy calls,
// with the row kept in registers between them).
// When A is transposed its rows (l) are the outer loop instead, which reads them
// contiguously and gives each sum the same additions in the same order. The
// non-zeros are listed first without a branch on each (about half of a relu's
// outputs are zero, in no pattern a branch predictor could learn).
func (g *gemm) axpyRows(i0, i1 int, sums []float64, ld int) {
	n := g.n
	for r := 0; r < i1-i0; r++ {
		clear(sums[r*ld : r*ld+n])
	}
	var buf [512]int
	idx := buf[:]
	if need := max(g.k, i1-i0); need > len(buf) {
		idx = make([]int, need)
	}
	if g.aT {
		// Four of A's rows (l) at a time: a row of C whose four are all
		// non-zero gets them in one axpy4, else each non-zero in turn.
		l := 0
		for ; l+4 <= g.k; l += 4 {
			b0, b1 := g.b[l*g.ldb:l*g.ldb+n], g.b[(l+1)*g.ldb:(l+1)*g.ldb+n]
			b2, b3 := g.b[(l+2)*g.ldb:(l+2)*g.ldb+n], g.b[(l+3)*g.ldb:(l+3)*g.ldb+n]
			var s [4]float64
			for r := 0; r < i1-i0; r++ {
				i := i0 + r
				s = [4]float64{g.a[l*g.al+i], g.a[(l+1)*g.al+i], g.a[(l+2)*g.al+i], g.a[(l+3)*g.al+i]}
				c := sums[r*ld : r*ld+n]
				if s[0] != 0 && s[1] != 0 && s[2] != 0 && s[3] != 0 {
					axpy4(&s, b0, b1, b2, b3, c)
					continue
				}
				for q, bq := range [4][]float64{b0, b1, b2, b3} {
					if s[q] != 0 {
						axpy(s[q], bq, c)
					}
				}
			}
		}
		for ; l < g.k; l++ {
			brow := g.b[l*g.ldb : l*g.ldb+n]
			arow := g.a[l*g.al+i0 : l*g.al+i1]
			for _, r := range nonZeros(arow, idx) {
				axpy(arow[r], brow, sums[r*ld:r*ld+n])
			}
		}
		return
	}
	var s [4]float64
	for r := 0; r < i1-i0; r++ {
		c := sums[r*ld : r*ld+n]
		arow := g.a[(i0+r)*g.ai : (i0+r)*g.ai+g.k]
		nz := nonZeros(arow, idx)
		j := 0
		for ; j+4 <= len(nz); j += 4 { // four non-zeros at a time (axpy4)
			l0, l1, l2, l3 := nz[j], nz[j+1], nz[j+2], nz[j+3]
			s = [4]float64{arow[l0], arow[l1], arow[l2], arow[l3]}
			axpy4(&s, g.b[l0*g.ldb:l0*g.ldb+n], g.b[l1*g.ldb:l1*g.ldb+n], g.b[l2*g.ldb:l2*g.ldb+n], g.b[l3*g.ldb:l3*g.ldb+n], c)
		}
		for ; j < len(nz); j++ {
			l := nz[j]
			axpy(arow[l], g.b[l*g.ldb:l*g.ldb+n], c)
		}
	}
}

// nonZeros returns the indices of v's non-zero values, in order, in idx (at least
// as long as v).
func nonZeros(v []float64, idx []int) []int {
	idx = idx[:len(v)]
	cnt := 0
	for i, x := range v {
		idx[cnt] = i
		b := math.Float64bits(x) << 1 // without the sign: 0 for +0 and -0 only
		cnt += int((b | -b) >> 63)
	}
	return idx[:cnt]
}

// bufs holds scratch slices for Dgemm (B transposed, sums).
var bufs sync.Pool

func getBuf(n int) *[]float64 {
	if p, ok := bufs.Get().(*[]float64); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]float64, n)
	return &b
}

func putBuf(p *[]float64) { bufs.Put(p) }

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
