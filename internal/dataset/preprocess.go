package dataset

import (
	"fmt"
	"math"
)

// Preprocessor holds the per-feature constants fitted on training rows:
// missing values are imputed with the training mean, then features are
// standardised. It is stored in the model card.
type Preprocessor struct {
	Impute []float64 `json:"impute"` // per feature mean of non-missing train values (0 if all missing)
	Mean   []float64 `json:"mean"`   // mean after imputation
	Std    []float64 `json:"std"`    // population std after imputation; 0 -> 1
}

// FitPreprocessor fits a Preprocessor on the given rows of d (usually the
// train split). With no rows every feature gets Impute 0, Mean 0, Std 1.
func FitPreprocessor(d *Dataset, rows []int) Preprocessor {
	nf := len(d.Features)
	p := Preprocessor{
		Impute: make([]float64, nf),
		Mean:   make([]float64, nf),
		Std:    make([]float64, nf),
	}
	for j := range nf {
		var (
			sum      float64
			count    int
			lo, hi   = math.Inf(1), math.Inf(-1)
			anyValue bool
		)
		for _, i := range rows {
			v := d.X[i][j]
			if math.IsNaN(v) {
				continue
			}
			sum += v
			count++
			lo, hi = min(lo, v), max(hi, v)
			anyValue = true
		}
		if !anyValue {
			p.Std[j] = 1
			continue
		}
		if lo == hi {
			// Constant (after imputation too): keep the exact value so
			// that it transforms to exactly 0.
			p.Impute[j], p.Mean[j], p.Std[j] = lo, lo, 1
			continue
		}
		mean := sum / float64(count)
		// Imputing with the mean leaves the mean unchanged; imputed cells
		// add nothing to the squared deviations but count in n.
		var ss, comp float64
		for _, i := range rows {
			v := d.X[i][j]
			if math.IsNaN(v) {
				continue
			}
			dv := v - mean
			ss += dv * dv
			comp += dv
		}
		// Correct the mean's rounding error (two-pass corrected algorithm).
		total := float64(len(rows))
		variance := (ss - comp*comp/total) / total
		std := math.Sqrt(max(variance, 0))
		if std == 0 || math.IsNaN(std) {
			std = 1
		}
		p.Impute[j], p.Mean[j], p.Std[j] = mean, mean, std
	}
	return p
}

// Transform writes the preprocessed row into dst: a missing (NaN) value
// becomes Impute[i], then (v-Mean[i])/Std[i]. dst must have len(row)
// elements and may be row itself. It panics if row is longer than the
// fitted feature count; Validate checks that.
func (p Preprocessor) Transform(row, dst []float64) {
	dst = dst[:len(row)]
	for i, v := range row {
		if math.IsNaN(v) {
			v = p.Impute[i]
		}
		dst[i] = (v - p.Mean[i]) / p.Std[i]
	}
}

// Validate checks that p fits n features: each slice has n finite values
// and every Std is positive.
func (p Preprocessor) Validate(n int) error {
	for _, c := range []struct {
		name string
		v    []float64
	}{{"impute", p.Impute}, {"mean", p.Mean}, {"std", p.Std}} {
		if len(c.v) != n {
			return fmt.Errorf("preprocessor: %s has %d values, want %d (one per feature)", c.name, len(c.v), n)
		}
		for i, v := range c.v {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("preprocessor: %s[%d] is %g, want a finite number", c.name, i, v)
			}
			if c.name == "std" && v <= 0 {
				return fmt.Errorf("preprocessor: std[%d] is %g, want > 0", i, v)
			}
		}
	}
	return nil
}
