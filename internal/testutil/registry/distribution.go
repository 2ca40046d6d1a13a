package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlship/mlship/internal/testutil"
)

// DistributionBinary is the name of Debian's registry binary, looked up on PATH.
const DistributionBinary = "docker-registry"

// StartTimeout is how long StartDistribution waits for GET /v2/ to answer.
const StartTimeout = 10 * time.Second

// StartDistribution starts Debian's docker-registry (CNCF distribution 2.8) on
// 127.0.0.1 with a free port and its storage in t.TempDir(), with htpasswd
// auth (bcrypt cost 4, realm "x") when opts.Username is set, and waits until
// GET /v2/ answers. The process (its whole process group) is killed in
// t.Cleanup, and the test fails with the registry's log if it exited by
// itself before that.
//
// Without docker-registry on PATH the test is skipped, unless the environment
// variable CI is set (CI=true): then it fails, since CI runs hack/setup.sh.
func StartDistribution(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := testutil.Binary(t, DistributionBinary, "docker-registry")
	dir := t.TempDir()
	var auth string
	if opts.Username != "" {
		line, err := Htpasswd(opts.Username, opts.Password)
		if err != nil {
			if testutil.CI() {
				t.Fatalf("registry auth: %v", err)
			}
			t.Skipf("registry auth: %v", err)
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: %s\n    path: %s\n", Realm, path)
	}
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		t.Fatal(err)
	}

	var lastErr error
	for attempt := 1; attempt <= 5; attempt++ {
		port, err := testutil.FreePort()
		if err != nil {
			t.Fatalf("picking a port: %v", err)
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		config := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
		logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		conf := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: mlship-test-secret
%s`, storage, host, auth)
		if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Server{Host: host, URL: "http://" + host, Username: opts.Username, Password: opts.Password, logPath: logPath}
		err = s.start(t, bin, config)
		if err == nil {
			return s
		}
		lastErr = err
		if !strings.Contains(s.Log(), "address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return nil
}

// start runs the registry and waits for /v2/. On success the process is
// killed in t.Cleanup; on failure it is killed before start returns.
func (s *Server) start(t testing.TB, bin, config string) error {
	logf, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}

	if err := waitReady(s.URL, done); err != nil {
		select {
		case <-done:
			err = fmt.Errorf("%s exited before answering on %s (%v); its log:\n%s", DistributionBinary, s.Host, waitErr, s.Log())
		default:
			kill()
			err = fmt.Errorf("%s on %s: %w; its log:\n%s", DistributionBinary, s.Host, err, s.Log())
		}
		return err
	}
	t.Cleanup(func() {
		select {
		case <-done:
			t.Errorf("%s on %s exited before the test ended (%v); its log:\n%s", DistributionBinary, s.Host, waitErr, s.Log())
		default:
			kill()
		}
	})
	return nil
}

// waitReady polls GET URL/v2/ until it answers 200 or 401, the process exits
// (done is closed) or StartTimeout passes.
func waitReady(url string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		select {
		case <-done:
			return errors.New("exited")
		case <-ctx.Done():
			return fmt.Errorf("GET /v2/ did not answer 200 or 401 within %s: %w", StartTimeout, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
