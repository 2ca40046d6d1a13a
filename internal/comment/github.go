package comment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultGitHubAPI is the REST root of github.com. GitHub Enterprise Server
// has https://HOST/api/v3.
const DefaultGitHubAPI = "https://api.github.com"

const gitHubAPIVersion = "2022-11-28"

// GitHub posts sticky comments on a pull request through the REST API
// (pull request comments are issue comments).
type GitHub struct {
	APIURL string // "" means DefaultGitHubAPI; GHES: https://HOST/api/v3
	Token  string // needs pull-requests: write (or issues: write)
	Repo   string // owner/name
	Number int    // pull request number
	Opts   Options
}

var _ Poster = (*GitHub)(nil)

// Where is "owner/name#N".
func (g *GitHub) Where() string { return g.Repo + "#" + strconv.Itoa(g.Number) }

func (g *GitHub) validate() error {
	var errs []string
	if g.Token == "" {
		errs = append(errs, "no token")
	}
	if owner, name, ok := strings.Cut(g.Repo, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		errs = append(errs, fmt.Sprintf("repository %q is not owner/name", g.Repo))
	}
	if g.Number <= 0 {
		errs = append(errs, fmt.Sprintf("pull request number %d is not positive", g.Number))
	}
	if len(errs) > 0 {
		return fmt.Errorf("github: %s", strings.Join(errs, "; "))
	}
	return nil
}

type ghComment struct {
	ID      int64  `json:"id"`
	Body    string `json:"body"`
	HTMLURL string `json:"html_url"`
}

type ghBody struct {
	Body string `json:"body"`
}

// Upsert creates the comment of id on the pull request, or edits the comment
// whose first line has Marker(id).
func (g *GitHub) Upsert(ctx context.Context, id, body string) (*Result, error) {
	if err := ValidID(id); err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	full := withMarker(id, body)
	if n := utf8.RuneCountInString(full); n > GitHubMaxBody {
		return nil, fmt.Errorf("github: comment %q is %d characters, more than GitHub's limit of %d (marker line included)", id, n, GitHubMaxBody)
	}
	a, err := newGitHubAPI(g.APIURL, g.Token, g.Opts, g.Where())
	if err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(g.Repo, "/")
	repo := "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
	marker := Marker(id)
	for attempt := 0; ; attempt++ {
		found, err := g.find(ctx, a, repo, marker)
		if err != nil {
			return nil, err
		}
		var out ghComment
		if found != nil {
			if _, err := a.call(ctx, http.MethodPatch, fmt.Sprintf("%s/issues/comments/%d", repo, found.ID), ghBody{full}, &out, true); err != nil {
				return nil, a.forbidden(err, true)
			}
			return &Result{Action: ActionUpdated, ID: out.ID, URL: out.HTMLURL}, nil
		}
		_, err = a.call(ctx, http.MethodPost, fmt.Sprintf("%s/issues/%d/comments", repo, g.Number), ghBody{full}, &out, false)
		if err == nil {
			return &Result{Action: ActionCreated, ID: out.ID, URL: out.HTMLURL}, nil
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

// find returns the first comment, oldest first, whose first line holds
// marker, or nil.
func (g *GitHub) find(ctx context.Context, a *api, repo, marker string) (*ghComment, error) {
	next := fmt.Sprintf("%s/issues/%d/comments?per_page=100", repo, g.Number)
	for page := 0; next != ""; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("github: more than %d pages of comments on %s", maxPages, g.Where())
		}
		var comments []ghComment
		resp, err := a.call(ctx, http.MethodGet, next, nil, &comments, true)
		if err != nil {
			var e *apiError
			if errors.As(err, &e) && e.status == http.StatusNotFound {
				e.hint = fmt.Sprintf("no pull request %s, or the token cannot read %s", g.Where(), g.Repo)
			}
			return nil, a.forbidden(err, false)
		}
		for i := range comments {
			if hasMarker(comments[i].Body, marker) {
				return &comments[i], nil
			}
		}
		next = nextLink(resp.header)
	}
	return nil, nil
}

// ghEvent is the part of a GitHub Actions event payload that names a pull
// request.
type ghEvent struct {
	PullRequest *struct {
		Number int `json:"number"`
	} `json:"pull_request"`
	Issue *struct {
		Number      int             `json:"number"`
		PullRequest json.RawMessage `json:"pull_request"`
	} `json:"issue"`
	WorkflowRun *struct {
		Event        string `json:"event"`
		PullRequests []struct {
			Number int `json:"number"`
			Base   struct {
				Repo struct {
					URL string `json:"url"`
				} `json:"repo"`
			} `json:"base"`
		} `json:"pull_requests"`
	} `json:"workflow_run"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// newGitHubAPI is the REST client of GitHub's API at base (DefaultGitHubAPI
// when empty) with token and the headers GitHub documents.
func newGitHubAPI(base, token string, opts Options, where string) (*api, error) {
	if base == "" {
		base = DefaultGitHubAPI
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Accept", "application/vnd.github+json")
	h.Set("X-GitHub-Api-Version", gitHubAPIVersion)
	return newAPI("github", base, h, opts, where)
}

// GitHubFromEnv builds a GitHub poster from the variables of a GitHub Actions
// job (getenv is os.Getenv in production): GITHUB_API_URL (default
// DefaultGitHubAPI), GITHUB_TOKEN, GITHUB_REPOSITORY (else the event's
// repository.full_name) and the pull request number from the event file at
// GITHUB_EVENT_PATH: pull_request.number (pull_request, pull_request_target),
// issue.number of a pull request's issue (issue_comment) or
// workflow_run.pull_requests[0].number (workflow_run). MLSHIP_PR_NUMBER, when
// set, overrides the event: GitHub leaves workflow_run.pull_requests empty for
// pull requests from forks, so such workflows pass the number on themselves.
// Other events give an error wrapping ErrNotPullRequest.
func GitHubFromEnv(getenv func(string) string, opts Options) (*GitHub, error) {
	g := &GitHub{APIURL: strings.TrimRight(getenv("GITHUB_API_URL"), "/"), Opts: opts}
	if g.APIURL == "" {
		g.APIURL = DefaultGitHubAPI
	}
	ev, err := readEvent(getenv("GITHUB_EVENT_PATH"))
	if err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(getenv("MLSHIP_PR_NUMBER")); s != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "#"))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("MLSHIP_PR_NUMBER=%q is not a pull request number", s)
		}
		g.Number = n
	} else {
		if ev == nil {
			return nil, errors.New("GITHUB_EVENT_PATH is not set: not a GitHub Actions job? (set MLSHIP_PR_NUMBER to name the pull request)")
		}
		if g.Number, err = ev.prNumber(getenv("GITHUB_EVENT_NAME"), getenv("GITHUB_REPOSITORY")); err != nil {
			return nil, err
		}
	}
	g.Repo = getenv("GITHUB_REPOSITORY")
	if g.Repo == "" && ev != nil && ev.Repository != nil {
		g.Repo = ev.Repository.FullName
	}
	if g.Repo == "" {
		return nil, errors.New("GITHUB_REPOSITORY is not set and the event names no repository")
	}
	g.Token = getenv("GITHUB_TOKEN")
	if g.Token == "" {
		return nil, errors.New("GITHUB_TOKEN is not set: pass it to the step (env: GITHUB_TOKEN: ${{ github.token }}) and give the job `permissions: pull-requests: write`")
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// readEvent reads the event file; nil when path is "".
func readEvent(path string) (*ghEvent, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the event (GITHUB_EVENT_PATH): %w", err)
	}
	var ev ghEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("reading the event %s: %w", path, err)
	}
	return &ev, nil
}

// prNumber finds the pull request of the event.
func (ev *ghEvent) prNumber(eventName, repo string) (int, error) {
	switch {
	case ev.PullRequest != nil && ev.PullRequest.Number > 0:
		return ev.PullRequest.Number, nil
	case ev.Issue != nil && ev.Issue.Number > 0 && len(ev.Issue.PullRequest) > 0 && string(ev.Issue.PullRequest) != "null":
		return ev.Issue.Number, nil
	case ev.WorkflowRun != nil:
		prs := ev.WorkflowRun.PullRequests
		for _, pr := range prs {
			if repo != "" && strings.HasSuffix(pr.Base.Repo.URL, "/repos/"+repo) && pr.Number > 0 {
				return pr.Number, nil
			}
		}
		if len(prs) > 0 && prs[0].Number > 0 {
			return prs[0].Number, nil
		}
		return 0, &notPRError{msg: "not a pull request event: the workflow_run event lists no pull request " +
			"(GitHub leaves workflow_run.pull_requests empty for pull requests from forks: " +
			"save the number in an artifact of the triggering run and set MLSHIP_PR_NUMBER)"}
	}
	what := "the event"
	if eventName != "" {
		what = fmt.Sprintf("event %q", eventName)
	}
	if ev.Issue != nil {
		return 0, &notPRError{msg: fmt.Sprintf("not a pull request event: %s is about issue #%d, not a pull request", what, ev.Issue.Number)}
	}
	return 0, &notPRError{msg: fmt.Sprintf("not a pull request event: %s has no pull_request, issue.pull_request or workflow_run.pull_requests", what)}
}
