package train

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// TestThinDgemmMatchesGonum compares the thin-product path with gonum's Dgemm
// for every transpose combination, with strided (lda > cols) operands.
func TestThinDgemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	shapes := [][3]int{{32, 1, 32}, {1, 5, 7}, {6, 4, 1}, {1, 1, 9}, {3, 1, 1}}
	for _, sh := range shapes {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, beta := range []float64{0, 0.5} {
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
					a, b := rnd(ar*lda), rnd(br*ldb)
					c0 := rnd(m * ldc)
					want := append([]float64(nil), c0...)
					got := append([]float64(nil), c0...)
					gonum.Implementation{}.Dgemm(tA, tB, m, n, k, 1.5, a, lda, b, ldb, beta, want, ldc)
					thinBLAS{}.Dgemm(tA, tB, m, n, k, 1.5, a, lda, b, ldb, beta, got, ldc)
					assert.InDeltaSlice(t, want, got, 1e-12, "%v %c%c beta %v", sh, tA, tB, beta)
				}
			}
		}
	}
}

// TestThinBLASOnlyWhenTraining checks, in a fresh process of this test binary, that
// importing the package leaves gorgonia's BLAS alone and that building a network
// switches it to thinBLAS.
func TestThinBLASOnlyWhenTraining(t *testing.T) {
	const child = "MLSHIP_TRAIN_BLAS_CHILD"
	if os.Getenv(child) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestThinBLASOnlyWhenTraining$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), child+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return
	}
	_, thin := G.WhichBLAS().(thinBLAS)
	require.False(t, thin, "gorgonia uses thinBLAS before any network was built")
	n, err := newNet(fitConfig{Net: testNets[0].net, BatchSize: 2}, initParams(testNets[0].net, 1), false)
	require.NoError(t, err)
	n.vm.Close()
	_, thin = G.WhichBLAS().(thinBLAS)
	require.True(t, thin, "newNet did not switch gorgonia to thinBLAS")
}
