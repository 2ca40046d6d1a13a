// Command proxy is bench/image.sh's counting reverse proxy: it listens on
// 127.0.0.1, forwards everything to a registry, and counts the requests and
// the bytes of request bodies it forwards, so the benchmark can tell how many
// bytes a push sent. It keeps the client's Host header, so the registry's
// upload Location headers point back through the proxy.
//
//	proxy -upstream 127.0.0.1:5000 -addr-file FILE
//
// writes "127.0.0.1:PORT" to FILE once it listens. Its own endpoints, outside
// the registry API:
//
//	GET  /_counter        {"requests":N,"bytes_up":N,"blob_uploads":N,"manifest_puts":N,"by_kind":{...}}
//	POST /_counter/reset  sets the counters to zero
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

type counts struct {
	Requests     int64            `json:"requests"`
	BytesUp      int64            `json:"bytes_up"`
	BlobUploads  int64            `json:"blob_uploads"`  // PUT .../blobs/uploads/<id> answered 2xx
	ManifestPuts int64            `json:"manifest_puts"` // PUT .../manifests/<ref> answered 2xx
	ByKind       map[string]int64 `json:"by_kind"`       // "METHOD kind", every request
}

type proxy struct {
	rp *httputil.ReverseProxy
	mu sync.Mutex
	c  counts
}

// kind names the endpoint of a registry API path.
func kind(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "ping"
	case strings.Contains(p, "/blobs/uploads"):
		return "upload"
	case strings.Contains(p, "/manifests/"):
		return "manifest"
	case strings.Contains(p, "/blobs/"):
		return "blob"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags"
	}
	return "other"
}

type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/_counter" && r.Method == http.MethodGet:
		p.mu.Lock()
		b, _ := json.Marshal(p.c)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
		return
	case r.URL.Path == "/_counter/reset" && r.Method == http.MethodPost:
		p.mu.Lock()
		p.c = counts{ByKind: map[string]int64{}}
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body := &countingReader{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	sw := &statusWriter{ResponseWriter: w}
	p.rp.ServeHTTP(sw, r)
	k := kind(r.URL.Path)
	ok := sw.status >= 200 && sw.status < 300
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.Requests++
	p.c.BytesUp += body.n.Load()
	p.c.ByKind[r.Method+" "+k]++
	if ok && r.Method == http.MethodPut && k == "upload" {
		p.c.BlobUploads++
	}
	if ok && r.Method == http.MethodPut && k == "manifest" {
		p.c.ManifestPuts++
	}
}

func main() {
	upstream := flag.String("upstream", "", "registry to forward to, HOST:PORT or http://HOST:PORT")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	addrFile := flag.String("addr-file", "", "write the address listened on to this file")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("proxy: -upstream is required")
	}
	if !strings.Contains(*upstream, "://") {
		*upstream = "http://" + *upstream
	}
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("proxy: -upstream: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("proxy: %v", err)
	}
	self := ln.Addr().String()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	p := &proxy{c: counts{ByKind: map[string]int64{}}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the registry builds Location URLs from Host
		},
		Transport: transport,
		ModifyResponse: func(resp *http.Response) error {
			// Belt and braces: absolute Locations naming the upstream go through us.
			if l, err := url.Parse(resp.Header.Get("Location")); err == nil && l.Host == u.Host {
				l.Host = self
				resp.Header.Set("Location", l.String())
			}
			return nil
		},
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(self+"\n"), 0o644); err != nil {
			log.Fatalf("proxy: %v", err)
		}
	}
	fmt.Fprintf(os.Stderr, "proxy: %s -> %s\n", self, u.Host)
	log.Fatal(http.Serve(ln, p))
}
