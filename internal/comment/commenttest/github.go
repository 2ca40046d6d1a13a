package commenttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// GitHubAPIVersion is the X-GitHub-Api-Version the fake accepts.
const GitHubAPIVersion = "2022-11-28"

// GitHubMaxBody is GitHub's comment body limit in characters.
const GitHubMaxBody = 65536

// FakeGitHub is a fake GitHub REST API serving issue comments of pull
// requests: list (GET .../issues/{n}/comments with per_page, page and Link
// headers whose URLs use /repositories/{id}/..., as GitHub's do), create
// (POST .../issues/{n}/comments) and edit (PATCH .../issues/comments/{id}).
// Every request needs Authorization: Bearer TOKEN (or "token TOKEN"), Accept:
// application/vnd.github+json, X-GitHub-Api-Version: 2022-11-28 and a
// User-Agent; writes need Content-Type: application/json and a {"body"}
// object.
type FakeGitHub struct {
	core
	Server     *httptest.Server
	APIURL     string // the API root: the server's URL, plus /api/v3 for Enterprise Server
	Token      string // the token it accepts; "ghs_faketoken0123456789" from the constructors
	User       string // login of the token's user, author of the comments it posts; "github-actions[bot]"
	MaxPerPage int    // the largest page served; 100 as on GitHub (set it lower to test pagination)

	base       string
	repos      map[string]*ghRepo // by lower-case owner/name
	dispatches []Dispatch
	comments   []*Comment
	nextID     int64
}

type ghRepo struct {
	id   int64
	name string
	prs  map[int]bool
}

// Comment is an issue comment held by FakeGitHub.
type Comment struct {
	ID      int64
	Repo    string // owner/name
	Number  int    // the pull request
	User    string // author login
	Body    string
	Edits   int    // PATCHes it received
	Created string // RFC 3339
	Updated string
}

// NewGitHub starts a fake github.com API (root path /), closed when the test
// ends.
func NewGitHub(t testing.TB) *FakeGitHub { return newGitHub(t, "") }

// NewGitHubEnterprise starts a fake GitHub Enterprise Server API, rooted at
// /api/v3.
func NewGitHubEnterprise(t testing.TB) *FakeGitHub { return newGitHub(t, "/api/v3") }

func newGitHub(t testing.TB, base string) *FakeGitHub {
	t.Helper()
	f := &FakeGitHub{
		Token:      "ghs_faketoken0123456789",
		User:       "github-actions[bot]",
		MaxPerPage: 100,
		base:       base,
		repos:      map[string]*ghRepo{},
		nextID:     3000000001, // past int32, as real ids are
	}
	f.init(t, "github")
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	f.APIURL = f.Server.URL + base
	return f
}

// AddPR makes pull request number of repo ("owner/name") exist.
func (f *FakeGitHub) AddPR(repo string, number int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repo(repo).prs[number] = true
}

// repo returns the repository, adding it. Call with f.mu held.
func (f *FakeGitHub) repo(name string) *ghRepo {
	k := strings.ToLower(name)
	r := f.repos[k]
	if r == nil {
		r = &ghRepo{id: 100000001 + int64(len(f.repos)), name: name, prs: map[int]bool{}}
		f.repos[k] = r
	}
	return r
}

// AddComment adds a comment by user to a pull request (added if need be) and
// returns its id.
func (f *FakeGitHub) AddComment(repo string, number int, user, body string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repo(repo)
	r.prs[number] = true
	return f.add(r, number, user, body).ID
}

// add appends a comment. Call with f.mu held.
func (f *FakeGitHub) add(r *ghRepo, number int, user, body string) *Comment {
	now := stamp(len(f.comments) + len(f.requests))
	c := &Comment{ID: f.nextID, Repo: r.name, Number: number, User: user, Body: body, Created: now, Updated: now}
	f.nextID++
	f.comments = append(f.comments, c)
	return c
}

// Comments returns the comments of a pull request, oldest first.
func (f *FakeGitHub) Comments(repo string, number int) []Comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Comment
	for _, c := range f.comments {
		if strings.EqualFold(c.Repo, repo) && c.Number == number {
			out = append(out, *c)
		}
	}
	return out
}

// Env returns the variables of a GitHub Actions pull_request job on repo's
// pull request number against this fake (the event file is written to a
// temporary directory), and adds the pull request.
func (f *FakeGitHub) Env(t testing.TB, repo string, number int) map[string]string {
	t.Helper()
	f.AddPR(repo, number)
	event := map[string]any{
		"action":       "synchronize",
		"number":       number,
		"pull_request": map[string]any{"number": number},
		"repository":   map[string]any{"full_name": repo},
	}
	return map[string]string{
		"GITHUB_ACTIONS":    "true",
		"GITHUB_API_URL":    f.APIURL,
		"GITHUB_TOKEN":      f.Token,
		"GITHUB_REPOSITORY": repo,
		"GITHUB_EVENT_NAME": "pull_request",
		"GITHUB_EVENT_PATH": writeFile(t, "event.json", event),
	}
}

// Getenv makes a getenv function from a map.
func Getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func (f *FakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	esc := r.URL.EscapedPath()
	rel, ok := strings.CutPrefix(esc, f.base)
	if !ok || !strings.HasPrefix(rel, "/") {
		rel = esc
	}
	req, err := f.record(r, rel)
	if err != nil {
		f.violate(w, r, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if !ok {
		f.violate(w, r, http.StatusNotFound, "path is not under the API root %q", f.base)
		return
	}

	// Routes.
	seg := strings.Split(strings.Trim(rel, "/"), "/")
	if f.serveDispatch(w, r, req, seg) {
		return
	}
	var (
		repo      *ghRepo
		repoName  string
		number    int
		commentID int64
		route     string
	)
	switch {
	case len(seg) == 6 && seg[0] == "repos" && seg[3] == "issues" && seg[5] == "comments" && isNum(seg[4]):
		route, repoName = "issue-comments", unesc(seg[1])+"/"+unesc(seg[2])
		number, _ = strconv.Atoi(seg[4])
	case len(seg) == 5 && seg[0] == "repositories" && seg[2] == "issues" && seg[4] == "comments" && isNum(seg[1]) && isNum(seg[3]):
		route = "issue-comments"
		id, _ := strconv.ParseInt(seg[1], 10, 64)
		for _, rp := range f.repos {
			if rp.id == id {
				repo = rp
			}
		}
		repoName = "repository " + seg[1]
		number, _ = strconv.Atoi(seg[3])
	case len(seg) == 6 && seg[0] == "repos" && seg[3] == "issues" && seg[4] == "comments" && isNum(seg[5]):
		route, repoName = "comment", unesc(seg[1])+"/"+unesc(seg[2])
		commentID, _ = strconv.ParseInt(seg[5], 10, 64)
	default:
		f.violate(w, r, http.StatusNotFound, "no such endpoint in the fake (issue comments: GET/POST /repos/{owner}/{repo}/issues/{number}/comments, PATCH /repos/{owner}/{repo}/issues/comments/{id})")
		return
	}
	write := false
	switch {
	case route == "issue-comments" && r.Method == http.MethodGet:
	case route == "issue-comments" && r.Method == http.MethodPost && seg[0] == "repos":
		write = true
	case route == "comment" && r.Method == http.MethodPatch:
		write = true
	default:
		f.violate(w, r, http.StatusNotFound, "method %s is not served on this path", r.Method)
		return
	}
	if repo == nil && seg[0] == "repos" {
		repo = f.repos[strings.ToLower(repoName)]
	}

	// Headers.
	if accept := r.Header.Get("Accept"); accept != "application/vnd.github+json" {
		f.violate(w, r, http.StatusBadRequest, "Accept is %q, want application/vnd.github+json", accept)
		return
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != GitHubAPIVersion {
		f.violate(w, r, http.StatusBadRequest, "X-GitHub-Api-Version is %q, want %s", v, GitHubAPIVersion)
		return
	}
	if r.Header.Get("User-Agent") == "" {
		f.violate(w, r, http.StatusForbidden, "no User-Agent (GitHub refuses requests without one)")
		return
	}
	auth := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(auth, " ")
	if auth == "" || !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "token") {
		f.violate(w, r, http.StatusUnauthorized, "Authorization is not \"Bearer TOKEN\"")
		return
	}
	if token != f.Token {
		writeJSON(w, http.StatusUnauthorized, ghError("Bad credentials"))
		return
	}

	// Query and body.
	var body string
	if write {
		if !isJSON(r.Header.Get("Content-Type")) {
			f.violate(w, r, http.StatusUnsupportedMediaType, "Content-Type is %q, want application/json", r.Header.Get("Content-Type"))
			return
		}
		var has bool
		if body, has, err = decodeBody(req.Body); err != nil {
			f.violate(w, r, http.StatusBadRequest, "Problems parsing JSON: %v (want {\"body\": \"...\"})", err)
			return
		}
		if f.injected(w, r.Method, rel) {
			return
		}
		if !has || body == "" {
			writeJSON(w, http.StatusUnprocessableEntity, ghValidation("missing_field", ""))
			return
		}
		if n := utf8.RuneCountInString(body); n > GitHubMaxBody {
			writeJSON(w, http.StatusUnprocessableEntity, ghValidation("custom", fmt.Sprintf("body is too long (maximum is %d characters)", GitHubMaxBody)))
			return
		}
	} else {
		if req.Body != "" {
			f.violate(w, r, http.StatusBadRequest, "GET with a body")
			return
		}
		if f.injected(w, r.Method, rel) {
			return
		}
	}

	switch {
	case route == "comment":
		var c *Comment
		for _, x := range f.comments {
			if x.ID == commentID && repo != nil && strings.EqualFold(x.Repo, repo.name) {
				c = x
			}
		}
		if c == nil {
			writeJSON(w, http.StatusNotFound, ghError("Not Found"))
			return
		}
		c.Body, c.Edits, c.Updated = body, c.Edits+1, stamp(len(f.comments)+len(f.requests))
		writeJSON(w, http.StatusOK, f.commentJSON(c))
	case repo == nil || !repo.prs[number]:
		writeJSON(w, http.StatusNotFound, ghError("Not Found"))
	case write:
		c := f.add(repo, number, f.User, body)
		w.Header().Set("Location", fmt.Sprintf("%s/repos/%s/issues/comments/%d", f.APIURL, repo.name, c.ID))
		writeJSON(w, http.StatusCreated, f.commentJSON(c))
	default:
		page, perPage, err := pageParams(req.Query, 30, min(100, max(f.MaxPerPage, 1)))
		if err != nil {
			f.violate(w, r, http.StatusBadRequest, "%v", err)
			return
		}
		var all []*Comment
		for _, c := range f.comments {
			if c.Repo == repo.name && c.Number == number {
				all = append(all, c)
			}
		}
		items, pages := pageOf(all, page, perPage)
		out := make([]map[string]any, 0, len(items))
		for _, c := range items {
			out = append(out, f.commentJSON(c))
		}
		if pages > 1 {
			q := url.Values{}
			if s := req.Query.Get("since"); s != "" {
				q.Set("since", s)
			}
			w.Header().Set("Link", linkHeader(fmt.Sprintf("%s/repositories/%d/issues/%d/comments", f.APIURL, repo.id, number), q, page, pages, perPage))
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (f *FakeGitHub) commentJSON(c *Comment) map[string]any {
	userType := "User"
	if strings.HasSuffix(c.User, "[bot]") {
		userType = "Bot"
	}
	return map[string]any{
		"id":                 c.ID,
		"node_id":            fmt.Sprintf("IC_kwDO%d", c.ID),
		"url":                fmt.Sprintf("%s/repos/%s/issues/comments/%d", f.APIURL, c.Repo, c.ID),
		"html_url":           fmt.Sprintf("%s/%s/pull/%d#issuecomment-%d", f.Server.URL, c.Repo, c.Number, c.ID),
		"issue_url":          fmt.Sprintf("%s/repos/%s/issues/%d", f.APIURL, c.Repo, c.Number),
		"body":               c.Body,
		"user":               map[string]any{"login": c.User, "type": userType},
		"created_at":         c.Created,
		"updated_at":         c.Updated,
		"author_association": "NONE",
	}
}

func ghError(msg string) map[string]any {
	return map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest/issues/comments"}
}

func ghValidation(code, msg string) map[string]any {
	e := map[string]any{"resource": "IssueComment", "code": code, "field": "body"}
	if msg != "" {
		e["message"] = msg
	}
	return map[string]any{
		"message":           "Validation Failed",
		"errors":            []any{e},
		"documentation_url": "https://docs.github.com/rest/issues/comments",
		"status":            "422",
	}
}

func isNum(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0
}

func unesc(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
