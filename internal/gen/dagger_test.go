package gen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/spec"
)

// TestDaggerFilesAreCurrent fails when dagger/steps_generated.go drifts from the
// spec: run `make gen` (mlship gen files, then dagger/hack/bindings.sh for the
// bindings, which dispatch to the functions' arguments).
func TestDaggerFilesAreCurrent(t *testing.T) {
	stale, err := WriteFiles("../..", DaggerFiles(), !*update)
	require.NoError(t, err)
	if !*update {
		assert.Empty(t, stale, "not current: run `make gen` (go run ./cmd/mlship gen files; bash dagger/hack/bindings.sh)")
	}
}

// daggerParam is a parameter of a function of the committed module, with the
// pragmas of its comment.
type daggerParam struct {
	name, typ string
	optional  bool
	def       string
	hasDef    bool
	doc       string
}

// parseDaggerModule reads the methods of Mlship from the committed Go files
// of dagger/ (as the engine's codegen reads them), by name.
func parseDaggerModule(t *testing.T) map[string][]daggerParam {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob("../../dagger/*.go")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string][]daggerParam{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			star, ok := fd.Recv.List[0].Type.(*ast.StarExpr)
			if !ok || star.X.(*ast.Ident).Name != "Mlship" {
				continue
			}
			var params []daggerParam
			for _, field := range fd.Type.Params.List {
				typ := types(fset, field.Type)
				if typ == "context.Context" {
					continue
				}
				p := daggerParam{typ: typ, doc: paramDoc(fset, f, field)}
				for _, line := range strings.Split(p.doc, "\n") {
					line = strings.TrimSpace(line)
					switch {
					case line == "+optional":
						p.optional = true
					case strings.HasPrefix(line, "+default="):
						p.def, p.hasDef = strings.TrimPrefix(line, "+default="), true
					}
				}
				for _, n := range field.Names {
					p.name = n.Name
					params = append(params, p)
				}
			}
			out[fd.Name.Name] = params
		}
	}
	return out
}

// paramDoc is the comment on the lines just above a parameter, as the
// engine's codegen reads it (go/ast attaches none to parameters).
func paramDoc(fset *token.FileSet, f *ast.File, field *ast.Field) string {
	line := fset.Position(field.Pos()).Line
	for _, g := range f.Comments {
		if fset.Position(g.End()).Line == line-1 {
			return g.Text()
		}
	}
	return ""
}

func types(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	var walk func(ast.Expr)
	walk = func(e ast.Expr) {
		switch x := e.(type) {
		case *ast.Ident:
			b.WriteString(x.Name)
		case *ast.StarExpr:
			b.WriteString("*")
			walk(x.X)
		case *ast.ArrayType:
			b.WriteString("[]")
			walk(x.Elt)
		case *ast.SelectorExpr:
			walk(x.X)
			b.WriteString("." + x.Sel.Name)
		default:
			b.WriteString(fset.Position(e.Pos()).String())
		}
	}
	walk(e)
	return b.String()
}

// TestDaggerArguments checks the committed module against the spec: every
// input of a step is an argument of each of its functions, named as the flag
// is (dagger call spells lowerCamelCase as --kebab-case), or is left out with
// a reason; every argument is an input of the step or one of the module's
// declared extras; required inputs have no +optional and the others do;
// +default is the step's default; secrets are *dagger.Secret and paths are
// files, directories or secrets, never strings; and every step has a function.
func TestDaggerArguments(t *testing.T) {
	mod := parseDaggerModule(t)
	covered := map[string]bool{}
	for _, f := range daggerFuncs {
		t.Run(f.name, func(t *testing.T) {
			s := spec.Lookup(f.step)
			require.NotNil(t, s, "step %s", f.step)
			covered[s.Name] = true
			params, ok := mod[f.name]
			require.True(t, ok, "dagger/ has no method Mlship.%s", f.name)
			_, ok = mod[f.impl]
			assert.True(t, ok, "dagger/ has no method Mlship.%s (the hand-written part of %s)", f.impl, f.name)
			byName := map[string]daggerParam{}
			for _, p := range params {
				byName[p.name] = p
			}
			defaults := spec.Defaults(pipeline.Inputs(s.Name))
			for _, in := range s.Inputs {
				di, listed := daggerInputs[s.Name][in.Name]
				if in.Path || in.Secret {
					assert.True(t, listed, "%s %s is a path or a secret: say in daggerInputs how it reaches the container", s.Name, in.Name)
				}
				p, ok := byName[spec.CamelName(in.Name)]
				if di.omit != "" {
					assert.False(t, ok, "%s is left out (%s) but is an argument", in.Name, di.omit)
					continue
				}
				if !assert.True(t, ok, "input %s of %s has no argument %s", in.Name, s.Name, spec.CamelName(in.Name)) {
					continue
				}
				wantOptional := !in.Required && daggerRequired[s.Name+"/"+in.Name] == ""
				assert.Equal(t, wantOptional, p.optional, "+optional of %s", p.name)
				switch {
				case in.Secret:
					assert.Equal(t, "*dagger.Secret", p.typ, "secret %s", in.Name)
				case in.Path:
					assert.Contains(t, []string{"*dagger.File", "*dagger.Directory", "[]*dagger.Directory", "*dagger.Secret"}, p.typ, "path %s", in.Name)
				default:
					assert.NotContains(t, p.typ, "dagger.", "%s is a value", in.Name)
				}
				if d := defaults[in.Name]; d != "" && in.Type != spec.Bool && !in.Path {
					assert.True(t, p.hasDef, "%s has no +default (the step's default is %s)", p.name, d)
					assert.Equal(t, d, strings.NewReplacer("[", "", "]", "", `"`, "").Replace(p.def), "+default of %s", p.name)
				} else {
					assert.False(t, p.hasDef && p.def != "false", "%s has +default=%s but the step has no default", p.name, p.def)
				}
				assert.NotEmpty(t, strings.TrimSpace(strings.Split(p.doc, "+")[0]), "%s has no description", p.name)
			}
			extras := map[string]daggerExtra{}
			for _, x := range f.extras {
				extras[x.name] = x
				if x.from != "" {
					step, name, _ := strings.Cut(x.from, "/")
					in, ok := spec.Lookup(step).Input(name)
					assert.True(t, ok && in.Secret, "extra %s is from %s, which is no secret input", x.name, x.from)
					assert.Equal(t, spec.CamelName(name), x.name)
				}
			}
			for _, p := range params {
				if x, ok := extras[p.name]; ok {
					assert.Equal(t, x.typ, p.typ, "extra %s", p.name)
					assert.True(t, p.optional, "extra %s is optional", p.name)
					continue
				}
				found := false
				for _, in := range s.Inputs {
					found = found || spec.CamelName(in.Name) == p.name
				}
				assert.True(t, found, "argument %s of %s is neither an input of %s nor a declared extra", p.name, f.name, s.Name)
			}
		})
	}
	for _, s := range spec.Steps() {
		assert.True(t, covered[s.Name], "step %s has no Dagger function", s.Name)
		for name := range daggerInputs[s.Name] {
			_, ok := s.Input(name)
			assert.True(t, ok, "daggerInputs names %s %s, which the spec does not have", s.Name, name)
		}
	}
}

func TestDaggerKebab(t *testing.T) {
	for in, want := range map[string]string{"batchSize": "batch-size", "evaluateGate": "evaluate-gate", "gitSha": "git-sha", "data": "data"} {
		assert.Equal(t, want, kebab(in))
	}
	for _, s := range spec.Steps() {
		for _, in := range s.Inputs {
			assert.Equal(t, in.Name, kebab(spec.CamelName(in.Name)), "dagger call spells %s's argument as its flag", in.Name)
		}
	}
}

// TestDaggerReadme: the README's table of the module's functions is current
// (also part of TestReadmeIsCurrent; -update rewrites this block alone).
func TestDaggerReadme(t *testing.T) {
	b, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(b)
	begin, end := beginMarker("dagger functions"), endMarker("dagger functions")
	i, j := strings.Index(s, begin), strings.Index(s, end)
	require.True(t, i >= 0 && j > i, "README has no dagger functions markers")
	cur := s[:i+len(begin)] + "\n" + DaggerTable() + s[j:]
	if *update {
		require.NoError(t, os.WriteFile(readme, []byte(cur), 0o644))
		return
	}
	assert.Equal(t, cur, s, "README.md is not current: run `go run ./cmd/mlship gen readme`")
}
