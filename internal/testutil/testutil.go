// Package testutil holds what the helpers that start real components for tests
// (registry, prom, kube) share: finding a component installed by hack/setup.sh,
// CI's strictness and free ports.
package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CI reports whether the environment variable CI asks for strictness: a
// component that is missing then fails the test instead of skipping it.
func CI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v != "" && v != "false" && v != "0"
}

// Binary returns the path of bin on PATH. Without it the test is skipped,
// unless CI is set: then it fails, since CI runs hack/setup.sh, which installs
// Debian's package pkg.
func Binary(t testing.TB, bin, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		if CI() {
			t.Fatalf("%s not on PATH and CI=%s: hack/setup.sh (run by make test) should have installed Debian's %s", bin, os.Getenv("CI"), pkg)
		}
		t.Skipf("%s not on PATH: run hack/setup.sh (or apt-get install %s) to run this test", bin, pkg)
	}
	return path
}

// FreePort returns a port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// BuildMlship builds mlship from the checkout at root (CGO off, with the
// mlship-serve binaries `make serverbins` embedded when they are there) into
// a new temporary directory and returns that directory, for tests that put it
// on a runner's PATH.
func BuildMlship(root, prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "mlship"), "./cmd/mlship")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building mlship: %v\n%s", err, out)
	}
	return dir, nil
}

// Tool returns the path of a pinned tool (act, gitlab-ci-local, ...) that
// hack/tools.sh installs, installing it first when it is missing.
func Tool(root, name string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(root, "hack", "tools.sh"), name)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/tools.sh %s: %w", name, err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), name), nil
}
