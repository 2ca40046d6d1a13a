package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mlship/mlship/internal/fault"
)

// FileName is the config file looked for in a directory.
const FileName = "mlship.yaml"

// File is a read mlship.yaml: the value of every key it sets, with its line.
// Every key must be one that some step reads (Keys), so a typo is an error
// rather than a setting silently ignored.
type File struct {
	// Path is the file as named; Dir is its directory, which relative paths in
	// it are relative to.
	Path, Dir string
	values    map[string]*yaml.Node
	lines     map[string]int
}

// LoadFile reads a config file, or DIR/mlship.yaml when path is a directory.
func LoadFile(path string) (*File, error) {
	st, err := os.Stat(path)
	if err == nil && st.IsDir() {
		path = filepath.Join(path, FileName)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fault.Inputf("reading config %q: no such file", path)
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fault.Inputf("reading config %q: %w", path, err)
	}
	return ParseFile(path, b)
}

// ParseFile decodes config bytes; name is used in errors and to resolve paths.
func ParseFile(name string, b []byte) (*File, error) {
	f := &File{Path: name, Dir: filepath.Dir(name), values: map[string]*yaml.Node{}, lines: map[string]int{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		return nil, fault.Inputf("reading config %q: %s", name, yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fault.Inputf("reading config %q: more than one YAML document", name)
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fault.Inputf("%s:%d: want a mapping of settings (key: value), not a %s", name, root.Line, kindName(root))
	}
	known := Keys()
	if err := f.walk(root, "", known); err != nil {
		return nil, err
	}
	// Every value must parse, whichever command reads the file: a mistake in
	// the deploy section fails training's run too, before any work.
	types := keyTypes()
	var errs []string
	keys := slices.Sorted(maps.Keys(f.values))
	slices.SortStableFunc(keys, func(a, b string) int { return f.lines[a] - f.lines[b] })
	for _, k := range keys {
		if _, err := types[k].parseYAML(f.values[k]); err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %s: %v", f.Path, f.lines[k], k, err))
		}
	}
	if len(errs) > 0 {
		return nil, fault.Input(errors.New(strings.Join(errs, "; ")))
	}
	return f, nil
}

// keyTypes maps every mlship.yaml key (old ones too) to its type.
func keyTypes() map[string]Type {
	out := map[string]Type{}
	for _, s := range steps {
		for _, in := range s.Inputs {
			if in.Key != "" {
				out[in.Key] = in.Type
			}
			for _, a := range in.Deprecated {
				if a.Key != "" {
					out[a.Key] = in.Type
				}
			}
		}
	}
	return out
}

func (f *File) walk(n *yaml.Node, prefix string, known []string) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		if _, dup := f.lines[key]; dup {
			return fault.Inputf("%s:%d: %s is set twice (first on line %d)", f.Path, k.Line, key, f.lines[key])
		}
		switch {
		case slices.Contains(known, key):
			f.values[key] = v
			f.lines[key] = k.Line
		case isSection(key, known):
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue // an empty section
			}
			if v.Kind != yaml.MappingNode {
				return fault.Inputf("%s:%d: %s is a section: want a mapping, not a %s", f.Path, k.Line, key, kindName(v))
			}
			f.lines[key] = k.Line
			if err := f.walk(v, key, known); err != nil {
				return err
			}
		default:
			msg := fmt.Sprintf("%s:%d: unknown key %q", f.Path, k.Line, key)
			if s := suggest(key, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else if prefix != "" {
				var in []string
				for _, kk := range known {
					if rest, ok := strings.CutPrefix(kk, prefix+"."); ok && !strings.Contains(rest, ".") {
						in = append(in, rest)
					}
				}
				msg += fmt.Sprintf(" (%s takes %s)", prefix, strings.Join(in, ", "))
			}
			return fault.Input(errors.New(msg))
		}
	}
	return nil
}

func isSection(key string, known []string) bool {
	for _, k := range known {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// suggest returns the known key closest to key, when it is close.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Has reports whether the file sets key.
func (f *File) Has(key string) bool {
	if f == nil {
		return false
	}
	_, ok := f.values[key]
	return ok
}

// Line is the line key is set on (0 when it is not).
func (f *File) Line(key string) int {
	if f == nil {
		return 0
	}
	return f.lines[key]
}

// Resolve makes a path from the file relative to the file's directory; absolute
// and empty paths are returned as they are.
func (f *File) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || f == nil || f.Dir == "" {
		return p
	}
	return filepath.Join(f.Dir, p)
}

// String decodes a string key ("" when unset or not a string).
func (f *File) String(key string) string {
	if !f.Has(key) {
		return ""
	}
	v, err := String.parseYAML(f.values[key])
	if err != nil {
		return ""
	}
	return v.(string)
}
