package dataset

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/category"
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
	// Binarize is an optional "<op><number>" with op in > >= < <= == !=, or
	// "==<label>" or "!=<label>" for a target of text; the positive class (1)
	// is the rows where "target op operand" holds. It implies Binary.
	Binarize string
	// ReuseFrame lets Build write X into the frame's own rows (each row's
	// first len(Features) cells), so that the data is held once, not twice:
	// the frame's Rows are then X's and must not be read as the frame's.
	ReuseFrame bool
}

// Dataset is a frame split into features and target for one task.
type Dataset struct {
	File      string // the frame's Path, for errors
	Task      Task
	Features  []string
	Target    string
	X         [][]float64    // len = rows, each len(Features); NaN = missing (not imputed here); a categorical feature's cells are NaN until EncodeCategories
	Y         []float64      // classification: class index 0..K-1 (as float); regression: the value
	Classes   []string       // classification: label of each class index; nil for regression
	Lines     []int          // file line per row
	SHA256    string         // hex sha256 of the file
	Missing   int            // missing feature cells in total
	MissingBy map[string]int // per feature, only those > 0; never nil
	// Empty lists the columns left out of Features because they are
	// missing in every row (only when Features was not given), in file order.
	Empty []string
	// Text holds the categorical features, those read from a text column
	// (Frame.Text): Text[j] is nil for a numeric feature, else the cell of
	// each row ("" when missing). Text is nil when no feature is categorical.
	Text [][]string
	// TextInfo describes, per feature (indexed like Features), the text
	// column a categorical feature was read from; TargetText the target's,
	// nil when the target is numbers.
	TextInfo   []TextInfo
	TargetText *TextInfo
}

// MinRows is the fewest rows Build accepts.
const MinRows = 5

// maxInferredClasses is the most distinct integer target values that are
// inferred as a multiclass task; more are taken as regression.
const maxInferredClasses = 20

// Build selects the features and target of f according to s, checks the
// target against the task (inferring the task when s.Task is empty) and
// encodes it. Inference: 2 distinct target values -> binary; all integers
// and 3..20 distinct values -> multiclass; otherwise regression. A target of
// text (a text column, Frame.Text) is a classification target: binary with 2
// labels, else multiclass; never regression.
//
// Classification targets are encoded as class indices in the order of the
// sorted distinct values; Classes holds their labels as formatted by
// strconv.FormatFloat(v, 'g', -1, 64). Labels of a text target are sorted by
// CompareLabels (numbers by value before text, text by bytes). With
// Binarize, Classes is ["0", "1"]. A feature read from a text column is
// categorical (Text); its cells in X are NaN until EncodeCategories.
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
			if !f.columnEmpty(index[c]) {
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
	if f.columnEmpty(ti) {
		return fail(0, target, "the target column is empty in every row (%d rows)", n)
	}
	for i, row := range f.Rows {
		if len(row) != len(f.Header) {
			return fail(line(i), "", "row has %d cells, want %d", len(row), len(f.Header))
		}
	}
	task := s.Task
	switch task {
	case "", Binary, Multiclass, Regression:
	default:
		return fail(0, "", "unknown task %q (want binary, multiclass or regression)", string(task))
	}
	var (
		y          []float64
		classes    []string
		targetText *TextInfo
		err        error
	)
	if f.IsText(ti) {
		info := f.TextInfo[ti]
		targetText = &info
		task, y, classes, err = textTarget(f, ti, s, task, line)
	} else {
		task, y, classes, err = numberTarget(f, ti, s, task, line)
	}
	if err != nil {
		return nil, err
	}

	// Features, in one backing array.
	cols := make([]int, len(features))
	var text [][]string
	var textInfo []TextInfo
	for j, c := range features {
		cols[j] = index[c]
		if f.IsText(cols[j]) {
			if text == nil {
				text = make([][]string, len(features))
				textInfo = make([]TextInfo, len(features))
			}
			text[j], textInfo[j] = f.Text[cols[j]], f.TextInfo[cols[j]]
		}
	}
	nf := len(features)
	var back, tmp []float64
	var x [][]float64
	if s.ReuseFrame {
		// Row i's features are gathered into tmp, then copied to the start of
		// row i itself (nf <= its cells), in place of a second copy of the data.
		x, tmp = f.Rows, make([]float64, nf)
	} else {
		back, x = make([]float64, n*nf), make([][]float64, n)
	}
	missingBy := make(map[string]int)
	missing := 0
	for i, row := range f.Rows {
		var xi []float64
		if s.ReuseFrame {
			xi = row[:nf:nf]
		} else {
			xi = back[i*nf : (i+1)*nf : (i+1)*nf]
		}
		dst := xi
		if s.ReuseFrame {
			dst = tmp
		}
		for j, c := range cols {
			v := row[c]
			if text != nil && text[j] != nil {
				v = math.NaN()
				if text[j][i] == "" {
					missing++
					missingBy[features[j]]++
				}
			} else if math.IsNaN(v) {
				missing++
				missingBy[features[j]]++
			}
			dst[j] = v
		}
		if s.ReuseFrame {
			copy(xi, tmp)
		}
		x[i] = xi
	}

	return &Dataset{
		File:       f.Path,
		Task:       task,
		Features:   features,
		Target:     target,
		X:          x,
		Y:          y,
		Classes:    classes,
		Lines:      lines,
		SHA256:     f.SHA256,
		Missing:    missing,
		MissingBy:  missingBy,
		Empty:      empty,
		Text:       text,
		TextInfo:   textInfo,
		TargetText: targetText,
	}, nil
}

// columnEmpty reports whether column c is missing in every row (NaN, or ""
// in a text column); a row too short to have it counts as missing.
func (f *Frame) columnEmpty(c int) bool {
	if f.IsText(c) {
		for _, t := range f.Text[c] {
			if t != "" {
				return false
			}
		}
		return true
	}
	for _, row := range f.Rows {
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

// binarizer is a parsed binarize expression: "target op operand".
type binarizer struct {
	expr   string
	op     string
	number bool    // the operand is a number (true and false are 1 and 0)
	value  float64 // the operand, when a number
	label  string  // the operand as a label (category.Canon's text)
}

// parseBinarize parses "<op><number>", or "==<label>" or "!=<label>".
func parseBinarize(expr string) (binarizer, error) {
	bad := func() (binarizer, error) {
		return binarizer{}, fmt.Errorf("bad binarize expression %q: want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>", expr)
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
	operand := strings.TrimSpace(expr[len(op):])
	v, kind := category.Parse(operand)
	switch kind {
	case category.Number:
		return binarizer{expr: expr, op: op, number: true, value: v, label: category.FormatNumber(v)}, nil
	case category.Text:
		if op != "==" && op != "!=" {
			return binarizer{}, fmt.Errorf("bad binarize expression %q: %s compares numbers and %s is not one; a label is compared with == or != only", expr, op, quoteCell(operand))
		}
		return binarizer{expr: expr, op: op, label: operand}, nil
	}
	return bad()
}

// ordered reports whether b needs numbers (an op other than == and !=).
func (b binarizer) ordered() bool { return b.op != "==" && b.op != "!=" }

// holds applies b to a number.
func (b binarizer) holds(v float64) bool {
	if !b.number {
		return b.op == "!=" // a number is never the label
	}
	t := b.value
	switch b.op {
	case ">=":
		return v >= t
	case "<=":
		return v <= t
	case "==":
		return v == t
	case "!=":
		return v != t
	case ">":
		return v > t
	default: // "<"
		return v < t
	}
}

// holdsLabel applies b (== or !=) to a label: the text of a text column's cell.
func (b binarizer) holdsLabel(label string) bool {
	return (label == b.label) == (b.op == "==")
}

// binarizeFor parses a target's binarize expression for task: b is the
// expression trimmed, "" when there is none (then bz is unset).
func binarizeFor(expr string, task Task) (bz binarizer, b string, err error) {
	b = strings.TrimSpace(expr)
	if b == "" {
		return binarizer{}, "", nil
	}
	if task != "" && task != Binary {
		return binarizer{}, b, fmt.Errorf("binarize %q needs a binary task, not %s", b, task)
	}
	bz, err = parseBinarize(b)
	return bz, b, err
}

// numberTarget encodes a target column of numbers.
func numberTarget(f *Frame, ti int, s Spec, task Task, line func(int) int) (Task, []float64, []string, error) {
	target := f.Header[ti]
	fail := func(line int, format string, args ...any) (Task, []float64, []string, error) {
		return "", nil, nil, &Error{File: f.Path, Line: line, Column: target, Msg: fmt.Sprintf(format, args...)}
	}
	n := len(f.Rows)
	y := make([]float64, n)
	for i, row := range f.Rows {
		v := row[ti]
		if math.IsNaN(v) {
			return fail(line(i), "target value is missing")
		}
		if math.IsInf(v, 0) {
			return fail(line(i), "target value is not finite")
		}
		if v == 0 {
			v = 0 // no -0
		}
		y[i] = v
	}
	if bz, b, err := binarizeFor(s.Binarize, task); err != nil {
		return fail(0, "%v", err)
	} else if b != "" {
		if !bz.number {
			return fail(0, "binarize %q compares with the label %s, but the target holds numbers only; compare with a number", b, quoteCell(bz.label))
		}
		return binarizeRows(f, target, b, y, bz.holds)
	}
	distinct := slices.Clone(y)
	slices.Sort(distinct)
	distinct = slices.Compact(distinct)
	if len(distinct) == 1 {
		return fail(0, "target is constant (every row is %s)", formatValue(distinct[0]))
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
			return fail(0, "binary task needs exactly 2 distinct target values, have %d (%s); set binarize to split them", len(distinct), listValues(distinct))
		}
	case Multiclass:
		if !integers {
			return fail(0, "multiclass task needs integer target values, have %s", listValues(distinct))
		}
	}
	var classes []string
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
	return task, y, classes, nil
}

// binarizeRows turns y into 0/1 by pos (applied to row i's value) and checks
// that both classes have rows.
func binarizeRows[T any](f *Frame, target, expr string, vals []T, pos func(T) bool) (Task, []float64, []string, error) {
	y := make([]float64, len(vals))
	n := 0
	for i, v := range vals {
		if pos(v) {
			y[i] = 1
			n++
		}
	}
	if n == 0 || n == len(vals) {
		return "", nil, nil, &Error{File: f.Path, Column: target, Msg: fmt.Sprintf("binarize %q puts every row in one class (%d of %d rows positive)", expr, n, len(vals))}
	}
	return Binary, y, []string{"0", "1"}, nil
}

// textTarget encodes a target read from a text column: class labels, the
// classes sorted by CompareLabels.
func textTarget(f *Frame, ti int, s Spec, task Task, line func(int) int) (Task, []float64, []string, error) {
	target := f.Header[ti]
	info := f.TextInfo[ti]
	fail := func(line int, format string, args ...any) (Task, []float64, []string, error) {
		return "", nil, nil, &Error{File: f.Path, Line: line, Column: target, Msg: fmt.Sprintf(format, args...)}
	}
	labels := f.Text[ti]
	for i, l := range labels {
		if l == "" {
			return fail(line(i), "target value is missing")
		}
	}
	if task == Regression {
		return fail(info.Line, "a regression target must be numbers, and %s is not one (a target of text is a classification target: set task to binary or multiclass, or fix the cell)", quoteCell(info.Cell))
	}
	if bz, b, err := binarizeFor(s.Binarize, task); err != nil {
		return fail(0, "%v", err)
	} else if b != "" {
		if bz.ordered() {
			return fail(info.Line, "binarize %q compares numbers, and the target holds text (%s); compare a label with == or !=", b, quoteCell(info.Cell))
		}
		return binarizeRows(f, target, b, labels, bz.holdsLabel)
	}
	distinct := slices.Clone(labels)
	slices.SortFunc(distinct, CompareLabels)
	distinct = slices.Compact(distinct)
	if len(distinct) == 1 {
		return fail(0, "target is constant (every row is %s)", quoteCell(distinct[0]))
	}
	switch task {
	case "":
		task = Multiclass
		if len(distinct) == 2 {
			task = Binary
		}
	case Binary:
		if len(distinct) != 2 {
			return fail(0, "binary task needs exactly 2 distinct target values, have %d (%s); set binarize to split them", len(distinct), listLabels(distinct))
		}
	}
	index := make(map[string]int, len(distinct))
	for k, l := range distinct {
		index[l] = k
	}
	y := make([]float64, len(labels))
	for i, l := range labels {
		y[i] = float64(index[l])
	}
	return task, y, distinct, nil
}

// CompareLabels orders class labels: labels that are numbers first, by value,
// then the others by their bytes.
func CompareLabels(a, b string) int {
	va, ka := category.Parse(a)
	vb, kb := category.Parse(b)
	an, bn := ka == category.Number, kb == category.Number
	switch {
	case an && bn:
		if c := cmp.Compare(va, vb); c != 0 {
			return c
		}
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

// listLabels lists sorted distinct labels for an error message, truncated.
func listLabels(ls []string) string {
	const max = 8
	q := make([]string, 0, min(len(ls), max))
	for _, l := range ls[:min(len(ls), max)] {
		q = append(q, quoteCell(l))
	}
	s := strings.Join(q, ", ")
	if len(ls) > max {
		s += fmt.Sprintf(", ... (%d more)", len(ls)-max)
	}
	return s
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
