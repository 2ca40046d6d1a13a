package dataset

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Task is the kind of prediction a dataset asks for.
type Task string

// Tasks.
const (
	Binary     Task = "binary"
	Multiclass Task = "multiclass"
	Regression Task = "regression"
)

// ParseTask parses a task name (case-insensitive, surrounding space
// ignored). "" and "auto" give the empty Task, which Build infers.
func ParseTask(s string) (Task, error) {
	switch t := strings.ToLower(strings.TrimSpace(s)); t {
	case "", "auto":
		return "", nil
	case string(Binary), string(Multiclass), string(Regression):
		return Task(t), nil
	}
	return "", fmt.Errorf("unknown task %q (want binary, multiclass, regression or auto)", s)
}

// Classification reports whether t is Binary or Multiclass.
func (t Task) Classification() bool { return t == Binary || t == Multiclass }

// Spec says how to turn a Frame into a Dataset.
type Spec struct {
	Target   string   // target column; required
	Drop     []string // columns to ignore (unknown name -> error)
	Features []string // optional explicit feature list/order (a column empty in every row is an error); empty = all columns except target, Drop and those empty in every row, in file order
	Task     Task     // "" = infer
	// Binarize is an optional "<op><number>" with op in > >= < <= == != ;
	// the positive class (1) is the rows where "target op number" holds.
	// It implies Binary.
	Binarize string
}

// Dataset is a frame split into features and target for one task.
type Dataset struct {
	File      string // the frame's Path, for errors
	Task      Task
	Features  []string
	Target    string
	X         [][]float64    // len = rows, each len(Features); NaN = missing (not imputed here)
	Y         []float64      // classification: class index 0..K-1 (as float); regression: the value
	Classes   []string       // classification: label of each class index; nil for regression
	Lines     []int          // file line per row
	SHA256    string         // hex sha256 of the file
	Missing   int            // missing feature cells in total
	MissingBy map[string]int // per feature, only those > 0; never nil
	// Empty lists the columns left out of Features because they are
	// missing in every row (only when Features was not given), in file order.
	Empty []string
}

// MinRows is the fewest rows Build accepts.
const MinRows = 5

// maxInferredClasses is the most distinct integer target values that are
// inferred as a multiclass task; more are taken as regression.
const maxInferredClasses = 20

// Build selects the features and target of f according to s, checks the
// target against the task (inferring the task when s.Task is empty) and
// encodes it. Inference: 2 distinct target values -> binary; all integers
// and 3..20 distinct values -> multiclass; otherwise regression.
//
// Classification targets are encoded as class indices in the order of the
// sorted distinct values; Classes holds their labels as formatted by
// strconv.FormatFloat(v, 'g', -1, 64). With Binarize, Classes is ["0", "1"].
// A frame with nil Lines (made by hand) gets lines 2, 3, ... .
func Build(f *Frame, s Spec) (*Dataset, error) {
	if f == nil {
		return nil, &Error{Msg: "no frame"}
	}
	fail := func(line int, column, format string, args ...any) (*Dataset, error) {
		return nil, &Error{File: f.Path, Line: line, Column: column, Msg: fmt.Sprintf(format, args...)}
	}

	index := make(map[string]int, len(f.Header))
	for i, h := range f.Header {
		index[h] = i
	}
	target := strings.TrimSpace(s.Target)
	if target == "" {
		return fail(0, "", "no target column given; columns: %s", listColumns(f.Header))
	}
	ti, ok := index[target]
	if !ok {
		return fail(0, "", "target column %q not found; columns: %s", target, listColumns(f.Header))
	}

	drop := make(map[string]bool, len(s.Drop))
	for _, d := range s.Drop {
		d = strings.TrimSpace(d)
		if _, ok := index[d]; !ok {
			return fail(0, "", "drop column %q not found; columns: %s", d, listColumns(f.Header))
		}
		if d == target {
			return fail(0, d, "the target is also listed in drop")
		}
		drop[d] = true
	}

	var features []string
	if len(s.Features) > 0 {
		inList := make(map[string]bool, len(s.Features))
		for _, c := range s.Features {
			c = strings.TrimSpace(c)
			switch _, ok := index[c]; {
			case !ok:
				return fail(0, "", "feature column %q not found; columns: %s", c, listColumns(f.Header))
			case c == target:
				return fail(0, c, "the target is also listed as a feature")
			case drop[c]:
				return fail(0, c, "column is listed both as a feature and in drop")
			case inList[c]:
				return fail(0, c, "feature listed twice")
			}
			inList[c] = true
			features = append(features, c)
		}
	} else {
		for _, h := range f.Header {
			if h != target && !drop[h] {
				features = append(features, h)
			}
		}
	}
	// A column with no value in any row carries nothing to learn from:
	// imputing it would only feed the network a constant. An explicitly
	// requested one is an error; otherwise it is left out and reported.
	var empty []string
	if len(f.Rows) > 0 {
		kept := features[:0:0]
		for _, c := range features {
			if !columnEmpty(f.Rows, index[c]) {
				kept = append(kept, c)
				continue
			}
			if len(s.Features) > 0 {
				return fail(0, c, "is empty in every row (%d rows), so it cannot be a feature; remove it from the features", len(f.Rows))
			}
			empty = append(empty, c)
		}
		features = kept
	}
	if len(features) == 0 {
		if len(empty) > 0 {
			return fail(0, "", "no feature columns left (target %q, %d dropped, %d empty in every row: %s)", target, len(drop), len(empty), listColumns(empty))
		}
		return fail(0, "", "no feature columns left (target %q, %d dropped)", target, len(drop))
	}

	n := len(f.Rows)
	if n < MinRows {
		return fail(0, "", "need at least %d rows, have %d", MinRows, n)
	}
	lines := f.Lines
	switch {
	case lines == nil:
		// A frame made by hand: number rows as if read from a file with
		// the header on line 1 and no blank lines.
		lines = make([]int, n)
		for i := range lines {
			lines[i] = i + 2
		}
	case len(lines) != n:
		return fail(0, "", "frame has %d rows but %d line numbers", n, len(lines))
	default:
		lines = slices.Clone(lines)
	}
	line := func(i int) int { return lines[i] }

	// Target values.
	if columnEmpty(f.Rows, ti) {
		return fail(0, target, "the target column is empty in every row (%d rows)", n)
	}
	y := make([]float64, n)
	for i, row := range f.Rows {
		if len(row) != len(f.Header) {
			return fail(line(i), "", "row has %d cells, want %d", len(row), len(f.Header))
		}
		v := row[ti]
		if math.IsNaN(v) {
			return fail(line(i), target, "target value is missing")
		}
		if math.IsInf(v, 0) {
			return fail(line(i), target, "target value is not finite")
		}
		if v == 0 {
			v = 0 // no -0
		}
		y[i] = v
	}

	task := s.Task
	switch task {
	case "", Binary, Multiclass, Regression:
	default:
		return fail(0, "", "unknown task %q (want binary, multiclass or regression)", string(task))
	}
	var classes []string
	if b := strings.TrimSpace(s.Binarize); b != "" {
		if task != "" && task != Binary {
			return fail(0, target, "binarize %q needs a binary task, not %s", b, task)
		}
		pred, err := parseBinarize(b)
		if err != nil {
			return fail(0, target, "%v", err)
		}
		pos := 0
		for i, v := range y {
			if pred(v) {
				y[i] = 1
				pos++
			} else {
				y[i] = 0
			}
		}
		if pos == 0 || pos == n {
			return fail(0, target, "binarize %q puts every row in one class (%d of %d rows positive)", b, pos, n)
		}
		task, classes = Binary, []string{"0", "1"}
	} else {
		distinct := slices.Clone(y)
		slices.Sort(distinct)
		distinct = slices.Compact(distinct)
		if len(distinct) == 1 {
			return fail(0, target, "target is constant (every row is %s)", formatValue(distinct[0]))
		}
		integers := true
		for _, v := range distinct {
			if v != math.Trunc(v) {
				integers = false
				break
			}
		}
		switch task {
		case "":
			switch {
			case len(distinct) == 2:
				task = Binary
			case integers && len(distinct) <= maxInferredClasses:
				task = Multiclass
			default:
				task = Regression
			}
		case Binary:
			if len(distinct) != 2 {
				return fail(0, target, "binary task needs exactly 2 distinct target values, have %d (%s); set binarize to split them", len(distinct), listValues(distinct))
			}
		case Multiclass:
			if !integers {
				return fail(0, target, "multiclass task needs integer target values, have %s", listValues(distinct))
			}
		}
		if task.Classification() {
			classes = make([]string, len(distinct))
			for k, v := range distinct {
				classes[k] = formatValue(v)
			}
			for i, v := range y {
				k, _ := slices.BinarySearch(distinct, v)
				y[i] = float64(k)
			}
		}
	}

	// Features, in one backing array.
	cols := make([]int, len(features))
	for j, c := range features {
		cols[j] = index[c]
	}
	nf := len(features)
	back := make([]float64, n*nf)
	x := make([][]float64, n)
	missingBy := make(map[string]int)
	missing := 0
	for i, row := range f.Rows {
		xi := back[i*nf : (i+1)*nf : (i+1)*nf]
		for j, c := range cols {
			v := row[c]
			if math.IsNaN(v) {
				missing++
				missingBy[features[j]]++
			}
			xi[j] = v
		}
		x[i] = xi
	}

	return &Dataset{
		File:      f.Path,
		Task:      task,
		Features:  features,
		Target:    target,
		X:         x,
		Y:         y,
		Classes:   classes,
		Lines:     lines,
		SHA256:    f.SHA256,
		Missing:   missing,
		MissingBy: missingBy,
		Empty:     empty,
	}, nil
}

// columnEmpty reports whether column c is missing (NaN) in every row; a
// row too short to have it counts as missing.
func columnEmpty(rows [][]float64, c int) bool {
	for _, row := range rows {
		if c < len(row) && !math.IsNaN(row[c]) {
			return false
		}
	}
	return true
}

// Errorf returns an *Error about d's file; line 0 and column "" name none.
func (d *Dataset) Errorf(line int, column, format string, args ...any) error {
	return &Error{File: d.File, Line: line, Column: column, Msg: fmt.Sprintf(format, args...)}
}

// Line is the file line of row i, 0 if unknown.
func (d *Dataset) Line(i int) int {
	if i >= 0 && i < len(d.Lines) {
		return d.Lines[i]
	}
	return 0
}

// NumClasses is len(d.Classes): the number of classes of a classification
// dataset, 0 for regression.
func (d *Dataset) NumClasses() int { return len(d.Classes) }

// parseBinarize parses "<op><number>" into a predicate on target values.
func parseBinarize(expr string) (func(float64) bool, error) {
	bad := func() (func(float64) bool, error) {
		return nil, fmt.Errorf("bad binarize expression %q: want <op><number> with op one of > >= < <= == !=", expr)
	}
	var op string
	for _, o := range []string{">=", "<=", "==", "!=", ">", "<"} {
		if strings.HasPrefix(expr, o) {
			op = o
			break
		}
	}
	if op == "" {
		return bad()
	}
	t, err := strconv.ParseFloat(strings.TrimSpace(expr[len(op):]), 64)
	if err != nil || math.IsInf(t, 0) || math.IsNaN(t) {
		return bad()
	}
	switch op {
	case ">=":
		return func(v float64) bool { return v >= t }, nil
	case "<=":
		return func(v float64) bool { return v <= t }, nil
	case "==":
		return func(v float64) bool { return v == t }, nil
	case "!=":
		return func(v float64) bool { return v != t }, nil
	case ">":
		return func(v float64) bool { return v > t }, nil
	default: // "<"
		return func(v float64) bool { return v < t }, nil
	}
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// listColumns lists column names for an error message, truncated.
func listColumns(cols []string) string {
	const max = 12
	if len(cols) <= max {
		return strings.Join(cols, ", ")
	}
	return fmt.Sprintf("%s, ... (%d more)", strings.Join(cols[:max], ", "), len(cols)-max)
}

// listValues lists sorted distinct values for an error message, truncated.
func listValues(vs []float64) string {
	const max = 8
	var b strings.Builder
	for i, v := range vs {
		if i == max {
			fmt.Fprintf(&b, ", ... (%d more)", len(vs)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(formatValue(v))
	}
	return b.String()
}
