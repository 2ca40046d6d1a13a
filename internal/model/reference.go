package model

import (
	"fmt"
	"sort"
)

// ZBuckets are the upper bounds of the buckets that standardised values fall in:
// mlship-serve's mlship_input_feature_zscore histogram (per feature) and
// mlship_predicted_value (regression, at the training target's mean + z std)
// use them, and the card's Reference records the training rows' shares in the
// same buckets, so live traffic can be compared with training. A value v falls
// in the first bucket whose bound is >= v (Prometheus' "le"); past the last
// bound is the +Inf bucket.
var ZBuckets = []float64{-3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3}

// ZBucket is the index of the bucket of ZBuckets (len(ZBuckets): +Inf) that v
// falls in.
func ZBucket(v float64) int { return sort.SearchFloat64s(ZBuckets, v) }

// Reference is the training distribution that live traffic is compared with
// (mlship monitor, the alert rules): each feature's share of the training rows
// in each z-score bucket, and the distribution of the model's predictions on
// its validation rows.
type Reference struct {
	// Buckets are the upper bounds of the buckets (ZBuckets); each Shares slice
	// has one more element, the +Inf bucket.
	Buckets []float64 `json:"buckets"`
	// Rows is the number of training rows the feature shares were counted on.
	Rows int `json:"rows"`
	// Features holds, for each numeric feature in the card's feature order,
	// the share of the training rows (after imputation, standardised) in each
	// bucket. Categorical features are in Categories instead.
	Features []FeatureShares `json:"features"`
	// Categories holds, for each categorical feature in the card's feature
	// order, the share of the training rows in each of its one-hot slots:
	// its categories in the card's order, then the Other slot. Rows missing
	// the feature are in no slot. Absent when every feature is numeric.
	Categories []FeatureShares `json:"categories,omitempty"`
	// Predictions is the distribution of the model's predictions on its
	// validation rows.
	Predictions PredictionShares `json:"predictions"`
}

// FeatureShares is one feature's share of rows per bucket.
type FeatureShares struct {
	Name   string    `json:"name"`
	Shares []float64 `json:"shares"`
}

// PredictionShares is the distribution of a model's predictions on the rows
// it was counted on.
type PredictionShares struct {
	Rows int `json:"rows"`
	// Classes (classification): the share of the rows predicted as each class,
	// in the card's class order.
	Classes []float64 `json:"classes,omitempty"`
	// Values (regression): the share of the predicted values per bucket of
	// ZBuckets applied to the training target (mean + z std), and the
	// predictions' mean and standard deviation.
	Values []float64 `json:"values,omitempty"`
	Mean   *float64  `json:"mean,omitempty"`
	Std    *float64  `json:"std,omitempty"`
}

// Shares counts values into the buckets (the last one is +Inf) and returns
// each bucket's share; all zero for no values.
func Shares(bounds []float64, values []float64) []float64 {
	counts := make([]float64, len(bounds)+1)
	for _, v := range values {
		counts[sort.SearchFloat64s(bounds, v)]++
	}
	if len(values) > 0 {
		n := float64(len(values))
		for i := range counts {
			counts[i] /= n
		}
	}
	return counts
}

// ValueBuckets are the bounds of the regression prediction buckets: the
// training target's mean + z std for z in ZBuckets (mean 0 and std 1 when the
// target was not scaled).
func (c *Card) ValueBuckets() []float64 {
	mean, std := 0.0, 1.0
	if ts := c.TargetScale; ts != nil {
		mean, std = ts.Mean, ts.Std
	}
	b := make([]float64, len(ZBuckets))
	for i, z := range ZBuckets {
		b[i] = float64(z*std) + mean
	}
	return b
}

// validateReference checks that a card's reference fits it.
func (c *Card) validateReference() error {
	r := c.Reference
	if r == nil {
		return nil
	}
	if len(r.Buckets) != len(ZBuckets) {
		return fmt.Errorf("reference: %d buckets, mlship uses %d", len(r.Buckets), len(ZBuckets))
	}
	for i, b := range r.Buckets {
		if b != ZBuckets[i] {
			return fmt.Errorf("reference: bucket %d is %g, mlship uses %g", i+1, b, ZBuckets[i])
		}
	}
	var numeric, categorical []string
	for _, f := range c.Features {
		if _, ok := c.Categories[f]; ok {
			categorical = append(categorical, f)
		} else {
			numeric = append(numeric, f)
		}
	}
	if len(r.Features) != len(numeric) {
		if len(categorical) == 0 {
			return fmt.Errorf("reference: %d features, the model has %d", len(r.Features), len(numeric))
		}
		return fmt.Errorf("reference: %d features, the model has %d numeric ones", len(r.Features), len(numeric))
	}
	for i, f := range r.Features {
		if f.Name != numeric[i] {
			return fmt.Errorf("reference: feature %d is %q, the model's is %q", i+1, f.Name, numeric[i])
		}
		if len(f.Shares) != len(ZBuckets)+1 {
			return fmt.Errorf("reference: feature %q has %d shares, want %d", f.Name, len(f.Shares), len(ZBuckets)+1)
		}
	}
	if len(r.Categories) != len(categorical) {
		return fmt.Errorf("reference: %d categorical features, the model has %d", len(r.Categories), len(categorical))
	}
	for i, f := range r.Categories {
		if f.Name != categorical[i] {
			return fmt.Errorf("reference: categorical feature %d is %q, the model's is %q", i+1, f.Name, categorical[i])
		}
		if want := len(c.Categories[f.Name]) + 1; len(f.Shares) != want {
			return fmt.Errorf("reference: categorical feature %q has %d shares, want %d (its categories and the other slot)", f.Name, len(f.Shares), want)
		}
	}
	p := r.Predictions
	if len(c.Classes) > 0 && len(p.Classes) != len(c.Classes) {
		return fmt.Errorf("reference: %d prediction shares, the model has %d classes", len(p.Classes), len(c.Classes))
	}
	if len(c.Classes) == 0 && p.Rows > 0 && len(p.Values) != len(ZBuckets)+1 {
		return fmt.Errorf("reference: %d prediction value shares, want %d", len(p.Values), len(ZBuckets)+1)
	}
	return nil
}
