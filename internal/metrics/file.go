package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"

	"github.com/mlship/mlship/internal/fsutil"
)

// WriteFile writes v to path as a JSON object with sorted keys, two-space
// indentation and a trailing newline. The file is written to a temporary
// file in the same directory and renamed into place, so readers never see a
// partial file. NaN and infinite values cannot be written.
func WriteFile(path string, v Values) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if math.IsNaN(v[k]) || math.IsInf(v[k], 0) {
			return fmt.Errorf("writing metrics %q: %s is %v, which JSON cannot hold", path, k, v[k])
		}
	}
	if v == nil {
		v = Values{}
	}
	data, err := json.MarshalIndent(v, "", "  ") // encoding/json sorts map keys
	if err != nil {
		return fmt.Errorf("writing metrics %q: %w", path, err)
	}
	data = append(data, '\n')
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("writing metrics %q: %w", path, err)
	}
	return nil
}

// ReadFile reads a metrics file written by WriteFile: a JSON object whose
// values are all numbers. Keys are not checked against the known names.
func ReadFile(path string) (Values, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			err = fmt.Errorf("want a JSON object of numbers, got a JSON %s", typeErr.Value)
		}
		return nil, fmt.Errorf("reading metrics %q: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("reading metrics %q: unexpected data after the JSON object", path)
	}
	if raw == nil {
		return nil, fmt.Errorf("reading metrics %q: want a JSON object of numbers, got null", path)
	}
	v := make(Values, len(raw))
	for k, msg := range raw {
		var f *float64
		if err := json.Unmarshal(msg, &f); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				return nil, fmt.Errorf("reading metrics %q: %s is a JSON %s, want a number", path, k, typeErr.Value)
			}
			return nil, fmt.Errorf("reading metrics %q: %s: %w", path, k, err)
		}
		if f == nil {
			return nil, fmt.Errorf("reading metrics %q: %s is null, want a number", path, k)
		}
		v[k] = *f
	}
	return v, nil
}

// Delta compares one metric with its baseline value.
type Delta struct {
	Name     string
	Value    float64
	Baseline float64 // 0 when HasBaseline is false
	Delta    float64 // Value - Baseline; 0 when HasBaseline is false
	// Better is true when Value improves on Baseline in the metric's
	// direction (see HigherIsBetter); false when equal, worse or no baseline.
	Better      bool
	HasBaseline bool
}

// Diff compares every metric of cur with base. The deltas are ordered like
// Names (binary, then multiclass, then regression metrics), unknown names
// last in alphabetical order.
func Diff(cur, base Values) []Delta {
	order := canonical()
	rank := func(name string) int {
		if i := slices.Index(order, name); i >= 0 {
			return i
		}
		return len(order)
	}
	names := make([]string, 0, len(cur))
	for k := range cur {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	out := make([]Delta, 0, len(names))
	for _, name := range names {
		d := Delta{Name: name, Value: cur[name]}
		if b, ok := base[name]; ok {
			d.HasBaseline = true
			d.Baseline = b
			d.Delta = d.Value - b
			if HigherIsBetter(name) {
				d.Better = d.Delta > 0
			} else {
				d.Better = d.Delta < 0
			}
		}
		out = append(out, d)
	}
	return out
}
