package dataset

import (
	"fmt"
	"math"
	"strings"
)

// Schema is how a trained model reads a CSV: its features in order and how its
// target was encoded. It lets a model be scored on new data.
type Schema struct {
	Features []string
	Target   string
	Task     Task
	Binarize string   // the rule that made a binary target, if any
	Classes  []string // labels of the class indices (classification)
}

// Labeled picks the schema's features (in the schema's order; other columns are
// ignored) and encodes the target like the model was trained: class indices for
// classification, values for regression. Data need not hold every class, but a
// label the model does not know is an error naming its line.
func Labeled(f *Frame, s Schema) (X [][]float64, Y []float64, err error) {
	fail := func(line int, column, format string, args ...any) ([][]float64, []float64, error) {
		return nil, nil, &Error{File: f.Path, Line: line, Column: column, Msg: fmt.Sprintf(format, args...)}
	}
	index := make(map[string]int, len(f.Header))
	for i, h := range f.Header {
		index[h] = i
	}
	cols := make([]int, len(s.Features))
	var missing []string
	for i, name := range s.Features {
		c, ok := index[name]
		if !ok {
			missing = append(missing, name)
		}
		cols[i] = c
	}
	if len(missing) > 0 {
		return fail(0, "", "the model's feature columns %s are missing; columns: %s", listColumns(missing), listColumns(f.Header))
	}
	ti, ok := index[s.Target]
	if !ok {
		return fail(0, "", "target column %q not found; columns: %s", s.Target, listColumns(f.Header))
	}
	if len(f.Rows) == 0 {
		return fail(0, "", "no data rows")
	}
	var pred func(float64) bool
	if b := strings.TrimSpace(s.Binarize); b != "" {
		if pred, err = parseBinarize(b); err != nil {
			return fail(0, s.Target, "%v", err)
		}
	}
	classIdx := make(map[string]int, len(s.Classes))
	for i, c := range s.Classes {
		classIdx[c] = i
	}
	line := func(i int) int {
		if i < len(f.Lines) {
			return f.Lines[i]
		}
		return i + 2
	}
	flat := make([]float64, len(f.Rows)*len(cols))
	X = make([][]float64, len(f.Rows))
	Y = make([]float64, len(f.Rows))
	for i, row := range f.Rows {
		x := flat[i*len(cols) : (i+1)*len(cols)]
		for j, c := range cols {
			x[j] = row[c]
		}
		X[i] = x
		v := row[ti]
		if math.IsNaN(v) {
			return fail(line(i), s.Target, "target value is missing")
		}
		switch {
		case pred != nil:
			Y[i] = 0
			if pred(v) {
				Y[i] = 1
			}
		case s.Task.Classification():
			if v == 0 {
				v = 0 // no -0
			}
			k, ok := classIdx[formatValue(v)]
			if !ok {
				return fail(line(i), s.Target, "label %s is not one of the model's classes (%s)", formatValue(v), strings.Join(s.Classes, ", "))
			}
			Y[i] = float64(k)
		default:
			Y[i] = v
		}
	}
	return X, Y, nil
}
