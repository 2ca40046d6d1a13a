package dataset

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFitPreprocessor(t *testing.T) {
	// columns: a (one missing), b (constant with a missing), d (only rows
	// 0..3 are used), e (non-representable constant)
	d := &Dataset{
		Features: []string{"a", "b", "d", "e"},
		X: [][]float64{
			{1, 5, 0, 0.1},
			{2, 5, 10, 0.1},
			{nan, 5, 0, nan},
			{3, nan, 10, 0.1},
			{100, 100, 100, 100}, // not in rows
		},
	}
	p, err := FitPreprocessor(d, []int{0, 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, p.Validate(4))
	assert.Equal(t, []float64{2, 5, 5, 0.1}, p.Impute)
	assert.Equal(t, []float64{2, 5, 5, 0.1}, p.Mean)
	// a after imputation: 1,2,2,3 -> population variance 0.5
	assert.InDelta(t, math.Sqrt(0.5), p.Std[0], 1e-15)
	assert.Equal(t, []float64{1, 5}, []float64{p.Std[1], p.Std[2]})
	assert.Equal(t, 1.0, p.Std[3])

	tests := []struct {
		name string
		row  []float64
		want []float64
	}{
		{"missing become zero", []float64{nan, nan, nan, nan}, []float64{0, 0, 0, 0}},
		{"values", []float64{3, 7, 15, 0.1}, []float64{1 / math.Sqrt(0.5), 2, 2, 0}},
		{"mixed", []float64{2, nan, 0, 1.1}, []float64{0, 0, -1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]float64, len(tt.row))
			p.Transform(tt.row, dst)
			assert.InDeltaSlice(t, tt.want, dst, 1e-12)
			// in place gives the same
			in := append([]float64(nil), tt.row...)
			p.Transform(in, in)
			assert.Equal(t, dst, in)
		})
	}
}

// scaledHeart is the heart data with column chol (cholesterol) multiplied by k.
func scaledHeart(t *testing.T, k float64) (*Dataset, Split, int) {
	t.Helper()
	d, err := Build(readReal(t, heartPath), Spec{Target: "target", Binarize: ">0"})
	require.NoError(t, err)
	j := slices.Index(d.Features, "chol")
	require.GreaterOrEqual(t, j, 0)
	for _, row := range d.X {
		row[j] *= k
	}
	s, err := SplitRows(d, SplitConfig{Seed: 1, TestFrac: 0.2, ValFrac: 0.2, Stratify: true})
	require.NoError(t, err)
	return d, s, j
}

// TestFitPreprocessorScaleInvariant: a column multiplied by a huge or tiny
// factor standardises to the same values: exactly for a power of two, to
// rounding otherwise (the products themselves are rounded). Computed naively,
// the squares overflow (1e200) or underflow (1e-200).
func TestFitPreprocessorScaleInvariant(t *testing.T) {
	d0, s, j := scaledHeart(t, 1)
	p0, err := FitPreprocessor(d0, s.Train)
	require.NoError(t, err)
	all := slices.Concat(s.Train, s.Val, s.Test)
	want, err := d0.Standardize(p0, all)
	require.NoError(t, err)
	for _, k := range []float64{1e200, 1e-200, 1e300, 1e-300, 0x1p1000, 0x1p-1000, 1e305} {
		t.Run(strconv.FormatFloat(k, 'g', -1, 64), func(t *testing.T) {
			d, _, _ := scaledHeart(t, k)
			p, err := FitPreprocessor(d, s.Train)
			require.NoError(t, err)
			require.NoError(t, p.Validate(len(d.Features)))
			got, err := d.Standardize(p, all)
			require.NoError(t, err)
			pow2 := false
			if frac, _ := math.Frexp(k); frac == 0.5 {
				pow2 = true
			}
			for i := range got {
				if pow2 {
					require.Equal(t, want[i][j], got[i][j], "row %d", i)
				}
				require.InDelta(t, want[i][j], got[i][j], 1e-12, "row %d", i)
			}
			assert.InEpsilon(t, p0.Std[j]*k, p.Std[j], 1e-14)
			assert.InEpsilon(t, p0.Mean[j]*k, p.Mean[j], 1e-14)
		})
	}
}

// TestFitPreprocessorHugeCells: cells near the float64 maximum used to make
// the sum, and so the mean, infinite and every value NaN.
func TestFitPreprocessorHugeCells(t *testing.T) {
	d := &Dataset{Features: []string{"a"}, X: [][]float64{{1e308}, {1e308}, {1e308}, {1}, {1.7e308}}}
	p, err := FitPreprocessor(d, []int{0, 1, 2, 3, 4})
	require.NoError(t, err)
	require.NoError(t, p.Validate(1))
	got, err := d.Standardize(p, []int{0, 1, 2, 3, 4})
	require.NoError(t, err)
	for _, z := range got {
		assert.False(t, math.IsNaN(z[0]) || math.IsInf(z[0], 0), "%v", got)
	}
	assert.Less(t, got[3][0], -1.5, "the small value is far below the mean")
}

func TestFitPreprocessorErrors(t *testing.T) {
	tests := []struct {
		name string
		x    []float64 // one column, rows on lines 2, 3, ...
		rows []int
		msg  string
	}{
		{"no value in the training rows", []float64{nan, nan, 3, 4}, []int{0, 1}, `reading dataset "d.csv": column "a": has no value in the 2 training rows (its values are all in the validation and test rows); drop it`},
		{"range overflows", []float64{1, -1e308, 2, 1.5e308}, []int{0, 1, 2, 3}, `reading dataset "d.csv": line 5, column "a": 1.5e+308 is too far from -1e+308 (line 3) for float64: their difference overflows; rescale the column`},
		{"range overflows, negative larger", []float64{-1.7e308, 1e308}, []int{0, 1}, `reading dataset "d.csv": line 2, column "a": -1.7e+308 is too far from 1e+308 (line 3) for float64: their difference overflows; rescale the column`},
		{"spread below float64", []float64{0, 0, 0, 0, 5e-324}, []int{0, 1, 2, 3, 4}, `reading dataset "d.csv": column "a": values from 0 to 5e-324 are too close together to standardise in float64 (standard deviation 0); rescale the column`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Dataset{File: "d.csv", Features: []string{"a"}}
			for i, v := range tt.x {
				d.X = append(d.X, []float64{v})
				d.Lines = append(d.Lines, i+2)
			}
			_, err := FitPreprocessor(d, tt.rows)
			require.EqualError(t, err, tt.msg)
			var de *Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, "a", de.Column)
		})
	}
}

// TestStandardizeOverflow: a validation or test value so far from the training
// rows that its standardised value overflows is named by line and column.
func TestStandardizeOverflow(t *testing.T) {
	d := &Dataset{File: "d.csv", Features: []string{"a", "b"}, Lines: []int{2, 3, 4, 5},
		X: [][]float64{{1, 1e-300}, {2, 2e-300}, {3, 3e-300}, {4, 1e300}}}
	p, err := FitPreprocessor(d, []int{0, 1, 2})
	require.NoError(t, err)
	_, err = d.Standardize(p, []int{0, 1, 2})
	require.NoError(t, err)
	_, err = d.Standardize(p, []int{3})
	require.EqualError(t, err, `reading dataset "d.csv": line 5, column "b": 1e+300 standardised with the training mean 2e-300 and standard deviation 8.164965809277262e-301 overflows float64`)
}

func TestScale(t *testing.T) {
	y := []float64{1, 2, 3, 4}
	d := &Dataset{File: "d.csv", Target: "y", Y: y, Lines: []int{2, 3, 4, 5}}
	mean, std, err := d.Scale("y", y, []int{0, 1, 2, 3})
	require.NoError(t, err)
	assert.Equal(t, 2.5, mean)
	assert.Equal(t, math.Sqrt(1.25), std)
	for _, k := range []float64{1e250, 1e-250} {
		yk := []float64{1 * k, 2 * k, 3 * k, 4 * k}
		mk, sk, err := d.Scale("y", yk, []int{0, 1, 2, 3})
		require.NoError(t, err)
		assert.InEpsilon(t, mean*k, mk, 1e-15)
		assert.InEpsilon(t, std*k, sk, 1e-15)
	}
	mean, std, err = d.Scale("y", []float64{7, 7}, []int{0, 1})
	require.NoError(t, err)
	assert.Equal(t, []float64{7, 1}, []float64{mean, std}, "a constant")

	_, _, err = d.Scale("y", []float64{1e308, 1, -1e308}, []int{0, 1, 2})
	require.EqualError(t, err, `reading dataset "d.csv": line 2, column "y": 1e+308 is too far from -1e+308 (line 4) for float64: their difference overflows; rescale the column`)

	z, err := d.StandardizeTarget(2.5, 0.5, []int{3, 0})
	require.NoError(t, err)
	assert.Equal(t, []float64{3, -3}, z)
	d.Y = []float64{1, 2, 3, 1e308}
	_, err = d.StandardizeTarget(2, 1e-10, []int{0, 3})
	require.EqualError(t, err, `reading dataset "d.csv": line 5, column "y": 1e+308 standardised with the training mean 2 and standard deviation 1e-10 overflows float64`)
}

func TestFitPreprocessorStandardises(t *testing.T) {
	f := readReal(t, heartPath)
	d, err := Build(f, Spec{Target: "target", Binarize: ">0"})
	require.NoError(t, err)
	s, err := SplitRows(d, SplitConfig{Seed: 1, TestFrac: 0.2, ValFrac: 0.2, Stratify: true})
	require.NoError(t, err)
	p, err := FitPreprocessor(d, s.Train)
	require.NoError(t, err)
	require.NoError(t, p.Validate(len(d.Features)))

	// After transforming the train rows every feature has mean 0 and
	// population std 1, missing cells included.
	n := float64(len(s.Train))
	for j, name := range d.Features {
		var sum, sq float64
		dst := make([]float64, len(d.Features))
		for _, i := range s.Train {
			p.Transform(d.X[i], dst)
			require.False(t, math.IsNaN(dst[j]), "feature %s row %d", name, i)
			sum += dst[j]
			sq += dst[j] * dst[j]
		}
		mean := sum / n
		assert.InDelta(t, 0, mean, 1e-9, name)
		assert.InDelta(t, 1, math.Sqrt(sq/n-mean*mean), 1e-9, name)
	}
}

func TestPreprocessorValidate(t *testing.T) {
	ok := func() Preprocessor {
		return Preprocessor{Impute: []float64{1, 2}, Mean: []float64{1, 2}, Std: []float64{1, 3}}
	}
	tests := []struct {
		name   string
		mutate func(p *Preprocessor)
		n      int
		msg    string
	}{
		{"valid", func(*Preprocessor) {}, 2, ""},
		{"wrong feature count", func(*Preprocessor) {}, 3, "preprocessor: impute has 2 values, want 3 (one per feature)"},
		{"short mean", func(p *Preprocessor) { p.Mean = p.Mean[:1] }, 2, "preprocessor: mean has 1 values, want 2 (one per feature)"},
		{"missing std", func(p *Preprocessor) { p.Std = nil }, 2, "preprocessor: std has 0 values, want 2 (one per feature)"},
		{"nan impute", func(p *Preprocessor) { p.Impute[1] = math.NaN() }, 2, "preprocessor: impute[1] is NaN, want a finite number"},
		{"inf mean", func(p *Preprocessor) { p.Mean[0] = math.Inf(1) }, 2, "preprocessor: mean[0] is +Inf, want a finite number"},
		{"zero std", func(p *Preprocessor) { p.Std[1] = 0 }, 2, "preprocessor: std[1] is 0, want > 0"},
		{"negative std", func(p *Preprocessor) { p.Std[0] = -1 }, 2, "preprocessor: std[0] is -1, want > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok()
			tt.mutate(&p)
			err := p.Validate(tt.n)
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.msg)
		})
	}
}

func TestPreprocessorJSON(t *testing.T) {
	p := Preprocessor{Impute: []float64{1.5, 0}, Mean: []float64{1.5, -2}, Std: []float64{0.25, 1}}
	b, err := json.Marshal(p)
	require.NoError(t, err)
	assert.JSONEq(t, `{"impute":[1.5,0],"mean":[1.5,-2],"std":[0.25,1]}`, string(b))
	var back Preprocessor
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, p, back)
}
