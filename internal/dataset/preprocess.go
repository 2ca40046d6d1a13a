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
// train split).
//
// The statistics are computed on each column scaled by a power of two that
// brings its largest magnitude near 1: the scaling is exact, so the result
// is the same as unscaled wherever that is representable, and a column of
// values near 1e300 or 1e-300 gives the same standardised values as one near
// 1 instead of overflowing or underflowing the squares. It is an *Error
// naming the column when a feature has no value in rows, when its values
// are so far apart that their difference overflows float64, or when their
// spread is below the smallest normal float64. Every product is rounded before
// it is added (float64(x*y)), so that no architecture fuses the two into one
// FMA instruction: the constants are the same bits on every GOARCH.
func FitPreprocessor(d *Dataset, rows []int) (Preprocessor, error) {
	nf := len(d.Features)
	p := Preprocessor{
		Impute: make([]float64, nf),
		Mean:   make([]float64, nf),
		Std:    make([]float64, nf),
	}
	for j := range nf {
		var (
			count      int
			lo, hi     = math.Inf(1), math.Inf(-1)
			loAt, hiAt int // rows of lo and hi
		)
		for _, i := range rows {
			v := d.X[i][j]
			if math.IsNaN(v) {
				continue
			}
			count++
			if v < lo {
				lo, loAt = v, i
			}
			if v > hi {
				hi, hiAt = v, i
			}
		}
		if count == 0 {
			return Preprocessor{}, d.Errorf(0, d.Features[j], "has no value in the %d training rows (its values are all in the validation and test rows); drop it", len(rows))
		}
		if lo == hi {
			// Constant (after imputation too): keep the exact value so
			// that it transforms to exactly 0.
			p.Impute[j], p.Mean[j], p.Std[j] = lo, lo, 1
			continue
		}
		if err := d.checkRange(d.Features[j], lo, hi, loAt, hiAt); err != nil {
			return Preprocessor{}, err
		}
		down, up := pow2Scale(max(-lo, hi))
		var sum float64
		for _, i := range rows {
			if v := d.X[i][j]; !math.IsNaN(v) {
				sum += float64(v * down)
			}
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
			dv := float64(v*down) - mean
			ss += float64(dv * dv)
			comp += dv
		}
		// Correct the mean's rounding error (two-pass corrected algorithm).
		total := float64(len(rows))
		variance := (ss - float64(comp*comp)/total) / total
		std := math.Sqrt(max(variance, 0))
		switch {
		case std == 0 || math.IsNaN(std):
			// Equal up to rounding: a constant.
			std = 1
		case std*up < smallestNormal:
			return Preprocessor{}, d.Errorf(0, d.Features[j], "values from %s to %s are too close together to standardise in float64 (standard deviation %s); rescale the column",
				formatValue(lo), formatValue(hi), formatValue(std*up))
		default:
			std *= up
		}
		p.Impute[j], p.Mean[j], p.Std[j] = mean*up, mean*up, std
	}
	return p, nil
}

// Scale fits the mean and the population standard deviation of values[i]
// for i in rows, computed in the same scaled way as FitPreprocessor; a
// constant gets standard deviation 1. It is an *Error naming column when
// the values' range overflows float64 or their spread is below the
// smallest normal float64. Every value must be finite.
func (d *Dataset) Scale(column string, values []float64, rows []int) (mean, std float64, err error) {
	if len(rows) == 0 {
		return 0, 1, nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var loAt, hiAt int
	for _, i := range rows {
		if v := values[i]; v < lo {
			lo, loAt = v, i
		}
		if v := values[i]; v > hi {
			hi, hiAt = v, i
		}
	}
	if err := d.checkRange(column, lo, hi, loAt, hiAt); err != nil {
		return 0, 0, err
	}
	down, up := pow2Scale(max(-lo, hi))
	for _, i := range rows {
		mean += float64(values[i] * down)
	}
	mean /= float64(len(rows))
	v := 0.0
	for _, i := range rows {
		dv := float64(values[i]*down) - mean
		v += float64(dv * dv)
	}
	std = math.Sqrt(v / float64(len(rows)))
	switch {
	case std == 0 || math.IsNaN(std):
		std = 1
	case std*up < smallestNormal:
		return 0, 0, d.Errorf(0, column, "values from %s to %s are too close together to standardise in float64 (standard deviation %s); rescale the column",
			formatValue(lo), formatValue(hi), formatValue(std*up))
	default:
		std *= up
	}
	return mean * up, std, nil
}

// StandardizeTarget returns (Y[i]-mean)/std for i in rows; a value that
// overflows is an *Error naming its line and the target column.
func (d *Dataset) StandardizeTarget(mean, std float64, rows []int) ([]float64, error) {
	out := make([]float64, len(rows))
	for k, i := range rows {
		z := (d.Y[i] - mean) / std
		if math.IsInf(z, 0) || math.IsNaN(z) {
			return nil, d.Errorf(d.Line(i), d.Target, "%s standardised with the training mean %s and standard deviation %s overflows float64",
				formatValue(d.Y[i]), formatValue(mean), formatValue(std))
		}
		out[k] = z
	}
	return out, nil
}

// smallestNormal is the smallest positive normal float64, 2^-1022.
const smallestNormal = 0x1p-1022

// pow2Scale returns 2^-e and 2^e for the binary exponent e of m (m > 0),
// clamped so that both are normal numbers. Multiplying by a power of two is
// exact, so statistics of a column multiplied by down are those of the
// column itself, scaled, while its values lie within 2^-24..2^24 of 1: a sum
// of squares neither overflows nor underflows.
func pow2Scale(m float64) (down, up float64) {
	_, e := math.Frexp(m)
	e = min(max(e, -1000), 1000)
	return math.Ldexp(1, -e), math.Ldexp(1, e)
}

// checkRange reports an *Error when hi-lo overflows float64: such a column
// cannot be centred (a value minus the mean may overflow), whatever the
// scale. The line named is that of the value of larger magnitude.
func (d *Dataset) checkRange(column string, lo, hi float64, loAt, hiAt int) error {
	if !math.IsInf(hi-lo, 0) {
		return nil
	}
	at, other, otherAt := hiAt, lo, loAt
	v := hi
	if -lo > hi {
		at, other, otherAt, v = loAt, hi, hiAt, lo
	}
	return d.Errorf(d.Line(at), column, "%s is too far from %s (line %d) for float64: their difference overflows; rescale the column",
		formatValue(v), formatValue(other), d.Line(otherAt))
}

// Standardize returns rows of d transformed by p, in one backing array. A
// value that cannot be represented once standardised (too many standard
// deviations from the training mean for float64) is an *Error naming its
// line and column.
func (d *Dataset) Standardize(p Preprocessor, rows []int) ([][]float64, error) {
	nf := len(d.Features)
	out := make([][]float64, len(rows))
	flat := make([]float64, len(rows)*nf)
	for k, i := range rows {
		z := flat[k*nf : (k+1)*nf : (k+1)*nf]
		p.Transform(d.X[i], z)
		for j, v := range z {
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, d.Errorf(d.Line(i), d.Features[j], "%s standardised with the training mean %s and standard deviation %s overflows float64",
					formatValue(d.X[i][j]), formatValue(p.Mean[j]), formatValue(p.Std[j]))
			}
		}
		out[k] = z
	}
	return out, nil
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
