package gen

import (
	"fmt"
	"go/format"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/spec"
)

// The Dagger front end: a Go module in dagger/ whose functions run the mlship
// binary in a container. Their signatures (one argument per step input, with
// the +optional and +default pragmas the engine reads) and the plumbing from
// each argument to a flag, a mount or a secret are generated here into
// dagger/steps_generated.go; the container, the exec and the errors are written by
// hand in dagger/*.go (the methods named by daggerFunc.impl and the helpers of
// the command type).

// DaggerStepsFile is the generated file of the Dagger module.
const DaggerStepsFile = "dagger/steps_generated.go"

// daggerKind is how an input reaches the mlship command in the container.
type daggerKind int

const (
	dgValue      daggerKind = iota // a scalar or list argument, given as a flag
	dgFile                         // *dagger.File, mounted; the flag names the mount
	dgDir                          // *dagger.Directory, mounted
	dgDirs                         // []*dagger.Directory, each mounted and named by a flag
	dgSecret                       // *dagger.Secret, as $MLSHIP_NAME (WithSecretVariable)
	dgSecretFile                   // *dagger.Secret, mounted as a file (WithMountedSecret)
)

// daggerInput says how one path or secret input becomes an argument; inputs
// that are neither are plain values (dgValue). An input with omit set is not
// an argument: omit is the reason, written into the README.
type daggerInput struct {
	kind daggerKind
	omit string
}

// daggerInputs lists every path and secret input of every step (a test fails
// when one is missing, so a new path input must be placed here).
var daggerInputs = map[string]map[string]daggerInput{
	"train": {
		"data":      {kind: dgFile},
		"out":       {omit: "the directory `train` returns"},
		"split-out": {omit: "an extra file that no function returns"},
	},
	"evaluate-gate": {
		"model":    {kind: dgDir},
		"data":     {kind: dgFile},
		"baseline": {kind: dgDir},
		"junit":    {omit: "the file `evaluate-gate-junit` returns"},
	},
	"build-push-image": {
		"model":             {kind: dgDir},
		"oci-layout":        {omit: "the directory `build-image-layout` returns"},
		"tarball":           {omit: "`build-image-layout` returns the same image as an OCI layout"},
		"server-bin":        {omit: "the mlship in the container embeds mlship-serve for every image platform"},
		"ca-certs":          {kind: dgFile},
		"registry-password": {kind: dgSecret},
	},
	"kubectl-deploy": {
		"manifests":       {kind: dgDirs},
		"model":           {kind: dgDir},
		"kubeconfig":      {kind: dgSecretFile},
		"kubeconfig-data": {kind: dgSecret},
	},
	"report": {
		"model":       {kind: dgDir},
		"gate-json":   {kind: dgFile},
		"image-json":  {kind: dgFile},
		"deploy-json": {kind: dgFile},
		"out":         {omit: "`report` returns the Markdown"},
	},
	"comment": {
		"model":        {kind: dgDir},
		"gate-json":    {kind: dgFile},
		"image-json":   {kind: dgFile},
		"deploy-json":  {kind: dgFile},
		"from-file":    {kind: dgFile},
		"artifact":     {omit: "`comment` returns the report when it could not comment"},
		"metrics-file": {omit: "an extra file that no function returns"},
		"github-token": {kind: dgSecret},
		"gitlab-token": {kind: dgSecret},
	},
	"monitor": {
		"out":                  {omit: "an extra file that no function returns (`monitor` returns the summary)"},
		"prometheus-token":     {kind: dgSecret},
		"github-token":         {kind: dgSecret},
		"gitlab-trigger-token": {kind: dgSecret},
	},
	"run": {
		"project": {kind: dgDir},
		"out":     {omit: "the directory `run` returns"},
	},
}

// daggerExtra is an argument of a Dagger function that is not an input of its
// step: the module's own (config, gpu, env), or an input of a step that run
// chains, which mlship.yaml cannot hold (the secrets).
type daggerExtra struct {
	name string // the argument's name, lowerCamelCase
	typ  string // its Go type
	desc string
	// call is the plumbing line, a method of the command (cmd.NAME(...)).
	call string
	// from names the step input it is (STEP/INPUT), for a secret run passes on.
	from string
}

var (
	configExtra = daggerExtra{name: "config", typ: "*dagger.Directory", call: "cmd.config(config)",
		desc: "a directory holding mlship.yaml; the arguments given here override it, and its paths are relative to it"}
	gpuExtra = daggerExtra{name: "gpu", typ: "bool", call: "cmd.gpu(gpu)",
		desc: "give the container every GPU of the engine's host (ExperimentalWithAllGPUs)"}
	envExtra = daggerExtra{name: "env", typ: "[]string", call: "cmd.env(env)",
		desc: "CI variables, KEY=VALUE, that mlship reads where it runs, e.g. GITLAB_CI=true, CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID for a merge request note; never a token"}
)

// daggerFunc is one function of the module.
type daggerFunc struct {
	name   string // Go method name
	step   string
	doc    string // what it does and returns, after the step's own line
	result string // Go result type besides error
	impl   string // the hand-written method that runs the command
	extras []daggerExtra
	// cache is the function's +cache pragma: "never" for those with effects
	// outside (a push, a deployment, a comment), which also run their
	// command afresh each call; "session" for those that read a registry.
	cache string
}

var daggerFuncs = []daggerFunc{
	{name: "Train", step: "train", result: "*dagger.Directory", impl: "train",
		doc: "Returns the model directory.", extras: []daggerExtra{configExtra, gpuExtra}},
	{name: "EvaluateGate", step: "evaluate-gate", result: "string", impl: "evaluateGate",
		doc: "Returns the table of checks and the verdict; a failed gate fails the call with the table.", extras: []daggerExtra{configExtra}, cache: "session"},
	{name: "EvaluateGateJunit", step: "evaluate-gate", result: "*dagger.File", impl: "evaluateGateJunit",
		doc: "Returns the JUnit XML report, one test case per check, whether the gate passed or failed.", extras: []daggerExtra{configExtra}, cache: "session"},
	{name: "BuildPushImage", step: "build-push-image", result: "string", impl: "buildPushImage",
		doc: "Returns the image by digest, REPO@sha256:... (pushed with push).", extras: []daggerExtra{configExtra}, cache: "never"},
	{name: "BuildImageLayout", step: "build-push-image", result: "*dagger.Directory", impl: "buildImageLayout",
		doc: "Returns the image as an OCI layout directory (also pushed with push).", extras: []daggerExtra{configExtra}, cache: "never"},
	{name: "KubectlDeploy", step: "kubectl-deploy", result: "string", impl: "kubectlDeploy",
		doc: "Returns the Deployment's revision running now (with render or dry-run: what mlship prints).", extras: []daggerExtra{configExtra}, cache: "never"},
	{name: "Report", step: "report", result: "string", impl: "report",
		doc: "Returns the Markdown.", extras: []daggerExtra{configExtra}},
	{name: "Comment", step: "comment", result: "string", impl: "comment",
		doc: "Returns the comment's URL, or the report when there was nothing to comment on.", extras: []daggerExtra{configExtra, envExtra}, cache: "never"},
	{name: "Monitor", step: "monitor", result: "string", impl: "monitor",
		doc: "Returns the summary of the checks; a breach fails the call with it.", extras: []daggerExtra{configExtra, envExtra}, cache: "never"},
	{name: "Run", step: "run", result: "*dagger.Directory", impl: "run",
		doc: "Returns the output directory: model/, junit.xml, image/, manifests.yaml, report.md.", extras: []daggerExtra{
			{name: "registryPassword", typ: "*dagger.Secret", call: `cmd.secret("MLSHIP_REGISTRY_PASSWORD", registryPassword)`, from: "build-push-image/registry-password"},
			{name: "kubeconfigData", typ: "*dagger.Secret", call: `cmd.secret("MLSHIP_KUBECONFIG_DATA", kubeconfigData)`, from: "kubectl-deploy/kubeconfig-data"},
		}, cache: "never"},
}

// daggerRequired are inputs that are optional in the spec but that a Dagger
// function needs, with the reason.
var daggerRequired = map[string]string{
	"run/project": "a Dagger function has no working directory to default to",
}

// daggerArg is one generated argument.
type daggerArg struct {
	input    string // spec input name ("" for an extra)
	name     string
	typ      string
	desc     string
	optional bool
	def      string // JSON for +default, "" for none
	call     string
}

// daggerArgs are the arguments of a function, in the spec's order, then its
// extras.
func daggerArgs(f daggerFunc) []daggerArg {
	s := spec.Lookup(f.step)
	defaults := spec.Defaults(pipeline.Inputs(s.Name))
	var out []daggerArg
	for _, in := range s.Inputs {
		di := daggerInputs[s.Name][in.Name]
		if di.omit != "" {
			continue
		}
		a := daggerArg{input: in.Name, name: spec.CamelName(in.Name), desc: daggerDesc(in, defaults[in.Name])}
		a.optional = !in.Required && daggerRequired[s.Name+"/"+in.Name] == ""
		q := strconv.Quote
		switch di.kind {
		case dgFile:
			a.typ = "*dagger.File"
			a.call = fmt.Sprintf("cmd.file(ctx, %s, %s)", q(in.Name), a.name)
		case dgDir:
			a.typ = "*dagger.Directory"
			a.call = fmt.Sprintf("cmd.dir(%s, %s)", q(in.Name), a.name)
		case dgDirs:
			a.typ = "[]*dagger.Directory"
			a.call = fmt.Sprintf("cmd.dirs(%s, %s)", q(in.Name), a.name)
		case dgSecret:
			a.typ = "*dagger.Secret"
			a.call = fmt.Sprintf("cmd.secret(%s, %s)", q(spec.EnvName(in.Name)), a.name)
		case dgSecretFile:
			a.typ = "*dagger.Secret"
			a.call = fmt.Sprintf("cmd.secretFile(%s, %s)", q(in.Name), a.name)
		default:
			a.typ, a.def, a.call = daggerValue(in, defaults[in.Name], a.name)
		}
		if in.Positional {
			a.call = strings.Replace(a.call, "cmd.dir(", "cmd.positionalDir(", 1)
		}
		out = append(out, a)
	}
	for _, x := range f.extras {
		out = append(out, daggerArg{name: x.name, typ: x.typ, desc: daggerExtraDesc(x), optional: true, call: x.call})
	}
	return out
}

func daggerExtraDesc(x daggerExtra) string {
	if x.from == "" {
		return x.desc
	}
	step, name, _ := strings.Cut(x.from, "/")
	in, _ := spec.Lookup(step).Input(name)
	return daggerDesc(in, "")
}

// daggerValue is the Go type, the +default JSON and the plumbing of a plain
// input. A flag is passed only when the argument differs from the step's
// default, so that mlship.yaml (config) decides what the call leaves out.
func daggerValue(in spec.Input, def, name string) (typ, defJSON, call string) {
	q := strconv.Quote
	switch in.Type {
	case spec.Bool:
		d := def == "true"
		if d {
			defJSON = "true"
		}
		return "bool", defJSON, fmt.Sprintf("cmd.boolean(%s, %s, %t)", q(in.Name), name, d)
	case spec.Int:
		d := 0
		if def != "" {
			n, err := strconv.Atoi(def)
			if err != nil {
				panic(fmt.Sprintf("dagger: default %q of %s is not an integer", def, in.Name))
			}
			d, defJSON = n, def
		}
		return "int", defJSON, fmt.Sprintf("cmd.integer(%s, %s, %d)", q(in.Name), name, d)
	case spec.Float:
		d := "0"
		if def != "" {
			if _, err := strconv.ParseFloat(def, 64); err != nil {
				panic(fmt.Sprintf("dagger: default %q of %s is not a number", def, in.Name))
			}
			d, defJSON = def, def
		}
		return "float64", defJSON, fmt.Sprintf("cmd.float(%s, %s, %s)", q(in.Name), name, d)
	case spec.Ints:
		var items []string
		if def != "" {
			items = strings.Split(def, ",")
			defJSON = "[" + strings.Join(items, ",") + "]"
		}
		return "[]int", defJSON, fmt.Sprintf("cmd.ints(%s, %s, []int{%s})", q(in.Name), name, strings.Join(items, ", "))
	case spec.Strings, spec.Metrics, spec.Pairs, spec.Convs:
		var items []string
		if def != "" {
			for _, it := range strings.Split(def, ",") {
				items = append(items, q(it))
			}
			defJSON = "[" + strings.Join(items, ",") + "]"
		}
		return "[]string", defJSON, fmt.Sprintf("cmd.list(%s, %s, []string{%s})", q(in.Name), name, strings.Join(items, ", "))
	default: // String, Duration, Shape
		if def != "" {
			defJSON = q(def)
		}
		return "string", defJSON, fmt.Sprintf("cmd.str(%s, %s, %s)", q(in.Name), name, q(def))
	}
}

// daggerDesc is an argument's description: the spec's, its allowed values and
// a default that is not a constant (constant ones are +default).
func daggerDesc(in spec.Input, def string) string {
	d := in.Desc
	if len(in.Options) > 0 {
		d += " (" + strings.Join(in.Options, ", ") + ")"
	}
	if in.DefaultDoc != "" && def == "" {
		d += " (default: " + in.DefaultDoc + ")"
	}
	if in.Secret {
		d += "; a secret (env:NAME, file:PATH, cmd:...)"
	}
	return strings.ReplaceAll(d, "`", "'")
}

// DaggerFiles returns the generated files of the Dagger module, by path from
// the repository root.
func DaggerFiles() map[string][]byte {
	return map[string][]byte{DaggerStepsFile: daggerSteps()}
}

func daggerSteps() []byte {
	var b strings.Builder
	b.WriteString("// Code generated by `mlship gen files` from internal/spec; DO NOT EDIT.\n\n")
	b.WriteString("package main\n\nimport (\n\t\"context\"\n\n\t\"github.com/mlship/mlship/dagger/internal/dagger\"\n)\n")
	for _, f := range daggerFuncs {
		s := spec.Lookup(f.step)
		if s == nil {
			continue // TestDaggerArguments names it
		}
		fmt.Fprintf(&b, "\n// %s runs mlship %s: %s. %s\n", f.name, s.Name, lowerFirst(s.Short), f.doc)
		if f.cache != "" {
			fmt.Fprintf(&b, "//\n// +cache=%q\n", f.cache)
		}
		fmt.Fprintf(&b, "func (m *Mlship) %s(\n\tctx context.Context,\n", f.name)
		args := daggerArgs(f)
		for _, a := range args {
			comment(&b, a.desc)
			if a.optional {
				b.WriteString("\t// +optional\n")
			}
			if a.def != "" {
				fmt.Fprintf(&b, "\t// +default=%s\n", a.def)
			}
			fmt.Fprintf(&b, "\t%s %s,\n", a.name, a.typ)
		}
		fmt.Fprintf(&b, ") (%s, error) {\n", f.result)
		fmt.Fprintf(&b, "\tcmd := m.command(%q)\n", s.Name)
		if f.cache == "never" {
			b.WriteString("\tcmd.uncached()\n")
		}
		for _, a := range args {
			fmt.Fprintf(&b, "\t%s\n", a.call)
		}
		fmt.Fprintf(&b, "\treturn m.%s(ctx, cmd)\n}\n", f.impl)
	}
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		panic(fmt.Sprintf("dagger: generated Go does not parse: %v", err))
	}
	return src
}

// comment writes a description as // lines of at most about 100 columns.
func comment(b *strings.Builder, s string) {
	line := "\t//"
	for _, w := range strings.Fields(s) {
		if len(line)+1+len(w) > 100 && line != "\t//" {
			b.WriteString(line + "\n")
			line = "\t//"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// DaggerTable is the README's table of the module's functions and their
// arguments.
func DaggerTable() string {
	var b strings.Builder
	b.WriteString("| function | arguments (`dagger call` flags) | returns |\n|---|---|---|\n")
	for _, f := range daggerFuncs {
		if spec.Lookup(f.step) == nil {
			continue
		}
		var args []string
		for _, a := range daggerArgs(f) {
			flag := "`--" + kebab(a.name) + "`"
			switch {
			case a.typ == "*dagger.Secret":
				flag += " (secret)"
			case a.typ == "*dagger.File":
				flag += " (file)"
			case a.typ == "*dagger.Directory", a.typ == "[]*dagger.Directory":
				flag += " (directory)"
			}
			if !a.optional {
				flag = "**" + flag + "**"
			}
			args = append(args, flag)
		}
		ret := map[string]string{"string": "string", "*dagger.Directory": "directory", "*dagger.File": "file"}[f.result]
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", kebab(lowerFirst(f.name)), strings.Join(args, ", "), ret)
	}
	var omitted []string
	for _, s := range spec.Steps() {
		for _, in := range s.Inputs {
			if di := daggerInputs[s.Name][in.Name]; di.omit != "" {
				omitted = append(omitted, fmt.Sprintf("%s `--%s` (%s)", s.Name, in.Name, di.omit))
			}
		}
	}
	b.WriteString("\nNot arguments: " + strings.Join(omitted, "; ") + ".\n")
	return b.String()
}

// kebab turns a lowerCamelCase argument name into the flag dagger call shows.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
