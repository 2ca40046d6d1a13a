// Package category holds the rules by which a text cell becomes a value: what is
// a missing marker, what is a number (true and false included), and which text a
// cell of a categorical column is, so that training (the CSV), the gate (a CSV)
// and mlship-serve (JSON and Open Inference Protocol tensors) read a cell the
// same way. It depends on the standard library only (mlship-serve's request
// decoder uses it).
package category

import (
	"math"
	"strconv"
	"strings"
)

// Other names the one-hot slot of a categorical feature that takes the
// categories left out of the model's list: those rarer than the listed ones
// in training, and those never seen in training. Cards, the network's input
// names (city=(other)) and the metrics' category labels use it. A cell that
// reads "(other)" is never one of the listed categories: it falls in this slot.
const Other = "(other)"

// IsMissing reports whether a cell value (surrounding space ignored) is a
// missing marker: "", "?", "NA", "NaN", "nan", "N/A", "null" or "NULL".
func IsMissing(cell string) bool {
	switch strings.TrimSpace(cell) {
	case "", "?", "NA", "NaN", "nan", "N/A", "null", "NULL":
		return true
	}
	return false
}

// Bool reads true or false in any case ("TRUE", "False") as 1 or 0; ok is
// false for anything else. Surrounding space is not trimmed.
func Bool(s string) (v float64, ok bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return 1, true
	case strings.EqualFold(s, "false"):
		return 0, true
	}
	return 0, false
}

// Kind is what a trimmed cell holds.
type Kind int

// Kinds of cells.
const (
	Missing  Kind = iota // a missing marker (IsMissing), or a NaN spelling
	Number               // a finite number, or true/false as 1/0
	Infinite             // a number out of float64's range, or an infinity
	Text                 // anything else
)

// Parse reads a cell: a missing marker, a number (as strconv.ParseFloat reads it,
// an underflow being a fine number near 0; true and false in any case are 1 and
// 0), an infinite or overflowing number, or text. Surrounding space is ignored.
// A number is returned in v as read (-0 stays -0).
func Parse(cell string) (v float64, k Kind) {
	s := strings.TrimSpace(cell)
	if IsMissing(s) {
		return math.NaN(), Missing
	}
	if b, ok := Bool(s); ok {
		return b, Number
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case math.IsInf(v, 0):
		return v, Infinite
	case err != nil:
		// ErrRange with a finite value is an underflow to 0 or a
		// subnormal, which is a fine number.
		if !isRange(err) {
			return 0, Text
		}
	case math.IsNaN(v): // "NAN", "nAn": other NaN spellings are missing too
		return v, Missing
	}
	return v, Number
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// FormatNumber is the text of a number as a category or a class label: the
// shortest form that reads back as v (1.0 is "1", 1e3 "1000"), -0 as "0".
func FormatNumber(v float64) string {
	if v == 0 {
		v = 0
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Canon is the category a cell of a categorical column (or a class label) is:
// the cell without surrounding space, or for a number (true and false
// included) its FormatNumber text, so that 1, 1.0 and "1.00" are one category.
// missing is true (and text "") for a missing marker. An infinite number stays
// the text it was written as.
func Canon(cell string) (text string, missing bool) {
	v, k := Parse(cell)
	switch k {
	case Missing:
		return "", true
	case Number:
		return FormatNumber(v), false
	}
	return strings.TrimSpace(cell), false
}

// Encoder maps the categories of one categorical feature to their one-hot
// slots: category i to slot i, anything else to the Other slot,
// len(Categories).
type Encoder struct {
	Categories []string
	index      map[string]int
}

// NewEncoder is the encoder of categories, in slot order.
func NewEncoder(categories []string) *Encoder {
	e := &Encoder{Categories: categories, index: make(map[string]int, len(categories))}
	for i, c := range categories {
		if _, dup := e.index[c]; !dup {
			e.index[c] = i
		}
	}
	return e
}

// Width is the number of one-hot slots: one per category and Other.
func (e *Encoder) Width() int { return len(e.Categories) + 1 }

// Slot is the slot of a category (a Canon text): its index in Categories, or
// the Other slot with known false when it is not one of them.
func (e *Encoder) Slot(text string) (slot int, known bool) {
	if i, ok := e.index[text]; ok {
		return i, true
	}
	return len(e.Categories), false
}

// Label is the name of slot i in metrics and input names: the category, or
// Other.
func (e *Encoder) Label(i int) string {
	if i < len(e.Categories) {
		return e.Categories[i]
	}
	return Other
}
