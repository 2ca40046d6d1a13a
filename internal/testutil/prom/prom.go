// Package prom starts Debian's prometheus (2.42) on loopback for tests and
// queries its HTTP API.
//
//	p := prom.Start(t, `
//	global: {scrape_interval: 1s, evaluation_interval: 1s}
//	rule_files: [/abs/alerts.yml]
//	scrape_configs:
//	  - job_name: model
//	    static_configs: [{targets: ["127.0.0.1:8080"]}]
//	`)
//	samples, err := p.Query(ctx, `ALERTS{alertstate="firing"}`)
//
// Relative paths in the configuration are resolved against p.Dir, where
// callers may write rule files before or after Start (then call Reload).
package prom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlship/mlship/internal/testutil"
)

// Binary is the name of Debian's Prometheus server binary, looked up on PATH.
const Binary = "prometheus"

// PromtoolBinary is the name of Debian's promtool, looked up on PATH.
const PromtoolBinary = "promtool"

// Promtool is the path of promtool. Without it on PATH the test is skipped,
// unless the environment variable CI is set: then it fails.
func Promtool(t testing.TB) string {
	t.Helper()
	bin := testutil.Binary(t, PromtoolBinary, "prometheus")
	return bin
}

// StartTimeout is how long Start waits for GET /-/ready to answer 200.
const StartTimeout = 30 * time.Second

// Server is a running Prometheus.
type Server struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string
	// Dir is its working directory (a t.TempDir): the configuration file
	// prometheus.yml, the log prometheus.log and the TSDB under data/.
	Dir string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// Start writes config to Dir/prometheus.yml, starts prometheus on a free port
// of 127.0.0.1 with its TSDB in Dir/data and waits until GET /-/ready answers
// 200. The process (its whole process group) is killed in t.Cleanup, and the
// test fails with Prometheus's log if it exited by itself before that.
//
// Without prometheus on PATH the test is skipped, unless the environment
// variable CI is set (CI=true): then it fails, since CI runs hack/setup.sh.
func Start(t testing.TB, config string) *Server {
	t.Helper()
	testutil.Binary(t, Binary, "prometheus")
	return StartDir(t, t.TempDir(), config)
}

// StartDir is Start in dir, which may already hold a TSDB in dir/data (blocks
// made by promtool tsdb create-blocks-from, for benchmarks on history).
func StartDir(t testing.TB, dir, config string) *Server {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		t.Fatalf("%s not on PATH: %v", Binary, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 1; attempt <= 5; attempt++ {
		port, err := testutil.FreePort()
		if err != nil {
			t.Fatalf("picking a port: %v", err)
		}
		s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir}
		err = s.start(t, bin, port)
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

func (s *Server) start(t testing.TB, bin string, port int) error {
	logf, err := os.Create(filepath.Join(s.Dir, "prometheus.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin,
		"--config.file=prometheus.yml",
		"--storage.tsdb.path=data",
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--web.enable-lifecycle",
		"--log.level=info",
	)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	s.done = make(chan struct{})
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	kill := func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	if err := s.waitReady(); err != nil {
		select {
		case <-s.done:
			err = fmt.Errorf("%s exited before it was ready on %s (%v); its log:\n%s", Binary, s.URL, s.waitErr, s.Log())
		default:
			kill()
			err = fmt.Errorf("%s on %s: %w; its log:\n%s", Binary, s.URL, err, s.Log())
		}
		return err
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
			t.Errorf("%s on %s exited before the test ended (%v); its log:\n%s", Binary, s.URL, s.waitErr, s.Log())
		default:
			kill()
		}
	})
	return nil
}

func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /-/ready: %s", resp.Status)
		}
		last = err
		select {
		case <-s.done:
			return errors.New("exited")
		case <-ctx.Done():
			return fmt.Errorf("GET /-/ready did not answer 200 within %s: %w", StartTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Log is Prometheus's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "prometheus.log"))
	return string(b)
}

// Reload makes Prometheus re-read prometheus.yml and its rule files
// (POST /-/reload); write them in Dir first.
func (s *Server) Reload(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reloading prometheus: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("reloading prometheus: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates the PromQL instant query expr now (GET /api/v1/query) and
// returns its samples; a scalar result is one sample without labels.
func (s *Server) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.API(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	switch data.ResultType {
	case "vector":
		var rs []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &rs); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		out := make([]Sample, 0, len(rs))
		for _, r := range rs {
			v, err := value(r.Value[1])
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", expr, err)
			}
			out = append(out, Sample{Labels: r.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var r [2]any
		if err := json.Unmarshal(data.Result, &r); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		v, err := value(r[1])
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		return []Sample{{Value: v}}, nil
	default:
		return nil, fmt.Errorf("query %s: result type %q, want vector or scalar", expr, data.ResultType)
	}
}

// API GETs path (with its query string) from Prometheus's HTTP API and decodes
// the "data" member of a successful answer into data.
func (s *Server) API(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("GET %s: %s: %w", path, resp.Status, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s: %s", path, resp.Status, env.ErrorType, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

func value(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}
