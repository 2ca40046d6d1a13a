package image

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/image/serverbin"
	"github.com/mlship/mlship/internal/testutil/registry"
)

// stampedLog records progress lines with the time each arrived.
type stampedLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	built time.Time
}

func (l *stampedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.HasPrefix(string(p), "built ") {
		l.built = time.Now()
	}
	return l.buf.Write(p)
}

func (l *stampedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// pushFor runs a push and returns how long it took after the image was built,
// the progress log and the push's error.
func pushFor(t *testing.T, cfg Config) (time.Duration, string, error) {
	t.Helper()
	log := &stampedLog{}
	cfg.Log = log
	_, err := Run(context.Background(), cfg)
	end := time.Now()
	require.False(t, log.built.IsZero(), "the image was built: %v", err)
	return end.Sub(log.built), log.String(), err
}

// stalledListener accepts connections and never answers (nor reads).
func stalledListener(t *testing.T) string {
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

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestStalledRegistry: a registry that accepts connections and never answers
// (the TLS handshake and the plain-HTTP request both stall) ends the push at
// its timeout, exit 3, with the default transport and retries.
func TestStalledRegistry(t *testing.T) {
	for _, tc := range []struct {
		name string
		host func(t *testing.T) string
	}{
		{"a socket that never answers", stalledListener},
		{"a registry whose proxy holds every request", func(t *testing.T) string {
			reg := registry.StartInProcess(t, registry.Options{})
			p := registry.NewProxy(t, reg.Host)
			p.StallFor = time.Minute
			p.Fail(1000, registry.Stall)
			return p.Host
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.host(t) + "/models/heart:v1")
			cfg.Push, cfg.Retry, cfg.Timeout = true, nil, 2*time.Second
			took, _, err := pushFor(t, cfg)
			require.Error(t, err)
			assert.Equal(t, fault.Environment, fault.CodeOf(err), "%v", err)
			assert.Contains(t, err.Error(), `pushing "`+cfg.Image+`": not done within the timeout (2s, 1 try)`)
			assert.NotContains(t, err.Error(), "\n")
			assert.GreaterOrEqual(t, took, 2*time.Second-100*time.Millisecond)
			assert.Less(t, took, 2*time.Second+time.Second, "the push ends at its timeout")
			t.Logf("push ended %s after the build: %v", took.Round(time.Millisecond), err)
		})
	}
}

// TestStalledRequestRetried: each request is bounded (here its response
// header, 300ms), so a stalled registry is retried, one line per retry, until
// the timeout.
func TestStalledRequestRetried(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{})
	p := registry.NewProxy(t, reg.Host)
	p.StallFor = time.Minute
	p.Fail(1000, registry.Stall)
	cfg := testConfig(p.Ref("models/heart:v1"))
	cfg.Push, cfg.Timeout = true, 3*time.Second
	tr := DefaultTransport().(*http.Transport)
	tr.ResponseHeaderTimeout = 300 * time.Millisecond
	cfg.Transport = tr
	retry := DefaultRetry
	retry.Duration = 100 * time.Millisecond
	cfg.Retry = &retry
	took, log, err := pushFor(t, cfg)
	require.Error(t, err)
	assert.Equal(t, fault.Environment, fault.CodeOf(err), "%v", err)
	assert.Less(t, took, 3*time.Second+time.Second)
	assert.Contains(t, log, `Get "http://`+p.Host+`/v2/": net/http: timeout awaiting response headers; try 2 of 5 in `)
	assert.True(t, strings.HasPrefix(strings.Split(log, "\n")[1], `pushing "`+cfg.Image+`": `), log)
	assert.Contains(t, log, "; try 3 of 5 in ")
	assert.Positive(t, p.Counts().Faults)
}

// TestDeadlineHonoured: go-containerregistry's own retries slept past the
// deadline (a 3s push to a closed port took 7.8s). Now the push gives up as
// soon as the next try would come after the timeout, and says so.
func TestDeadlineHonoured(t *testing.T) {
	cfg := testConfig(closedAddr(t) + "/models/heart:v1")
	cfg.Push, cfg.Retry, cfg.Timeout = true, nil, 3*time.Second
	took, log, err := pushFor(t, cfg)
	require.Error(t, err)
	assert.Equal(t, fault.Environment, fault.CodeOf(err), "%v", err)
	assert.Less(t, took, 3*time.Second+200*time.Millisecond)
	assert.Contains(t, err.Error(), "not done within the timeout (3s, 3 tries; the next try would be after it)")
	assert.Contains(t, err.Error(), "connection refused")
	lines := strings.Split(strings.TrimSpace(log), "\n")
	require.Len(t, lines, 3, log) // built, two retries
	assert.Regexp(t, `^pushing ".*": Get "https://.*connection refused.*; try 2 of 5 in \d+ms$`, lines[1])
	assert.Regexp(t, `; try 3 of 5 in 1\.\d+s$`, lines[2])
	t.Logf("push to a closed port with a 3s timeout ended after %s", took.Round(time.Millisecond))
}

// TestRetriesExhausted: a registry that keeps answering 500 is tried 5
// times, then exit 3; transient 500s are retried and the push succeeds.
func TestRetriesExhausted(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{})
	p := registry.NewProxy(t, reg.Host)
	cfg := testConfig(p.Ref("models/heart:v1"))
	cfg.Push = true
	p.Fail(1000, registry.Status500, registry.MatchKind(registry.KindManifestPut))
	_, log, err := pushFor(t, cfg)
	require.Error(t, err)
	assert.Equal(t, fault.Environment, fault.CodeOf(err))
	assert.Contains(t, err.Error(), `pushing "`+cfg.Image+`": gave up after 5 tries: PUT http://`)
	assert.Contains(t, err.Error(), "fault injected by the test proxy")
	assert.Equal(t, 4, strings.Count(log, "fault injected by the test proxy; try "), log)
	assert.Equal(t, 5, p.Counts().ByKind[registry.KindManifestPut])

	p.ClearFaults()
	p.Fail(2, registry.Status500, registry.MatchKind(registry.KindManifestPut))
	_, log, err = pushFor(t, cfg)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(log, "; try "), log)
}

// TestClassify: what is retried and which exit code an error gets.
func TestClassify(t *testing.T) {
	status := func(code int) error {
		u, _ := url.Parse("https://r.example.com/v2/x/manifests/v1")
		return &transport.Error{StatusCode: code, Request: &http.Request{Method: "PUT", URL: u}}
	}
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "https://r.example.com/v2/", Err: err} }
	tests := []struct {
		name      string
		err       error
		retryable bool
		code      int
	}{
		{"401", status(http.StatusUnauthorized), false, fault.Usage},
		{"403", status(http.StatusForbidden), false, fault.Usage},
		{"404", status(http.StatusNotFound), false, fault.Usage},
		{"408", status(http.StatusRequestTimeout), true, fault.Environment},
		{"429", status(http.StatusTooManyRequests), true, fault.Environment},
		{"500", status(http.StatusInternalServerError), true, fault.Environment},
		{"503", status(http.StatusServiceUnavailable), true, fault.Environment},
		{"refused", urlErr(&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true, fault.Environment},
		{"reset", urlErr(&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), true, fault.Environment},
		{"no such host", urlErr(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "r.example.com", IsNotFound: true}}), false, fault.Environment},
		{"unknown authority", urlErr(&tlsVerifyError{}), false, fault.Usage},
		{"plain http refused", errors.New("refusing plain HTTP to 10.0.0.1:5000"), false, fault.Usage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.retryable, retryable(tc.err))
			err := classify(`pushing "r.example.com/x:v1"`, tc.err)
			assert.Equal(t, tc.code, fault.CodeOf(err), "%v", err)
			assert.True(t, strings.HasPrefix(err.Error(), `pushing "r.example.com/x:v1": `), err.Error())
		})
	}
	assert.Contains(t, classify("pushing x", status(http.StatusUnauthorized)).Error(), "the registry refused the credentials")
}

type tlsVerifyError struct{}

func (*tlsVerifyError) Error() string {
	return "tls: failed to verify certificate: x509: unknown authority"
}
func (*tlsVerifyError) Unwrap() error { return x509.UnknownAuthorityError{} }

// TestBaselineBounded: the gate's baseline lookup has the push's bounds and
// exit codes: a stalled registry ends at the timeout (exit 3), a 500 is
// retried with a line each, wrong credentials exit 2.
func TestBaselineBounded(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{Username: "ci", Password: "s3cret"})
	p := registry.NewProxy(t, reg.Host)
	cfg := testConfig(p.Ref("prod/heart:v1"))
	cfg.Push, cfg.Keychain = true, staticKeychain{p.Host: reg.Auth()}
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	var log bytes.Buffer
	cfg.Log = &log
	p.Fail(2, registry.Status500, registry.MatchKind(registry.KindManifestGet))
	_, _, err = BaselineMetrics(context.Background(), cfg.Image, cfg)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(log.String(), `reading baseline image "`+cfg.Image+`": GET `), log.String())

	bad := cfg
	bad.Keychain = staticKeychain{p.Host: &authn.Basic{Username: "ci", Password: "wrong"}}
	_, _, err = BaselineMetrics(context.Background(), cfg.Image, bad)
	require.Error(t, err)
	assert.Equal(t, fault.Usage, fault.CodeOf(err), "%v", err)
	assert.Contains(t, err.Error(), "the registry refused the credentials")

	stalled := cfg
	stalled.Timeout, stalled.Retry = 1500*time.Millisecond, nil
	start := time.Now()
	_, _, err = BaselineMetrics(context.Background(), stalledListener(t)+"/prod/heart:v1", stalled)
	took := time.Since(start)
	require.Error(t, err)
	assert.Equal(t, fault.Environment, fault.CodeOf(err), "%v", err)
	assert.Contains(t, err.Error(), "not done within the timeout (1.5s")
	assert.Less(t, took, 2500*time.Millisecond)

	_, _, err = BaselineMetrics(context.Background(), closedAddr(t)+"/prod/heart:v1", Config{Timeout: time.Second})
	require.Error(t, err)
	assert.Equal(t, fault.Environment, fault.CodeOf(err), "%v", err)
}

// TestServerBinaryPlatforms: a platform this mlship has no server for is
// refused before any layer is built (exit 2), naming the platforms it has.
func TestServerBinaryPlatforms(t *testing.T) {
	cfg := testConfig("mlship.local/heart:v1")
	cfg.OCILayout = t.TempDir() + "/layout"
	cfg.Platforms = []string{"linux/amd64", "windows/386"}
	_, err := Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Equal(t, fault.Usage, fault.CodeOf(err))
	assert.Contains(t, err.Error(), `no embedded mlship-serve for windows/386 in this mlship, which `)
	assert.Contains(t, err.Error(), "give --server-bin windows/386=PATH to build for it")
	assert.Contains(t, err.Error(), serverbin.Have())
	assert.NoDirExists(t, cfg.OCILayout)
}
