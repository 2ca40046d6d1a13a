package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/version"
)

// DefaultRetry retries 5xx answers, resets and timeouts 5 times: after 0.5, 1.5,
// 4.5 and 13.5 seconds.
var DefaultRetry = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 5}

// DefaultTransport is remote.DefaultTransport with bounded waits, so that a
// stalled registry is retried instead of hanging the job.
func DefaultTransport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ResponseHeaderTimeout = 2 * time.Minute
	return t
}

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
	backoff := DefaultRetry
	if cfg.Retry != nil {
		backoff = *cfg.Retry
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(tr),
		remote.WithUserAgent("mlship/" + version.Version),
		remote.WithRetryBackoff(backoff),
		remote.WithRetryPredicate(retryable(ctx)),
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

// retryable says which errors are worth another try: connection resets, closed
// connections, cut-off bodies and timeouts (a stalled registry), found anywhere
// in the error chain (go-containerregistry's default only looks at the top
// error, so it does not retry a timeout). Nothing is retried once ctx is done.
func retryable(ctx context.Context) func(error) bool {
	return func(err error) bool {
		if err == nil || ctx.Err() != nil {
			return false
		}
		var ne net.Error
		switch {
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED),
			errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
			return true
		case errors.As(err, &ne) && ne.Timeout():
			return true
		}
		var temp interface{ Temporary() bool }
		return errors.As(err, &temp) && temp.Temporary()
	}
}

// push writes the image (or index) under its first tag, then adds the other tags.
// The registry only moves a tag when its manifest arrives, after every blob, so a
// failed push never leaves a tag on an incomplete image.
func push(ctx context.Context, cfg Config, tag name.Tag, b *built, logw io.Writer) error {
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	err := pushTags(ctx, cfg, tag, b, logw)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fault.Envf("pushing %q: not done within the timeout (%s): %w", tag.String(), cfg.Timeout, err)
	}
	if err != nil && envFailure(err) {
		return fault.Env(err)
	}
	return err
}

// envFailure reports whether a registry error is the environment's: the
// network, a timeout, or 5xx and 429 answers after the retries.
func envFailure(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode >= 500 || terr.StatusCode == http.StatusTooManyRequests) {
		return true
	}
	return fault.IsEnvironment(err)
}

func pushTags(ctx context.Context, cfg Config, tag name.Tag, b *built, logw io.Writer) error {
	opts := remoteOptions(ctx, cfg)
	img, idx := b.top()
	var err error
	if idx != nil {
		err = remote.WriteIndex(tag, idx, opts...)
	} else {
		err = remote.Write(tag, img, opts...)
	}
	if err != nil {
		return fmt.Errorf("pushing %q: %w", tag.String(), explain(err))
	}
	fmt.Fprintf(logw, "pushed %s\n", tag.String())
	var tagged remote.Taggable = img
	if idx != nil {
		tagged = idx
	}
	for _, t := range cfg.Tags {
		extra := tag.Context().Tag(t)
		if err := remote.Tag(extra, tagged, opts...); err != nil {
			return fmt.Errorf("tagging %q: %w", extra.String(), err)
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

// writeLayout writes the image (or index) into an OCI layout directory, replacing
// the directory's contents only when the whole layout was written.
func writeLayout(dir string, tag name.Tag, b *built) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("writing OCI layout %q: it exists and is not a directory", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				return fmt.Errorf("writing OCI layout %q: the directory is not empty and is not an OCI layout; refusing to replace it", dir)
			}
		}
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, ".mlship-layout-*")
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	img, idx := b.top()
	ann := layout.WithAnnotations(map[string]string{annRefName: tag.TagStr(), "io.containerd.image.name": tag.String()})
	if idx != nil {
		err = p.AppendIndex(idx, ann)
	} else {
		err = p.AppendImage(img, ann)
	}
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	os.Chmod(tmp, 0o755)
	if err := fsutil.ReplaceDir(tmp, dir); err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	ok = true
	return nil
}

// writeTarball writes one image as a docker-save tarball (docker load, podman
// load, crane push FILE), through a temporary file.
func writeTarball(path string, tag name.Tag, img v1.Image) error {
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing tarball %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing tarball %q: %w", path, err)
	}
	return nil
}
