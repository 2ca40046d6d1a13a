package dataset

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFitPreprocessor(t *testing.T) {
	// columns: a (one missing), b (constant with a missing), c (all
	// missing), d (only rows 0..3 are used), e (non-representable constant)
	d := &Dataset{
		Features: []string{"a", "b", "c", "d", "e"},
		X: [][]float64{
			{1, 5, nan, 0, 0.1},
			{2, 5, nan, 10, 0.1},
			{nan, 5, nan, 0, nan},
			{3, nan, nan, 10, 0.1},
			{100, 100, 100, 100, 100}, // not in rows
		},
	}
	p := FitPreprocessor(d, []int{0, 1, 2, 3})
	require.NoError(t, p.Validate(5))
	assert.Equal(t, []float64{2, 5, 0, 5, 0.1}, p.Impute)
	assert.Equal(t, []float64{2, 5, 0, 5, 0.1}, p.Mean)
	// a after imputation: 1,2,2,3 -> population variance 0.5
	assert.InDelta(t, math.Sqrt(0.5), p.Std[0], 1e-15)
	assert.Equal(t, []float64{1, 1, 5}, []float64{p.Std[1], p.Std[2], p.Std[3]})
	assert.Equal(t, 1.0, p.Std[4])

	tests := []struct {
		name string
		row  []float64
		want []float64
	}{
		{"missing become zero", []float64{nan, nan, nan, nan, nan}, []float64{0, 0, 0, 0, 0}},
		{"values", []float64{3, 7, 2, 15, 0.1}, []float64{1 / math.Sqrt(0.5), 2, 2, 2, 0}},
		{"mixed", []float64{2, nan, -1, 0, 1.1}, []float64{0, 0, -1, -1, 1}},
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

func TestFitPreprocessorNoRows(t *testing.T) {
	d := &Dataset{Features: []string{"a", "b"}, X: [][]float64{{1, 2}}}
	p := FitPreprocessor(d, nil)
	assert.Equal(t, Preprocessor{Impute: []float64{0, 0}, Mean: []float64{0, 0}, Std: []float64{1, 1}}, p)
	require.NoError(t, p.Validate(2))
}

func TestFitPreprocessorStandardises(t *testing.T) {
	f := readReal(t, heartPath)
	d, err := Build(f, Spec{Target: "target", Binarize: ">0"})
	require.NoError(t, err)
	s, err := SplitRows(d, SplitConfig{Seed: 1, TestFrac: 0.2, ValFrac: 0.2, Stratify: true})
	require.NoError(t, err)
	p := FitPreprocessor(d, s.Train)
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
