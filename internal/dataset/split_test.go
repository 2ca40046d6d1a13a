package dataset

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// classDataset makes a classification dataset with counts[k] rows of
// class k, the classes interleaved.
func classDataset(counts ...int) *Dataset {
	d := &Dataset{Task: Multiclass}
	if len(counts) == 2 {
		d.Task = Binary
	}
	left := slices.Clone(counts)
	for more := true; more; {
		more = false
		for k := range left {
			if left[k] > 0 {
				d.Y = append(d.Y, float64(k))
				left[k]--
				more = true
			}
		}
	}
	for k := range counts {
		d.Classes = append(d.Classes, string(rune('a'+k)))
	}
	return d
}

func regressionDataset(n int) *Dataset {
	d := &Dataset{Task: Regression, Y: make([]float64, n)}
	for i := range d.Y {
		d.Y[i] = float64(i) * 0.5
	}
	return d
}

// checkPartition asserts that s is a partition of 0..n-1 into sorted,
// non-empty sets.
func checkPartition(t *testing.T, s Split, n int) {
	t.Helper()
	for name, set := range map[string][]int{"train": s.Train, "val": s.Val, "test": s.Test} {
		assert.NotEmpty(t, set, name)
		assert.True(t, slices.IsSorted(set), "%s not sorted", name)
	}
	all := slices.Concat(s.Train, s.Val, s.Test)
	slices.Sort(all)
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, want, all, "every row in exactly one set")
}

func TestSplitRowsSizes(t *testing.T) {
	tests := []struct {
		name             string
		n                int
		cfg              SplitConfig
		train, val, test int
	}{
		{"defaults 100", 100, SplitConfig{Seed: 1, TestFrac: 0.2, ValFrac: 0.2}, 64, 16, 20},
		{"defaults 303", 303, SplitConfig{Seed: 1, TestFrac: 0.2, ValFrac: 0.2}, 194, 48, 61},
		{"small", 5, SplitConfig{Seed: 3, TestFrac: 0.2, ValFrac: 0.25}, 3, 1, 1},
		{"half and half", 10, SplitConfig{Seed: 3, TestFrac: 0.5, ValFrac: 0.5}, 2, 3, 5},
		{"negative seed", 50, SplitConfig{Seed: -9, TestFrac: 0.1, ValFrac: 0.1}, 40, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SplitRows(regressionDataset(tt.n), tt.cfg)
			require.NoError(t, err)
			checkPartition(t, s, tt.n)
			assert.Len(t, s.Train, tt.train)
			assert.Len(t, s.Val, tt.val)
			assert.Len(t, s.Test, tt.test)
		})
	}
}

func TestSplitRowsDeterministic(t *testing.T) {
	datasets := map[string]*Dataset{
		"regression": regressionDataset(200),
		"stratified": classDataset(120, 50, 30),
	}
	for name, d := range datasets {
		t.Run(name, func(t *testing.T) {
			cfg := SplitConfig{Seed: 42, TestFrac: 0.2, ValFrac: 0.2, Stratify: true}
			a, err := SplitRows(d, cfg)
			require.NoError(t, err)
			b, err := SplitRows(d, cfg)
			require.NoError(t, err)
			assert.Equal(t, a, b, "same seed, same split")

			cfg.Seed = 43
			c, err := SplitRows(d, cfg)
			require.NoError(t, err)
			assert.NotEqual(t, a.Test, c.Test, "another seed, another split")
		})
	}
}

// TestSplitRowsGolden pins the exact split for a seed: a change here means
// that models trained before the change can no longer be reproduced.
func TestSplitRowsGolden(t *testing.T) {
	tests := []struct {
		name string
		d    *Dataset
		cfg  SplitConfig
		want Split
	}{
		{
			"plain", regressionDataset(10), SplitConfig{Seed: 42, TestFrac: 0.2, ValFrac: 0.25},
			Split{Train: []int{0, 1, 3, 4, 5, 9}, Val: []int{6, 7}, Test: []int{2, 8}},
		},
		{
			"stratified",
			&Dataset{Task: Binary, Classes: []string{"0", "1"}, Y: []float64{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
			SplitConfig{Seed: 7, TestFrac: 0.2, ValFrac: 0.25, Stratify: true},
			Split{Train: []int{0, 3, 4, 5, 7, 8, 9, 11, 14}, Val: []int{1, 10, 13}, Test: []int{2, 6, 12}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SplitRows(tt.d, tt.cfg)
			require.NoError(t, err)
			assert.Equal(t, tt.want, s)
		})
	}
}

func TestSplitRowsStratified(t *testing.T) {
	tests := []struct {
		name string
		d    *Dataset
		cfg  SplitConfig
	}{
		{"balanced binary", classDataset(50, 50), SplitConfig{Seed: 1, TestFrac: 0.2, ValFrac: 0.2, Stratify: true}},
		{"imbalanced binary", classDataset(190, 13), SplitConfig{Seed: 2, TestFrac: 0.2, ValFrac: 0.2, Stratify: true}},
		{"multiclass odd fractions", classDataset(97, 41, 17, 8, 3), SplitConfig{Seed: 3, TestFrac: 0.3, ValFrac: 0.15, Stratify: true}},
		{"class of one row", classDataset(40, 30, 1), SplitConfig{Seed: 4, TestFrac: 0.25, ValFrac: 0.25, Stratify: true}},
	}
	if f, err := ReadCSV(heartPath); err == nil {
		d, err := Build(f, Spec{Target: "target"})
		require.NoError(t, err)
		tests = append(tests, struct {
			name string
			d    *Dataset
			cfg  SplitConfig
		}{"heart", d, SplitConfig{Seed: 5, TestFrac: 0.2, ValFrac: 0.2, Stratify: true}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SplitRows(tt.d, tt.cfg)
			require.NoError(t, err)
			checkPartition(t, s, len(tt.d.Y))
			tf, vf := tt.cfg.TestFrac, tt.cfg.ValFrac
			frac := map[string]float64{"test": tf, "val": (1 - tf) * vf, "train": (1 - tf) * (1 - vf)}
			sets := map[string][]int{"test": s.Test, "val": s.Val, "train": s.Train}
			total := make([]int, len(tt.d.Classes))
			for _, y := range tt.d.Y {
				total[int(y)]++
			}
			for name, set := range sets {
				got := make([]int, len(total))
				for _, i := range set {
					got[int(tt.d.Y[i])]++
				}
				for k, n := range total {
					want := float64(n) * frac[name]
					assert.LessOrEqual(t, math.Abs(float64(got[k])-want), 1.0,
						"%s set, class %d: %d rows, want %.2f", name, k, got[k], want)
				}
			}
		})
	}
}

func TestSplitRowsStratifyIgnoredForRegression(t *testing.T) {
	d := regressionDataset(60)
	a, err := SplitRows(d, SplitConfig{Seed: 9, TestFrac: 0.2, ValFrac: 0.2, Stratify: true})
	require.NoError(t, err)
	b, err := SplitRows(d, SplitConfig{Seed: 9, TestFrac: 0.2, ValFrac: 0.2})
	require.NoError(t, err)
	assert.Equal(t, b, a)
}

func TestSplitRowsErrors(t *testing.T) {
	tests := []struct {
		name string
		d    *Dataset
		cfg  SplitConfig
		msg  string
	}{
		{"nil dataset", nil, SplitConfig{TestFrac: 0.2, ValFrac: 0.2}, "splitting rows: no dataset"},
		{"zero test frac", regressionDataset(10), SplitConfig{ValFrac: 0.2}, "splitting 10 rows (test_frac 0, val_frac 0.2): test_frac must be between 0 and 1 (exclusive)"},
		{"test frac one", regressionDataset(10), SplitConfig{TestFrac: 1, ValFrac: 0.2}, "splitting 10 rows (test_frac 1, val_frac 0.2): test_frac must be between 0 and 1 (exclusive)"},
		{"negative test frac", regressionDataset(10), SplitConfig{TestFrac: -0.1, ValFrac: 0.2}, "splitting 10 rows (test_frac -0.1, val_frac 0.2): test_frac must be between 0 and 1 (exclusive)"},
		{"nan test frac", regressionDataset(10), SplitConfig{TestFrac: math.NaN(), ValFrac: 0.2}, "splitting 10 rows (test_frac NaN, val_frac 0.2): test_frac must be between 0 and 1 (exclusive)"},
		{"zero val frac", regressionDataset(10), SplitConfig{TestFrac: 0.2}, "splitting 10 rows (test_frac 0.2, val_frac 0): val_frac must be between 0 and 1 (exclusive)"},
		{"empty test set", regressionDataset(5), SplitConfig{TestFrac: 0.05, ValFrac: 0.5}, "splitting 5 rows (test_frac 0.05, val_frac 0.5): the test set is empty"},
		{"empty val set", regressionDataset(5), SplitConfig{TestFrac: 0.2, ValFrac: 0.1}, "splitting 5 rows (test_frac 0.2, val_frac 0.1): the validation set is empty"},
		{"empty train set", regressionDataset(5), SplitConfig{TestFrac: 0.6, ValFrac: 0.9}, "splitting 5 rows (test_frac 0.6, val_frac 0.9): the train set is empty"},
		{"stratified classes too small", classDataset(2, 2, 2, 2), SplitConfig{TestFrac: 0.2, ValFrac: 0.2, Stratify: true}, "splitting 8 rows (test_frac 0.2, val_frac 0.2): the test set is empty"},
		{"bad class index", &Dataset{Task: Binary, Classes: []string{"0", "1"}, Y: []float64{0, 1, 2, 0, 1}}, SplitConfig{TestFrac: 0.2, ValFrac: 0.2, Stratify: true}, "splitting 5 rows (test_frac 0.2, val_frac 0.2): row 2 has class index 2, want 0..1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SplitRows(tt.d, tt.cfg)
			require.EqualError(t, err, tt.msg)
		})
	}
}

func TestBoundedUint64Uniform(t *testing.T) {
	// A coarse check that the shuffle is unbiased: over 10000 seeds the
	// single test row of 6 is each row about equally often (within 10%).
	d := regressionDataset(6)
	counts := make([]int, 6)
	for seed := range int64(10000) {
		s, err := SplitRows(d, SplitConfig{Seed: seed, TestFrac: 0.2, ValFrac: 0.2})
		require.NoError(t, err)
		counts[s.Test[0]]++
	}
	for i, c := range counts {
		assert.InDelta(t, 10000.0/6, float64(c), 10000.0/6*0.1, "row %d chosen for test %d times", i, c)
	}
}
