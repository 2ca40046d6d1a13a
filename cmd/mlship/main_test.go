package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The exit codes are API (README, "Exit codes"): each is checked here through
// the real binary, the way a CI job meets it.

var bin, serveBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mlship-bin-")
	if err != nil {
		panic(err)
	}
	bin, serveBin = filepath.Join(dir, "mlship"), filepath.Join(dir, "mlship-serve")
	for out, pkg := range map[string]string{bin: ".", serveBin: "../mlship-serve"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var heartCSV = mustAbs("../../examples/heart-disease/heart.csv")

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, out.String(), errb.String()}
}

// cleanEnv is the environment without CI variables, so the tests act the same
// on a laptop and in CI.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "GITLAB_") || strings.HasPrefix(k, "CI_") ||
			strings.HasPrefix(k, "MLSHIP_") || k == "KUBECONFIG" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// oneLine checks that stderr ends with exactly one "mlship: " error line and
// no Go stack trace, and returns it.
func oneLine(t *testing.T, stderr string) string {
	t.Helper()
	assert.NotContains(t, stderr, "goroutine ")
	assert.NotContains(t, stderr, "panic:")
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "mlship: "), "stderr: %q", stderr)
	return strings.TrimPrefix(last, "mlship: ")
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	r := run(t, "train", "-q", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2", "--out", model)
	require.Equal(t, 0, r.code, r.stderr)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, closedPort(t))), 0o644))

	tests := []struct {
		name string
		args []string
		code int
		want string // a part of the error line
	}{
		{"success", []string{"evaluate-gate", "--model", model, "--min", "accuracy=0.5"}, 0, ""},
		{"a failed gate is 1", []string{"evaluate-gate", "--model", model, "--min", "accuracy=0.999"}, 1, "gate failed: accuracy "},
		{"a bad flag value is 2", []string{"train", "--data", heartCSV, "--target", "target", "--epochs", "many"}, 2, `--epochs: "many" is not an integer`},
		{"an unknown flag is 2", []string{"train", "--bogus"}, 2, "unknown flag: --bogus"},
		{"bad data is 2", []string{"evaluate-gate", "--model", filepath.Join(dir, "none")}, 2, "no such file or directory"},
		{"an unreachable registry is 3", []string{"build-push-image", "-q", "--model", model, "--image", closedPort(t) + "/m:v1",
			"--push", "--smoke-test=false", "--timeout", "3s", "--server-bin", "linux/amd64=" + serveBin}, 3, "pushing "},
		{"an unreachable cluster is 3", []string{"kubectl-deploy", "-q", "--kubeconfig", kubeconfig, "--name", "m",
			"--image", "r.example.com/m@sha256:" + strings.Repeat("a", 64), "--timeout", "5s"}, 3, "connection refused"},
		{"an unreachable Prometheus is 3", []string{"monitor", "-q", "--prometheus", "http://" + closedPort(t), "--model", "heart"}, 3, "connection refused"},
		{"a bad monitor bound is 2", []string{"monitor", "--prometheus", "http://127.0.0.1:9", "--model", "heart", "--max-error-rate", "2"}, 2, "--max-error-rate must be between 0 and 1, got 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := run(t, tt.args...)
			assert.Equal(t, tt.code, r.code, "stderr: %s", r.stderr)
			if tt.want != "" {
				assert.Contains(t, oneLine(t, r.stderr), tt.want)
			}
			assert.Less(t, time.Since(start), 30*time.Second)
		})
	}
}

// TestInterrupted: SIGINT (or SIGTERM) stops training, exits 130 with
// "interrupted" and leaves no model directory, whole or partial.
func TestInterrupted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "model")
			cmd := exec.Command(bin, "train", "--data", heartCSV, "--target", "target", "--binarize", ">0",
				"--epochs", "100000", "--patience", "0", "--out", out, "--split-out", filepath.Join(dir, "split.json"))
			cmd.Env = cleanEnv()
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(stderr)
			var lines []string
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if strings.HasPrefix(sc.Text(), "epoch   2/") {
					require.NoError(t, cmd.Process.Signal(sig))
					break
				}
			}
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "exit: %v; stderr:\n%s", err, strings.Join(lines, "\n"))
			assert.Equal(t, 130, ee.ExitCode())
			assert.Equal(t, "mlship: interrupted", lines[len(lines)-1])
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, ents, "nothing written, nothing half-written")
		})
	}
}

// TestRunJSONOnError: `run --json` prints its result even when the
// configuration is wrong, with the exit code in it.
func TestRunJSONOnError(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mlship.yaml"), []byte("data: d.csv\ntarget: y\ntrain: {epochs: 0}\n"), 0o644))
	r := run(t, "run", "--json", dir)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stdout, `"exit_code": 2`)
	assert.Contains(t, r.stdout, `train.epochs must be at least 1, got 0`)
	assert.Equal(t, filepath.Join(dir, "mlship.yaml")+":3: train.epochs must be at least 1, got 0", oneLine(t, r.stderr))
}

// serveModel starts mlship-serve on model, waits until it is ready, and
// returns its base URL and a function that POSTs a JSON body to a path and
// returns the status and the body. The server is killed at the end of the test.
func serveModel(t *testing.T, model string) (string, func(path, body string) (int, string)) {
	t.Helper()
	addr := closedPort(t)
	srv := exec.Command(serveBin, "--model", model, "--addr", addr)
	srv.Env = cleanEnv()
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	base := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)
	post := func(path, body string) (int, string) {
		res, err := http.Post(base+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(b)
	}
	return base, post
}
