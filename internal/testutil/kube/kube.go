// Package kube starts a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, with kwok
// simulating one node and the pods on it (hack/kube/up.sh). Deployments roll
// out in well under a second; nothing actually runs, and readiness probes are
// ignored. A pod whose image contains "unready" (UnreadyImageMarker), or that
// carries the annotation mlship.dev/kwok-unready: "true" (UnreadyAnnotation),
// stays Pending and not ready with its containers waiting on ImagePullBackOff,
// so a rollout to it fails at its progressDeadlineSeconds.
//
// The binaries come from hack/kube/build.sh (run by hack/setup.sh), cached
// outside the work tree. When they are missing, Start and Shared skip the
// test, unless the environment variable CI is set: then they fail it.
//
// A control plane costs about 5 s to start. Start gives a test its own;
// Main and Shared give a package's tests one shared plane:
//
//	func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }
//
//	func TestX(t *testing.T) {
//		c := kube.Shared(t) // started on first use, stopped when m.Run returns
//		...
//	}
package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// Namespace is the namespace the kubeconfigs default to; it has its
	// default ServiceAccount when Start returns.
	Namespace = "default"
	// UnreadyImageMarker: a container image containing this string keeps its
	// pod not ready (ImagePullBackOff).
	UnreadyImageMarker = "unready"
	// UnreadyAnnotation set to "true" on a pod keeps it not ready too.
	UnreadyAnnotation = "mlship.dev/kwok-unready"
	// LimitedUser is the user of LimitedKubeconfig: RBAC lets it only get,
	// list and watch pods in Namespace.
	LimitedUser = "limited"
	// NodeName is the simulated node's name.
	NodeName = "kwok-node-0"
)

// StartTimeout bounds one run of hack/kube/up.sh.
var StartTimeout = 2 * time.Minute

// ErrNotBuilt is wrapped by the error StartMain returns when the control-plane
// binaries have not been built (hack/setup.sh builds them).
var ErrNotBuilt = errors.New("kubernetes control-plane binaries not built")

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds the plane's state: certs, tokens, etcd data, logs/*.log.
	Dir string
	// Kubeconfig is the admin kubeconfig (group system:masters), namespace default.
	Kubeconfig string
	// LimitedKubeconfig is the kubeconfig of LimitedUser (pods in default, read-only).
	LimitedKubeconfig string
	// Server is the apiserver's URL, https://127.0.0.1:PORT.
	Server string
	// AdminToken and LimitedToken are the bearer tokens of the two kubeconfigs.
	AdminToken, LimitedToken string
	// CAFile is the CA of the apiserver's serving certificate (certificate-authority).
	CAFile string

	hack      string // the hack/kube folder
	removeDir string // removed by the watchdog
	watchdog  *exec.Cmd
	stopOnce  sync.Once
	stopErr   error
}

// Start starts a control plane for t in a temporary folder and stops it in
// t.Cleanup, logging the tail of each component's log first if t failed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	hack, err := hackDir()
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	if err := checkBuilt(hack); err != nil {
		skipOrFail(t, err)
	}
	dir := t.TempDir() // removed after the Cleanup below has stopped the plane
	c, err := start(hack, dir, dir)
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube: control plane in %s, log tails:\n%s", c.Dir, c.LogTails(40))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("kube: %v", err)
		}
	})
	return c
}

// StartMain starts a control plane in a new temporary folder, for use in
// TestMain, and returns a function that stops it and removes the folder.
// When the binaries are missing the error wraps ErrNotBuilt.
func StartMain() (*Cluster, func(), error) {
	hack, err := hackDir()
	if err != nil {
		return nil, nil, err
	}
	if err := checkBuilt(hack); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "mlship-kube-")
	if err != nil {
		return nil, nil, err
	}
	c, err := start(hack, dir, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return c, func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kube: %v\n", err)
		}
		os.RemoveAll(dir)
	}, nil
}

var shared struct {
	sync.Mutex
	used    bool // Main is in charge
	started bool
	c       *Cluster
	stop    func()
	err     error
}

// Main runs the package's tests (m.Run) and stops the control plane that
// Shared started, if any; it returns m.Run's exit code. When a test failed it
// prints the tail of each component's log to stderr first.
func Main(m *testing.M) int {
	shared.Lock()
	shared.used = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.c != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "kube: shared control plane in %s, log tails:\n%s", shared.c.Dir, shared.c.LogTails(40))
		}
		shared.stop()
	}
	return code
}

// Shared returns the package's shared control plane, starting it on first
// use; Main (called from TestMain) stops it. It skips or fails t like Start
// when the binaries are missing, and fails t when the plane cannot start.
// Tests that share it should use their own names (or namespaces).
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.used {
		t.Fatal("kube.Shared needs TestMain to call kube.Main(m)")
	}
	if !shared.started {
		shared.started = true
		shared.c, shared.stop, shared.err = StartMain()
	}
	if shared.err != nil {
		if errors.Is(shared.err, ErrNotBuilt) {
			skipOrFail(t, shared.err)
		}
		t.Fatalf("kube: %v", shared.err)
	}
	return shared.c
}

// Stop stops the control plane (hack/kube/down.sh); the folder stays. Safe to
// call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.watchdog != nil && c.watchdog.Process != nil {
			_ = c.watchdog.Process.Kill()
		}
		out, err := runScript(filepath.Join(c.hack, "down.sh"), c.Dir)
		if err != nil {
			c.stopErr = fmt.Errorf("hack/kube/down.sh %s: %v\n%s", c.Dir, err, out)
		}
	})
	return c.stopErr
}

// LogPaths returns the components' log files, by name ("kube-apiserver", ...).
func (c *Cluster) LogPaths() map[string]string {
	paths, _ := filepath.Glob(filepath.Join(c.Dir, "logs", "*.log"))
	m := make(map[string]string, len(paths))
	for _, p := range paths {
		m[strings.TrimSuffix(filepath.Base(p), ".log")] = p
	}
	return m
}

// LogTails returns the last n lines of each component's log.
func (c *Cluster) LogTails(n int) string {
	logs := c.LogPaths()
	names := make([]string, 0, len(logs))
	for name := range logs {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "----- %s (%s)\n", name, logs[name])
		b.WriteString(tail(logs[name], n))
	}
	return b.String()
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error() + "\n"
	}
	defer f.Close()
	// The apiserver's log grows large: read at most the last 256 KiB.
	if st, err := f.Stat(); err == nil && st.Size() > 256<<10 {
		_, _ = f.Seek(-256<<10, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if ci := os.Getenv("CI"); ci != "" {
		t.Fatalf("kube: %v, and CI=%s: hack/setup.sh (run by make test) should have built them", err, ci)
	}
	t.Skipf("kube: %v: run hack/setup.sh (or hack/kube/build.sh, 7-10 minutes the first time) to run this test", err)
}

// binaries are what hack/kube/build.sh installs.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// BinDir returns the folder of the control-plane binaries: MLSHIP_KUBE_BIN,
// or where hack/kube/build.sh puts them.
func BinDir() (string, error) {
	if d := os.Getenv("MLSHIP_KUBE_BIN"); d != "" {
		return d, nil
	}
	hack, err := hackDir()
	if err != nil {
		return "", err
	}
	return binDir(hack)
}

func binDir(hack string) (string, error) {
	if d := os.Getenv("MLSHIP_KUBE_BIN"); d != "" {
		return d, nil
	}
	out, err := exec.Command("bash", filepath.Join(hack, "build.sh"), "--print-dir").Output()
	if err != nil {
		return "", fmt.Errorf("hack/kube/build.sh --print-dir: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func checkBuilt(hack string) error {
	bin, err := binDir(hack)
	if err != nil {
		return err
	}
	var missing []string
	for _, b := range binaries {
		if st, err := os.Stat(filepath.Join(bin, b)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w (%s missing in %s)", ErrNotBuilt, strings.Join(missing, ", "), bin)
	}
	return nil
}

// hackDir finds hack/kube by walking up from the working directory (a test
// runs in its package's folder).
func hackDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "kube")
		if st, err := os.Stat(filepath.Join(p, "up.sh")); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/kube/up.sh not found above the working directory")
		}
		dir = parent
	}
}

// start runs up.sh in dir (a second time in a fresh subfolder if the first
// fails, for example on a port taken in between) and starts a watchdog that
// runs down.sh should this process die without stopping the plane.
func start(hack, dir, removeDir string) (*Cluster, error) {
	var errs []error
	for attempt := 1; attempt <= 2; attempt++ {
		d := filepath.Join(dir, "plane")
		if attempt > 1 {
			d += strconv.Itoa(attempt)
		}
		out, err := runScript(filepath.Join(hack, "up.sh"), d)
		if err == nil {
			c, err := load(hack, d)
			if err != nil {
				runScript(filepath.Join(hack, "down.sh"), d) //nolint:errcheck
				return nil, err
			}
			c.removeDir = removeDir
			c.startWatchdog()
			return c, nil
		}
		errs = append(errs, fmt.Errorf("hack/kube/up.sh %s (attempt %d): %v\n%s", d, attempt, err, out))
	}
	return nil, errors.Join(errs...)
}

func runScript(script string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

func load(hack, dir string) (*Cluster, error) {
	data, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	c := &Cluster{
		Dir:               dir,
		Kubeconfig:        filepath.Join(dir, "kubeconfig"),
		LimitedKubeconfig: filepath.Join(dir, "kubeconfig-limited"),
		Server:            env["KUBE_SERVER"],
		AdminToken:        env["KUBE_ADMIN_TOKEN"],
		LimitedToken:      env["KUBE_LIMITED_TOKEN"],
		CAFile:            filepath.Join(dir, "certs", "ca.crt"),
		hack:              hack,
	}
	if c.Server == "" || c.AdminToken == "" || c.LimitedToken == "" {
		return nil, fmt.Errorf("%s/env lacks KUBE_SERVER or a token", dir)
	}
	return c, nil
}

// startWatchdog starts, in its own session, a shell that waits for this
// process to exit and then runs down.sh: a test binary killed by a timeout
// leaves no control plane behind. Stop kills it first.
func (c *Cluster) startWatchdog() {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done; bash "$2" "$3"; [ -z "$4" ] || rm -rf "$4"`
	cmd := exec.Command("bash", "-c", script, "kube-watchdog",
		strconv.Itoa(os.Getpid()), filepath.Join(c.hack, "down.sh"), c.Dir, c.removeDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// No stdin/stdout/stderr: it must not hold `go test`'s pipes open.
	if err := cmd.Start(); err != nil {
		return // only a safety net
	}
	c.watchdog = cmd
	go cmd.Wait() //nolint:errcheck
}
