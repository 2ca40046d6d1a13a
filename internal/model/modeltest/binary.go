package modeltest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	binMu  sync.Mutex
	binDir string
	bins   = map[string]string{}
	failed = map[string]string{} // the build output of a command that did not build
)

// Binary builds cmd/NAME of this module (mlship, mlship-serve) once per test
// process and returns the path of the binary, so a test meets a command the
// way a user does. Call RemoveBinaries from TestMain when the tests are done.
func Binary(t testing.TB, name string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := bins[name]; ok {
		return p
	}
	if out, ok := failed[name]; ok {
		t.Fatalf("building cmd/%s failed (see the first test that tried):\n%s", name, out)
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "mlship-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	p := filepath.Join(binDir, name)
	cmd := exec.Command("go", "build", "-o", p, "github.com/mlship/mlship/cmd/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		failed[name] = string(out)
		t.Fatalf("building cmd/%s: %v\n%s", name, err, out)
	}
	bins[name] = p
	return p
}

// RemoveBinaries removes what Binary built.
func RemoveBinaries() {
	binMu.Lock()
	defer binMu.Unlock()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Result is how a command ended.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs bin with args in the directory dir ("" for the current one), with
// the environment of the test less CI and mlship variables (GITHUB_*, GITLAB_*,
// CI_*, MLSHIP_*, KUBECONFIG), so it acts the same on a laptop and in CI.
func Run(t testing.TB, dir, bin string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "GITLAB_") || strings.HasPrefix(k, "CI_") ||
			strings.HasPrefix(k, "MLSHIP_") || k == "KUBECONFIG" {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", bin, err)
	}
	return Result{code, out.String(), errb.String()}
}

// ErrLine checks that stderr ends with exactly one error line starting with
// prefix ("mlship: ") and holds no Go stack trace, and returns the line
// without the prefix.
func ErrLine(t testing.TB, stderr, prefix string) string {
	t.Helper()
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
		t.Fatalf("a Go stack trace on stderr:\n%s", stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, prefix) {
		t.Fatalf("stderr does not end with a %q line: %q", prefix, stderr)
	}
	return strings.TrimPrefix(last, prefix)
}
