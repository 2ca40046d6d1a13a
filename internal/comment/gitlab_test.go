package comment

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
)

const (
	glProject = "group/proj"
	glIID     = 7
)

// newGitLab returns a fake GitLab with group/proj!7 and a client for it that
// names the project by its numeric id.
func newGitLab(t *testing.T) (*commenttest.FakeGitLab, *GitLab, *waits) {
	t.Helper()
	f := commenttest.NewGitLab(t)
	id := f.AddMR(glProject, glIID)
	w := &waits{}
	return f, &GitLab{APIURL: f.APIURL, Token: f.Token, ProjectID: strconv.FormatInt(id, 10), MRIID: glIID, Opts: fastOpts(w)}, w
}

func TestGitLabUpsertCreatesThenUpdates(t *testing.T) {
	ctx := context.Background()
	f, g, _ := newGitLab(t)
	f.AddNote(glProject, glIID, "alice", "Looks good", false)
	f.AddNote(glProject, glIID, "alice", "added 1 commit", true)

	res, err := g.Upsert(ctx, "report", "## Model report\n")
	require.NoError(t, err)
	notes := f.Notes(glProject, glIID)
	require.Len(t, notes, 3)
	n := notes[2]
	assert.Equal(t, "<!-- mlship:report -->\n## Model report\n", n.Body)
	assert.Equal(t, "project_1001_bot", n.Author)
	assert.Equal(t, &Result{Action: "created", ID: n.ID, URL: f.Server.URL + "/group/proj/-/merge_requests/7#note_" + strconv.FormatInt(n.ID, 10)}, res)
	assert.Equal(t, []string{
		"GET /projects/1001/merge_requests/7",
		"GET /projects/1001/merge_requests/7/notes",
		"POST /projects/1001/merge_requests/7/notes",
	}, f.Methods())
	reqs := f.Requests()
	assert.Equal(t, url.Values{"per_page": {"100"}, "sort": {"asc"}, "order_by": {"created_at"}}, reqs[1].Query)
	for _, r := range reqs {
		assert.Equal(t, f.Token, r.Header.Get("PRIVATE-TOKEN"))
		assert.Empty(t, r.Header.Get("Authorization"))
		assert.Empty(t, r.Header.Get("JOB-TOKEN"))
		assert.Equal(t, "mlship", r.Header.Get("User-Agent"))
	}
	assert.Equal(t, "application/json", reqs[2].Header.Get("Content-Type"))
	assert.JSONEq(t, `{"body": "<!-- mlship:report -->\n## Model report\n"}`, reqs[2].Body)

	res, err = g.Upsert(ctx, "report", "## Model report v2\n")
	require.NoError(t, err)
	assert.Equal(t, "updated", res.Action)
	assert.Equal(t, n.ID, res.ID)
	assert.Equal(t, "PUT /projects/1001/merge_requests/7/notes/"+strconv.FormatInt(n.ID, 10), f.Methods()[5])
	assert.Len(t, f.Methods(), 6)
	notes = f.Notes(glProject, glIID)
	require.Len(t, notes, 3)
	assert.Equal(t, "<!-- mlship:report -->\n## Model report v2\n", notes[2].Body)
	assert.Equal(t, 1, notes[2].Edits)

	// Another id is another note.
	res, err = g.Upsert(ctx, "deploy", "deployed")
	require.NoError(t, err)
	assert.Equal(t, "created", res.Action)
	assert.Len(t, f.Notes(glProject, glIID), 4)
	assert.Empty(t, f.Violations())
}

func TestGitLabPagination(t *testing.T) {
	for _, linkOnly := range []bool{false, true} {
		name := "X-Next-Page"
		if linkOnly {
			name = "Link"
		}
		t.Run(name, func(t *testing.T) {
			f, g, _ := newGitLab(t)
			f.MaxPerPage = 2
			f.LinkOnly = linkOnly
			f.AddNote(glProject, glIID, "alice", "one", false)
			f.AddNote(glProject, glIID, "alice", "<!-- mlship:report -->\nsystem notes are not ours", true)
			f.AddNote(glProject, glIID, "alice", "three", false)
			f.AddNote(glProject, glIID, "alice", "four", false)
			id := f.AddNote(glProject, glIID, "project_1001_bot", "<!-- mlship:report -->\nold", false)

			res, err := g.Upsert(context.Background(), "report", "new")
			require.NoError(t, err)
			assert.Equal(t, "updated", res.Action)
			assert.Equal(t, id, res.ID)
			reqs := f.Requests()
			require.Len(t, reqs, 5) // MR, 3 pages, PUT
			for i, page := range []string{"", "2", "3"} {
				assert.Equal(t, page, reqs[1+i].Query.Get("page"))
				assert.Equal(t, "asc", reqs[1+i].Query.Get("sort"))
			}
			assert.Equal(t, http.MethodPut, reqs[4].Method)
			assert.Equal(t, "<!-- mlship:report -->\nnew", f.Notes(glProject, glIID)[4].Body)
			assert.Equal(t, "<!-- mlship:report -->\nsystem notes are not ours", f.Notes(glProject, glIID)[1].Body)
		})
	}
}

func TestGitLabProjectPath(t *testing.T) {
	for _, pid := range []string{"group/proj", "group%2Fproj"} {
		t.Run(pid, func(t *testing.T) {
			f, g, _ := newGitLab(t)
			g.ProjectID = pid
			assert.Equal(t, "group/proj!7", g.Where())
			res, err := g.Upsert(context.Background(), "report", "body")
			require.NoError(t, err)
			assert.Equal(t, "created", res.Action)
			assert.Equal(t, []string{
				"GET /projects/group%2Fproj/merge_requests/7",
				"GET /projects/group%2Fproj/merge_requests/7/notes",
				"POST /projects/group%2Fproj/merge_requests/7/notes",
			}, f.Methods())
		})
	}
	f := commenttest.NewGitLab(t)
	f.AddMR("a/b/c.d-e", 1)
	g := &GitLab{APIURL: f.APIURL, Token: f.Token, ProjectID: "a/b/c.d-e", MRIID: 1}
	_, err := g.Upsert(context.Background(), "report", "body")
	require.NoError(t, err)
	assert.Equal(t, "POST /projects/a%2Fb%2Fc.d-e/merge_requests/1/notes", f.Methods()[2])
}

func TestGitLabErrors(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(f *commenttest.FakeGitLab, g *GitLab)
		body      string
		want      string
		forbidden int // the status of a *ForbiddenError
		requests  int
		waits     int
	}{
		{
			name:     "merge request not found",
			setup:    func(_ *commenttest.FakeGitLab, g *GitLab) { g.MRIID = 99 },
			want:     "gitlab: GET /projects/1001/merge_requests/99: 404 Not Found: 404 Not found (no merge request 1001!99, or the token cannot see the project)",
			requests: 1,
		},
		{
			name: "403 on POST",
			setup: func(f *commenttest.FakeGitLab, _ *GitLab) {
				f.Fail(commenttest.Failure{Method: "POST", Status: 403, Body: `{"message":"403 Forbidden"}`})
			},
			want:      "gitlab: no permission to comment on 1001!7 (POST /projects/1001/merge_requests/7/notes): 403 Forbidden: 403 Forbidden; the token cannot write merge request notes",
			forbidden: 403, requests: 3,
		},
		{
			name:      "bad token",
			setup:     func(_ *commenttest.FakeGitLab, g *GitLab) { g.Token = "glpat-wrong" },
			want:      "gitlab: no permission to comment on 1001!7 (GET /projects/1001/merge_requests/7): 401 Unauthorized: 401 Unauthorized",
			forbidden: 401, requests: 1,
		},
		{
			name:     "job token",
			setup:    func(_ *commenttest.FakeGitLab, g *GitLab) { g.TokenIsJobToken = true },
			want:     "gitlab: GET /projects/1001/merge_requests/7: 403 Forbidden: 403 Forbidden (the token cannot read the merge request: use a project access token with api scope)",
			requests: 1,
		},
		{
			name: "someone else's note with the marker",
			setup: func(f *commenttest.FakeGitLab, _ *GitLab) {
				f.AddNote(glProject, glIID, "mallory", "<!-- mlship:report -->\nmine", false)
			},
			want:      "gitlab: no permission to comment on 1001!7 (PUT /projects/1001/merge_requests/7/notes/2000000001): 403 Forbidden",
			forbidden: 403, requests: 3,
		},
		{
			name:     "too long",
			body:     strings.Repeat("x", GitLabMaxBody),
			want:     `gitlab: note "report" is 1000023 characters, more than GitLab's limit of 1000000 (marker line included)`,
			requests: 0,
		},
		{
			name: "validation error with an object message",
			setup: func(f *commenttest.FakeGitLab, _ *GitLab) {
				f.Fail(commenttest.Failure{Method: "POST", Status: 400, Body: `{"message":{"note":["is too long (maximum is 1000000 characters)"]}}`})
			},
			want:     `gitlab: POST /projects/1001/merge_requests/7/notes: 400 Bad Request: {"note":["is too long (maximum is 1000000 characters)"]}`,
			requests: 3,
		},
		{
			name: "retries run out",
			setup: func(f *commenttest.FakeGitLab, g *GitLab) {
				g.Opts.Retries = 2
				f.Fail(commenttest.Failure{Status: 500, Times: -1})
			},
			want:     "gitlab: GET /projects/1001/merge_requests/7: 500 Internal Server Error: Internal Server Error; gave up after 3 tries",
			requests: 3, waits: 2,
		},
		{name: "no project", setup: func(_ *commenttest.FakeGitLab, g *GitLab) { g.ProjectID = "" }, want: "gitlab: no project id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, g, w := newGitLab(t)
			if tt.setup != nil {
				tt.setup(f, g)
			}
			_, err := g.Upsert(context.Background(), "report", tt.body)
			require.Error(t, err)
			var fe *ForbiddenError
			if tt.forbidden != 0 {
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tt.forbidden, fe.Status)
				assert.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
			} else {
				assert.False(t, errors.As(err, &fe))
				assert.Equal(t, tt.want, err.Error())
			}
			assert.NotContains(t, err.Error(), f.Token)
			assert.Len(t, f.Requests(), tt.requests)
			assert.Len(t, w.all(), tt.waits)
			assert.Empty(t, f.Violations())
		})
	}
}

func TestGitLabRetries(t *testing.T) {
	f, g, w := newGitLab(t)
	f.Fail(commenttest.Failure{Method: "GET", Path: "/notes", Status: 429, Header: http.Header{"Retry-After": {"1"}}})
	f.Fail(commenttest.Failure{Method: "POST", Status: 502})
	res, err := g.Upsert(context.Background(), "report", "body")
	require.NoError(t, err)
	assert.Equal(t, "created", res.Action)
	assert.Len(t, f.Notes(glProject, glIID), 1)
	assert.Equal(t, []time.Duration{50 * time.Millisecond, time.Millisecond}, w.all())
	var methods []string
	for _, r := range f.Requests() {
		methods = append(methods, r.Method)
	}
	assert.Equal(t, []string{"GET", "GET", "GET", "POST", "GET", "POST"}, methods)
}

func TestGitLabWhere(t *testing.T) {
	assert.Equal(t, "123!7", (&GitLab{ProjectID: "123", MRIID: 7}).Where())
	assert.Equal(t, "group/sub/proj!7", (&GitLab{ProjectID: "group%2Fsub%2Fproj", MRIID: 7}).Where())
	assert.Equal(t, "group/proj!7", (&GitLab{ProjectID: "123", MRIID: 7, path: "group/proj"}).Where())
}

func TestGitLabFromEnv(t *testing.T) {
	base := map[string]string{
		"CI_API_V4_URL":        "https://gitlab.example.com/api/v4",
		"CI_PROJECT_ID":        "42",
		"CI_PROJECT_PATH":      "group/proj",
		"CI_MERGE_REQUEST_IID": "7",
		"MLSHIP_GITLAB_TOKEN":  "glpat-x",
		"CI_JOB_TOKEN":         "job",
	}
	tests := []struct {
		name      string
		env       map[string]string // over base; "" removes
		want      *GitLab
		wantWhere string
		wantErr   string
		notPR     bool
	}{
		{
			name:      "merge request pipeline",
			want:      &GitLab{APIURL: "https://gitlab.example.com/api/v4", Token: "glpat-x", ProjectID: "42", MRIID: 7, path: "group/proj"},
			wantWhere: "group/proj!7",
		},
		{
			name:      "GITLAB_TOKEN",
			env:       map[string]string{"MLSHIP_GITLAB_TOKEN": "", "GITLAB_TOKEN": "glpat-y"},
			want:      &GitLab{APIURL: "https://gitlab.example.com/api/v4", Token: "glpat-y", ProjectID: "42", MRIID: 7, path: "group/proj"},
			wantWhere: "group/proj!7",
		},
		{
			name:      "MLSHIP_GITLAB_TOKEN first",
			env:       map[string]string{"GITLAB_TOKEN": "glpat-y"},
			want:      &GitLab{APIURL: "https://gitlab.example.com/api/v4", Token: "glpat-x", ProjectID: "42", MRIID: 7, path: "group/proj"},
			wantWhere: "group/proj!7",
		},
		{
			name:      "merge request from a fork: the target project",
			env:       map[string]string{"CI_MERGE_REQUEST_PROJECT_ID": "40", "CI_MERGE_REQUEST_PROJECT_PATH": "upstream/proj"},
			want:      &GitLab{APIURL: "https://gitlab.example.com/api/v4", Token: "glpat-x", ProjectID: "40", MRIID: 7, path: "upstream/proj"},
			wantWhere: "upstream/proj!7",
		},
		{
			name:      "API URL from CI_SERVER_URL",
			env:       map[string]string{"CI_API_V4_URL": "", "CI_SERVER_URL": "https://git.example.org/"},
			want:      &GitLab{APIURL: "https://git.example.org/api/v4", Token: "glpat-x", ProjectID: "42", MRIID: 7, path: "group/proj"},
			wantWhere: "group/proj!7",
		},
		{
			name:    "not a merge request pipeline",
			env:     map[string]string{"CI_MERGE_REQUEST_IID": ""},
			wantErr: "not a merge request pipeline (CI_MERGE_REQUEST_IID is not set)",
			notPR:   true,
		},
		{
			name:    "only CI_JOB_TOKEN",
			env:     map[string]string{"MLSHIP_GITLAB_TOKEN": ""},
			wantErr: "no GitLab token: CI_JOB_TOKEN cannot post merge request notes; create a project access token with api scope (role Reporter or higher), store it as a masked CI/CD variable and set MLSHIP_GITLAB_TOKEN to it",
		},
		{
			name:    "no token at all",
			env:     map[string]string{"MLSHIP_GITLAB_TOKEN": "", "CI_JOB_TOKEN": ""},
			wantErr: "no GitLab token: set MLSHIP_GITLAB_TOKEN (or GITLAB_TOKEN) to a project access token with api scope",
		},
		{
			name:    "no project",
			env:     map[string]string{"CI_PROJECT_ID": ""},
			wantErr: "CI_PROJECT_ID is not set",
		},
		{
			name:    "bad iid",
			env:     map[string]string{"CI_MERGE_REQUEST_IID": "seven"},
			wantErr: `CI_MERGE_REQUEST_IID="seven" is not a merge request iid`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			g, err := GitLabFromEnv(commenttest.Getenv(env), Options{UserAgent: "ua"})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, err.Error())
				assert.Equal(t, tt.notPR, errors.Is(err, ErrNotPullRequest))
				assert.NotContains(t, err.Error(), "glpat-x")
				return
			}
			require.NoError(t, err)
			tt.want.Opts = Options{UserAgent: "ua"}
			assert.Equal(t, tt.want, g)
			assert.Equal(t, tt.wantWhere, g.Where())
		})
	}
}

// The fake's Env gives a working poster.
func TestGitLabFromFakeEnv(t *testing.T) {
	f := commenttest.NewGitLab(t)
	g, err := GitLabFromEnv(commenttest.Getenv(f.Env("team/models", 3)), Options{})
	require.NoError(t, err)
	assert.Equal(t, "team/models!3", g.Where())
	for _, want := range []string{"created", "updated"} {
		res, err := g.Upsert(context.Background(), "report", "hello")
		require.NoError(t, err)
		assert.Equal(t, want, res.Action)
	}
	assert.Len(t, f.Notes("team/models", 3), 1)
}

func TestGitLabPaginationWithProjectPath(t *testing.T) {
	f, g, _ := newGitLab(t)
	f.MaxPerPage = 1
	g.ProjectID = "group/proj"
	f.AddNote(glProject, glIID, "alice", "one", false)
	f.AddNote(glProject, glIID, "alice", "two", false)
	res, err := g.Upsert(context.Background(), "report", "body")
	require.NoError(t, err)
	assert.Equal(t, "created", res.Action)
	methods := f.Methods()
	require.Len(t, methods, 4)
	assert.Equal(t, "GET /projects/group%2Fproj/merge_requests/7/notes", methods[2])
	assert.Equal(t, "2", f.Requests()[2].Query.Get("page"))
}

// A redirect to another host does not get the token.
func TestGitLabRedirectToOtherHost(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request to another host with PRIVATE-TOKEN %q", r.Header.Get("PRIVATE-TOKEN"))
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	g := &GitLab{APIURL: srv.URL + "/api/v4", Token: "glpat-secret", ProjectID: "1", MRIID: 1}
	_, err := g.Upsert(context.Background(), "report", "body")
	require.Error(t, err)
	assert.Equal(t, "gitlab: GET /projects/1/merge_requests/1: 302 Found: redirect to "+other.URL+"/api/v4/projects/1/merge_requests/1 not followed (another host or method)", err.Error())
}
