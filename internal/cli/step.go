package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/spec"
)

// rawFlag holds what the command line gave for one input, as typed; the spec
// parses it (so a bad value reads the same from a flag, a variable or
// mlship.yaml).
type rawFlag struct {
	typ  spec.Type
	vals []string
	def  string
}

func (f *rawFlag) String() string {
	if f.vals == nil {
		return f.def
	}
	return strings.Join(f.vals, ",")
}

func (f *rawFlag) Set(s string) error {
	if f.typ.List() {
		f.vals = append(f.vals, s)
	} else {
		f.vals = []string{s}
	}
	return nil
}

func (f *rawFlag) Type() string {
	switch f.typ {
	case spec.Bool:
		return "bool"
	case spec.Metrics:
		return "metric=value"
	case spec.Pairs:
		return "KEY=VALUE"
	case spec.Shape:
		return "CxHxW"
	case spec.Convs:
		return "blocks"
	}
	return string(f.typ)
}

// stepFlags are a command's flags, made from its step's spec.
type stepFlags struct {
	step    *spec.Step
	fs      *pflag.FlagSet
	raw     map[string]*rawFlag // by input name
	aliases map[string]map[string]*rawFlag
	config  string
	json    bool
	quiet   bool
	cmd     *cobra.Command
}

// addStepFlags registers a flag for every input of step that is neither a
// secret nor positional (defaults from the step's DefaultConfig), the old
// spellings hidden, and the command line's own options.
func addStepFlags(cmd *cobra.Command, step *spec.Step) *stepFlags {
	s := &stepFlags{step: step, cmd: cmd, fs: cmd.Flags(), raw: map[string]*rawFlag{}, aliases: map[string]map[string]*rawFlag{}}
	defaults := spec.Defaults(pipeline.Inputs(step.Name))
	for _, in := range step.Inputs {
		if in.Secret || in.Positional {
			continue
		}
		rf := &rawFlag{typ: in.Type, def: defaults[in.Name]}
		s.raw[in.Name] = rf
		fl := s.fs.VarPF(rf, in.Name, in.Short, usage(in))
		if in.Type == spec.Bool {
			fl.NoOptDefVal = "true"
		}
		for _, a := range in.Deprecated {
			if a.Flag == "" {
				continue
			}
			af := &rawFlag{typ: in.Type}
			if s.aliases[in.Name] == nil {
				s.aliases[in.Name] = map[string]*rawFlag{}
			}
			s.aliases[in.Name][a.Flag] = af
			s.fs.Var(af, a.Flag, "deprecated: use --"+in.Name)
			_ = s.fs.MarkHidden(a.Flag)
		}
	}
	for _, o := range step.Options {
		switch o.Name {
		case "config":
			s.fs.StringVar(&s.config, "config", "", o.Desc)
		case "json":
			s.fs.BoolVar(&s.json, "json", false, o.Desc)
		case "quiet":
			s.fs.BoolVarP(&s.quiet, "quiet", o.Short, false, o.Desc)
		}
	}
	return s
}

func addGlobalFlags(root *cobra.Command) {
	for _, o := range spec.GlobalOptions {
		root.PersistentFlags().String(o.Name, "", o.Desc)
	}
}

// usage is a flag's help line: the description, the allowed values and a
// computed default.
func usage(in spec.Input) string {
	u := in.Desc
	if len(in.Options) > 0 {
		u += " (" + strings.Join(in.Options, ", ") + ")"
	}
	if in.DefaultDoc != "" {
		u += " (default: " + strings.ReplaceAll(in.DefaultDoc, "`", "") + ")"
	}
	return strings.ReplaceAll(u, "`", "'")
}

// resolve merges the command line, $MLSHIP_* variables, --config's mlship.yaml
// and the inputs' other variables.
func (s *stepFlags) resolve(stderr io.Writer, extra map[string][]string) (*spec.Resolved, *spec.File, error) {
	var file *spec.File
	if s.config != "" {
		f, err := spec.LoadFile(s.config)
		if err != nil {
			return nil, nil, err
		}
		file = f
	}
	flags := map[string][]string{}
	names := map[string]string{}
	for name, rf := range s.raw {
		if fl := s.fs.Lookup(name); fl != nil && fl.Changed {
			flags[name] = rf.vals
		}
		for old, af := range s.aliases[name] {
			fl := s.fs.Lookup(old)
			if fl == nil || !fl.Changed {
				continue
			}
			if _, both := flags[name]; both {
				return nil, nil, fault.Inputf("give --%s or --%s (its old name), not both", name, old)
			}
			fmt.Fprintf(stderr, "mlship: warning: --%s is deprecated: use --%s\n", old, name)
			flags[name], names[name] = af.vals, old
		}
	}
	for name, v := range extra {
		flags[name] = v
	}
	r, err := spec.Resolve(s.step, spec.Sources{Flags: flags, FlagNames: names, File: file, Getenv: os.Getenv,
		Spell: flagSpelling(file), EnvAreInputs: inAction()})
	if err != nil {
		return nil, nil, err
	}
	maskSecrets(workflowCommands(s.cmd, s.cmd.OutOrStdout(), s.cmd.ErrOrStderr()), r)
	for _, w := range r.Warnings {
		fmt.Fprintf(stderr, "mlship: warning: %s\n", w)
	}
	return r, file, nil
}

// inAction says mlship runs inside one of its GitHub actions or GitLab
// templates, which pass their inputs as $MLSHIP_NAME.
func inAction() bool {
	f := os.Getenv("MLSHIP_FRONTEND")
	return f == "github-action" || f == "gitlab-template"
}

// maskSecrets keeps the values of secret inputs out of the GitHub log (a
// kubeconfig's decoded lines too).
func maskSecrets(p *platform.Platform, r *spec.Resolved) {
	for _, in := range r.Step.Inputs {
		v := r.String(in.Name)
		if !in.Secret || v == "" {
			continue
		}
		p.Mask(v)
		if in.Name == "kubeconfig-data" {
			if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil {
				p.Mask(string(b))
			}
		}
	}
}

// flagSpelling names an input no source gave: its flag (and its key when there
// is a config file), or for a secret its variable.
func flagSpelling(file *spec.File) func(spec.Input) string {
	return func(in spec.Input) string {
		switch {
		case in.Secret:
			return "$" + spec.EnvName(in.Name)
		case file != nil && in.Key != "":
			return fmt.Sprintf("--%s (or %s in %s)", in.Name, in.Key, file.Path)
		}
		return "--" + in.Name
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
