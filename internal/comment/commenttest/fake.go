// Package commenttest has fake GitHub and GitLab REST servers for tests of
// code that posts pull request comments and merge request notes.
//
// The fakes keep comments in memory and check every request against the
// documented API (method, path, auth and version headers, query, JSON body).
// A request the real service would not accept in that form is a protocol
// violation: the fake answers 400 or 404, records it (Violations) and fails the
// test with t.Errorf, unless the test called ExpectViolations. Answers the real
// service gives to well-formed requests (a wrong token, an unknown pull
// request, a body over the limit) are not violations. Failures can be
// injected with Fail.
//
// Configuration fields (Token, MaxPerPage, ...) are set before the first
// request.
package commenttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is one request a fake received.
type Request struct {
	Method string
	Path   string // escaped, relative to the API root: "/repos/acme/models/issues/12/comments", "/projects/group%2Fproj/merge_requests/7/notes"
	Query  url.Values
	Header http.Header
	Body   string
}

// Failure is an answer a fake gives, instead of serving it, to a well-formed
// request that matches Method and Path. Failures are matched in the order
// they were added.
type Failure struct {
	Method string      // "" matches any method
	Path   string      // "" matches any; else the request's relative escaped path must end with it
	Status int         // the status to answer
	Header http.Header // extra answer headers (Retry-After, X-RateLimit-Remaining, ...)
	Body   string      // the answer body; "" means {"message": "<status text>"}
	Times  int         // how many requests it answers: 0 means 1, negative means all
}

// stamp is the time of the nth change in a fake: a minute apart from
// 2024-05-01 12:00 UTC, so answers are the same on every run.
func stamp(n int) string {
	return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute).Format(time.RFC3339)
}

// core is what both fakes share: the request log, injected failures and
// protocol violations.
type core struct {
	t    testing.TB
	name string

	mu         sync.Mutex
	requests   []Request
	failures   []*Failure
	violations []string
	tolerant   bool
}

func (c *core) init(t testing.TB, name string) {
	c.t = t
	c.name = name
}

// Requests returns the requests received so far, in order.
func (c *core) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.requests...)
}

// Methods returns "METHOD path" of each request received so far, for
// compact assertions.
func (c *core) Methods() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.requests))
	for i, r := range c.requests {
		out[i] = r.Method + " " + r.Path
	}
	return out
}

// Fail adds an injected failure.
func (c *core) Fail(f Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.Times == 0 {
		f.Times = 1
	}
	c.failures = append(c.failures, &f)
}

// Violations returns the protocol violations seen so far.
func (c *core) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// ExpectViolations stops protocol violations from failing the test, for
// tests that send bad requests on purpose; Violations still lists them.
func (c *core) ExpectViolations() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tolerant = true
}

// record reads the request body and logs the request. Call with c.mu held.
func (c *core) record(r *http.Request, rel string) (Request, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	req := Request{Method: r.Method, Path: rel, Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(body)}
	c.requests = append(c.requests, req)
	return req, err
}

// violate records a protocol violation and answers it. Call with c.mu held.
func (c *core) violate(w http.ResponseWriter, r *http.Request, status int, format string, args ...any) {
	msg := fmt.Sprintf("%s %s: %s", r.Method, r.URL.RequestURI(), fmt.Sprintf(format, args...))
	c.violations = append(c.violations, msg)
	if !c.tolerant {
		c.t.Errorf("fake %s: protocol violation: %s", c.name, msg)
	}
	writeJSON(w, status, map[string]string{"message": "fake " + c.name + ": " + fmt.Sprintf(format, args...)})
}

// injected answers the request with the first matching failure, if any.
// Call with c.mu held.
func (c *core) injected(w http.ResponseWriter, method, rel string) bool {
	for i, f := range c.failures {
		if f.Method != "" && !strings.EqualFold(f.Method, method) || f.Path != "" && !strings.HasSuffix(rel, f.Path) {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				c.failures = append(c.failures[:i:i], c.failures[i+1:]...)
			}
		}
		for k, vs := range f.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		body := f.Body
		if body == "" {
			b, _ := json.Marshal(map[string]string{"message": http.StatusText(f.Status)})
			body = string(b)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, body)
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// isJSON reports whether a Content-Type is application/json.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// decodeBody decodes a {"body": "..."} request, refusing other fields.
func decodeBody(data string) (string, bool, error) {
	var in struct {
		Body *string `json:"body"`
	}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return "", false, err
	}
	if dec.More() {
		return "", false, fmt.Errorf("data after the JSON object")
	}
	if in.Body == nil {
		return "", false, nil
	}
	return *in.Body, true, nil
}

// pageParams reads page and per_page (per_page: default def, capped at max);
// an error when one is not a positive number.
func pageParams(q url.Values, def, max int) (page, perPage int, err error) {
	page, perPage = 1, def
	if s := q.Get("page"); s != "" {
		if _, err := fmt.Sscan(s, &page); err != nil || page < 1 {
			return 0, 0, fmt.Errorf("page=%q is not a positive number", s)
		}
	}
	if s := q.Get("per_page"); s != "" {
		if _, err := fmt.Sscan(s, &perPage); err != nil || perPage < 1 {
			return 0, 0, fmt.Errorf("per_page=%q is not a positive number", s)
		}
	}
	return page, min(perPage, max), nil
}

// pageOf returns the items of page (1-based) and the number of pages (at least 1).
func pageOf[T any](items []T, page, perPage int) ([]T, int) {
	pages := max((len(items)+perPage-1)/perPage, 1)
	lo := (page - 1) * perPage
	if lo >= len(items) {
		return []T{}, pages
	}
	return items[lo:min(lo+perPage, len(items))], pages
}

// linkHeader builds an RFC 8288 Link header for page of pages, each link
// being base with page (and per_page) set.
func linkHeader(base string, q url.Values, page, pages, perPage int) string {
	link := func(p int, rel string) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", fmt.Sprint(p))
		v.Set("per_page", fmt.Sprint(perPage))
		return fmt.Sprintf("<%s?%s>; rel=%q", base, v.Encode(), rel)
	}
	var parts []string
	if page > 1 {
		parts = append(parts, link(page-1, "prev"))
	}
	if page < pages {
		parts = append(parts, link(page+1, "next"))
	}
	parts = append(parts, link(1, "first"), link(pages, "last"))
	return strings.Join(parts, ", ")
}

// writeFile writes v as JSON into a temporary directory and returns the path.
func writeFile(t testing.TB, name string, v any) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("encoding %s: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
	return path
}
