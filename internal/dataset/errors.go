// Package dataset reads numeric CSV files into frames, turns a frame into a
// training dataset (features, target, task), splits rows deterministically
// and fits the preprocessing (imputation and standardisation) that a model
// stores next to its weights.
package dataset

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is the error returned for every problem with a dataset file or with
// the spec applied to it. Line and Column are omitted from the message when
// they are zero or empty.
//
//	reading dataset "heart.csv": line 12, column "age": "abc" is not a number
type Error struct {
	File   string // the path or name the frame was read from
	Line   int    // 1-based line in the file (the header is line 1); 0 if unknown
	Column string // column name; "" if not about one column
	Msg    string // what is wrong, lowercase
	Err    error  // underlying error, if any (os, csv or io errors)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("reading dataset")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.File))
	}
	sep := ": "
	if e.Line > 0 {
		b.WriteString(sep)
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		sep = ", "
	}
	if e.Column != "" {
		b.WriteString(sep)
		b.WriteString("column ")
		b.WriteString(strconv.Quote(e.Column))
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// quoteCell quotes a cell value for an error message, shortening long values
// so that the message stays on one readable line.
func quoteCell(s string) string {
	const max = 40
	if len(s) > max {
		// cut on a rune boundary
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
