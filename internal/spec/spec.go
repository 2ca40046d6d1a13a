// Package spec is mlship's public API in one table: every step's inputs (name,
// type, mlship.yaml key, environment fallbacks, allowed values, secret or not,
// description) and outputs. The command line's flags, the merge of mlship.yaml
// under the flags, the README's reference tables and the front ends' inputs
// (action.yml, GitLab spec: inputs, Dagger arguments) all come from it, so a
// name is written once. Defaults are not here: they are each step package's
// DefaultConfig, read through the struct tags that bind an input to its field
// (`mlship:"batch-size"`).
package spec

import (
	"fmt"
	"slices"
	"strings"
)

// Type is the type of an input's value.
type Type string

// Types.
const (
	String   Type = "string"
	Bool     Type = "bool"
	Int      Type = "int"
	Float    Type = "float"
	Duration Type = "duration" // a Go duration: 90s, 5m, 1h30m
	Strings  Type = "strings"  // a list; a flag takes it comma separated or repeated
	Ints     Type = "ints"     // a list of integers
	Metrics  Type = "metrics"  // metric=value pairs; in mlship.yaml a mapping
	Pairs    Type = "pairs"    // KEY=VALUE pairs (a flag repeated); in mlship.yaml a mapping
	Shape    Type = "shape"    // CHANNELSxHEIGHTxWIDTH; in mlship.yaml also {channels, height, width}
	Convs    Type = "convs"    // FILTERSxKERNEL[pPOOL] blocks; in mlship.yaml also [{filters, kernel, pool}]
)

// Input is one input of a step.
type Input struct {
	// Name is the input's one name: the flag (--name), the action input, the
	// GitLab input and (in camelCase) the Dagger argument. Lower case, dashes.
	Name string `json:"name"`
	Type Type   `json:"type"`
	// Key is the mlship.yaml key, dotted ("train.batch_size"); several steps may
	// read the same key with the same meaning (train.out is train's out and the
	// other steps' model). Empty only with NoKey saying why.
	Key   string `json:"key,omitempty"`
	NoKey string `json:"no_key,omitempty"`
	// Path marks a file or directory path: in mlship.yaml it is relative to the
	// file. With Pairs, the values are paths.
	Path bool `json:"path,omitempty"`
	// PathIfExists (with Path): a path from mlship.yaml is used only when it
	// exists (a later job may not have it).
	PathIfExists bool `json:"path_if_exists,omitempty"`
	// Env lists environment variables read when neither a flag, $MLSHIP_NAME nor
	// mlship.yaml gives a value; the first one set wins.
	Env []string `json:"env_fallbacks,omitempty"`
	// Options are the allowed values (enumerations).
	Options []string `json:"options,omitempty"`
	// Secret inputs are never flags or mlship.yaml keys (they would end up in
	// shell history, process lists and repositories): only the environment
	// variable $MLSHIP_NAME and the Env fallbacks. Front ends mask them.
	Secret bool `json:"secret,omitempty"`
	// Required inputs have no default; the step refuses to run without them.
	Required bool `json:"required,omitempty"`
	// Short is a one-letter flag alias.
	Short string `json:"short,omitempty"`
	// Positional inputs are command-line arguments rather than flags.
	Positional bool `json:"positional,omitempty"`
	// Desc is one line for help, the README and the front ends.
	Desc string `json:"description"`
	// DefaultDoc describes a default that is computed rather than a constant
	// (the constant ones come from the step's DefaultConfig).
	DefaultDoc string `json:"default_doc,omitempty"`
	// Deprecated lists old spellings, still accepted with a warning.
	Deprecated []Alias `json:"deprecated,omitempty"`
}

// Alias is an old spelling of an input.
type Alias struct {
	Flag string `json:"flag,omitempty"` // old flag name, without dashes
	Key  string `json:"key,omitempty"`  // old mlship.yaml key
}

// Output is one output of a step: a GitHub step output, a GitLab dotenv
// variable (upper case, underscores) and a field of `mlship run --json`.
type Output struct {
	Name string `json:"name"`
	Desc string `json:"description"`
}

// Step is one command.
type Step struct {
	Name    string // the command: train, evaluate-gate, ...
	Short   string
	Inputs  []Input
	Outputs []Output
	// Options are the command line's own flags (output format, verbosity):
	// not inputs of the step, so the other front ends do not take them.
	Options []Input
}

// Input returns the step's input of that name.
func (s *Step) Input(name string) (Input, bool) {
	for _, in := range s.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// EnvName is the environment variable that gives an input: MLSHIP_ and the name
// in upper case with underscores (batch-size: MLSHIP_BATCH_SIZE).
func EnvName(name string) string {
	return "MLSHIP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// CamelName is the input's name in lowerCamelCase (Dagger arguments).
func CamelName(name string) string {
	parts := strings.Split(name, "-")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// DotenvName is an output's name in a GitLab dotenv file: upper case, underscores.
func DotenvName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// Steps returns every step, in pipeline order.
func Steps() []*Step { return steps }

// Lookup returns the step of that command name.
func Lookup(name string) *Step {
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Keys returns every mlship.yaml key any step reads (deprecated ones too),
// sorted.
func Keys() []string {
	seen := map[string]bool{}
	for _, s := range steps {
		for _, in := range s.Inputs {
			if in.Key != "" {
				seen[in.Key] = true
			}
			for _, a := range in.Deprecated {
				if a.Key != "" {
					seen[a.Key] = true
				}
			}
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// check verifies the table: names, keys and types are well formed, a key means
// one type everywhere, secrets have no key. It runs in a test and at start-up
// of the generator.
func check() error {
	var errs []string
	keyType := map[string]Type{}
	for _, s := range steps {
		names := map[string]bool{}
		for _, in := range append(slices.Clone(s.Inputs), s.Options...) {
			where := s.Name + " " + in.Name
			if !isName(in.Name) {
				errs = append(errs, where+": bad name")
			}
			if names[in.Name] {
				errs = append(errs, where+": duplicate")
			}
			names[in.Name] = true
			if in.Desc == "" {
				errs = append(errs, where+": no description")
			}
			switch in.Type {
			case String, Bool, Int, Float, Duration, Strings, Ints, Metrics, Pairs, Shape, Convs:
			default:
				errs = append(errs, fmt.Sprintf("%s: unknown type %q", where, in.Type))
			}
			if in.Secret && in.Key != "" {
				errs = append(errs, where+": a secret has no mlship.yaml key")
			}
			if in.Key == "" && in.NoKey == "" {
				errs = append(errs, where+": no mlship.yaml key and no reason (NoKey)")
			}
			if in.Key != "" {
				if t, ok := keyType[in.Key]; ok && t != in.Type {
					errs = append(errs, fmt.Sprintf("%s: key %s is %s here and %s elsewhere", where, in.Key, in.Type, t))
				}
				keyType[in.Key] = in.Type
			}
			if len(in.Options) > 0 && in.Type != String {
				errs = append(errs, where+": options need a string input")
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("spec: %s", strings.Join(errs, "; "))
	}
	return nil
}

func isName(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
