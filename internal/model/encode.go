package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/mlship/mlship/internal/category"
	"github.com/mlship/mlship/internal/dataset"
)

// Input is one of a model's input columns (a feature of the card) and where it
// enters the network.
type Input struct {
	Name string
	// Offset is its first network input: the only one of a numeric feature,
	// the first one-hot input of a categorical one.
	Offset int
	// Encoder maps a categorical feature's categories to its one-hot slots
	// (Offset+slot); nil for a numeric feature.
	Encoder *category.Encoder
}

// Width is the number of network inputs the column takes.
func (in Input) Width() int {
	if in.Encoder == nil {
		return 1
	}
	return in.Encoder.Width()
}

// Layout says how the card's features enter the network, in feature order,
// and how many network inputs they take. It checks the card's categories (each
// names a feature, no category twice, none empty or category.Other) and its
// inputs (when given, they are dataset.InputNames).
func (c *Card) Layout() ([]Input, int, error) {
	for name := range c.Categories {
		if !slices.Contains(c.Features, name) {
			return nil, 0, fmt.Errorf("categories: %q is not a feature", name)
		}
	}
	ins := make([]Input, len(c.Features))
	off := 0
	for j, f := range c.Features {
		ins[j] = Input{Name: f, Offset: off}
		if cats, ok := c.Categories[f]; ok {
			seen := make(map[string]bool, len(cats))
			for _, l := range cats {
				switch {
				case l == "":
					return nil, 0, fmt.Errorf("categories: %q has an empty category", f)
				case l == category.Other:
					return nil, 0, fmt.Errorf("categories: %q lists %q, the name of the slot of the categories it does not list", f, l)
				case seen[l]:
					return nil, 0, fmt.Errorf("categories: %q lists %q twice", f, l)
				}
				seen[l] = true
			}
			ins[j].Encoder = category.NewEncoder(cats)
		}
		off += ins[j].Width()
	}
	if c.Inputs != nil {
		if want := dataset.InputNames(c.Features, c.Categories); !slices.Equal(c.Inputs, want) {
			return nil, 0, fmt.Errorf("inputs: %d names, not the %d the features and categories make (%s)", len(c.Inputs), len(want), listNames(want))
		}
	}
	return ins, off, nil
}

// listNames lists names for an error, the first 8 and a count.
func listNames(names []string) string {
	const shown = 8
	if len(names) <= shown {
		return fmt.Sprint(names)
	}
	return fmt.Sprintf("%v... (%d in all)", names[:shown], len(names))
}

// Inputs are the model's input columns (the card's features) and where they
// enter the network.
func (m *Model) Inputs() []Input { return m.inputs }

// expand writes the network's inputs of a raw row into dst: a numeric
// feature's value as it is, a categorical feature's slot (its category's
// index, as EncodeCategories and the server give it) as 1 in its one-hot
// inputs and 0 in the others; all of them 0 when the value is missing (NaN).
// A slot that is not a whole number in range is the Other slot.
func (m *Model) expand(raw, dst []float64) {
	for j, in := range m.inputs {
		v := raw[j]
		if in.Encoder == nil {
			dst[in.Offset] = v
			continue
		}
		w := in.Encoder.Width()
		oh := dst[in.Offset : in.Offset+w]
		clear(oh)
		if math.IsNaN(v) {
			continue
		}
		slot := w - 1
		if v >= 0 && v < float64(w) && v == math.Trunc(v) {
			slot = int(v)
		}
		oh[slot] = 1
	}
}
