package dataset

import (
	"fmt"
	"math"
	"strings"

	"github.com/mlship/mlship/internal/category"
)

// Schema is how a trained model reads a CSV: its features in order and how its
// target was encoded. It lets a model be scored on new data.
type Schema struct {
	Features []string
	Target   string
	Task     Task
	Binarize string   // the rule that made a binary target, if any
	Classes  []string // labels of the class indices (classification)
	// Categories lists, for each categorical feature, its categories in the
	// order of their one-hot slots (the model card's); nil or absent for a
	// numeric feature.
	Categories map[string][]string
}

// Labeled picks the schema's features (in the schema's order; other columns are
// ignored) and encodes the target like the model was trained: class indices for
// classification, values for regression. Data need not hold every class, but a
// label the model does not know is an error naming its line. A categorical
// feature's cell becomes its slot (category.Encoder: the category's index, the
// Other slot for a category the model does not list, NaN when missing); a text
// cell in a numeric feature's column is an error naming its line and column.
func Labeled(f *Frame, s Schema) (X [][]float64, Y []float64, err error) {
	fail := func(line int, column, format string, args ...any) ([][]float64, []float64, error) {
		return nil, nil, &Error{File: f.Path, Line: line, Column: column, Msg: fmt.Sprintf(format, args...)}
	}
	index := make(map[string]int, len(f.Header))
	for i, h := range f.Header {
		index[h] = i
	}
	cols := make([]int, len(s.Features))
	encoders := make([]*category.Encoder, len(s.Features))
	var missing []string
	for i, name := range s.Features {
		c, ok := index[name]
		if !ok {
			missing = append(missing, name)
		}
		cols[i] = c
		if cats, ok := s.Categories[name]; ok {
			encoders[i] = category.NewEncoder(cats)
		}
	}
	if len(missing) > 0 {
		return fail(0, "", "the model's feature columns %s are missing; columns: %s", listColumns(missing), listColumns(f.Header))
	}
	for i, c := range cols {
		if encoders[i] == nil && f.IsText(c) {
			ti := f.TextInfo[c]
			return fail(ti.Line, s.Features[i], "%s is not a number (the model's feature %q is numeric)", quoteCell(ti.Cell), s.Features[i])
		}
	}
	ti, ok := index[s.Target]
	if !ok {
		return fail(0, "", "target column %q not found; columns: %s", s.Target, listColumns(f.Header))
	}
	if len(f.Rows) == 0 {
		return fail(0, "", "no data rows")
	}
	targetText := f.IsText(ti)
	var bz *binarizer
	if b := strings.TrimSpace(s.Binarize); b != "" {
		p, err := parseBinarize(b)
		if err != nil {
			return fail(0, s.Target, "%v", err)
		}
		if targetText && p.ordered() {
			info := f.TextInfo[ti]
			return fail(info.Line, s.Target, "binarize %q compares numbers, and the target holds text (%s)", b, quoteCell(info.Cell))
		}
		bz = &p
	}
	if bz == nil && !s.Task.Classification() && targetText {
		info := f.TextInfo[ti]
		return fail(info.Line, s.Target, "%s is not a number (the model predicts a number)", quoteCell(info.Cell))
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
			if e := encoders[j]; e != nil {
				x[j] = slotOf(f, e, i, c)
				continue
			}
			x[j] = row[c]
		}
		X[i] = x
		// The target's label: its text, or a number's shortest text.
		var label string
		v := row[ti]
		if targetText {
			label = f.Text[ti][i]
		} else if !math.IsNaN(v) {
			if v == 0 {
				v = 0 // no -0
			}
			label = formatValue(v)
		}
		if label == "" {
			return fail(line(i), s.Target, "target value is missing")
		}
		switch {
		case bz != nil:
			var pos bool
			if targetText {
				pos = bz.holdsLabel(label)
			} else {
				pos = bz.holds(v)
			}
			Y[i] = 0
			if pos {
				Y[i] = 1
			}
		case s.Task.Classification():
			k, ok := classIdx[label]
			if !ok {
				shown := label
				if targetText {
					shown = quoteCell(label)
				}
				return fail(line(i), s.Target, "label %s is not one of the model's classes (%s)", shown, strings.Join(s.Classes, ", "))
			}
			Y[i] = float64(k)
		default:
			Y[i] = v
		}
	}
	return X, Y, nil
}

// slotOf is the one-hot slot of row i's cell in column c by e, as a float; NaN
// when the cell is missing.
func slotOf(f *Frame, e *category.Encoder, i, c int) float64 {
	var text string
	if f.IsText(c) {
		text = f.Text[c][i]
	} else if v := f.Rows[i][c]; !math.IsNaN(v) {
		text = category.FormatNumber(v)
	}
	if text == "" {
		return math.NaN()
	}
	slot, _ := e.Slot(text)
	return float64(slot)
}
