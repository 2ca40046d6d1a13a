package dataset

import (
	"cmp"
	"math"
	"slices"

	"github.com/mlship/mlship/internal/category"
)

// FitCategories lists the categories of each categorical feature of d (its
// Text) counted on the given rows (the training split): the most frequent
// first (equal counts in CompareLabels order), at most max of them; the
// rarer ones, and any category not in rows, fall in the Other slot. A cell
// spelled category.Other is never listed. A categorical feature with no value
// in rows is an *Error naming it. The map is nil when no feature is
// categorical.
func (d *Dataset) FitCategories(rows []int, max int) (map[string][]string, error) {
	if d.Text == nil {
		return nil, nil
	}
	out := map[string][]string{}
	for j, col := range d.Text {
		if col == nil {
			continue
		}
		counts := map[string]int{}
		seen := 0
		for _, i := range rows {
			if t := col[i]; t != "" {
				counts[t]++
				seen++
			}
		}
		if seen == 0 {
			return nil, d.Errorf(0, d.Features[j], "has no value in the %d training rows (its values are all in the validation and test rows); drop it", len(rows))
		}
		delete(counts, category.Other)
		cats := make([]string, 0, len(counts))
		for c := range counts {
			cats = append(cats, c)
		}
		slices.SortFunc(cats, func(a, b string) int {
			if c := cmp.Compare(counts[b], counts[a]); c != 0 {
				return c
			}
			return CompareLabels(a, b)
		})
		if len(cats) > max {
			cats = cats[:max]
		}
		out[d.Features[j]] = cats
	}
	return out, nil
}

// EncodeCategories writes each categorical feature's one-hot slot into X, as
// the model's predictor reads a raw row: the category's index in cats, the
// Other slot (len(cats[feature])) for any other, NaN when missing.
func (d *Dataset) EncodeCategories(cats map[string][]string) {
	for j, col := range d.Text {
		if col == nil {
			continue
		}
		e := category.NewEncoder(cats[d.Features[j]])
		for i, t := range col {
			if t == "" {
				d.X[i][j] = math.NaN()
				continue
			}
			slot, _ := e.Slot(t)
			d.X[i][j] = float64(slot)
		}
	}
}

// InputNames are the network's input columns for features with cats: a
// numeric feature is one input of its own name; a categorical one is one
// input per category, "feature=category", and "feature=(other)".
func InputNames(features []string, cats map[string][]string) []string {
	var out []string
	for _, f := range features {
		c, ok := cats[f]
		if !ok {
			out = append(out, f)
			continue
		}
		for _, l := range c {
			out = append(out, f+"="+l)
		}
		out = append(out, f+"="+category.Other)
	}
	return out
}

// OneHot returns d with its categorical features expanded into their one-hot
// columns (InputNames; X of EncodeCategories read as slots): 1 in the row's
// slot, 0 elsewhere, all 0 for a missing value. Numeric features are copied.
// It shares Y, Classes and Lines with d. onehot marks the one-hot columns.
func (d *Dataset) OneHot(cats map[string][]string) (out *Dataset, onehot []bool) {
	names := InputNames(d.Features, cats)
	n := len(names)
	// width[j] is 0 for a numeric feature, else its slots; onehot marks them.
	width := make([]int, len(d.Features))
	onehot = make([]bool, n)
	k := 0
	for j, f := range d.Features {
		c, ok := cats[f]
		if !ok {
			k++
			continue
		}
		width[j] = len(c) + 1
		for s := range width[j] {
			onehot[k+s] = true
		}
		k += width[j]
	}
	back := make([]float64, len(d.X)*n)
	x := make([][]float64, len(d.X))
	for i, row := range d.X {
		xi := back[i*n : (i+1)*n : (i+1)*n]
		k := 0
		for j, v := range row {
			w := width[j]
			if w == 0 {
				xi[k] = v
				k++
				continue
			}
			if !math.IsNaN(v) {
				xi[k+min(int(v), w-1)] = 1
			}
			k += w
		}
		x[i] = xi
	}
	e := *d
	e.Features, e.X, e.Text, e.TextInfo = names, x, nil, nil
	missingBy := map[string]int{}
	e.Missing = 0
	for _, f := range names {
		if c := d.MissingBy[f]; c > 0 {
			missingBy[f] = c
			e.Missing += c
		}
	}
	e.MissingBy = missingBy
	return &e, onehot
}
