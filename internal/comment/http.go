package comment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	maxResponse = 64 << 20 // 100 comments of 65536 4-byte runes fit
	maxPages    = 1000
)

// api is the part the GitHub and GitLab clients share: one REST base URL,
// headers, retries and error messages.
type api struct {
	name   string   // "github" or "gitlab"
	base   *url.URL // API root, no trailing slash
	header http.Header
	opts   Options
	where  string
	gitlab bool
}

func newAPI(name, base string, header http.Header, opts Options, where string) (*api, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("%s: API URL %q: %w", name, base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%s: API URL %q is not an http(s) URL", name, base)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: API URL %s must not hold credentials", name, u.Redacted())
	}
	o := opts.withDefaults()
	o.HTTPClient = sameHostRedirects(o.HTTPClient)
	header.Set("User-Agent", o.UserAgent)
	return &api{name: name, base: u, header: header, opts: o, where: where, gitlab: name == "gitlab"}, nil
}

// sameHostRedirects returns a copy of c that follows redirects only on the
// host they start from (net/http would carry a PRIVATE-TOKEN header to any
// host) and only with the same method (net/http turns a PATCH redirected by a
// 301 into a GET, which would pass for a success). A refused redirect comes
// back as the 3xx answer.
func sameHostRedirects(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host || req.Method != via[0].Method {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

// url makes an absolute URL from a path relative to the API root, which may
// carry a query and already-escaped segments (a GitLab project path).
func (a *api) url(pathAndQuery string) string {
	return a.base.String() + pathAndQuery
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError is a non-2xx answer or a transport failure of one request.
type apiError struct {
	api     string // "github"
	request string // "PATCH /repos/acme/models/issues/comments/5"
	status  int    // 0 for a transport error
	message string
	hint    string // appended in parentheses
	err     error  // transport error

	retryable bool // worth trying again (5xx, 429, rate limits, network)
	wait      time.Duration
	waitKnown bool // wait comes from the server (Retry-After, rate limit reset)
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: ", e.api, e.request)
	if e.err != nil {
		b.WriteString(e.err.Error())
	} else {
		fmt.Fprintf(&b, "%d %s", e.status, http.StatusText(e.status))
		if e.message != "" {
			b.WriteString(": " + e.message)
		}
	}
	if e.hint != "" {
		b.WriteString(" (" + e.hint + ")")
	}
	return b.String()
}

func (e *apiError) Unwrap() error { return e.err }

// ExitCode is 3 for what retrying may fix (5xx, 429, rate limits, the
// network) once the retries are spent, else 2 (the request was refused).
func (e *apiError) ExitCode() int {
	if e.retryable || e.err != nil {
		return 3
	}
	return 2
}

// call sends method to target (a path relative to the API root, or an
// absolute URL on the API's host from a Link header) with in as a JSON body,
// and decodes a 2xx answer into out. Idempotent requests are retried;
// others only where the server surely did not act (429, rate limits).
func (a *api) call(ctx context.Context, method, target string, in, out any, idempotent bool) (*response, error) {
	u := target
	if !strings.Contains(target, "://") {
		u = a.url(target)
	}
	name, err := a.requestName(method, u)
	if err != nil {
		return nil, err
	}
	var payload []byte
	if in != nil {
		if payload, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("%s: %s: encoding the body: %w", a.name, name, err)
		}
	}
	for try := 0; ; try++ {
		resp, aerr := a.once(ctx, method, u, name, payload)
		if aerr == nil {
			if out != nil {
				if err := json.Unmarshal(resp.body, out); err != nil {
					return nil, fmt.Errorf("%s: %s: decoding the answer: %w", a.name, name, err)
				}
			}
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, aerr
		}
		// A POST that failed with a 5xx or on the network may have been
		// done: the caller looks again before trying once more.
		sure := aerr.status == http.StatusTooManyRequests || aerr.waitKnown
		if !aerr.retryable || !idempotent && !sure {
			return nil, aerr
		}
		if try >= a.opts.Retries {
			if try == 0 {
				return nil, aerr
			}
			return nil, fmt.Errorf("%w; gave up after %d tries", aerr, try+1)
		}
		wait := a.opts.backoff(try)
		if aerr.waitKnown {
			wait = min(aerr.wait, a.opts.MaxWait)
		}
		if err := a.opts.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%w; gave up waiting to retry: %w", aerr, err)
		}
	}
}

// requestName is "METHOD /path" with the path relative to the API root, for
// errors; it also refuses URLs off the API's host, which must not get the
// token.
func (a *api) requestName(method, u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("%s: %s %s: %w", a.name, method, u, err)
	}
	if p.Scheme != a.base.Scheme || p.Host != a.base.Host {
		return "", fmt.Errorf("%s: refusing to send the token to %s://%s, which is not the API host %s", a.name, p.Scheme, p.Host, a.base.Host)
	}
	path := strings.TrimPrefix(p.EscapedPath(), a.base.EscapedPath())
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return method + " " + path, nil
}

// once sends one request.
func (a *api) once(ctx context.Context, method, u, name string, payload []byte) (*response, *apiError) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, &apiError{api: a.name, request: name, err: err}
	}
	for k, v := range a.header {
		req.Header[k] = v
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return nil, &apiError{api: a.name, request: name, err: err, retryable: true}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, &apiError{api: a.name, request: name, err: fmt.Errorf("reading the answer: %w", err), retryable: true}
	}
	if len(data) > maxResponse {
		return nil, &apiError{api: a.name, request: name, err: fmt.Errorf("answer is larger than %d bytes", maxResponse)}
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return r, nil
	}
	e := &apiError{api: a.name, request: name, status: resp.StatusCode, message: errorMessage(data)}
	if loc, err := resp.Location(); err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.message = fmt.Sprintf("redirect to %s://%s%s not followed (another host or method)", loc.Scheme, loc.Host, loc.EscapedPath())
	}
	a.classify(e, r)
	return nil, e
}

// classify decides whether an error answer is worth retrying, and after how
// long when the server says so.
func (a *api) classify(e *apiError, r *response) {
	wait, known := a.serverWait(r.header)
	limited := false
	if !a.gitlab && (r.status == http.StatusForbidden || r.status == http.StatusTooManyRequests) {
		// GitHub's secondary rate limits come as 403 or 429; without
		// headers GitHub asks for at least a minute.
		if strings.Contains(strings.ToLower(string(r.body)), "secondary rate limit") {
			limited = true
			if !known {
				wait, known = time.Minute, true
			}
		}
		if known {
			limited = true
		}
	}
	switch {
	case r.status >= 500, r.status == http.StatusTooManyRequests, limited:
		e.retryable = true
		e.wait, e.waitKnown = wait, known
	}
}

// serverWait reads Retry-After (seconds or an HTTP date), else a rate limit
// reset time when no requests remain (GitHub's x-ratelimit-*, GitLab's
// RateLimit-*).
func (a *api) serverWait(h http.Header) (time.Duration, bool) {
	if ra := strings.TrimSpace(h.Get("Retry-After")); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if t, err := http.ParseTime(ra); err == nil {
			return max(t.Sub(a.opts.now()), 0), true
		}
	}
	for _, p := range []string{"X-Ratelimit-", "Ratelimit-"} {
		if strings.TrimSpace(h.Get(p+"Remaining")) != "0" {
			continue
		}
		if s, err := strconv.ParseInt(strings.TrimSpace(h.Get(p+"Reset")), 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(a.opts.now()), 0) + time.Second, true
		}
	}
	return 0, false
}

// errorMessage picks the message out of an error body: GitHub's
// {"message", "errors": [...]}, GitLab's {"message"} (a string or an object of
// field errors) or {"error", "error_description"}; else the start of the body.
func errorMessage(body []byte) string {
	var e struct {
		Message json.RawMessage `json:"message"`
		Errors  []struct {
			Message string `json:"message"`
			Code    string `json:"code"`
			Field   string `json:"field"`
		} `json:"errors"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		s := strings.Join(strings.Fields(string(body)), " ")
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		return s
	}
	var msg string
	if len(e.Message) > 0 && string(e.Message) != "null" {
		if err := json.Unmarshal(e.Message, &msg); err != nil {
			msg = string(e.Message) // an object of field errors
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(e.Error + " " + e.Description)
	}
	var details []string
	for _, d := range e.Errors {
		switch {
		case d.Message != "":
			details = append(details, d.Message)
		case d.Field != "" || d.Code != "":
			details = append(details, strings.TrimSpace(d.Field+" "+d.Code))
		}
	}
	if len(details) > 0 {
		msg += ": " + strings.Join(details, "; ")
	}
	return msg
}

// forbidden turns a refusal into a *ForbiddenError: 401 on anything, 403 or
// 404 on a write. Other errors pass through.
func (a *api) forbidden(err error, write bool) error {
	var e *apiError
	if !errors.As(err, &e) || e.retryable {
		return err
	}
	if e.status == http.StatusUnauthorized || write && (e.status == http.StatusForbidden || e.status == http.StatusNotFound) {
		return &ForbiddenError{Status: e.status, Message: e.message, Where: a.where, request: e.request, gitlab: a.gitlab}
	}
	return err
}

// ambiguous reports whether a failed POST may still have been carried out
// (a 5xx or a network error), so the caller should look before posting again.
func ambiguous(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.retryable && !e.waitKnown && e.status != http.StatusTooManyRequests
}

// nextLink is the rel="next" URL of a Link header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			segs := strings.Split(part, ";")
			if len(segs) < 2 {
				continue
			}
			u := strings.TrimSpace(segs[0])
			if !strings.HasPrefix(u, "<") || !strings.HasSuffix(u, ">") {
				continue
			}
			for _, s := range segs[1:] {
				k, val, ok := strings.Cut(strings.TrimSpace(s), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return u[1 : len(u)-1]
					}
				}
			}
		}
	}
	return ""
}
