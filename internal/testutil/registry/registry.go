// Package registry starts OCI registries for tests: Debian's docker-registry
// (CNCF distribution 2.8) as a real server, go-containerregistry's in-memory
// registry for unit tests, and a counting, fault-injecting reverse proxy to put
// in front of either.
//
// Every helper takes a testing.TB and stops what it started in t.Cleanup.
// Everything listens on 127.0.0.1 only.
package registry

import (
	"crypto/subtle"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// Realm is the basic-auth realm of the registries started here.
const Realm = "x"

// Options configure a registry started by StartDistribution or StartInProcess.
type Options struct {
	// Username and Password, when Username is set, turn on basic auth: every
	// request, /v2/ included, must carry them or is answered 401 with
	// `WWW-Authenticate: Basic realm="x"`.
	Username string
	Password string
}

// Server is a running registry.
type Server struct {
	// Host is "127.0.0.1:PORT", the registry part of an image reference.
	Host string
	// URL is "http://127.0.0.1:PORT".
	URL string
	// Username and Password are the credentials it requires (empty: none).
	Username string
	Password string

	logPath string
}

// Ref returns the reference of repo (and optional ":tag" or "@digest") on
// this registry, for example s.Ref("models/heart:v1").
func (s *Server) Ref(repo string) string { return s.Host + "/" + repo }

// Auth returns an authenticator for go-containerregistry's remote package:
// basic auth with the server's credentials, or anonymous without them.
func (s *Server) Auth() authn.Authenticator {
	if s.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: s.Username, Password: s.Password}
}

// Log returns what the registry process has written so far (Debian's
// docker-registry only; "" for the in-process registry).
func (s *Server) Log() string {
	if s.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(reading the registry log: " + err.Error() + ")"
	}
	return string(b)
}

// StartInProcess starts go-containerregistry's in-memory registry
// (pkg/registry) behind an httptest server on 127.0.0.1, with basic auth when
// opts.Username is set. It is closed in t.Cleanup.
func StartInProcess(t testing.TB, opts Options) *Server {
	t.Helper()
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if opts.Username != "" {
		h = basicAuth(h, opts.Username, opts.Password)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{
		Host:     strings.TrimPrefix(srv.URL, "http://"),
		URL:      srv.URL,
		Username: opts.Username,
		Password: opts.Password,
	}
}

// basicAuth answers 401 with a registry-style error unless the request carries
// user and password.
func basicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`+"\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}
