// Package testutil holds what the helpers that start real components for tests
// (registry, prom, kube) share: finding a component installed by hack/setup.sh,
// CI's strictness and free ports.
package testutil

import (
	"net"
	"os"
	"os/exec"
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
