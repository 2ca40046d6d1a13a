package spec

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
)

// OriginKind says where a value came from.
type OriginKind int

// Origins, in order of precedence (highest first).
const (
	Unset        OriginKind = iota
	FromFlag                // the command line
	FromSet                 // set by the program (mlship run places its outputs)
	FromEnv                 // $MLSHIP_NAME
	FromFile                // mlship.yaml
	FromFallback            // another environment variable (Input.Env)
)

// Origin is where one input's value came from, for messages.
type Origin struct {
	Kind OriginKind
	Name string // the flag as typed, the variable or the key
	File string
	Line int
	// Input is set for a $MLSHIP_NAME variable that a front end set from its
	// own input (a GitHub action's with:): messages name the input.
	Input string
}

// String spells the origin: --epochs, $MLSHIP_EPOCHS, mlship.yaml:7: train.epochs.
func (o Origin) String() string {
	switch o.Kind {
	case FromFlag:
		return "--" + o.Name
	case FromEnv, FromFallback:
		if o.Input != "" {
			return "input " + o.Input
		}
		return "$" + o.Name
	case FromFile:
		if o.Line > 0 {
			return fmt.Sprintf("%s:%d: %s", o.File, o.Line, o.Name)
		}
		return o.File + ": " + o.Name
	}
	return o.Name
}

// Sources are what Resolve reads.
type Sources struct {
	// Flags holds the raw values given on the command line, by input name;
	// FlagNames the spelling used when it was not the input's name (an old one).
	Flags     map[string][]string
	FlagNames map[string]string
	// Set holds values the program sets (typed like Resolve's values).
	Set map[string]any
	// File is mlship.yaml, or nil.
	File *File
	// Getenv reads the environment (nil: none).
	Getenv func(string) string
	// Spell names an input that has no origin, in this front end's way
	// (default: --name).
	Spell func(Input) string
	// EnvAreInputs says the $MLSHIP_NAME variables are a front end's inputs
	// (a GitHub action sets them from with:), for messages.
	EnvAreInputs bool
}

// Resolved is a step's inputs after merging the sources: the value and origin
// of every input that has one.
type Resolved struct {
	Step     *Step
	Values   map[string]any
	Origins  map[string]Origin
	Warnings []string
	spell    func(Input) string
	file     *File
}

// Resolve merges the sources of every input of step. Precedence: the command
// line, values the program sets, $MLSHIP_NAME, mlship.yaml, the input's other
// environment variables. Inputs none of them gives are left out (the step's
// defaults stand). A value that does not parse is an error naming where it came
// from.
func Resolve(step *Step, src Sources) (*Resolved, error) {
	r := &Resolved{Step: step, Values: map[string]any{}, Origins: map[string]Origin{}, spell: src.Spell, file: src.File}
	getenv := src.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var errs []error
	for _, in := range step.Inputs {
		v, o, err := resolveOne(in, src, getenv, &r.Warnings)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o.Kind != Unset {
			r.Values[in.Name] = v
			r.Origins[in.Name] = o
		}
	}
	if len(errs) > 0 {
		return nil, fault.Input(errors.Join(errs...))
	}
	return r, nil
}

func resolveOne(in Input, src Sources, getenv func(string) string, warnings *[]string) (any, Origin, error) {
	if raw, ok := src.Flags[in.Name]; ok && !in.Secret {
		o := Origin{Kind: FromFlag, Name: in.Name}
		if n := src.FlagNames[in.Name]; n != "" {
			o.Name = n
		}
		v, err := in.Type.parseStrings(raw)
		if err != nil {
			return nil, o, fmt.Errorf("%s: %w", o, err)
		}
		return v, o, checkOption(in, v, o)
	}
	if v, ok := src.Set[in.Name]; ok {
		return v, Origin{Kind: FromSet, Name: in.Name}, nil
	}
	if s := getenv(EnvName(in.Name)); s != "" {
		o := Origin{Kind: FromEnv, Name: EnvName(in.Name)}
		if src.EnvAreInputs {
			o.Input = in.Name
		}
		v, err := in.Type.parseStrings([]string{s})
		if err != nil {
			return nil, o, fmt.Errorf("%s: %w", o, err)
		}
		return v, o, checkOption(in, v, o)
	}
	if f := src.File; f != nil && !in.Secret {
		keys := []string{}
		if in.Key != "" {
			keys = append(keys, in.Key)
		}
		for _, a := range in.Deprecated {
			if a.Key != "" {
				keys = append(keys, a.Key)
			}
		}
		var found []string
		for _, k := range keys {
			if f.Has(k) {
				found = append(found, k)
			}
		}
		if len(found) > 1 {
			return nil, Origin{}, fmt.Errorf("%s:%d: give %s or %s, not both", f.Path, f.Line(found[1]), found[0], found[1])
		}
		if len(found) == 1 {
			k := found[0]
			o := Origin{Kind: FromFile, Name: k, File: f.Path, Line: f.Line(k)}
			if k != in.Key {
				*warnings = append(*warnings, fmt.Sprintf("%s is deprecated: use %s", o, in.Key))
			}
			v, err := in.Type.parseYAML(f.values[k])
			if err != nil {
				return nil, o, fmt.Errorf("%s: %w", o, err)
			}
			if in.Path {
				v = resolvePaths(v, f)
				if in.PathIfExists {
					if s, ok := v.(string); ok {
						if _, err := os.Stat(s); err != nil {
							return nil, Origin{}, nil
						}
					}
				}
			}
			return v, o, checkOption(in, v, o)
		}
	}
	for _, e := range in.Env {
		if s := getenv(e); s != "" {
			o := Origin{Kind: FromFallback, Name: e}
			v, err := in.Type.parseStrings([]string{s})
			if err != nil {
				return nil, o, fmt.Errorf("%s: %w", o, err)
			}
			return v, o, checkOption(in, v, o)
		}
	}
	return nil, Origin{}, nil
}

func checkOption(in Input, v any, o Origin) error {
	if len(in.Options) == 0 {
		return nil
	}
	s, _ := v.(string)
	for _, opt := range in.Options {
		if s == opt {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %s", o, s, strings.Join(in.Options, ", "))
}

func resolvePaths(v any, f *File) any {
	switch x := v.(type) {
	case string:
		return f.Resolve(x)
	case []string:
		out := make([]string, len(x))
		for i, p := range x {
			out[i] = f.Resolve(p)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, p := range x {
			out[k] = f.Resolve(p)
		}
		return out
	}
	return v
}

// Has reports whether the input got a value from some source.
func (r *Resolved) Has(name string) bool {
	_, ok := r.Values[name]
	return ok
}

// String returns a string input's value ("" when unset).
func (r *Resolved) String(name string) string {
	s, _ := r.Values[name].(string)
	return s
}

// Bool returns a bool input's value (false when unset).
func (r *Resolved) Bool(name string) bool {
	b, _ := r.Values[name].(bool)
	return b
}

// Int returns an int input's value and whether it is set.
func (r *Resolved) Int(name string) (int64, bool) {
	n, ok := r.Values[name].(int64)
	return n, ok
}

// Spell names an input the way the user gave it (its origin), or the front
// end's way when no source gave it.
func (r *Resolved) Spell(name string) string {
	if o, ok := r.Origins[name]; ok && o.Kind != FromSet {
		return o.String()
	}
	in, ok := r.Step.Input(name)
	if !ok {
		return name
	}
	if r.spell != nil {
		return r.spell(in)
	}
	return "--" + name
}

// Explain rewrites an error for this front end: each *fault.FieldError in it
// becomes "SPELLING MESSAGE" (its other input names spelled too), joined by
// "; ". Other errors are returned as they are.
func (r *Resolved) Explain(err error) error {
	fields := fault.Fields(err)
	if len(fields) == 0 {
		return err
	}
	spellRef := func(n string) string {
		if _, ok := r.Step.Input(n); !ok {
			return n
		}
		if o, ok := r.Origins[n]; ok && o.Kind == FromFile {
			return o.Name // a key named inside a sentence needs no line
		}
		return r.Spell(n)
	}
	parts := make([]string, len(fields))
	for i, fe := range fields {
		parts[i] = r.Spell(fe.Field) + " " + fault.SpellNames(fe.Msg, spellRef)
	}
	return fault.Input(errors.New(strings.Join(parts, "; ")))
}

// Bind sets the fields of the struct dst points to from the resolved values:
// a field tagged `mlship:"NAME"` takes input NAME. Embedded and nested structs
// are searched too. Unset inputs leave their fields as they are (the defaults).
func (r *Resolved) Bind(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("spec: Bind needs a pointer to a struct, got %T", dst)
	}
	fields := taggedFields(rv.Elem())
	var errs []error
	for _, name := range sortedKeys(r.Values) {
		f, ok := fields[name]
		if !ok {
			continue
		}
		if err := setField(f, r.Values[name]); err != nil {
			errs = append(errs, &fault.FieldError{Field: name, Msg: err.Error()})
		}
	}
	return r.Explain(errors.Join(errs...))
}

// Tagged returns the names of the inputs dst's tags bind (for the drift test).
func Tagged(dst any) []string {
	return sortedKeys(taggedFields(reflect.ValueOf(dst).Elem()))
}

// Defaults returns the values of dst's tagged fields, formatted like a flag
// (empty for zero values).
func Defaults(dst any) map[string]string {
	out := map[string]string{}
	for name, f := range taggedFields(reflect.ValueOf(dst).Elem()) {
		if f.IsZero() {
			continue
		}
		out[name] = FormatValue(f.Interface())
	}
	return out
}

func taggedFields(v reflect.Value) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		if tag := sf.Tag.Get("mlship"); tag != "" && tag != "-" {
			out[tag] = fv
			continue
		}
		if fv.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Time{}) {
			maps.Copy(out, taggedFields(fv))
		}
	}
	return out
}

var (
	imageType = reflect.TypeOf((*model.Image)(nil))
	convsType = reflect.TypeOf([]model.ConvLayer(nil))
)

func setField(f reflect.Value, v any) error {
	switch x := v.(type) {
	case int64:
		switch f.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64:
			if f.OverflowInt(x) {
				return fmt.Errorf("must be at most %d, got %d", maxInt(f), x)
			}
			f.SetInt(x)
			return nil
		}
	case string:
		if f.Kind() == reflect.String {
			f.SetString(x)
			return nil
		}
	case bool:
		if f.Kind() == reflect.Bool {
			f.SetBool(x)
			return nil
		}
	case float64:
		if f.Kind() == reflect.Float64 {
			f.SetFloat(x)
			return nil
		}
	case time.Duration:
		if f.Type() == reflect.TypeOf(time.Duration(0)) {
			f.Set(reflect.ValueOf(x))
			return nil
		}
	case *model.Image:
		if f.Type() == imageType {
			f.Set(reflect.ValueOf(x))
			return nil
		}
	case []model.ConvLayer:
		if f.Type() == convsType {
			f.Set(reflect.ValueOf(x))
			return nil
		}
	default:
		rv := reflect.ValueOf(v)
		if rv.Type().AssignableTo(f.Type()) {
			f.Set(rv)
			return nil
		}
	}
	panic(fmt.Sprintf("spec: cannot set a %s field from %T", f.Type(), v))
}

func maxInt(f reflect.Value) int64 {
	return int64(math.MaxInt64 >> (64 - f.Type().Bits()))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Default gives an input a value when no source did (origin: the program).
func (r *Resolved) Default(name string, v any) {
	if _, ok := r.Values[name]; !ok {
		r.Override(name, v)
	}
}

// Override sets an input's value whatever the sources said (origin: the
// program), as `mlship run` does with the paths of its outputs.
func (r *Resolved) Override(name string, v any) {
	r.Values[name] = v
	r.Origins[name] = Origin{Kind: FromSet, Name: name}
}
