package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

func randSlice(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
		if rng.IntN(4) == 0 {
			v[i] = 0 // relu zeros: the skipped terms
		}
	}
	return v
}

// refGemm is portableBLAS's documented arithmetic written out naively: s = sum of
// A[i,l]*B[l,j] in l order over A's non-zeros, each product rounded, then C =
// alpha*s + beta*C.
func refGemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for l := 0; l < k; l++ {
				var ail, blj float64
				if tA != blas.NoTrans {
					ail = a[l*lda+i]
				} else {
					ail = a[i*lda+l]
				}
				if ail == 0 {
					continue
				}
				if tB != blas.NoTrans {
					blj = b[j*ldb+l]
				} else {
					blj = b[l*ldb+j]
				}
				s += float64(ail * blj)
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = float64(alpha*s) + float64(beta*c[i*ldc+j])
			}
		}
	}
}

// TestPortableDgemm checks every transpose combination, strided operands, alpha
// and beta, thin and large (parallel) products: the same bits as refGemm, and
// within rounding of gonum's Dgemm.
func TestPortableDgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{32, 1, 32}, {1, 5, 7}, {6, 4, 1}, {1, 1, 9}, {3, 1, 1}, {7, 9, 5}, {32, 64, 13}, {300, 70, 40}, {2, 3, 0}}
	for _, sh := range shapes {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, ab := range [][2]float64{{1, 0}, {1, 1}, {1.5, 0.5}, {0, 0.5}} {
					alpha, beta := ab[0], ab[1]
					m, n, k := sh[0], sh[1], sh[2]
					ar, ac := m, k
					if tA == blas.Trans {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB == blas.Trans {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+2, bc+1, n+3
					a, b := randSlice(rng, max(ar, 1)*lda), randSlice(rng, max(br, 1)*ldb)
					c0 := randSlice(rng, m*ldc)
					want := append([]float64(nil), c0...)
					ref := append([]float64(nil), c0...)
					got := append([]float64(nil), c0...)
					gonum.Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
					refGemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, ref, ldc)
					portableBLAS{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, got, ldc)
					for i := range got {
						if math.Float64bits(got[i]) != math.Float64bits(ref[i]) {
							t.Fatalf("%v %c%c alpha %v beta %v: c[%d] = %v, the documented arithmetic gives %v", sh, tA, tB, alpha, beta, i, got[i], ref[i])
						}
					}
					assert.InDeltaSlice(t, want, got, 1e-11, "%v %c%c alpha %v beta %v", sh, tA, tB, alpha, beta)
				}
			}
		}
	}
}

// TestPortableDgemmAnyCoreCount: the rows spread over goroutines give the same
// bits as one goroutine.
func TestPortableDgemmAnyCoreCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m, n, k := 517, 33, 71
	require.GreaterOrEqual(t, m*n*k, parallelWork)
	a, b := randSlice(rng, m*k), randSlice(rng, n*k)
	run := func(procs int) []float64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c := make([]float64, m*n)
		portableBLAS{}.Dgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, b, k, 0, c, n)
		portableBLAS{}.Dgemm(blas.Trans, blas.NoTrans, m, n, k, 0.5, a, m, b, n, 1, c, n)
		return c
	}
	one := run(1)
	for _, procs := range []int{2, 3, 8} {
		assert.Equal(t, one, run(procs), "GOMAXPROCS %d", procs)
	}
}

// TestPortableLevel12 checks Dgemv, Ddot and Dger (through Dgemm) against gonum.
func TestPortableLevel12(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	p, g := portableBLAS{}, gonum.Implementation{}
	m, n := 7, 5
	a := randSlice(rng, m*(n+2))
	for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
		xl, yl := n, m
		if tA == blas.Trans {
			xl, yl = m, n
		}
		x, y0 := randSlice(rng, 2*xl), randSlice(rng, 3*yl)
		want, got := append([]float64(nil), y0...), append([]float64(nil), y0...)
		g.Dgemv(tA, m, n, 1.5, a, n+2, x, 2, 0.5, want, 3)
		p.Dgemv(tA, m, n, 1.5, a, n+2, x, 2, 0.5, got, 3)
		assert.InDeltaSlice(t, want, got, 1e-12, "Dgemv %c", tA)
	}
	x, y := randSlice(rng, 3*9), randSlice(rng, 2*9)
	assert.InDelta(t, g.Ddot(9, x, 3, y, 2), p.Ddot(9, x, 3, y, 2), 1e-12, "Ddot")
	x, y = randSlice(rng, 2*m), randSlice(rng, n)
	want, got := append([]float64(nil), a...), append([]float64(nil), a...)
	g.Dger(m, n, 0.7, x, 2, y, 1, want, n+2)
	p.Dger(m, n, 0.7, x, 2, y, 1, got, n+2)
	assert.InDeltaSlice(t, want, got, 1e-12, "Dger")
	assert.Panics(t, func() { p.Ddot(3, x, -1, y, 1) }, "negative increment")
}

// TestPortableBLASOnlyWhenTraining checks, in a fresh process of this test binary,
// that importing the package leaves gorgonia's BLAS alone and that building a
// network switches it to portableBLAS.
func TestPortableBLASOnlyWhenTraining(t *testing.T) {
	const child = "MLSHIP_TRAIN_BLAS_CHILD"
	if os.Getenv(child) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPortableBLASOnlyWhenTraining$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), child+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return
	}
	_, ours := G.WhichBLAS().(portableBLAS)
	require.False(t, ours, "gorgonia uses portableBLAS before any network was built")
	n, err := newNet(fitConfig{Net: testNets[0].net, BatchSize: 2}, initParams(testNets[0].net, 1), false)
	require.NoError(t, err)
	n.vm.Close()
	_, ours = G.WhichBLAS().(portableBLAS)
	require.True(t, ours, "newNet did not switch gorgonia to portableBLAS")
}

// BenchmarkDgemm compares portableBLAS with gonum on the heart network's largest
// products at batch 32 and 256 (forward, and the two gradient products of the
// second layer), with half of the activations zero as after a relu.
func BenchmarkDgemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	sparse := func(n int) []float64 {
		v := randSlice(rng, n)
		for i := range v {
			if rng.IntN(2) == 0 {
				v[i] = 0
			}
		}
		return v
	}
	type product struct {
		name    string
		tA, tB  blas.Transpose
		m, n, k int
	}
	var products []product
	for _, bs := range []int{32, 256} {
		products = append(products,
			product{fmt.Sprintf("forward-%dx64x32", bs), blas.NoTrans, blas.NoTrans, bs, 32, 64},
			product{fmt.Sprintf("dX-%dx32x64", bs), blas.NoTrans, blas.Trans, bs, 64, 32},
			product{fmt.Sprintf("dW-64x%dx32", bs), blas.Trans, blas.NoTrans, 64, 32, bs})
	}
	impls := []struct {
		name string
		impl blas.Float64Level3
	}{{"portable", portableBLAS{}}, {"gonum", gonum.Implementation{}}}
	for _, p := range products {
		ar, ac := p.m, p.k
		if p.tA == blas.Trans {
			ar, ac = p.k, p.m
		}
		br, bc := p.k, p.n
		if p.tB == blas.Trans {
			br, bc = p.n, p.k
		}
		a, bb := sparse(ar*ac), randSlice(rng, br*bc)
		c := make([]float64, p.m*p.n)
		for _, im := range impls {
			b.Run(p.name+"/"+im.name, func(b *testing.B) {
				for b.Loop() {
					im.impl.Dgemm(p.tA, p.tB, p.m, p.n, p.k, 1, a, ac, bb, bc, 0, c, p.n)
				}
			})
		}
	}
}
