package dataset

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// SplitConfig says how to split rows. Defaults (0.2, 0.2) are applied by the
// caller; both fractions must lie strictly between 0 and 1.
type SplitConfig struct {
	Seed     int64
	TestFrac float64 // fraction of all rows for the test set
	ValFrac  float64 // fraction of the remaining rows for the validation set
	Stratify bool    // keep class ratios per split (classification only; ignored for regression)
}

// Split holds row indices into a Dataset, each sorted ascending.
type Split struct {
	Train, Val, Test []int
}

// pcgStream is the fixed second PCG seed word ("mlship" in ASCII), so that
// the split depends on SplitConfig.Seed alone.
const pcgStream = 0x6d6c73686970

// SplitRows splits the rows of d into train, validation and test sets. The
// test set takes round(n*TestFrac) rows, the validation set round(rest*ValFrac)
// of the rest, the train set what is left. The split is deterministic for a
// seed: rows are shuffled with a Fisher-Yates shuffle driven by PCG seeded
// from cfg.Seed, independent of the Go version's rand helpers. With
// Stratify on a classification dataset the same is done per class (classes
// in index order, one generator), so each class is split in the same
// proportions to within one row. Every set must be non-empty.
func SplitRows(d *Dataset, cfg SplitConfig) (Split, error) {
	if d == nil {
		return Split{}, fmt.Errorf("splitting rows: no dataset")
	}
	n := len(d.Y)
	fail := func(format string, args ...any) (Split, error) {
		return Split{}, fmt.Errorf("splitting %d rows (test_frac %g, val_frac %g): %s",
			n, cfg.TestFrac, cfg.ValFrac, fmt.Sprintf(format, args...))
	}
	if !(cfg.TestFrac > 0 && cfg.TestFrac < 1) {
		return fail("test_frac must be between 0 and 1 (exclusive)")
	}
	if !(cfg.ValFrac > 0 && cfg.ValFrac < 1) {
		return fail("val_frac must be between 0 and 1 (exclusive)")
	}

	// Groups of row indices to split independently.
	var groups [][]int
	if cfg.Stratify && d.Task.Classification() {
		k := len(d.Classes)
		groups = make([][]int, k)
		for i, y := range d.Y {
			if !(y >= 0 && y < float64(k) && y == math.Trunc(y)) {
				return fail("row %d has class index %g, want 0..%d", i, y, k-1)
			}
			groups[int(y)] = append(groups[int(y)], i)
		}
	} else {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		groups = [][]int{all}
	}

	src := rand.NewPCG(uint64(cfg.Seed), pcgStream)
	var s Split
	for _, g := range groups {
		shuffle(src, g)
		nTest := int(math.Round(float64(len(g)) * cfg.TestFrac))
		nVal := int(math.Round(float64(len(g)-nTest) * cfg.ValFrac))
		s.Test = append(s.Test, g[:nTest]...)
		s.Val = append(s.Val, g[nTest:nTest+nVal]...)
		s.Train = append(s.Train, g[nTest+nVal:]...)
	}
	switch {
	case len(s.Test) == 0:
		return fail("the test set is empty")
	case len(s.Val) == 0:
		return fail("the validation set is empty")
	case len(s.Train) == 0:
		return fail("the train set is empty")
	}
	slices.Sort(s.Train)
	slices.Sort(s.Val)
	slices.Sort(s.Test)
	return s, nil
}

// shuffle is a Fisher-Yates shuffle of a driven by src.
func shuffle(src *rand.PCG, a []int) {
	for i := len(a) - 1; i > 0; i-- {
		j := boundedUint64(src, uint64(i)+1)
		a[i], a[j] = a[j], a[i]
	}
}

// boundedUint64 returns a uniform value in [0, n) (Lemire's method).
func boundedUint64(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}
