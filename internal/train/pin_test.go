package train

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
)

// gorgoniaPath and gorgoniaPin are the module and the version whose internals this
// package was written against.
const (
	gorgoniaPath = "gorgonia.org/gorgonia"
	gorgoniaPin  = "v0.9.18"
)

// whyPinned is the failure message of TestGorgoniaPinned.
const whyPinned = `internal/train depends on gorgonia's internals, so a version change needs a review before the pin moves:
  - newRewinder (fit.go) reads the tape machine's unexported fields pc and cpumem, the
    register ids behind LocMap and Prog().instructions by reflection, writes pc and the
    registers through unsafe pointers, and calls Run on this goroutine. It returns nil
    (every step then takes the slow Reset and RunAll path) only when a field or method
    is missing or has another type, not when one changed meaning. Read the new
    vm_tape.go against it, run TestRewindMatchesReset and
    TestPureGoForwardMatchesGorgonia, and compare BenchmarkStep with the README's figures.
  - portableBLAS (blas.go) stands in for gorgonia's BLAS through gorgonia.Use; check that
    Use and the BLAS calls of the matrix ops are unchanged (Dgemm, Dgemv, Ddot, Dger are
    mlship's own: any other float64 routine would be gonum's, which is not portable).
  - portableOp (ops.go) implements gorgonia's Op, SDOp and UsePreallocDoer interfaces;
    check them, and run TestGraphOpsArePortable: a new gorgonia may build gradients
    with ops that call the math package or fusable kernels (then internal/crossarch
    fails too).
  - README "Design notes": gorgonia v0.9.18 needs the go4.org/unsafe/assume-no-moving-gc
    version pinned in go.mod to start on Go 1.26; check whether the new version does.
Then change gorgoniaPin in internal/train/pin_test.go and the version named in fit.go
and in the README.`

// TestGorgoniaPinned fails when the gorgonia that go.mod asks for, or the one
// compiled into this test, is not the version the reflection in fit.go was
// written against.
func TestGorgoniaPinned(t *testing.T) {
	var problems []string
	mod, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	requires, replaces, err := goModRequire(string(mod), gorgoniaPath)
	require.NoError(t, err)
	switch {
	case len(requires) != 1:
		problems = append(problems, fmt.Sprintf("go.mod requires %s %d times (%v), want once", gorgoniaPath, len(requires), requires))
	case requires[0] != gorgoniaPin:
		problems = append(problems, fmt.Sprintf("go.mod requires %s %s, not %s", gorgoniaPath, requires[0], gorgoniaPin))
	}
	for _, r := range replaces {
		problems = append(problems, fmt.Sprintf("go.mod replaces %s (%s)", gorgoniaPath, r))
	}

	// The build info of a test binary lists no dependencies (Go 1.26), but that of
	// a program built with this package does; check it when it is there.
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path != gorgoniaPath {
				continue
			}
			if d.Version != gorgoniaPin {
				problems = append(problems, fmt.Sprintf("the build info says %s %s, not %s", gorgoniaPath, d.Version, gorgoniaPin))
			}
			if d.Replace != nil {
				problems = append(problems, fmt.Sprintf("the build info says %s is replaced by %s %s", gorgoniaPath, d.Replace.Path, d.Replace.Version))
			}
		}
	}

	// The source file of a gorgonia function names the module version compiled into
	// this test (module cache, or -trimpath: .../gorgonia.org/gorgonia@VERSION/...),
	// which also catches a go.work or GOFLAGS that swaps the module.
	pc := reflect.ValueOf(G.NewTapeMachine).Pointer()
	file, _ := runtime.FuncForPC(pc).FileLine(pc)
	if v, ok := versionInPath(file, gorgoniaPath); !ok {
		t.Logf("no module version in gorgonia's source path %s (vendored, or replaced by a directory?)", file)
	} else if v != gorgoniaPin {
		problems = append(problems, fmt.Sprintf("this test is built with %s %s (%s), not %s", gorgoniaPath, v, file, gorgoniaPin))
	}

	if len(problems) > 0 {
		t.Errorf("%s\n\n%s", strings.Join(problems, "\n"), whyPinned)
	}
}

// goModRequire scans go.mod text for the versions with which path is required
// and the right-hand sides of the replace directives for it, in single-line and
// block form. Comments are dropped; a quoted path is unquoted.
func goModRequire(mod, path string) (requires, replaces []string, err error) {
	block := "" // the verb of the ( ... ) block being read, if any
	for n, line := range strings.Split(mod, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		line = strings.NewReplacer("(", " ( ", ")", " ) ").Replace(line)
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		verb := block
		switch {
		case block != "" && f[0] == ")":
			block = ""
			continue
		case block == "" && len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		case block == "":
			verb, f = f[0], f[1:]
		}
		if verb != "require" && verb != "replace" || len(f) == 0 {
			continue
		}
		p := f[0]
		if uq, err := strconv.Unquote(p); err == nil {
			p = uq
		}
		if p != path {
			continue
		}
		switch verb {
		case "require":
			if len(f) != 2 {
				return nil, nil, fmt.Errorf("go.mod line %d: cannot read %q", n+1, strings.Join(f, " "))
			}
			v := f[1]
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			requires = append(requires, v)
		case "replace":
			replaces = append(replaces, fmt.Sprintf("go.mod line %d: %s", n+1, strings.Join(f, " ")))
		}
	}
	return requires, replaces, nil
}

// versionInPath returns the VERSION of a source path that holds "path@VERSION/".
func versionInPath(file, path string) (string, bool) {
	file = strings.ReplaceAll(file, `\`, "/")
	_, rest, ok := strings.Cut(file, path+"@")
	if !ok {
		return "", false
	}
	v, _, ok := strings.Cut(rest, "/")
	return v, ok && v != ""
}

func TestGoModRequire(t *testing.T) {
	const mod = `module example.com/m

go 1.26

require gorgonia.org/gorgonia v0.9.17 // one line
require (
	gorgonia.org/gorgonia/x v1.0.0
	"gorgonia.org/gorgonia" v0.9.18 // indirect
)
require(
	other.org/gorgonia.org/gorgonia v2.0.0
)
exclude (
	gorgonia.org/gorgonia v0.9.16
)
// require gorgonia.org/gorgonia v0.0.1
replace (
	gorgonia.org/gorgonia v0.9.18 => ../gorgonia
)
`
	req, rep, err := goModRequire(mod, "gorgonia.org/gorgonia")
	require.NoError(t, err)
	assert.Equal(t, []string{"v0.9.17", "v0.9.18"}, req)
	assert.Equal(t, []string{"go.mod line 18: gorgonia.org/gorgonia v0.9.18 => ../gorgonia"}, rep)

	v, ok := versionInPath("/root/go/pkg/mod/gorgonia.org/gorgonia@v0.9.18/vm_tape.go", "gorgonia.org/gorgonia")
	assert.True(t, ok)
	assert.Equal(t, "v0.9.18", v)
	_, ok = versionInPath("/src/vendor/gorgonia.org/gorgonia/vm_tape.go", "gorgonia.org/gorgonia")
	assert.False(t, ok)
}
