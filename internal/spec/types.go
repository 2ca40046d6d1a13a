package spec

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mlship/mlship/internal/model"
)

// Formats, as the README and the front ends describe them.
func (t Type) Format() string {
	switch t {
	case Bool:
		return "true or false"
	case Int:
		return "integer"
	case Float:
		return "number"
	case Duration:
		return "duration (90s, 5m, 1h30m)"
	case Strings:
		return "list"
	case Ints:
		return "list of integers"
	case Metrics:
		return "metric=value list"
	case Pairs:
		return "KEY=VALUE list"
	case Shape:
		return "CxHxW"
	case Convs:
		return "FILTERSxKERNEL[pPOOL] list"
	}
	return "string"
}

// List reports whether a flag of this type may be repeated.
func (t Type) List() bool {
	switch t {
	case Strings, Ints, Metrics, Pairs, Convs:
		return true
	}
	return false
}

// splits reports whether a flag value of this type is split at commas.
func (t Type) splits() bool { return t.List() && t != Pairs }

// parseStrings turns the raw values of a flag or variable into a value of the
// type. A list type takes every item (split at commas unless Pairs); the others
// take the last value.
func (t Type) parseStrings(raw []string) (any, error) {
	var items []string
	if t.List() {
		// A list may also come one item a line (a GitHub action's multi-line input).
		var lines []string
		for _, r := range raw {
			lines = append(lines, strings.FieldsFunc(r, func(c rune) bool { return c == '\n' || c == '\r' })...)
		}
		raw = lines
	}
	for _, r := range raw {
		if t.splits() {
			for _, p := range strings.Split(r, ",") {
				if p = strings.TrimSpace(p); p != "" {
					items = append(items, p)
				}
			}
		} else {
			items = append(items, r)
		}
	}
	if !t.List() {
		s := ""
		if len(raw) > 0 {
			s = raw[len(raw)-1]
		}
		return t.parseScalar(s)
	}
	switch t {
	case Strings:
		if items == nil {
			items = []string{}
		}
		return items, nil
	case Ints:
		out := []int{}
		for _, s := range items {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an integer", s)
			}
			out = append(out, n)
		}
		return out, nil
	case Metrics:
		out := map[string]float64{}
		for _, s := range items {
			k, v, ok := strings.Cut(s, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("%q is not metric=value", s)
			}
			f, err := parseFloat(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			out[k] = f
		}
		return out, nil
	case Pairs:
		out := map[string]string{}
		for _, s := range items {
			k, v, ok := strings.Cut(s, "=")
			if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
				return nil, fmt.Errorf("%q is not KEY=VALUE", s)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		return out, nil
	case Convs:
		out := []model.ConvLayer{}
		for _, s := range items {
			l, err := ParseConv(s)
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown type %s", t)
}

func (t Type) parseScalar(s string) (any, error) {
	s = strings.TrimSpace(s)
	switch t {
	case String:
		return s, nil
	case Bool:
		switch strings.ToLower(s) {
		case "true", "1", "yes":
			return true, nil
		case "false", "0", "no", "":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true or false", s)
	case Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case Float:
		return parseFloat(s)
	case Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (like 90s, 5m, 1h30m)", s)
		}
		return d, nil
	case Shape:
		return ParseShape(s)
	}
	return nil, fmt.Errorf("unknown type %s", t)
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return f, nil
}

// ParseShape parses CxHxW, e.g. 1x8x8.
func ParseShape(s string) (*model.Image, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "x")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%q is not CHANNELSxHEIGHTxWIDTH, e.g. 1x8x8", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not CHANNELSxHEIGHTxWIDTH with positive integers", s)
		}
		v[i] = n
	}
	return &model.Image{Channels: v[0], Height: v[1], Width: v[2]}, nil
}

// ParseConv parses FILTERSxKERNEL[pPOOL], e.g. 16x3p2.
func ParseConv(s string) (model.ConvLayer, error) {
	bad := fmt.Errorf("%q is not FILTERSxKERNEL[pPOOL], e.g. 16x3p2", s)
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

// parseYAML decodes a value of the type from an mlship.yaml node.
func (t Type) parseYAML(n *yaml.Node) (any, error) {
	switch t {
	case String, Bool, Int, Float, Duration:
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("want a single value (%s), not a %s", t.Format(), kindName(n))
		}
		if t == Bool && n.Tag != "!!bool" {
			return nil, fmt.Errorf("%q is not true or false", n.Value)
		}
		if t == String && n.Tag == "!!null" {
			return "", nil
		}
		return t.parseScalar(n.Value)
	case Shape:
		switch n.Kind {
		case yaml.ScalarNode:
			return ParseShape(n.Value)
		case yaml.MappingNode:
			var s struct {
				Channels int `yaml:"channels"`
				Height   int `yaml:"height"`
				Width    int `yaml:"width"`
			}
			if err := decodeStrict(n, &s); err != nil {
				return nil, err
			}
			if s.Channels <= 0 || s.Height <= 0 || s.Width <= 0 {
				return nil, fmt.Errorf("channels, height and width must be positive integers")
			}
			return &model.Image{Channels: s.Channels, Height: s.Height, Width: s.Width}, nil
		}
		return nil, fmt.Errorf("want CxHxW or {channels, height, width}, not a %s", kindName(n))
	case Strings, Ints, Convs:
		var items []*yaml.Node
		switch n.Kind {
		case yaml.SequenceNode:
			items = n.Content
		case yaml.ScalarNode:
			if n.Tag == "!!null" {
				return t.parseStrings(nil)
			}
			return t.parseStrings([]string{n.Value})
		default:
			return nil, fmt.Errorf("want a list, not a %s", kindName(n))
		}
		if t == Convs {
			out := []model.ConvLayer{}
			for i, it := range items {
				if it.Kind == yaml.ScalarNode {
					l, err := ParseConv(it.Value)
					if err != nil {
						return nil, fmt.Errorf("item %d: %w", i+1, err)
					}
					out = append(out, l)
					continue
				}
				var l struct {
					Filters int `yaml:"filters"`
					Kernel  int `yaml:"kernel"`
					Pool    int `yaml:"pool"`
				}
				if err := decodeStrict(it, &l); err != nil {
					return nil, fmt.Errorf("item %d: %w", i+1, err)
				}
				if l.Filters <= 0 || l.Kernel <= 0 || l.Pool < 0 {
					return nil, fmt.Errorf("item %d: filters and kernel must be positive, pool 0 or more", i+1)
				}
				out = append(out, model.ConvLayer{Filters: l.Filters, Kernel: l.Kernel, Pool: l.Pool})
			}
			return out, nil
		}
		raw := make([]string, len(items))
		for i, it := range items {
			if it.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("item %d: want a single value, not a %s", i+1, kindName(it))
			}
			raw[i] = it.Value
			if t == Strings {
				// Items are taken as they are: a comma is not a separator here.
				continue
			}
		}
		if t == Strings {
			out := make([]string, len(raw))
			for i, r := range raw {
				out[i] = strings.TrimSpace(r)
			}
			return out, nil
		}
		return t.parseStrings(raw)
	case Metrics, Pairs:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return t.parseStrings(nil)
		}
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("want a mapping (name: value), not a %s", kindName(n))
		}
		raw := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%s: want a single value, not a %s", k.Value, kindName(v))
			}
			raw = append(raw, k.Value+"="+v.Value)
		}
		return t.parseStrings(raw)
	}
	return nil, fmt.Errorf("unknown type %s", t)
}

func decodeStrict(n *yaml.Node, v any) error {
	// Check the keys first: yaml.v3's Node.Decode has no KnownFields.
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping, not a %s", kindName(n))
	}
	rt := reflect.TypeOf(v).Elem()
	var known []string
	for i := range rt.NumField() {
		known = append(known, rt.Field(i).Tag.Get("yaml"))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !slices.Contains(known, n.Content[i].Value) {
			return fmt.Errorf("unknown key %q (known: %s)", n.Content[i].Value, strings.Join(known, ", "))
		}
	}
	if err := n.Decode(v); err != nil {
		return fmt.Errorf("%s", yamlMessage(err))
	}
	return nil
}

func yamlMessage(err error) string {
	if te, ok := err.(*yaml.TypeError); ok {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = strings.TrimPrefix(e, "yaml: ")
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

// FormatValue writes a value the way a flag takes it ("" for zero values that
// mean "not set").
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Duration:
		return shortDuration(x)
	case []string:
		return strings.Join(x, ",")
	case []int:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = strconv.Itoa(n)
		}
		return strings.Join(parts, ",")
	case map[string]float64:
		keys := slices.Sorted(maps.Keys(x))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + strconv.FormatFloat(x[k], 'g', -1, 64)
		}
		return strings.Join(parts, ",")
	case map[string]string:
		keys := slices.Sorted(maps.Keys(x))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + x[k]
		}
		return strings.Join(parts, ",")
	case *model.Image:
		if x == nil {
			return ""
		}
		return fmt.Sprintf("%dx%dx%d", x.Channels, x.Height, x.Width)
	case []model.ConvLayer:
		parts := make([]string, len(x))
		for i, l := range x {
			parts[i] = fmt.Sprintf("%dx%d", l.Filters, l.Kernel)
			if l.Pool > 0 {
				parts[i] += fmt.Sprintf("p%d", l.Pool)
			}
		}
		return strings.Join(parts, ",")
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.String {
		return rv.String()
	}
	return fmt.Sprint(v)
}

// shortDuration is 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
