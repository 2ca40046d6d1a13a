package comment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultGitLabAPI is the REST root of gitlab.com.
const DefaultGitLabAPI = "https://gitlab.com/api/v4"

// GitLab posts sticky notes on a merge request through the REST API.
type GitLab struct {
	APIURL          string // CI_API_V4_URL; "" means DefaultGitLabAPI
	Token           string // a project, group or personal access token with api scope
	TokenIsJobToken bool   // send Token as JOB-TOKEN (GitLab refuses it for notes today) instead of PRIVATE-TOKEN
	ProjectID       string // numeric id, or the path ("group/proj" or "group%2Fproj")
	MRIID           int    // merge request iid (the !N)
	Opts            Options

	path string // the project path for Where, when ProjectID is numeric
}

var _ Poster = (*GitLab)(nil)

// Where is "group/proj!N" (the numeric project id when the path is unknown).
func (g *GitLab) Where() string {
	p := g.path
	if p == "" {
		p = unescape(g.ProjectID)
	}
	return p + "!" + strconv.Itoa(g.MRIID)
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// project is the project's URL path segment: the id, or the path with its
// slashes encoded as %2F.
func (g *GitLab) project() string { return url.PathEscape(unescape(g.ProjectID)) }

func (g *GitLab) validate() error {
	var errs []string
	if g.Token == "" {
		errs = append(errs, "no token")
	}
	if strings.TrimSpace(g.ProjectID) == "" {
		errs = append(errs, "no project id")
	}
	if g.MRIID <= 0 {
		errs = append(errs, fmt.Sprintf("merge request iid %d is not positive", g.MRIID))
	}
	if len(errs) > 0 {
		return fmt.Errorf("gitlab: %s", strings.Join(errs, "; "))
	}
	return nil
}

type glNote struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	System bool   `json:"system"`
}

type glMR struct {
	WebURL string `json:"web_url"`
}

// Upsert creates the note of id on the merge request, or edits the note whose
// first line has Marker(id).
func (g *GitLab) Upsert(ctx context.Context, id, body string) (*Result, error) {
	if err := ValidID(id); err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	full := withMarker(id, body)
	if n := utf8.RuneCountInString(full); n > GitLabMaxBody {
		return nil, fmt.Errorf("gitlab: note %q is %d characters, more than GitLab's limit of %d (marker line included)", id, n, GitLabMaxBody)
	}
	base := g.APIURL
	if base == "" {
		base = DefaultGitLabAPI
	}
	h := http.Header{}
	if g.TokenIsJobToken {
		h.Set("JOB-TOKEN", g.Token)
	} else {
		h.Set("PRIVATE-TOKEN", g.Token)
	}
	h.Set("Accept", "application/json")
	a, err := newAPI("gitlab", base, h, g.Opts, g.Where())
	if err != nil {
		return nil, err
	}
	mrPath := fmt.Sprintf("/projects/%s/merge_requests/%d", g.project(), g.MRIID)

	var mr glMR
	if _, err := a.call(ctx, http.MethodGet, mrPath, nil, &mr, true); err != nil {
		return nil, g.notFound(a, err)
	}
	noteURL := func(id int64) string {
		if mr.WebURL == "" {
			return ""
		}
		return mr.WebURL + "#note_" + strconv.FormatInt(id, 10)
	}

	marker := Marker(id)
	for attempt := 0; ; attempt++ {
		found, err := g.find(ctx, a, mrPath, marker)
		if err != nil {
			return nil, err
		}
		var out glNote
		if found != nil {
			if _, err := a.call(ctx, http.MethodPut, fmt.Sprintf("%s/notes/%d", mrPath, found.ID), glBody{full}, &out, true); err != nil {
				return nil, a.forbidden(err, true)
			}
			return &Result{Action: ActionUpdated, ID: out.ID, URL: noteURL(out.ID)}, nil
		}
		_, err = a.call(ctx, http.MethodPost, mrPath+"/notes", glBody{full}, &out, false)
		if err == nil {
			return &Result{Action: ActionCreated, ID: out.ID, URL: noteURL(out.ID)}, nil
		}
		// The POST may have gone through: look again before posting again.
		if !ambiguous(err) || attempt >= a.opts.Retries || ctx.Err() != nil {
			return nil, a.forbidden(err, true)
		}
		if serr := a.opts.sleep(ctx, a.opts.backoff(attempt)); serr != nil {
			return nil, fmt.Errorf("%w; gave up waiting to retry: %w", err, serr)
		}
	}
}

type glBody struct {
	Body string `json:"body"`
}

// notFound explains a 404 on a read and turns refusals into ForbiddenError.
func (g *GitLab) notFound(a *api, err error) error {
	var e *apiError
	if errors.As(err, &e) {
		switch e.status {
		case http.StatusNotFound:
			e.hint = fmt.Sprintf("no merge request %s, or the token cannot see the project", g.Where())
		case http.StatusForbidden:
			e.hint = "the token cannot read the merge request: use a project access token with api scope"
		}
	}
	return a.forbidden(err, false)
}

// find returns the first user note, oldest first, whose first line holds
// marker, or nil. It follows X-Next-Page, else a Link rel="next".
func (g *GitLab) find(ctx context.Context, a *api, mrPath, marker string) (*glNote, error) {
	next := a.url(mrPath + "/notes?per_page=100&sort=asc&order_by=created_at")
	for page := 0; next != ""; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("gitlab: more than %d pages of notes on %s", maxPages, g.Where())
		}
		var notes []glNote
		resp, err := a.call(ctx, http.MethodGet, next, nil, &notes, true)
		if err != nil {
			return nil, g.notFound(a, err)
		}
		for i := range notes {
			if !notes[i].System && hasMarker(notes[i].Body, marker) {
				return &notes[i], nil
			}
		}
		if _, ok := resp.header["X-Next-Page"]; ok {
			n := strings.TrimSpace(resp.header.Get("X-Next-Page"))
			if n == "" {
				break
			}
			if _, err := strconv.Atoi(n); err != nil {
				return nil, fmt.Errorf("gitlab: notes of %s: X-Next-Page %q is not a page number", g.Where(), n)
			}
			u, err := url.Parse(next)
			if err != nil {
				return nil, fmt.Errorf("gitlab: notes of %s: %w", g.Where(), err)
			}
			q := u.Query()
			q.Set("page", n)
			u.RawQuery = q.Encode()
			next = u.String()
			continue
		}
		next = nextLink(resp.header)
	}
	return nil, nil
}

// GitLabFromEnv builds a GitLab poster from the variables of a GitLab CI merge
// request pipeline (getenv is os.Getenv in production): CI_API_V4_URL (else
// CI_SERVER_URL/api/v4, else DefaultGitLabAPI), the merge request's project
// CI_MERGE_REQUEST_PROJECT_ID (else CI_PROJECT_ID), CI_MERGE_REQUEST_IID, and
// a token from MLSHIP_GITLAB_TOKEN or GITLAB_TOKEN. Without
// CI_MERGE_REQUEST_IID the error wraps ErrNotPullRequest.
func GitLabFromEnv(getenv func(string) string, opts Options) (*GitLab, error) {
	g := &GitLab{Opts: opts}
	iid := strings.TrimSpace(getenv("CI_MERGE_REQUEST_IID"))
	if iid == "" {
		return nil, &notPRError{msg: "not a merge request pipeline (CI_MERGE_REQUEST_IID is not set)"}
	}
	n, err := strconv.Atoi(iid)
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("CI_MERGE_REQUEST_IID=%q is not a merge request iid", iid)
	}
	g.MRIID = n

	for _, k := range []string{"MLSHIP_GITLAB_TOKEN", "GITLAB_TOKEN"} {
		if g.Token = getenv(k); g.Token != "" {
			break
		}
	}
	if g.Token == "" {
		if getenv("CI_JOB_TOKEN") != "" {
			return nil, errors.New("no GitLab token: CI_JOB_TOKEN cannot post merge request notes; " +
				"create a project access token with api scope (role Reporter or higher), " +
				"store it as a masked CI/CD variable and set MLSHIP_GITLAB_TOKEN to it")
		}
		return nil, errors.New("no GitLab token: set MLSHIP_GITLAB_TOKEN (or GITLAB_TOKEN) to a project access token with api scope")
	}

	g.APIURL = strings.TrimRight(getenv("CI_API_V4_URL"), "/")
	if g.APIURL == "" {
		if s := strings.TrimRight(getenv("CI_SERVER_URL"), "/"); s != "" {
			g.APIURL = s + "/api/v4"
		} else {
			g.APIURL = DefaultGitLabAPI
		}
	}

	if g.ProjectID = getenv("CI_MERGE_REQUEST_PROJECT_ID"); g.ProjectID != "" {
		g.path = getenv("CI_MERGE_REQUEST_PROJECT_PATH")
	} else if g.ProjectID = getenv("CI_PROJECT_ID"); g.ProjectID != "" {
		g.path = getenv("CI_PROJECT_PATH")
	} else {
		return nil, errors.New("CI_PROJECT_ID is not set")
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	return g, nil
}
