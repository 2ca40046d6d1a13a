package commenttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recTB records Errorf instead of failing the test.
type recTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

type answer struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, method, url string, header map[string]string, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("User-Agent", "test")
	for k, v := range header {
		if v == "-" { // leave the header out
			if k == "User-Agent" {
				req.Header.Set(k, "") // net/http sends no empty User-Agent
			} else {
				req.Header.Del(k)
			}
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, resp.Header, string(data)}
}

func ghHeaders(token string, extra map[string]string) map[string]string {
	h := map[string]string{
		"Authorization":        "Bearer " + token,
		"Accept":               "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28",
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func TestFakeGitHubChecksRequests(t *testing.T) {
	const list = "/repos/acme/models/issues/12/comments"
	tests := []struct {
		name      string
		method    string
		path      string
		header    map[string]string // over valid headers; "-" removes
		body      string
		status    int
		violation string // "" for an answer that is not a violation
	}{
		{name: "list", method: "GET", path: list, status: 200},
		{name: "owner and name are case-insensitive", method: "GET", path: "/repos/ACME/Models/issues/12/comments", status: 200},
		{name: "create", method: "POST", path: list, header: map[string]string{"Content-Type": "application/json"}, body: `{"body":"x"}`, status: 201},
		{name: "wrong Accept", method: "GET", path: list, header: map[string]string{"Accept": "application/json"}, status: 400, violation: `Accept is "application/json"`},
		{name: "no API version", method: "GET", path: list, header: map[string]string{"X-GitHub-Api-Version": "-"}, status: 400, violation: `X-GitHub-Api-Version is ""`},
		{name: "unsupported API version", method: "GET", path: list, header: map[string]string{"X-GitHub-Api-Version": "2020-01-01"}, status: 400, violation: "want 2022-11-28"},
		{name: "no User-Agent", method: "GET", path: list, header: map[string]string{"User-Agent": "-"}, status: 403, violation: "no User-Agent"},
		{name: "no Authorization", method: "GET", path: list, header: map[string]string{"Authorization": "-"}, status: 401, violation: "Authorization"},
		{name: "Basic auth", method: "GET", path: list, header: map[string]string{"Authorization": "Basic eDp5"}, status: 401, violation: "Authorization"},
		{name: "token scheme", method: "GET", path: list, header: map[string]string{"Authorization": "token ghs_faketoken0123456789"}, status: 200},
		{name: "wrong token", method: "GET", path: list, header: map[string]string{"Authorization": "Bearer nope"}, status: 401},
		{name: "pulls path", method: "GET", path: "/repos/acme/models/pulls/12/comments", status: 404, violation: "no such endpoint"},
		{name: "PUT on comments", method: "PUT", path: list, status: 404, violation: "method PUT"},
		{name: "POST on a comment", method: "POST", path: "/repos/acme/models/issues/comments/1", status: 404, violation: "method POST"},
		{name: "POST without Content-Type", method: "POST", path: list, body: `{"body":"x"}`, status: 415, violation: "Content-Type"},
		{name: "POST form", method: "POST", path: list, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: `body=x`, status: 415, violation: "Content-Type"},
		{name: "POST other field", method: "POST", path: list, header: map[string]string{"Content-Type": "application/json"}, body: `{"text":"x"}`, status: 400, violation: "Problems parsing JSON"},
		{name: "POST not JSON", method: "POST", path: list, header: map[string]string{"Content-Type": "application/json"}, body: `body`, status: 400, violation: "Problems parsing JSON"},
		{name: "POST empty body", method: "POST", path: list, header: map[string]string{"Content-Type": "application/json"}, body: `{"body":""}`, status: 422},
		{name: "POST too long", method: "POST", path: list, header: map[string]string{"Content-Type": "application/json"}, body: `{"body":"` + strings.Repeat("x", GitHubMaxBody+1) + `"}`, status: 422},
		{name: "GET with a body", method: "GET", path: list, body: `{}`, status: 400, violation: "GET with a body"},
		{name: "bad per_page", method: "GET", path: list + "?per_page=many", status: 400, violation: "per_page"},
		{name: "unknown pull request", method: "GET", path: "/repos/acme/models/issues/13/comments", status: 404},
		{name: "unknown repository", method: "GET", path: "/repos/acme/other/issues/12/comments", status: 404},
		{name: "PATCH unknown comment", method: "PATCH", path: "/repos/acme/models/issues/comments/5", header: map[string]string{"Content-Type": "application/json"}, body: `{"body":"x"}`, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recTB{TB: t}
			f := NewGitHub(rec)
			f.AddPR("acme/models", 12)
			a := send(t, tt.method, f.APIURL+tt.path, ghHeaders(f.Token, tt.header), tt.body)
			assert.Equal(t, tt.status, a.status, a.body)
			assert.Equal(t, "application/json; charset=utf-8", a.header.Get("Content-Type"))
			if tt.violation == "" {
				assert.Empty(t, f.Violations())
				assert.Empty(t, rec.errors())
				return
			}
			require.Len(t, f.Violations(), 1)
			assert.Contains(t, f.Violations()[0], tt.violation)
			require.Len(t, rec.errors(), 1, "a violation fails the test")
			assert.Contains(t, rec.errors()[0], "fake github: protocol violation: ")
			assert.Contains(t, a.body, "fake github: ")
		})
	}
}

func TestFakeGitHubExpectViolations(t *testing.T) {
	rec := &recTB{TB: t}
	f := NewGitHub(rec)
	f.ExpectViolations()
	a := send(t, "GET", f.APIURL+"/nope", ghHeaders(f.Token, nil), "")
	assert.Equal(t, 404, a.status)
	assert.Len(t, f.Violations(), 1)
	assert.Empty(t, rec.errors())
}

func TestFakeGitHubEnterprise(t *testing.T) {
	rec := &recTB{TB: t}
	f := NewGitHubEnterprise(rec)
	f.AddPR("acme/models", 12)
	assert.Equal(t, f.Server.URL+"/api/v3", f.APIURL)
	a := send(t, "GET", f.APIURL+"/repos/acme/models/issues/12/comments", ghHeaders(f.Token, nil), "")
	assert.Equal(t, 200, a.status)
	a = send(t, "GET", f.Server.URL+"/repos/acme/models/issues/12/comments", ghHeaders(f.Token, nil), "")
	assert.Equal(t, 404, a.status)
	require.Len(t, f.Violations(), 1)
	assert.Contains(t, f.Violations()[0], `not under the API root "/api/v3"`)
	assert.Len(t, rec.errors(), 1)
}

func TestFakeGitHubPagination(t *testing.T) {
	f := NewGitHub(t)
	for i := range 65 {
		f.AddComment("acme/models", 12, "alice", fmt.Sprint(i))
	}
	f.AddComment("acme/models", 13, "alice", "other pull request")
	h := ghHeaders(f.Token, nil)

	// GitHub's default page size is 30; Link URLs go through /repositories/{id}.
	a := send(t, "GET", f.APIURL+"/repos/acme/models/issues/12/comments", h, "")
	var page []map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &page))
	assert.Len(t, page, 30)
	assert.Equal(t, "0", page[0]["body"])
	assert.Equal(t, map[string]any{"login": "alice", "type": "User"}, page[0]["user"])
	repoURL := f.APIURL + "/repositories/100000001/issues/12/comments"
	assert.Equal(t, `<`+repoURL+`?page=2&per_page=30>; rel="next", <`+repoURL+`?page=1&per_page=30>; rel="first", <`+repoURL+`?page=3&per_page=30>; rel="last"`, a.header.Get("Link"))

	a = send(t, "GET", repoURL+"?page=3&per_page=30", h, "")
	require.NoError(t, json.Unmarshal([]byte(a.body), &page))
	assert.Len(t, page, 5)
	assert.Equal(t, "60", page[0]["body"])
	assert.NotContains(t, a.header.Get("Link"), `rel="next"`)

	// per_page is capped at 100, and by MaxPerPage.
	a = send(t, "GET", f.APIURL+"/repos/acme/models/issues/12/comments?per_page=500", h, "")
	require.NoError(t, json.Unmarshal([]byte(a.body), &page))
	assert.Len(t, page, 65)
	assert.Empty(t, a.header.Get("Link"))
	f.MaxPerPage = 10
	a = send(t, "GET", f.APIURL+"/repos/acme/models/issues/12/comments?per_page=100&page=7", h, "")
	require.NoError(t, json.Unmarshal([]byte(a.body), &page))
	assert.Len(t, page, 5)
	a = send(t, "GET", f.APIURL+"/repos/acme/models/issues/12/comments?per_page=100&page=9", h, "")
	assert.Equal(t, "[]\n", a.body)
	assert.Empty(t, f.Violations())
}

func TestFakeGitHubWrites(t *testing.T) {
	f := NewGitHub(t)
	f.AddPR("acme/models", 12)
	other := f.AddComment("acme/other", 1, "alice", "elsewhere")
	h := ghHeaders(f.Token, map[string]string{"Content-Type": "application/json; charset=utf-8"})

	a := send(t, "POST", f.APIURL+"/repos/acme/models/issues/12/comments", h, `{"body":"hello"}`)
	require.Equal(t, 201, a.status, a.body)
	var c map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &c))
	id := int64(c["id"].(float64))
	assert.Equal(t, other+1, id)
	assert.Equal(t, fmt.Sprintf("%s/repos/acme/models/issues/comments/%d", f.APIURL, id), a.header.Get("Location"))
	assert.Equal(t, fmt.Sprintf("%s/acme/models/pull/12#issuecomment-%d", f.Server.URL, id), c["html_url"])
	assert.Equal(t, map[string]any{"login": "github-actions[bot]", "type": "Bot"}, c["user"])

	a = send(t, "PATCH", fmt.Sprintf("%s/repos/acme/models/issues/comments/%d", f.APIURL, id), h, `{"body":"edited"}`)
	require.Equal(t, 200, a.status, a.body)
	// A comment of another repository is not found through this one.
	a = send(t, "PATCH", fmt.Sprintf("%s/repos/acme/models/issues/comments/%d", f.APIURL, other), h, `{"body":"edited"}`)
	assert.Equal(t, 404, a.status)

	got := f.Comments("acme/models", 12)
	require.Len(t, got, 1)
	assert.Equal(t, "edited", got[0].Body)
	assert.Equal(t, 1, got[0].Edits)
	assert.Equal(t, "elsewhere", f.Comments("acme/other", 1)[0].Body)
	assert.Equal(t, []string{
		"POST /repos/acme/models/issues/12/comments",
		fmt.Sprintf("PATCH /repos/acme/models/issues/comments/%d", id),
		fmt.Sprintf("PATCH /repos/acme/models/issues/comments/%d", other),
	}, f.Methods())
	assert.Equal(t, `{"body":"hello"}`, f.Requests()[0].Body)
}

func TestFakeFailures(t *testing.T) {
	f := NewGitHub(t)
	f.AddPR("acme/models", 12)
	h := ghHeaders(f.Token, map[string]string{"Content-Type": "application/json"})
	list := f.APIURL + "/repos/acme/models/issues/12/comments"
	f.Fail(Failure{Method: "POST", Status: 403, Times: 2, Header: http.Header{"Retry-After": {"3"}}, Body: `{"message":"secondary rate limit"}`})
	f.Fail(Failure{Path: "/comments", Status: 500})
	f.Fail(Failure{Method: "PATCH", Status: 502, Times: -1})

	a := send(t, "POST", list, h, `{"body":"x"}`)
	assert.Equal(t, 403, a.status)
	assert.Equal(t, "3", a.header.Get("Retry-After"))
	assert.Equal(t, `{"message":"secondary rate limit"}`, a.body)
	assert.Equal(t, 403, send(t, "POST", list, h, `{"body":"x"}`).status)
	a = send(t, "POST", list, h, `{"body":"x"}`)
	assert.Equal(t, 500, a.status)
	assert.Equal(t, `{"message":"Internal Server Error"}`, a.body)
	assert.Equal(t, 201, send(t, "POST", list, h, `{"body":"x"}`).status)
	for range 3 {
		assert.Equal(t, 502, send(t, "PATCH", f.APIURL+"/repos/acme/models/issues/comments/1", h, `{"body":"x"}`).status)
	}
	// A malformed request is a violation even when a failure would match.
	rec := &recTB{TB: t}
	g := NewGitHub(rec)
	g.AddPR("acme/models", 12)
	g.Fail(Failure{Status: 503, Times: -1})
	assert.Equal(t, 400, send(t, "GET", g.APIURL+"/repos/acme/models/issues/12/comments", ghHeaders(g.Token, map[string]string{"Accept": "-"}), "").status)
	assert.Len(t, rec.errors(), 1)
}

func TestFakeGitHubEnv(t *testing.T) {
	f := NewGitHub(t)
	env := f.Env(t, "acme/models", 4)
	assert.Equal(t, f.APIURL, env["GITHUB_API_URL"])
	assert.Equal(t, f.Token, env["GITHUB_TOKEN"])
	assert.Equal(t, "acme/models", env["GITHUB_REPOSITORY"])
	assert.Equal(t, "pull_request", env["GITHUB_EVENT_NAME"])
	assert.Equal(t, "acme/models", Getenv(env)("GITHUB_REPOSITORY"))
	a := send(t, "GET", f.APIURL+"/repos/acme/models/issues/4/comments", ghHeaders(f.Token, nil), "")
	assert.Equal(t, 200, a.status)
}

func glHeaders(token string, extra map[string]string) map[string]string {
	h := map[string]string{"PRIVATE-TOKEN": token}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func TestFakeGitLabChecksRequests(t *testing.T) {
	const notes = "/projects/1001/merge_requests/7/notes"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name      string
		method    string
		path      string
		header    map[string]string
		body      string
		status    int
		violation string
	}{
		{name: "merge request", method: "GET", path: "/projects/1001/merge_requests/7", status: 200},
		{name: "merge request by path", method: "GET", path: "/projects/group%2Fproj/merge_requests/7", status: 200},
		{name: "notes", method: "GET", path: notes + "?sort=asc&order_by=created_at&per_page=100", status: 200},
		{name: "create", method: "POST", path: notes, header: jsonCT, body: `{"body":"x"}`, status: 201},
		{name: "unencoded project path", method: "GET", path: "/projects/group/proj/merge_requests/7/notes", status: 404, violation: "URL-encoded"},
		{name: "unknown project", method: "GET", path: "/projects/other%2Fproj/merge_requests/7/notes", status: 404},
		{name: "unknown merge request", method: "GET", path: "/projects/1001/merge_requests/8/notes", status: 404},
		{name: "no token", method: "GET", path: notes, header: map[string]string{"PRIVATE-TOKEN": "-"}, status: 401, violation: "no PRIVATE-TOKEN"},
		{name: "bearer instead of PRIVATE-TOKEN", method: "GET", path: notes, header: map[string]string{"PRIVATE-TOKEN": "-", "Authorization": "Bearer glpat-fake0123456789abc"}, status: 401, violation: "no PRIVATE-TOKEN"},
		{name: "wrong token", method: "GET", path: notes, header: map[string]string{"PRIVATE-TOKEN": "nope"}, status: 401},
		{name: "job token", method: "POST", path: notes, header: map[string]string{"PRIVATE-TOKEN": "-", "JOB-TOKEN": "job"}, body: `{"body":"x"}`, status: 403},
		{name: "bad sort", method: "GET", path: notes + "?sort=up", status: 400, violation: "sort"},
		{name: "bad order_by", method: "GET", path: notes + "?order_by=id", status: 400, violation: "order_by"},
		{name: "PATCH a note", method: "PATCH", path: notes + "/1", header: jsonCT, body: `{"body":"x"}`, status: 405, violation: "method PATCH"},
		{name: "notes of an issue", method: "GET", path: "/projects/1001/issues/7/notes", status: 404, violation: "no such endpoint"},
		{name: "POST without Content-Type", method: "POST", path: notes, body: `{"body":"x"}`, status: 415, violation: "Content-Type"},
		{name: "POST other field", method: "POST", path: notes, header: jsonCT, body: `{"note":"x"}`, status: 400, violation: "bad JSON"},
		{name: "POST no body", method: "POST", path: notes, header: jsonCT, body: `{}`, status: 400},
		{name: "POST too long", method: "POST", path: notes, header: jsonCT, body: `{"body":"` + strings.Repeat("x", GitLabMaxBody+1) + `"}`, status: 400},
		{name: "PUT unknown note", method: "PUT", path: notes + "/5", header: jsonCT, body: `{"body":"x"}`, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recTB{TB: t}
			f := NewGitLab(rec)
			f.AddMR("group/proj", 7)
			a := send(t, tt.method, f.APIURL+tt.path, glHeaders(f.Token, tt.header), tt.body)
			assert.Equal(t, tt.status, a.status, a.body)
			if tt.violation == "" {
				assert.Empty(t, f.Violations())
				assert.Empty(t, rec.errors())
				return
			}
			require.Len(t, f.Violations(), 1)
			assert.Contains(t, f.Violations()[0], tt.violation)
			require.Len(t, rec.errors(), 1)
			assert.Contains(t, rec.errors()[0], "fake gitlab: protocol violation: ")
		})
	}
}

func TestFakeGitLabNotes(t *testing.T) {
	f := NewGitLab(t)
	for i := range 5 {
		f.AddNote("group/proj", 7, "alice", fmt.Sprint(i), i == 1)
	}
	h := glHeaders(f.Token, map[string]string{"Content-Type": "application/json"})
	base := f.APIURL + "/projects/group%2Fproj/merge_requests/7"

	a := send(t, "GET", base, h, "")
	var mr map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &mr))
	assert.Equal(t, f.Server.URL+"/group/proj/-/merge_requests/7", mr["web_url"])

	// The default order is newest first, 20 a page.
	a = send(t, "GET", base+"/notes", h, "")
	var notes []map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &notes))
	require.Len(t, notes, 5)
	assert.Equal(t, "4", notes[0]["body"])
	assert.Equal(t, true, notes[3]["system"])
	assert.Equal(t, "MergeRequest", notes[0]["noteable_type"])

	f.MaxPerPage = 2
	a = send(t, "GET", base+"/notes?sort=asc&order_by=created_at&per_page=100&page=2", h, "")
	require.NoError(t, json.Unmarshal([]byte(a.body), &notes))
	assert.Equal(t, "2", notes[0]["body"])
	assert.Equal(t, "3", a.header.Get("X-Next-Page"))
	assert.Equal(t, "1", a.header.Get("X-Prev-Page"))
	assert.Equal(t, "2", a.header.Get("X-Page"))
	assert.Equal(t, "2", a.header.Get("X-Per-Page"))
	assert.Equal(t, "5", a.header.Get("X-Total"))
	assert.Equal(t, "3", a.header.Get("X-Total-Pages"))
	assert.Contains(t, a.header.Get("Link"), `<`+f.APIURL+`/projects/1001/merge_requests/7/notes?order_by=created_at&page=3&per_page=2&sort=asc>; rel="next"`)
	a = send(t, "GET", base+"/notes?sort=asc&page=3", h, "")
	assert.Equal(t, "", a.header.Get("X-Next-Page"))
	_, ok := a.header["X-Next-Page"]
	assert.True(t, ok, "X-Next-Page is there, empty, on the last page")

	f.LinkOnly = true
	a = send(t, "GET", base+"/notes?sort=asc", h, "")
	_, ok = a.header["X-Next-Page"]
	assert.False(t, ok)
	assert.Contains(t, a.header.Get("Link"), `rel="next"`)

	// Only the author edits a note.
	a = send(t, "POST", base+"/notes", h, `{"body":"mine"}`)
	require.Equal(t, 201, a.status)
	var n map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &n))
	id := int64(n["id"].(float64))
	assert.Equal(t, 200, send(t, "PUT", fmt.Sprintf("%s/notes/%d", base, id), h, `{"body":"mine, edited"}`).status)
	first := f.Notes("group/proj", 7)[0].ID
	assert.Equal(t, 403, send(t, "PUT", fmt.Sprintf("%s/notes/%d", base, first), h, `{"body":"theirs"}`).status)
	got := f.Notes("group/proj", 7)
	require.Len(t, got, 6)
	assert.Equal(t, Note{ID: id, Project: "group/proj", IID: 7, Author: f.User, Body: "mine, edited", Edits: 1, Created: got[5].Created, Updated: got[5].Updated}, got[5])
	assert.Equal(t, "0", got[0].Body)
	assert.Empty(t, f.Violations())
}

func TestFakeGitLabEnv(t *testing.T) {
	f := NewGitLab(t)
	env := f.Env("group/proj", 3)
	assert.Equal(t, f.APIURL, env["CI_API_V4_URL"])
	assert.Equal(t, "1001", env["CI_PROJECT_ID"])
	assert.Equal(t, "3", env["CI_MERGE_REQUEST_IID"])
	assert.Equal(t, f.Token, env["MLSHIP_GITLAB_TOKEN"])
	assert.Equal(t, 200, send(t, "GET", f.APIURL+"/projects/1001/merge_requests/3/notes", glHeaders(f.Token, nil), "").status)
}
