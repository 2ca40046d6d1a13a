// Package gen writes what is generated from the spec of inputs and outputs
// (internal/spec): the README's reference tables (between markers) and the spec
// as JSON for the front ends' generators. `mlship gen` runs it; a test fails
// when a generated file drifts.
package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/spec"
)

// Section names a generated block of the README.
func beginMarker(name string) string {
	return "<!-- BEGIN GENERATED " + name + " (mlship gen readme) -->"
}
func endMarker(name string) string { return "<!-- END GENERATED " + name + " -->" }

// Sections returns every generated README block by name: "STEP inputs",
// "STEP outputs", "mlship.yaml keys" and "global options".
func Sections() map[string]string {
	out := map[string]string{}
	for _, s := range spec.Steps() {
		out[s.Name+" inputs"] = InputsTable(s)
		if len(s.Outputs) > 0 {
			out[s.Name+" outputs"] = OutputsTable(s)
		}
	}
	out["mlship.yaml keys"] = KeysTable()
	out["github actions"] = ActionsTable()
	out["gitlab templates"] = GitLabTable()
	out["dagger functions"] = DaggerTable()
	out["global options"] = optionsTable(spec.GlobalOptions)
	return out
}

// InputsTable is the Markdown table of a step's inputs and its command line's
// options.
func InputsTable(s *spec.Step) string {
	defaults := spec.Defaults(pipeline.Inputs(s.Name))
	var b strings.Builder
	b.WriteString("| flag | mlship.yaml | type | default | meaning |\n|---|---|---|---|---|\n")
	for _, in := range s.Inputs {
		flag := "`--" + in.Name + "`"
		switch {
		case in.Secret:
			flag = "`$" + spec.EnvName(in.Name) + "`"
		case in.Positional:
			flag = strings.ToUpper(in.Name) + " (argument)"
		case in.Short != "":
			flag = "`-" + in.Short + "`, " + flag
		}
		key := "–"
		if in.Key != "" {
			key = "`" + in.Key + "`"
		}
		def := defaults[in.Name]
		if def != "" {
			def = "`" + def + "`"
		}
		if in.DefaultDoc != "" {
			def = in.DefaultDoc
		}
		var env []string
		for _, e := range in.Env {
			env = append(env, "`$"+e+"`")
		}
		if len(env) > 0 {
			if def != "" {
				def = strings.Join(env, ", ") + ", else " + def
			} else {
				def = strings.Join(env, " or ")
			}
		}
		meaning := in.Desc
		if len(in.Options) > 0 {
			meaning += ": " + strings.Join(quoteAll(in.Options), ", ")
		}
		if in.Required {
			meaning = "**required**: " + meaning
		}
		if in.Secret {
			meaning += "; secret: environment only"
		}
		for _, a := range in.Deprecated {
			var old []string
			if a.Flag != "" {
				old = append(old, "`--"+a.Flag+"`")
			}
			if a.Key != "" {
				old = append(old, "`"+a.Key+"`")
			}
			meaning += "; old name " + strings.Join(old, ", ") + " still works, with a warning"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", flag, key, in.Type.Format(), def, cell(meaning))
	}
	for _, o := range s.Options {
		flag := "`--" + o.Name + "`"
		if o.Short != "" {
			flag = "`-" + o.Short + "`, " + flag
		}
		fmt.Fprintf(&b, "| %s | – | %s | | %s |\n", flag, o.Type.Format(), cell(o.Desc))
	}
	return b.String()
}

func optionsTable(opts []spec.Input) string {
	var b strings.Builder
	b.WriteString("| flag | meaning |\n|---|---|\n")
	for _, o := range opts {
		fmt.Fprintf(&b, "| `--%s` | %s |\n", o.Name, cell(o.Desc))
	}
	return b.String()
}

// OutputsTable is the Markdown table of a step's outputs.
func OutputsTable(s *spec.Step) string {
	var b strings.Builder
	b.WriteString("| output | dotenv | meaning |\n|---|---|---|\n")
	for _, o := range s.Outputs {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", o.Name, spec.DotenvName(o.Name), cell(o.Desc))
	}
	return b.String()
}

// KeysTable lists every mlship.yaml key with the inputs that read it.
func KeysTable() string {
	type use struct{ steps, types []string }
	uses := map[string]*use{}
	desc := map[string]string{}
	for _, s := range spec.Steps() {
		for _, in := range s.Inputs {
			if in.Key == "" {
				continue
			}
			u := uses[in.Key]
			if u == nil {
				u = &use{}
				uses[in.Key] = u
			}
			u.steps = append(u.steps, s.Name+" `--"+in.Name+"`")
			if !slices.Contains(u.types, in.Type.Format()) {
				u.types = append(u.types, in.Type.Format())
			}
			if _, ok := desc[in.Key]; !ok {
				desc[in.Key] = in.Desc
				if in.Path {
					desc[in.Key] += " (relative to mlship.yaml)"
				}
			}
		}
	}
	keys := make([]string, 0, len(uses))
	for k := range uses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("| key | type | read by | meaning |\n|---|---|---|---|\n")
	for _, k := range keys {
		u := uses[k]
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k, strings.Join(u.types, ", "), strings.Join(u.steps, ", "), cell(desc[k]))
	}
	return b.String()
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return out
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// Readme returns the README with every generated block rewritten; an error
// names a block whose markers are missing.
func Readme(readme []byte) ([]byte, error) {
	out := readme
	sections := Sections()
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	slices.Sort(names)
	var missing []string
	for _, n := range names {
		begin, end := []byte(beginMarker(n)), []byte(endMarker(n))
		i := bytes.Index(out, begin)
		j := bytes.Index(out, end)
		if i < 0 || j < i {
			missing = append(missing, n)
			continue
		}
		var b bytes.Buffer
		b.Write(out[:i+len(begin)])
		b.WriteString("\n")
		b.WriteString(sections[n])
		b.Write(out[j:])
		out = b.Bytes()
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("README has no markers for %s (add %q ... %q)", strings.Join(missing, ", "), beginMarker(missing[0]), endMarker(missing[0]))
	}
	return out, nil
}

// UpdateReadme rewrites the generated blocks of the README at path; with check
// it only reports whether they are current.
func UpdateReadme(path string, check bool) (changed bool, err error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	cur, err := Readme(old)
	if err != nil {
		return false, err
	}
	if bytes.Equal(old, cur) {
		return false, nil
	}
	if check {
		return true, nil
	}
	return true, os.WriteFile(path, cur, 0o644)
}

// JSON is the spec with each input's default, for the front ends' generators.
func JSON() ([]byte, error) {
	type input struct {
		spec.Input
		Env     string `json:"env"`
		Default string `json:"default,omitempty"`
	}
	type step struct {
		Name    string        `json:"name"`
		Short   string        `json:"short"`
		Inputs  []input       `json:"inputs"`
		Outputs []spec.Output `json:"outputs"`
	}
	var out []step
	for _, s := range spec.Steps() {
		d := spec.Defaults(pipeline.Inputs(s.Name))
		st := step{Name: s.Name, Short: s.Short, Outputs: s.Outputs}
		for _, in := range s.Inputs {
			st.Inputs = append(st.Inputs, input{Input: in, Env: spec.EnvName(in.Name), Default: d[in.Name]})
		}
		out = append(out, st)
	}
	return json.MarshalIndent(out, "", "  ")
}

// WriteFiles writes generated files under root (creating folders); with check
// it only lists those that are not current.
func WriteFiles(root string, files map[string][]byte, check bool) (stale []string, err error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(root, filepath.FromSlash(n))
		old, err := os.ReadFile(p)
		if err == nil && bytes.Equal(old, files[n]) {
			continue
		}
		stale = append(stale, n)
		if check {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return stale, err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return stale, err
		}
	}
	return stale, nil
}
