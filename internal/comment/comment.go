// Package comment publishes a report (a Markdown string) as one sticky comment
// per report id: a comment on a GitHub pull request or a note on a GitLab merge
// request. The first line of the body is a hidden marker, <!-- mlship:ID -->;
// the first run creates the comment, later runs find it by the marker and edit
// it in place. Different ids give independent comments.
//
// Both clients speak plain REST over net/http. Requests are retried on 5xx,
// 429, network errors and GitHub's secondary rate limits; other 4xx answers are
// errors that name the request. A token without write rights (a pull request
// from a fork, a GitLab token without api scope) gives a *ForbiddenError.
package comment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Body limits of the two services, in characters (runes), marker line included.
const (
	GitHubMaxBody = 65536
	GitLabMaxBody = 1000000
)

const (
	markerPrefix = "<!-- mlship:"
	markerSuffix = " -->"
	maxIDLen     = 64
)

// ErrNotPullRequest is what GitHubFromEnv and GitLabFromEnv return (wrapped,
// errors.Is-able) when the job does not run for a pull or merge request, so a
// caller can skip commenting on a push.
var ErrNotPullRequest = errors.New("not a pull request")

// notPRError carries its own message and matches ErrNotPullRequest.
type notPRError struct{ msg string }

func (e *notPRError) Error() string        { return e.msg }
func (e *notPRError) Is(target error) bool { return target == ErrNotPullRequest }

// Marker is the hidden first line that identifies the comment of report id.
func Marker(id string) string { return markerPrefix + id + markerSuffix }

// ValidID checks a report id: 1 to 64 characters from A-Z, a-z, 0-9, '.', '_'
// and '-' (it goes into an HTML comment, so nothing that could close it).
func ValidID(id string) error {
	if id == "" {
		return errors.New("comment id is empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("comment id %q is %d characters, more than %d", id, len(id), maxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("comment id %q has %q: use letters, digits, '.', '_' and '-'", id, r)
		}
	}
	return nil
}

// Result says what Upsert did.
type Result struct {
	Action string // "created" or "updated"
	ID     int64  // the comment or note id
	URL    string // where a person sees it (GitHub html_url, GitLab MR URL with #note_ID)
}

// Actions of a Result.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
)

// Poster publishes the sticky comment of a report id.
type Poster interface {
	// Upsert creates the comment of id with body, or edits it if it exists.
	Upsert(ctx context.Context, id, body string) (*Result, error)
	// Where names the pull or merge request: "acme/models#12", "group/proj!7".
	Where() string
}

// Options tune the HTTP side of both clients. The zero value is usable.
type Options struct {
	HTTPClient *http.Client  // nil: a client with a 30s timeout
	Retries    int           // retries after the first try; 0 means 4, negative means none
	Backoff    time.Duration // first wait between tries, doubled each time; 0 means 1s
	MaxWait    time.Duration // cap on any wait (Retry-After, rate limit reset, backoff); 0 means 60s
	UserAgent  string        // "" means "mlship"

	// Test hooks: how to wait and what time it is.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	switch {
	case o.Retries == 0:
		o.Retries = 4
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 60 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "mlship"
	}
	if o.sleep == nil {
		o.sleep = sleepCtx
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// backoff is the wait before retry number n (0-based): Backoff doubled n
// times, capped by MaxWait.
func (o Options) backoff(n int) time.Duration {
	d := o.Backoff
	for i := 0; i < n && d < o.MaxWait; i++ {
		d *= 2
	}
	return min(d, o.MaxWait)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ForbiddenError is a refusal to write: 401, or 403 or 404 on a write. On
// GitHub it is what a pull request from a fork gets, whose GITHUB_TOKEN is
// read-only; on GitLab a token without api scope or role. Callers may treat it
// as "could not comment" rather than a failed job.
type ForbiddenError struct {
	Status  int    // HTTP status
	Message string // the service's message
	Where   string // "acme/models#12", "group/proj!7"

	request string // "POST /repos/acme/models/issues/12/comments"
	gitlab  bool
}

func (e *ForbiddenError) Error() string {
	var b strings.Builder
	if e.gitlab {
		b.WriteString("gitlab: ")
	} else {
		b.WriteString("github: ")
	}
	fmt.Fprintf(&b, "no permission to comment on %s", e.Where)
	if e.request != "" {
		fmt.Fprintf(&b, " (%s)", e.request)
	}
	fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	switch {
	case e.Status == http.StatusUnauthorized && e.gitlab:
		b.WriteString("; the token was refused (expired, revoked or mistyped): set MLSHIP_GITLAB_TOKEN to a project access token with api scope")
	case e.Status == http.StatusUnauthorized:
		b.WriteString("; the token was refused (expired, revoked or mistyped): pass the job's token (env: GITHUB_TOKEN: ${{ github.token }})")
	case e.gitlab:
		b.WriteString("; the token cannot write merge request notes: use a project access token with api scope and at least the Reporter role in MLSHIP_GITLAB_TOKEN")
	default:
		b.WriteString("; the token has no write access to the pull request (pull requests from forks get a read-only GITHUB_TOKEN): " +
			"give the job `permissions: pull-requests: write`, and for forks post the comment from a separate workflow triggered by `workflow_run`")
	}
	return b.String()
}

// withMarker returns the body to post: the marker line, then body. A body
// whose first line already has the marker is posted as it is.
func withMarker(id, body string) string {
	if hasMarker(body, Marker(id)) {
		return body
	}
	return Marker(id) + "\n" + body
}

// hasMarker reports whether the first line of body holds marker.
func hasMarker(body, marker string) bool {
	first, _, _ := strings.Cut(body, "\n")
	return strings.Contains(first, marker)
}
