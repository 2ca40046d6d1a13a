package train

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// thinBLAS is gonum's BLAS with a faster Dgemm for thin products: when one of
// m, n or k is 1 (a one-unit output layer and its gradients), gonum's blocked
// kernel spends microseconds on call overhead for a few hundred flops. Those
// products take a direct loop instead; all others go to gonum unchanged.
type thinBLAS struct{ gonum.Implementation }

var thinBLASOnce sync.Once

// useThinBLAS makes gorgonia (and gorgonia.org/tensor) use thinBLAS, once per
// process. newNet calls it before it builds a graph, so every path that trains
// (fit, the tests, the benchmarks) has it, while importing the package changes no
// global state: gorgonia.Use sets a process-wide BLAS, which a program that only
// imports train (for its Config, say) should not have swapped under it.
func useThinBLAS() { thinBLASOnce.Do(func() { G.Use(thinBLAS{}) }) }

func (t thinBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m != 1 && n != 1 && k != 1 {
		t.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// A(i,l) = a[i*ai + l*al], B(l,j) = b[l*bl + j*bj].
	ai, al := lda, 1
	if tA != blas.NoTrans {
		ai, al = 1, lda
	}
	bl, bj := ldb, 1
	if tB != blas.NoTrans {
		bl, bj = 1, ldb
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			s := 0.0
			ia, jb := i*ai, j*bj
			for l := 0; l < k; l++ {
				s += a[ia+l*al] * b[l*bl+jb]
			}
			if beta == 0 {
				row[j] = alpha * s
			} else {
				row[j] = alpha*s + beta*row[j]
			}
		}
	}
}
