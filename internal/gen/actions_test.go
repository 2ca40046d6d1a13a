package gen

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/mlship/mlship/internal/spec"
)

// TestFilesAreCurrent fails when a generated front-end file drifts from the
// spec: run `go run ./cmd/mlship gen files` (or go test ./internal/gen -update).
func TestFilesAreCurrent(t *testing.T) {
	stale, err := WriteFiles("../..", Files(), !*update)
	require.NoError(t, err)
	if !*update {
		assert.Empty(t, stale, "not current: run `go run ./cmd/mlship gen files`")
	}
}

type action struct {
	Inputs map[string]struct {
		Description string `yaml:"description"`
		Required    bool   `yaml:"required"`
		Default     string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
			Uses  string            `yaml:"uses"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

var expr = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// TestActions parses every action.yml in the repository (the committed
// files, as GitHub reads them) and checks that inputs reach the binary through
// env: and never as an expression inside run: (script injection), that every
// input is a spec input of its step (or one of the actions' own), and that the
// outputs are the step's.
func TestActions(t *testing.T) {
	paths, err := filepath.Glob("../../actions/*/action.yml")
	require.NoError(t, err)
	paths = append(paths, "../../action.yml")
	require.Len(t, paths, len(spec.Steps())+2, "one action per step, setup and the root action")
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			var a action
			require.NoError(t, yaml.Unmarshal(b, &a))
			assert.Equal(t, "composite", a.Runs.Using)
			step := filepath.Base(filepath.Dir(p))
			if p == "../../action.yml" {
				step = "run"
			}
			s := spec.Lookup(step)
			extra := map[string]bool{}
			for _, x := range actionExtras {
				extra[x.name] = true
			}
			for name := range a.Inputs {
				if s == nil { // setup
					assert.True(t, extra[name], "setup input %s", name)
					continue
				}
				_, ok := s.Input(name)
				assert.True(t, ok || extra[name], "input %s of %s is not in the spec", name, step)
			}
			if s != nil {
				for _, in := range s.Inputs {
					assert.Contains(t, a.Inputs, in.Name, "spec input %s has no action input", in.Name)
				}
				var want, got []string
				for _, o := range s.Outputs {
					want = append(want, o.Name)
				}
				for o := range a.Outputs {
					got = append(got, o)
				}
				slices.Sort(want)
				slices.Sort(got)
				assert.Equal(t, want, got, "outputs of %s", step)
			}
			used := map[string]bool{}
			for _, st := range a.Runs.Steps {
				for _, m := range expr.FindAllStringSubmatch(st.Run, -1) {
					t.Errorf("an expression inside run: (%s); pass it through env:", m[0])
				}
				for k, v := range st.Env {
					for _, m := range expr.FindAllStringSubmatch(v, -1) {
						if name, ok := strings.CutPrefix(m[1], "inputs."); ok {
							used[name] = true
							assert.Contains(t, a.Inputs, name, "env %s reads an unknown input", k)
							if in, isStep := stepInput(s, name); isStep {
								assert.Equal(t, spec.EnvName(in.Name), k, "input %s reaches the binary as $%s", name, spec.EnvName(in.Name))
							}
						}
					}
				}
			}
			for name := range a.Inputs {
				assert.True(t, used[name], "input %s is never passed to a step", name)
			}
		})
	}
}

func stepInput(s *spec.Step, name string) (spec.Input, bool) {
	if s == nil {
		return spec.Input{}, false
	}
	return s.Input(name)
}
