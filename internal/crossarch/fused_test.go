package crossarch

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// exempt are mlship packages whose floating-point results are not part of the
// promise (README, "The model directory"), with the reason.
var exempt = map[string]string{
	"github.com/mlship/mlship/internal/report":  "the report's chart coordinates",
	"github.com/mlship/mlship/internal/monitor": "drift statistics of live traffic, computed where the monitor runs",
}

// exactMath are the math functions mlship code may call: their results are exact
// (comparisons, bit manipulation), so the same on every architecture. Every other
// math function (Exp, Log, Tanh, Pow, ...) has assembly or fused multiply-adds on
// some architecture: use internal/fpmath. (math.Sqrt is an instruction, not a
// call, and correctly rounded everywhere.)
var exactMath = regexp.MustCompile(`^math\.(arch)?(Abs|Max|Min|Floor|Ceil|Trunc|Round|RoundToEven|Modf|Frexp|Ldexp|Copysign|Signbit|IsNaN|IsInf|Inf|NaN|Float64bits|Float64frombits|Float32bits|Float32frombits|Nextafter|max|min|floor|ceil|trunc|modf|frexp|ldexp)(\.abi0)?$`)

// fusedOp matches the arm64 instructions that multiply and add with one rounding.
var fusedOp = regexp.MustCompile(`\b(FMADD[SD]|FMSUB[SD]|FNMADD[SD]|FNMSUB[SD]|VFMLA|VFMLS)\b`)

// TestNoFusedArithmetic reads the linux/arm64 machine code of mlship and
// mlship-serve: no function of mlship's own packages may contain a fused
// multiply-add, and none may call a math function whose result is not exact or
// that contains one (math/rand's too). Go fuses x*y + z on arm64 (never on amd64)
// unless the product is converted explicitly, float64(x*y); that one instruction
// rounds once where amd64 rounds twice, so a model would differ in its last bits
// between architectures. TestSameModelEverywhere would catch that too, but only
// under qemu and only on the paths it trains; this catches it at the line.
func TestNoFusedArithmetic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mlship for linux/arm64")
	}
	arm := build(t)["arm64"]
	for _, bin := range []string{arm.mlship, arm.serve} {
		// mlship's own functions, and the standard math packages' to know which
		// of them fuse.
		cmd := exec.Command("go", "tool", "objdump", "-s", `^(github\.com/mlship/mlship/|math\.|math/rand\.|math/rand/v2\.)`, bin)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		type fn struct {
			fused []string // positions of fused instructions
			calls []string // direct call targets
		}
		funcs := map[string]*fn{}
		var cur *fn
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if name, ok := strings.CutPrefix(line, "TEXT "); ok {
				name, _, _ = strings.Cut(name, " ")
				name = strings.TrimSuffix(name, "(SB)")
				cur = &fn{}
				funcs[name] = cur
				continue
			}
			if cur == nil {
				continue
			}
			fields := strings.Fields(line)
			if len(fields) < 4 {
				continue
			}
			if fusedOp.MatchString(line) {
				cur.fused = append(cur.fused, fields[0])
			}
			if i := slices.Index(fields, "CALL"); i >= 0 && i+1 < len(fields) {
				cur.calls = append(cur.calls, strings.TrimSuffix(fields[i+1], "(SB)"))
			}
		}
		require.NoError(t, sc.Err())
		require.NoError(t, cmd.Wait(), "go tool objdump %s", bin)

		var problems []string
		own := 0
		for name, f := range funcs {
			if !strings.HasPrefix(name, "github.com/mlship/mlship/") || exempt[pkgOf(name)] != "" {
				continue
			}
			own++
			if len(f.fused) > 0 {
				problems = append(problems, fmt.Sprintf("%s: fused multiply-add at %s", name, strings.Join(slices.Compact(f.fused), ", ")))
			}
			for _, c := range f.calls {
				callee := funcs[c]
				switch {
				case strings.HasPrefix(c, "math.") && !exactMath.MatchString(c):
					problems = append(problems, fmt.Sprintf("%s: calls %s, whose results differ between architectures", name, c))
				case callee != nil && !strings.HasPrefix(c, "github.com/mlship/mlship/") && len(callee.fused) > 0:
					problems = append(problems, fmt.Sprintf("%s: calls %s, which has fused multiply-adds", name, c))
				}
			}
		}
		require.Greater(t, own, 100, "the disassembly of %s lists too few of mlship's functions; did the symbol names change?", bin)
		slices.Sort(problems)
		problems = slices.Compact(problems)
		if len(problems) > 0 {
			t.Errorf("linux/arm64 %s:\n  %s\n%s", bin, strings.Join(problems, "\n  "), fixHint)
		}
	}
}

const fixHint = `Write float64(x*y) for each product that is added to or subtracted from, also
across statements and when the product is then doubled (x*2 is compiled as x + x);
use internal/fpmath instead of math's Exp, Log, Log1p, Tanh, Pow. A package whose
floating-point results are not part of the reproducibility promise goes into
exempt (internal/crossarch/fused_test.go), with the reason.`

// pkgOf returns the package path of a function symbol.
func pkgOf(sym string) string {
	slash := strings.LastIndex(sym, "/")
	dot := strings.Index(sym[slash+1:], ".")
	if dot < 0 {
		return sym
	}
	return sym[:slash+1+dot]
}

// exactMathName are the math identifiers whose values are the same everywhere:
// the exact functions of exactMath, Sqrt (correctly rounded by IEEE 754) and the
// constants.
var exactMathName = regexp.MustCompile(`^(Abs|Max|Min|Floor|Ceil|Trunc|Round|RoundToEven|Modf|Frexp|Ldexp|Copysign|Signbit|IsNaN|IsInf|Inf|NaN|Float64bits|Float64frombits|Float32bits|Float32frombits|Nextafter|Sqrt|(Max|Min|Smallest)\w*|Pi|E|Phi|Sqrt2|SqrtE|SqrtPi|SqrtPhi|Ln2|Log2E|Ln10|Log10E)$`)

// TestNoInexactMath reads the source of mlship's packages: none may use a math
// function whose result differs between architectures, as a call or as a
// function value (the machine-code scan of TestNoFusedArithmetic sees only calls).
func TestNoInexactMath(t *testing.T) {
	var problems []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		if exempt["github.com/mlship/mlship/"+filepath.ToSlash(rel)] != "" {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		local := ""
		for _, im := range f.Imports {
			if im.Path.Value == `"math"` {
				local = "math"
				if im.Name != nil {
					local = im.Name.Name
				}
			}
		}
		if local == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == local && !exactMathName.MatchString(sel.Sel.Name) {
				problems = append(problems, fmt.Sprintf("%s: math.%s", fset.Position(sel.Pos()), sel.Sel.Name))
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	if len(problems) > 0 {
		t.Errorf("math functions whose results differ between architectures (use internal/fpmath):\n  %s\n%s", strings.Join(problems, "\n  "), fixHint)
	}
}
