package registry

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Kind classifies a registry API request by method and path.
type Kind string

// Request kinds (OCI distribution spec endpoints).
const (
	KindPing          Kind = "ping"           // GET/HEAD /v2/
	KindUploadStart   Kind = "upload-start"   // POST /v2/<name>/blobs/uploads/ (with ?mount=: a mount)
	KindUploadPatch   Kind = "upload-patch"   // PATCH /v2/<name>/blobs/uploads/<id>
	KindUploadPut     Kind = "upload-put"     // PUT /v2/<name>/blobs/uploads/<id>?digest= (completes an upload)
	KindUploadOther   Kind = "upload-other"   // GET/DELETE /v2/<name>/blobs/uploads/<id>
	KindBlobHead      Kind = "blob-head"      // HEAD /v2/<name>/blobs/<digest>
	KindBlobGet       Kind = "blob-get"       // GET /v2/<name>/blobs/<digest>
	KindBlobOther     Kind = "blob-other"     // DELETE /v2/<name>/blobs/<digest>
	KindManifestPut   Kind = "manifest-put"   // PUT /v2/<name>/manifests/<ref>
	KindManifestHead  Kind = "manifest-head"  // HEAD /v2/<name>/manifests/<ref>
	KindManifestGet   Kind = "manifest-get"   // GET /v2/<name>/manifests/<ref>
	KindManifestOther Kind = "manifest-other" // DELETE /v2/<name>/manifests/<ref>
	KindTags          Kind = "tags"           // /v2/<name>/tags/list
	KindReferrers     Kind = "referrers"      // /v2/<name>/referrers/<digest>
	KindCatalog       Kind = "catalog"        // /v2/_catalog
	KindOther         Kind = "other"
)

// Classify returns the kind of a registry API request.
func Classify(r *http.Request) Kind {
	p := r.URL.Path
	m := r.Method
	switch {
	case p == "/v2/" || p == "/v2":
		return KindPing
	case p == "/v2/_catalog":
		return KindCatalog
	case !strings.HasPrefix(p, "/v2/"):
		return KindOther
	case strings.Contains(p, "/blobs/uploads/") || strings.HasSuffix(p, "/blobs/uploads"):
		i := strings.LastIndex(p, "/blobs/uploads")
		rest := strings.Trim(p[i+len("/blobs/uploads"):], "/")
		switch {
		case m == http.MethodPost && rest == "":
			return KindUploadStart
		case m == http.MethodPatch:
			return KindUploadPatch
		case m == http.MethodPut:
			return KindUploadPut
		default:
			return KindUploadOther
		}
	case strings.Contains(p, "/manifests/"):
		switch m {
		case http.MethodPut:
			return KindManifestPut
		case http.MethodHead:
			return KindManifestHead
		case http.MethodGet:
			return KindManifestGet
		default:
			return KindManifestOther
		}
	case strings.Contains(p, "/blobs/"):
		switch m {
		case http.MethodHead:
			return KindBlobHead
		case http.MethodGet:
			return KindBlobGet
		default:
			return KindBlobOther
		}
	case strings.HasSuffix(p, "/tags/list"):
		return KindTags
	case strings.Contains(p, "/referrers/"):
		return KindReferrers
	}
	return KindOther
}

// MatchKind returns a matcher for Proxy.Fail that picks requests of the given kinds.
func MatchKind(kinds ...Kind) func(*http.Request) bool {
	return func(r *http.Request) bool {
		k := Classify(r)
		for _, want := range kinds {
			if k == want {
				return true
			}
		}
		return false
	}
}

// FaultMode is how Proxy.Fail makes a request fail.
type FaultMode int

const (
	// Status500 answers 500 Internal Server Error with a registry-style JSON
	// error (after reading the request body), without forwarding.
	Status500 FaultMode = iota + 1
	// Reset hijacks the connection and closes it (with SO_LINGER 0, so the
	// client sees a TCP reset) without answering.
	Reset
	// Stall holds the request, without forwarding it, for Proxy.StallFor or
	// until the client goes away; if the client is still there it then gets
	// 504 Gateway Timeout.
	Stall
)

func (m FaultMode) String() string {
	switch m {
	case Status500:
		return "status500"
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	}
	return "unknown"
}

// DefaultStallFor is Proxy.StallFor unless set.
const DefaultStallFor = 30 * time.Second

// Counts are what a Proxy saw since it started or since its last Reset.
type Counts struct {
	// Requests is every request that reached the proxy, faulted ones included.
	Requests int
	// ByKind counts every request by kind, faulted ones included (attempts).
	ByKind map[Kind]int
	// BlobUploads counts completed uploads: PUTs to /v2/<name>/blobs/uploads/<id>
	// that the registry answered 2xx.
	BlobUploads int
	// BlobMounts counts cross-repository mounts the registry accepted
	// (POST /blobs/uploads/?mount= answered 201).
	BlobMounts int
	// ManifestPuts counts PUTs to /v2/<name>/manifests/<ref> answered 2xx.
	ManifestPuts int
	// BytesUp is the bytes of request bodies forwarded to the registry.
	BytesUp int64
	// BytesDown is the bytes of response bodies sent back to clients.
	BytesDown int64
	// Faults is the number of requests failed by Fail.
	Faults int
}

type fault struct {
	left  int
	mode  FaultMode
	match func(*http.Request) bool
}

// Proxy is a reverse proxy in front of a registry that counts requests and
// bytes and fails requests on demand. Create it with NewProxy.
type Proxy struct {
	// Host is "127.0.0.1:PORT", URL "http://127.0.0.1:PORT": use them in place
	// of the upstream registry's.
	Host string
	URL  string
	// StallFor is how long a Stall fault holds a request (DefaultStallFor when 0).
	// Set it before the requests it applies to.
	StallFor time.Duration

	upstream *url.URL
	rp       *httputil.ReverseProxy
	srv      *httptest.Server
	closing  chan struct{}

	mu     sync.Mutex
	counts Counts
	faults []*fault
}

// NewProxy starts a proxy on 127.0.0.1 that forwards to upstream
// ("127.0.0.1:PORT" or "http://127.0.0.1:PORT"), keeping the client's Host
// header and rewriting absolute Location headers that name the upstream so
// that upload sessions go on through the proxy. It is closed in t.Cleanup
// (stalled requests are released first).
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	if !strings.Contains(upstream, "://") {
		upstream = "http://" + upstream
	}
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		t.Fatalf("proxy upstream %q: not a host or URL (%v)", upstream, err)
	}
	p := &Proxy{upstream: u, closing: make(chan struct{})}
	p.counts.ByKind = map[Kind]int{}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the registry builds Location URLs from Host
		},
		Transport:      transport,
		ModifyResponse: p.rewriteLocation,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	p.Host = strings.TrimPrefix(p.srv.URL, "http://")
	t.Cleanup(func() {
		close(p.closing)
		p.srv.CloseClientConnections()
		p.srv.Close()
		transport.CloseIdleConnections()
	})
	return p
}

// Ref returns the reference of repo through the proxy, like Server.Ref.
func (p *Proxy) Ref(repo string) string { return p.Host + "/" + repo }

// Counts returns a copy of the counters.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	c.ByKind = make(map[Kind]int, len(p.counts.ByKind))
	for k, v := range p.counts.ByKind {
		c.ByKind[k] = v
	}
	return c
}

// Reset sets the counters to zero. Pending faults stay.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = Counts{ByKind: map[Kind]int{}}
}

// Fail makes the next n requests that match (every request, without a
// matcher; with several, a request must match all) fail with mode. Faults
// added by several calls are checked in the order they were added; a request
// takes at most one.
func (p *Proxy) Fail(n int, mode FaultMode, match ...func(*http.Request) bool) {
	m := func(r *http.Request) bool {
		for _, f := range match {
			if f != nil && !f(r) {
				return false
			}
		}
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &fault{left: n, mode: mode, match: m})
}

// ClearFaults drops the faults not yet used up.
func (p *Proxy) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// PendingFaults is the number of faults not yet used up.
func (p *Proxy) PendingFaults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.faults {
		n += f.left
	}
	return n
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	kind := Classify(r)
	p.mu.Lock()
	p.counts.Requests++
	p.counts.ByKind[kind]++
	var mode FaultMode
	for i, f := range p.faults {
		if f.left > 0 && f.match(r) {
			f.left--
			mode = f.mode
			if f.left == 0 {
				p.faults = append(p.faults[:i:i], p.faults[i+1:]...)
			}
			p.counts.Faults++
			break
		}
	}
	stallFor := p.StallFor
	p.mu.Unlock()

	switch mode {
	case Status500:
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"fault injected by the test proxy","detail":null}]}`+"\n")
		return
	case Reset:
		p.reset(w)
		return
	case Stall:
		p.stall(w, r, stallFor)
		return
	}

	body := &countingReader{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	cw := &countingWriter{ResponseWriter: w}
	p.rp.ServeHTTP(cw, r)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts.BytesUp += body.n.Load()
	p.counts.BytesDown += cw.n
	ok := cw.status >= 200 && cw.status < 300
	switch {
	case kind == KindUploadPut && ok:
		p.counts.BlobUploads++
	case kind == KindManifestPut && ok:
		p.counts.ManifestPuts++
	case kind == KindUploadStart && cw.status == http.StatusCreated && r.URL.Query().Get("mount") != "":
		p.counts.BlobMounts++
	}
}

func (p *Proxy) reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Cannot hijack: answer nothing useful and abort the handler, which
		// makes the server close the connection.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func (p *Proxy) stall(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if d <= 0 {
		d = DefaultStallFor
	}
	// Read the body so that the server notices when the client goes away
	// (net/http only watches the connection once the body is consumed).
	gone := make(chan struct{})
	go func() {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			close(gone)
		}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusGatewayTimeout)
		io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"stalled by the test proxy","detail":null}]}`+"\n")
	case <-r.Context().Done():
	case <-gone:
	case <-p.closing:
		panic(http.ErrAbortHandler)
	}
}

// rewriteLocation points absolute Location headers that name the upstream
// at the proxy instead.
func (p *Proxy) rewriteLocation(resp *http.Response) error {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, p.upstream.Host) {
		return nil
	}
	u.Scheme = "http"
	u.Host = p.Host
	resp.Header.Set("Location", u.String())
	return nil
}

type countingReader struct {
	r io.ReadCloser
	n atomic.Int64 // the transport may read in its own goroutine
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 && code >= 200 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
