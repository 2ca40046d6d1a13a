package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The registry and the cluster as a CI job meets them when they are down or
// stalled, and the outputs a job must not lose, through the real binary.

// stalled is a loopback address that accepts connections and never answers
// (nor reads): a registry or API server that hangs.
func stalled(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// timedLines runs mlship and returns its exit code, its stderr lines and, for
// each, how long after the start it came.
func timedLines(t *testing.T, args ...string) (int, []string, []time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, cmd.Start())
	var lines []string
	var at []time.Duration
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		at = append(at, time.Since(start))
	}
	err = cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, lines, at
}

// trainedModel trains a small model once per test.
func trainedModel(t *testing.T) string {
	t.Helper()
	model := filepath.Join(t.TempDir(), "model")
	r := run(t, "train", "-q", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2", "--out", model)
	require.Equal(t, 0, r.code, r.stderr)
	return model
}

// TestRegistryDownOrStalled: a push to a registry that never answers ends at
// its --timeout (exit 3), and one to a closed port ends as soon as the next
// retry would come after the timeout, with a progress line per retry.
func TestRegistryDownOrStalled(t *testing.T) {
	model := trainedModel(t)
	for _, tc := range []struct {
		name    string
		host    string
		want    string
		retries int
		min     time.Duration
	}{
		{"stalled", stalled(t), "not done within the timeout (3s, 1 try)", 0, 2900 * time.Millisecond},
		{"closed", closedPort(t), "not done within the timeout (3s, 3 tries; the next try would be after it)", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.host + "/m:v1"
			code, lines, at := timedLines(t, "build-push-image", "--model", model, "--image", ref, "--push",
				"--smoke-test=false", "--timeout", "3s", "--server-bin", "linux/amd64="+serveBin)
			assert.Equal(t, 3, code, strings.Join(lines, "\n"))
			require.NotEmpty(t, lines)
			last := lines[len(lines)-1]
			assert.True(t, strings.HasPrefix(last, `mlship: pushing "`+ref+`": `+tc.want), last)
			built := -1
			retries := 0
			for i, l := range lines {
				switch {
				case strings.HasPrefix(l, "built "):
					built = i
				case strings.HasPrefix(l, `pushing "`+ref+`": `) && strings.Contains(l, " of 5 in "):
					retries++
				}
			}
			require.GreaterOrEqual(t, built, 0, strings.Join(lines, "\n"))
			assert.Equal(t, tc.retries, retries, "one line per retry:\n%s", strings.Join(lines, "\n"))
			push := at[len(at)-1] - at[built]
			assert.GreaterOrEqual(t, push, tc.min)
			assert.Less(t, push, 3*time.Second+500*time.Millisecond, "the push ends within its timeout")
			t.Logf("%s registry: the push ended %s after the build", tc.name, push.Round(time.Millisecond))
		})
	}
}

// TestClusterErrors: each way a cluster cannot be used gets one line on
// stderr (no klog line, no client-go wording) and its exit code.
func TestClusterErrors(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := func(name, server string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, server)), 0o600))
		return p
	}
	missing := filepath.Join(dir, "missing")
	invalid := filepath.Join(dir, "invalid")
	require.NoError(t, os.WriteFile(invalid, []byte("clusters: [\n"), 0o600))
	refused, hung := closedPort(t), stalled(t)
	image := "r.example.com/m@sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		name       string
		kubeconfig string
		code       int
		want       string
	}{
		{"missing kubeconfig", missing, 2, "cannot read kubeconfig " + missing + ": no such file or directory"},
		{"invalid kubeconfig", invalid, 2, "cannot read kubeconfig " + invalid + ": yaml: "},
		{"refused", kubeconfig("refused", refused), 3, "cluster at https://" + refused + " unreachable: Get \"https://" + refused + "/version\": dial tcp " + refused + ": connect: connection refused"},
		{"stalled", kubeconfig("stalled", hung), 3, "cluster at https://" + hung + " unreachable: no answer within 2s: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := run(t, "kubectl-deploy", "-q", "--kubeconfig", tc.kubeconfig, "--name", "m", "--image", image, "--timeout", "2s")
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Less(t, time.Since(start), 5*time.Second)
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			require.Len(t, lines, 1, "only the error line on stderr: %q", r.stderr)
			assert.True(t, strings.HasPrefix(lines[0], "mlship: "+tc.want), lines[0])
			for _, bad := range []string{"KUBERNETES_MASTER", "memcache.go", "does not serve kind"} {
				assert.NotContains(t, r.stderr, bad)
			}
		})
	}
}

// TestDeployValidation: settings that cannot work are refused (exit 2);
// zero replicas is honoured; an autoscaler's range renders a
// HorizontalPodAutoscaler and a Deployment without spec.replicas.
func TestDeployValidation(t *testing.T) {
	image := "r.example.com/m@sha256:" + strings.Repeat("a", 64)
	r := run(t, "kubectl-deploy", "--render", "--name", "m", "--image", image, "--replicas", "0")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "\n  replicas: 0\n")
	assert.Contains(t, r.stdout, "terminationGracePeriodSeconds: 40\n")
	assert.NotContains(t, r.stdout, "kind: PodDisruptionBudget", "no budget for no pods")

	r = run(t, "kubectl-deploy", "--render", "--name", "m", "--image", image, "--replicas", "3", "--min-replicas", "2", "--max-replicas", "5", "--cpu-target", "70")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "\n  replicas:", "the autoscaler owns spec.replicas")
	assert.Contains(t, r.stdout, "kind: HorizontalPodAutoscaler\n")
	assert.Contains(t, r.stdout, "  maxReplicas: 5\n")
	assert.Contains(t, r.stdout, "  minReplicas: 2\n")
	assert.Contains(t, r.stdout, "        averageUtilization: 70\n")
	assert.Contains(t, r.stdout, "kind: PodDisruptionBudget\n")
	assert.Contains(t, r.stdout, "# needs the Prometheus Operator's CRDs (monitoring.coreos.com/v1); --monitoring off leaves it out\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n")
	assert.Contains(t, r.stdout, "kind: PrometheusRule\n")
	assert.Contains(t, r.stderr, "they need the Prometheus Operator's CRDs")
	r = run(t, "kubectl-deploy", "--render", "--name", "m", "--image", image, "--monitoring", "off")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "monitoring.coreos.com")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory-request", "2Gi", "--memory-limit", "1Gi"}, "--memory-request must not be above --memory-limit (1Gi), got 2Gi"},
		{[]string{"--cpu-request", "2", "--cpu-limit", "500m"}, "--cpu-request must not be above --cpu-limit (500m), got 2"},
		{[]string{"--progress-deadline", "-5"}, "--progress-deadline must be at least 1 (seconds), got -5"},
		{[]string{"--progress-deadline", "0"}, "--progress-deadline must be at least 1 (seconds), got 0"},
		{[]string{"--min-replicas", "6", "--max-replicas", "5"}, "--max-replicas must be at least --min-replicas (6), got 5"},
		{[]string{"--replicas", "3", "--max-replicas", "2"}, "--max-replicas must be at least --replicas (3), the minimum when --min-replicas is not given, got 2"},
		{[]string{"--max-replicas", "-1"}, "--max-replicas must not be negative (0: no autoscaler), got -1"},
		{[]string{"--min-replicas", "2"}, "--min-replicas needs --max-replicas: without it there is no autoscaler"},
		{[]string{"--max-replicas", "5", "--cpu-target", "150"}, "--cpu-target must be between 1 and 100 (percent of --cpu-request), got 150"},
		{[]string{"--max-replicas", "5", "--cpu-request", "0"}, "--cpu-request must be above 0 with an autoscaler (--max-replicas): its --cpu-target is a share of the request, got 0"},
		{[]string{"--monitoring", "yes"}, `--monitoring: "yes" is not one of auto, on, off`},
	} {
		r := run(t, append([]string{"kubectl-deploy", "--render", "--name", "m", "--image", image}, tc.args...)...)
		assert.Equal(t, 2, r.code, r.stderr)
		assert.Equal(t, tc.want, oneLine(t, r.stderr))
		assert.Empty(t, r.stdout)
	}
}

// TestImageOutputsKept: --oci-layout into a directory that is not a layout and
// --tarball onto the training data are refused (exit 2) and touch nothing; an
// existing layout keeps its other images; a platform without a server says
// which there are.
func TestImageOutputsKept(t *testing.T) {
	model := trainedModel(t)
	dir := t.TempDir()
	csv := filepath.Join(dir, "train.csv")
	data, err := os.ReadFile(heartCSV)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(csv, data, 0o644))
	project := filepath.Join(dir, "project")
	require.NoError(t, os.MkdirAll(filepath.Join(project, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(project, "src", "train.py"), []byte("print(1)\n"), 0o644))
	build := func(args ...string) result {
		return run(t, append([]string{"build-push-image", "-q", "--model", model, "--image", "mlship.local/heart:v1",
			"--smoke-test=false", "--server-bin", "linux/amd64=" + serveBin}, args...)...)
	}

	r := build("--tarball", csv)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Equal(t, `writing tarball "`+csv+`": the file exists and is not an image tarball written by mlship; refusing to overwrite it (remove it or choose another path)`, oneLine(t, r.stderr))
	after, err := os.ReadFile(csv)
	require.NoError(t, err)
	assert.Equal(t, data, after, "the training data is untouched")

	r = build("--oci-layout", project)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, oneLine(t, r.stderr), "is not empty and is not an OCI layout")
	ents, err := os.ReadDir(project)
	require.NoError(t, err)
	require.Len(t, ents, 1)
	assert.Equal(t, "src", ents[0].Name())

	layout := filepath.Join(dir, "layout")
	r = build("--oci-layout", layout, "--tarball", filepath.Join(dir, "heart.tar"))
	require.Equal(t, 0, r.code, r.stderr)
	r = build("--oci-layout", layout, "--tarball", filepath.Join(dir, "heart.tar"), "--image", "mlship.local/heart:v2")
	require.Equal(t, 0, r.code, r.stderr, "mlship's own tarball is replaced")
	index, err := os.ReadFile(filepath.Join(layout, "index.json"))
	require.NoError(t, err)
	assert.Contains(t, string(index), `"org.opencontainers.image.ref.name":"v1"`)
	assert.Contains(t, string(index), `"org.opencontainers.image.ref.name":"v2"`)
	require.NoError(t, filepath.Walk(layout, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		want := os.FileMode(0o644)
		if fi.IsDir() {
			want = 0o755
		}
		assert.Equal(t, want, fi.Mode().Perm(), p)
		return nil
	}))

	r = build("--oci-layout", filepath.Join(dir, "win"), "--platform", "windows/386")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, oneLine(t, r.stderr), `no embedded mlship-serve for windows/386 in this mlship, which `)
	assert.Contains(t, r.stderr, "give --server-bin windows/386=PATH")
	assert.NoDirExists(t, filepath.Join(dir, "win"))
}
