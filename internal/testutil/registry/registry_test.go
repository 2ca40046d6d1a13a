package registry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mlship/mlship/internal/testutil/registry"
)

var creds = registry.Options{Username: "ci", Password: "s3cret pw"}

// get sends method to url with optional basic auth and returns the status and
// the WWW-Authenticate header.
func get(t *testing.T, method, url string, user, pw string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func checkAuth(t *testing.T, s *registry.Server) {
	t.Helper()
	if code, hdr := get(t, http.MethodGet, s.URL+"/v2/", "", ""); code != http.StatusUnauthorized || !strings.Contains(hdr, `realm="x"`) || !strings.HasPrefix(hdr, "Basic") {
		t.Errorf("GET /v2/ without credentials: %d %q, want 401 with Basic realm=\"x\"", code, hdr)
	}
	if code, _ := get(t, http.MethodGet, s.URL+"/v2/", s.Username, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("GET /v2/ with a wrong password: %d, want 401", code)
	}
	if code, _ := get(t, http.MethodGet, s.URL+"/v2/", s.Username, s.Password); code != http.StatusOK {
		t.Errorf("GET /v2/ with credentials: %d, want 200", code)
	}
}

// pushAndPull pushes a random image to ref and reads it back, layer bytes included.
func pushAndPull(t *testing.T, ref string, auth remote.Option, extra ...remote.Option) v1.Image {
	t.Helper()
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]remote.Option{auth, remote.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 3})}, extra...)
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	got, err := remote.Image(r, opts...)
	if err != nil {
		t.Fatalf("reading %s back: %v", ref, err)
	}
	want, _ := img.Digest()
	if d, err := got.Digest(); err != nil || d != want {
		t.Fatalf("digest read back %v (%v), want %v", d, err, want)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil { // verifies the digest
			t.Fatalf("reading a layer back: %v", err)
		}
		rc.Close()
	}
	return img
}

// pushedBytes is the sum of the compressed layer sizes, the config and the manifest of img.
func pushedBytes(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	n := m.Config.Size + int64(len(raw))
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func TestInProcessAuth(t *testing.T) {
	s := registry.StartInProcess(t, creds)
	if s.Username != creds.Username || s.Password != creds.Password || s.URL != "http://"+s.Host || !strings.HasPrefix(s.Host, "127.0.0.1:") {
		t.Fatalf("server %+v", s)
	}
	checkAuth(t, s)
	// A push without credentials fails, with them it works.
	img, _ := random.Image(100, 1)
	ref, _ := name.ParseReference(s.Ref("anon/x:v1"))
	if err := remote.Write(ref, img); err == nil {
		t.Error("push without credentials succeeded")
	}
	pushAndPull(t, s.Ref("auth/x:v1"), remote.WithAuth(s.Auth()))
}

func TestInProcessNoAuth(t *testing.T) {
	s := registry.StartInProcess(t, registry.Options{})
	if code, _ := get(t, http.MethodGet, s.URL+"/v2/", "", ""); code != http.StatusOK {
		t.Errorf("GET /v2/: %d, want 200", code)
	}
	pushAndPull(t, s.Ref("x:v1"), remote.WithAuth(s.Auth()))
}

func TestProxyCountsPush(t *testing.T) {
	s := registry.StartInProcess(t, creds)
	p := registry.NewProxy(t, s.Host)
	img := pushAndPull(t, p.Ref("repo/x:v1"), remote.WithAuth(s.Auth()))
	c := p.Counts()
	if c.BlobUploads != 3 || c.ManifestPuts != 1 {
		t.Errorf("counts %+v, want 3 blob uploads (2 layers, config) and 1 manifest put", c)
	}
	if want := pushedBytes(t, img); c.BytesUp != want {
		t.Errorf("BytesUp %d, want %d (layers + config + manifest)", c.BytesUp, want)
	}
	if c.BytesDown < pushedBytes(t, img)-int64(len(mustRaw(t, img))) {
		t.Errorf("BytesDown %d, less than the layers read back", c.BytesDown)
	}
	if c.Requests == 0 || c.ByKind[registry.KindUploadPut] != 3 || c.ByKind[registry.KindManifestPut] != 1 || c.Faults != 0 {
		t.Errorf("counts %+v", c)
	}

	// The same image again: blobs exist, nothing but the manifest is uploaded.
	p.Reset()
	if c := p.Counts(); c.Requests != 0 || len(c.ByKind) != 0 || c.BytesUp != 0 {
		t.Fatalf("after Reset: %+v", c)
	}
	ref, _ := name.ParseReference(p.Ref("repo/x:v2"))
	if err := remote.Write(ref, img, remote.WithAuth(s.Auth())); err != nil {
		t.Fatal(err)
	}
	c = p.Counts()
	if c.BlobUploads != 0 || c.ManifestPuts != 1 || c.BytesUp != int64(len(mustRaw(t, img))) {
		t.Errorf("second push of the same image: %+v, want no blob uploads, 1 manifest put, only the manifest's bytes", c)
	}
}

func mustRaw(t *testing.T, img v1.Image) []byte {
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         registry.Kind
	}{
		{"GET", "/v2/", registry.KindPing},
		{"GET", "/v2/_catalog", registry.KindCatalog},
		{"POST", "/v2/a/b/blobs/uploads/", registry.KindUploadStart},
		{"PATCH", "/v2/a/b/blobs/uploads/123", registry.KindUploadPatch},
		{"PUT", "/v2/a/blobs/uploads/123", registry.KindUploadPut},
		{"GET", "/v2/a/blobs/uploads/123", registry.KindUploadOther},
		{"HEAD", "/v2/a/b/c/blobs/sha256:ab", registry.KindBlobHead},
		{"GET", "/v2/a/blobs/sha256:ab", registry.KindBlobGet},
		{"PUT", "/v2/a/manifests/v1", registry.KindManifestPut},
		{"HEAD", "/v2/a/manifests/v1", registry.KindManifestHead},
		{"GET", "/v2/a/manifests/sha256:ab", registry.KindManifestGet},
		{"DELETE", "/v2/a/manifests/sha256:ab", registry.KindManifestOther},
		{"GET", "/v2/a/b/tags/list", registry.KindTags},
		{"GET", "/v2/a/referrers/sha256:ab", registry.KindReferrers},
		{"GET", "/healthz", registry.KindOther},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if got := registry.Classify(r); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

// do sends a request through c and returns the status, or the error.
func do(c *http.Client, method, url string, body []byte) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestProxyFaults(t *testing.T) {
	s := registry.StartInProcess(t, registry.Options{})
	p := registry.NewProxy(t, s.URL)
	c := &http.Client{Timeout: 5 * time.Second}
	manifestURL := p.URL + "/v2/repo/manifests/v1"

	t.Run("status500", func(t *testing.T) {
		p.Reset()
		p.Fail(2, registry.Status500)
		for i, want := range []int{500, 500, 200} {
			code, err := do(c, "GET", p.URL+"/v2/", nil)
			if err != nil || code != want {
				t.Errorf("request %d: %d %v, want %d", i, code, err, want)
			}
		}
		if got := p.Counts(); got.Faults != 2 || got.Requests != 3 {
			t.Errorf("counts %+v, want 2 faults in 3 requests", got)
		}
	})

	t.Run("reset", func(t *testing.T) {
		// A fresh connection: on a reused one net/http retries a GET that
		// got no answer, and the retry (not faulted) would succeed.
		fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		p.Fail(1, registry.Reset)
		if code, err := do(fresh, "GET", p.URL+"/v2/", nil); err == nil {
			t.Errorf("reset: got an answer %d, want a connection error", code)
		}
		if code, err := do(c, "GET", p.URL+"/v2/", nil); err != nil || code != 200 {
			t.Errorf("after the reset: %d %v, want 200", code, err)
		}
		// A request with a body is reset too.
		p.Fail(1, registry.Reset)
		if code, err := do(c, "PUT", manifestURL, bytes.Repeat([]byte("x"), 1<<20)); err == nil {
			t.Errorf("reset with a body: got an answer %d, want a connection error", code)
		}
	})

	t.Run("matcher", func(t *testing.T) {
		p.Reset()
		p.Fail(1, registry.Status500, registry.MatchKind(registry.KindManifestPut))
		// Not a manifest PUT: forwarded (the registry answers 404 for an unknown manifest).
		if code, err := do(c, "GET", manifestURL, nil); err != nil || code != 404 {
			t.Errorf("GET manifest: %d %v, want 404 from the registry", code, err)
		}
		if p.PendingFaults() != 1 {
			t.Errorf("pending faults %d, want 1", p.PendingFaults())
		}
		if code, err := do(c, "PUT", manifestURL, []byte("{}")); err != nil || code != 500 {
			t.Errorf("PUT manifest: %d %v, want the injected 500", code, err)
		}
		if p.PendingFaults() != 0 {
			t.Errorf("pending faults %d, want 0", p.PendingFaults())
		}
		if got := p.Counts(); got.ByKind[registry.KindManifestGet] != 1 || got.ByKind[registry.KindManifestPut] != 1 || got.ManifestPuts != 0 || got.Faults != 1 {
			t.Errorf("counts %+v", got)
		}
	})

	t.Run("clear", func(t *testing.T) {
		p.Fail(5, registry.Status500)
		p.ClearFaults()
		if code, err := do(c, "GET", p.URL+"/v2/", nil); err != nil || code != 200 {
			t.Errorf("after ClearFaults: %d %v, want 200", code, err)
		}
	})

	t.Run("stall", func(t *testing.T) {
		p.StallFor = 150 * time.Millisecond
		defer func() { p.StallFor = 0 }()
		p.Fail(1, registry.Stall)
		start := time.Now()
		code, err := do(c, "GET", p.URL+"/v2/", nil)
		if el := time.Since(start); err != nil || code != http.StatusGatewayTimeout || el < 150*time.Millisecond {
			t.Errorf("stall: %d %v after %s, want 504 after >= 150ms", code, err, el)
		}
	})

	t.Run("stall until the client gives up", func(t *testing.T) {
		// Default StallFor (30 s): the client's timeout ends it.
		p.Fail(2, registry.Stall)
		short := &http.Client{Timeout: 200 * time.Millisecond}
		start := time.Now()
		if code, err := do(short, "GET", p.URL+"/v2/", nil); err == nil {
			t.Errorf("stalled GET answered %d, want a client timeout", code)
		}
		if code, err := do(short, "PATCH", p.URL+"/v2/repo/blobs/uploads/1", bytes.Repeat([]byte("x"), 4<<20)); err == nil {
			t.Errorf("stalled PATCH answered %d, want a client timeout", code)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("stalls took %s", el)
		}
		if code, err := do(c, "GET", p.URL+"/v2/", nil); err != nil || code != 200 {
			t.Errorf("after the stalls: %d %v, want 200", code, err)
		}
	})
}

// A stalled request does not hold up the proxy's clean-up.
func TestProxyStallCleanup(t *testing.T) {
	done := make(chan struct{})
	start := time.Now()
	t.Run("inner", func(t *testing.T) {
		s := registry.StartInProcess(t, registry.Options{})
		p := registry.NewProxy(t, s.Host)
		p.Fail(1, registry.Stall)
		go func() {
			defer close(done)
			_, _ = do(&http.Client{}, "GET", p.URL+"/v2/", nil)
		}()
		for p.PendingFaults() != 0 {
			time.Sleep(5 * time.Millisecond)
		}
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled request was not released by clean-up")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("clean-up took %s", el)
	}
}

// Absolute Location headers naming the upstream are pointed at the proxy.
func TestProxyRewritesLocation(t *testing.T) {
	var upstreamHost string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+upstreamHost+"/v2/x/blobs/uploads/abc?_state=1")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer up.Close()
	upstreamHost = strings.TrimPrefix(up.URL, "http://")
	p := registry.NewProxy(t, up.URL)
	resp, err := http.Post(p.URL+"/v2/x/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("Location"), "http://"+p.Host+"/v2/x/blobs/uploads/abc?_state=1"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
}

func TestProxyRetriedPush(t *testing.T) {
	s := registry.StartInProcess(t, registry.Options{})
	p := registry.NewProxy(t, s.Host)
	// go-containerregistry retries 5xx: one failed manifest PUT and one failed
	// blob upload still end in a good push.
	p.Fail(1, registry.Status500, registry.MatchKind(registry.KindManifestPut))
	p.Fail(1, registry.Status500, registry.MatchKind(registry.KindUploadPut))
	pushAndPull(t, p.Ref("retry/x:v1"), remote.WithAuth(s.Auth()))
	if c := p.Counts(); c.Faults != 2 || c.ManifestPuts != 1 || c.BlobUploads != 3 {
		t.Errorf("counts %+v, want 2 faults, 1 manifest put, 3 blob uploads", c)
	}
}

func TestHtpasswd(t *testing.T) {
	line, err := registry.Htpasswd("ci", "pw")
	if err != nil {
		t.Skip(err)
	}
	if !strings.HasPrefix(line, "ci:$2") || !strings.Contains(line, "$04$") {
		t.Errorf("line %q, want ci:$2?$04$...", line)
	}
	if _, err := registry.Htpasswd("a:b", "pw"); err == nil {
		t.Error("a user with ':' was accepted")
	}
}

func TestDistribution(t *testing.T) {
	s := registry.StartDistribution(t, creds)
	if !strings.HasPrefix(s.Host, "127.0.0.1:") || s.URL != "http://"+s.Host {
		t.Fatalf("server %+v", s)
	}
	checkAuth(t, s)
	// Pushed through the proxy: distribution answers with absolute Location
	// headers for upload sessions, which must lead back through the proxy.
	p := registry.NewProxy(t, s.Host)
	img := pushAndPull(t, p.Ref("models/heart:v1"), remote.WithAuth(s.Auth()))
	c := p.Counts()
	if c.BlobUploads != 3 || c.ManifestPuts != 1 || c.BytesUp != pushedBytes(t, img) {
		t.Errorf("counts %+v, want 3 blob uploads, 1 manifest put, %d bytes up", c, pushedBytes(t, img))
	}
	// Read back directly too: it is stored in the registry, not in the proxy.
	ref, _ := name.ParseReference(s.Ref("models/heart:v1"))
	if _, err := remote.Head(ref, remote.WithAuth(s.Auth())); err != nil {
		t.Errorf("HEAD directly: %v", err)
	}
	if !strings.Contains(s.Log(), "listening on 127.0.0.1:") {
		t.Errorf("log lacks the listening line:\n%s", s.Log())
	}

	// A fault on a blob PATCH mid-push is retried by go-containerregistry.
	p.Reset()
	p.Fail(1, registry.Status500, registry.MatchKind(registry.KindUploadPatch))
	pushAndPull(t, p.Ref("models/heart:v2"), remote.WithAuth(s.Auth()))
	if c := p.Counts(); c.Faults != 1 || c.ManifestPuts != 1 {
		t.Errorf("counts %+v, want 1 fault and 1 manifest put", c)
	}
}

func TestDistributionNoAuth(t *testing.T) {
	s := registry.StartDistribution(t, registry.Options{})
	if code, _ := get(t, http.MethodGet, s.URL+"/v2/", "", ""); code != http.StatusOK {
		t.Errorf("GET /v2/: %d, want 200", code)
	}
	pushAndPull(t, s.Ref("x:v1"), remote.WithAuth(s.Auth()))
}

// Two registries at once get two ports.
func TestDistributionTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	a := registry.StartDistribution(t, registry.Options{})
	b := registry.StartDistribution(t, registry.Options{})
	if a.Host == b.Host {
		t.Fatalf("same host %s", a.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range []*registry.Server{a, b} {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}
