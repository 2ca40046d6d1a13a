package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/version"
)

// DefaultRetry is the backoff between tries of a registry operation: 5 tries,
// the retries after 0.5, 1.5, 4.5 and 13.5 seconds (each +10% jitter), never
// past the timeout.
var DefaultRetry = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 5}

// Bounds of each request to a registry, so that a registry that accepts
// connections and never answers is retried instead of hanging the job.
const (
	DialTimeout           = 10 * time.Second
	TLSHandshakeTimeout   = 10 * time.Second
	ResponseHeaderTimeout = time.Minute // after the request body is sent
)

// DefaultTransport is remote.DefaultTransport with each request bounded:
// connect, TLS handshake and response header.
func DefaultTransport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = TLSHandshakeTimeout
	t.ResponseHeaderTimeout = ResponseHeaderTimeout
	return t
}

// remoteOptions are go-containerregistry's options for one try of an
// operation. Its own retries are turned off: their sleeps do not watch the
// context, so they ran past the deadline (a push with a 3 s timeout to a
// closed port took 7.8 s); retry does the retrying instead.
func remoteOptions(ctx context.Context, cfg Config) []remote.Option {
	kc := cfg.Keychain
	if kc == nil {
		kc = DefaultKeychain(os.Getenv)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = DefaultTransport()
	}
	tr = httpGuard{next: tr, insecure: cfg.Insecure}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(tr),
		remote.WithUserAgent("mlship/" + version.Version),
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
		remote.WithJobs(4),
	}
}

// httpGuard refuses plain-HTTP requests except to loopback registries or with
// --insecure. go-containerregistry falls back to HTTP for private (RFC 1918) and
// .local registries too, which would send credentials and images in clear text.
type httpGuard struct {
	next     http.RoundTripper
	insecure bool
}

func (g httpGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !g.insecure && !isLoopback(r.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only loopback registries are reached without TLS unless --insecure is given", r.URL.Host)
	}
	return g.next.RoundTrip(r)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// retryable says which errors are worth another try: 408, 429 and 5xx answers,
// connection refusals and resets, closed connections, cut-off bodies and
// timeouts of a request (a stalled registry), found anywhere in the error
// chain. (The caller stops first when its context has ended.)
func retryable(err error) bool {
	return anyError(err, func(err error) bool {
		if terr, ok := err.(*transport.Error); ok {
			return terr.StatusCode == http.StatusRequestTimeout || terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500
		}
		if errno, ok := err.(syscall.Errno); ok {
			switch errno {
			case syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.ETIMEDOUT:
				return true
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF || err == net.ErrClosed {
			return true
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return true
		}
		temp, ok := err.(interface{ Temporary() bool })
		return ok && temp.Temporary()
	})
}

// anyError reports whether f holds for err or any error it wraps. Beside
// Unwrap it walks slices of errors: go-containerregistry joins its HTTPS and
// HTTP pings' errors in one (whose As finds only the first).
func anyError(err error, f func(error) bool) bool {
	if err == nil {
		return false
	}
	if f(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if anyError(e, f) {
				return true
			}
		}
		return false
	case interface{ Unwrap() error }:
		return anyError(u.Unwrap(), f)
	}
	if v := reflect.ValueOf(err); v.Kind() == reflect.Slice {
		for i := 0; i < v.Len(); i++ {
			if e, ok := v.Index(i).Interface().(error); ok && anyError(e, f) {
				return true
			}
		}
	}
	return false
}

// retry runs op, a registry operation described by what (`pushing "r/x:v1"`),
// until it succeeds, fails for a reason a retry cannot fix, has had its tries
// (cfg.Retry, else DefaultRetry), or ctx ends. It writes one line to logw per
// retry: what failed and when the next try is. A retry that would start after
// ctx's deadline is not waited for. The error is classified for the exit code:
// the environment's failures (network, timeouts, 408/429/5xx after the
// retries) are fault.Env; refused credentials are an input error.
func retry(ctx context.Context, cfg Config, logw io.Writer, what string, op func(context.Context) error) error {
	b := DefaultRetry
	if cfg.Retry != nil {
		b = *cfg.Retry
	}
	tries := max(b.Steps, 1)
	deadline, bounded := ctx.Deadline()
	var last error // the last error that was not the deadline's
	for try := 1; ; try++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if last != nil && errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("%w (before: %v)", err, last)
				}
				return fault.Envf("%s: not done within the timeout (%s, %s): %w", what, timeoutOf(cfg), triesString(try), err)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		if !retryable(err) {
			return classify(what, err)
		}
		last = err
		if try >= tries {
			return fault.Envf("%s: gave up after %s: %w", what, triesString(try), err)
		}
		wait := b.Step()
		if bounded && time.Until(deadline) < wait {
			return fault.Envf("%s: not done within the timeout (%s, %s; the next try would be after it): %w", what, timeoutOf(cfg), triesString(try), err)
		}
		fmt.Fprintf(logw, "%s: %v; try %d of %d in %s\n", what, oneLine(err), try+1, tries, wait.Round(10*time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

func triesString(n int) string {
	if n == 1 {
		return "1 try"
	}
	return fmt.Sprintf("%d tries", n)
}

func timeoutOf(cfg Config) time.Duration {
	if cfg.Timeout > 0 {
		return cfg.Timeout
	}
	return DefaultConfig().Timeout
}

// withTimeout bounds ctx by cfg.Timeout (its default when 0).
func withTimeout(ctx context.Context, cfg Config) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, timeoutOf(cfg))
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// classify marks a registry error that is not retried: refused credentials
// are explained (exit 2), network failures are the environment's (exit 3).
func classify(what string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fault.Input(fmt.Errorf("%s: %w", what, explain(err)))
		case terr.StatusCode == http.StatusRequestTimeout || terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500:
			return fault.Envf("%s: %w", what, err)
		}
		return fault.Inputf("%s: %w", what, err)
	}
	if fault.IsEnvironment(err) {
		return fault.Envf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// push writes the image (or index) under its first tag, then adds the other
// tags, all within cfg.Timeout. The registry only moves a tag when its manifest
// arrives, after every blob, so a failed push never leaves a tag on an
// incomplete image. A retry pushes again; blobs already there are not sent again.
func push(ctx context.Context, cfg Config, tag name.Tag, b *built, logw io.Writer) error {
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	img, idx := b.top()
	err := retry(ctx, cfg, logw, fmt.Sprintf("pushing %q", tag.String()), func(ctx context.Context) error {
		if idx != nil {
			return remote.WriteIndex(tag, idx, remoteOptions(ctx, cfg)...)
		}
		return remote.Write(tag, img, remoteOptions(ctx, cfg)...)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(logw, "pushed %s\n", tag.String())
	var tagged remote.Taggable = img
	if idx != nil {
		tagged = idx
	}
	for _, t := range cfg.Tags {
		extra := tag.Context().Tag(t)
		err := retry(ctx, cfg, logw, fmt.Sprintf("tagging %q", extra.String()), func(ctx context.Context) error {
			return remote.Tag(extra, tagged, remoteOptions(ctx, cfg)...)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(logw, "tagged %s\n", extra.String())
	}
	return nil
}

// explain adds what to do to a registry's refusal of the credentials.
func explain(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("the registry refused the credentials (log in with `docker login` or `crane auth login`, or set GITHUB_TOKEN for ghcr.io or CI_REGISTRY_USER/CI_REGISTRY_PASSWORD on GitLab): %w", err)
	}
	return err
}
