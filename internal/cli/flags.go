package cli

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/model"
)

// metricMap is a repeatable flag of metric=value pairs, also comma separated:
// --min accuracy=0.8 --min f1=0.7, or --min accuracy=0.8,f1=0.7.
type metricMap map[string]float64

func (m *metricMap) String() string {
	if m == nil || len(*m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(*m))
	for k := range *m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatFloat((*m)[k], 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (m *metricMap) Set(s string) error {
	if *m == nil {
		*m = metricMap{}
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q is not metric=value", part)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q: %q is not a number", part, v)
		}
		(*m)[k] = f
	}
	return nil
}

func (m *metricMap) Type() string { return "metric=value" }

// parseImage parses CxHxW, e.g. 1x8x8.
func parseImage(s string) (*model.Image, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "x")
	if len(parts) != 3 {
		return nil, fmt.Errorf("image %q: want CHANNELSxHEIGHTxWIDTH, e.g. 1x8x8", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("image %q: want CHANNELSxHEIGHTxWIDTH with positive integers", s)
		}
		v[i] = n
	}
	return &model.Image{Channels: v[0], Height: v[1], Width: v[2]}, nil
}

// parseConv parses FILTERSxKERNEL[pPOOL], e.g. 16x3p2.
func parseConv(s string) (model.ConvLayer, error) {
	bad := fmt.Errorf("conv %q: want FILTERSxKERNEL[pPOOL], e.g. 16x3p2", s)
	s = strings.ToLower(strings.TrimSpace(s))
	body, pool, hasPool := strings.Cut(s, "p")
	f, k, ok := strings.Cut(body, "x")
	if !ok {
		return model.ConvLayer{}, bad
	}
	var l model.ConvLayer
	var err error
	if l.Filters, err = strconv.Atoi(f); err != nil || l.Filters <= 0 {
		return l, bad
	}
	if l.Kernel, err = strconv.Atoi(k); err != nil || l.Kernel <= 0 {
		return l, bad
	}
	if hasPool {
		if l.Pool, err = strconv.Atoi(pool); err != nil || l.Pool <= 0 {
			return l, bad
		}
	}
	return l, nil
}
