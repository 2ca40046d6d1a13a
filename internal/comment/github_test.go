package comment

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
)

const (
	ghRepo   = "acme/models"
	ghNumber = 12
)

// newGitHub returns a fake GitHub with acme/models#12 and a client for it.
func newGitHub(t *testing.T) (*commenttest.FakeGitHub, *GitHub, *waits) {
	t.Helper()
	f := commenttest.NewGitHub(t)
	f.AddPR(ghRepo, ghNumber)
	w := &waits{}
	return f, &GitHub{APIURL: f.APIURL, Token: f.Token, Repo: ghRepo, Number: ghNumber, Opts: fastOpts(w)}, w
}

func TestGitHubUpsertCreatesThenUpdates(t *testing.T) {
	ctx := context.Background()
	f, g, _ := newGitHub(t)

	res, err := g.Upsert(ctx, "report", "## Model report\n\naccuracy 0.85\n")
	require.NoError(t, err)
	comments := f.Comments(ghRepo, ghNumber)
	require.Len(t, comments, 1)
	c := comments[0]
	assert.Equal(t, "<!-- mlship:report -->\n## Model report\n\naccuracy 0.85\n", c.Body)
	assert.Equal(t, &Result{Action: "created", ID: c.ID, URL: f.Server.URL + "/acme/models/pull/12#issuecomment-" + strconv.FormatInt(c.ID, 10)}, res)
	assert.Equal(t, []string{
		"GET /repos/acme/models/issues/12/comments",
		"POST /repos/acme/models/issues/12/comments",
	}, f.Methods())

	// The requests are what the REST API documents.
	reqs := f.Requests()
	assert.Equal(t, "100", reqs[0].Query.Get("per_page"))
	for _, r := range reqs {
		assert.Equal(t, "Bearer "+f.Token, r.Header.Get("Authorization"))
		assert.Equal(t, "application/vnd.github+json", r.Header.Get("Accept"))
		assert.Equal(t, "2022-11-28", r.Header.Get("X-GitHub-Api-Version"))
		assert.Equal(t, "mlship", r.Header.Get("User-Agent"))
	}
	assert.Empty(t, reqs[0].Header.Get("Content-Type"))
	assert.Equal(t, "application/json", reqs[1].Header.Get("Content-Type"))
	assert.JSONEq(t, `{"body": "<!-- mlship:report -->\n## Model report\n\naccuracy 0.85\n"}`, reqs[1].Body)

	// Second run: the same comment is edited, nothing is posted.
	res, err = g.Upsert(ctx, "report", "## Model report\n\naccuracy 0.90\n")
	require.NoError(t, err)
	assert.Equal(t, "updated", res.Action)
	assert.Equal(t, c.ID, res.ID)
	assert.Equal(t, c.ID, f.Comments(ghRepo, ghNumber)[0].ID)
	assert.Equal(t, []string{
		"GET /repos/acme/models/issues/12/comments",
		"POST /repos/acme/models/issues/12/comments",
		"GET /repos/acme/models/issues/12/comments",
		"PATCH /repos/acme/models/issues/comments/" + strconv.FormatInt(c.ID, 10),
	}, f.Methods())
	comments = f.Comments(ghRepo, ghNumber)
	require.Len(t, comments, 1)
	assert.Equal(t, "<!-- mlship:report -->\n## Model report\n\naccuracy 0.90\n", comments[0].Body)
	assert.Equal(t, 1, comments[0].Edits)
	assert.Empty(t, f.Violations())
}

func TestGitHubUpsertTwoIDs(t *testing.T) {
	ctx := context.Background()
	f, g, _ := newGitHub(t)
	f.AddComment(ghRepo, ghNumber, "alice", "Looks good")

	for _, step := range []struct{ id, body, action string }{
		{"train", "train v1", "created"},
		{"deploy", "deploy v1", "created"},
		{"train", "train v2", "updated"},
		{"deploy", "deploy v2", "updated"},
	} {
		res, err := g.Upsert(ctx, step.id, step.body)
		require.NoError(t, err)
		assert.Equal(t, step.action, res.Action, step.id)
	}
	var bodies []string
	for _, c := range f.Comments(ghRepo, ghNumber) {
		bodies = append(bodies, c.Body)
	}
	assert.Equal(t, []string{"Looks good", "<!-- mlship:train -->\ntrain v2", "<!-- mlship:deploy -->\ndeploy v2"}, bodies)
}

func TestGitHubUpsertFindsMarkerOnLaterPage(t *testing.T) {
	ctx := context.Background()
	f, g, _ := newGitHub(t)
	f.MaxPerPage = 2
	f.AddComment(ghRepo, ghNumber, "alice", "first")
	f.AddComment(ghRepo, ghNumber, "bob", "mentions <!-- mlship:report --> on\nits second line? no: on its first")
	f.AddComment(ghRepo, ghNumber, "carol", "quote:\n<!-- mlship:report -->")
	id := f.AddComment(ghRepo, ghNumber, "github-actions[bot]", "<!-- mlship:report -->\nold")
	f.AddComment(ghRepo, ghNumber, "dave", "last")

	// bob's comment has the marker on its first line: it is the one.
	res, err := g.Upsert(ctx, "report", "new")
	require.NoError(t, err)
	assert.Equal(t, "updated", res.Action)
	assert.Equal(t, id-2, res.ID)

	// Without it, the bot's comment on page 2 is found through the Link header.
	f2, g2, _ := newGitHub(t)
	f2.MaxPerPage = 2
	f2.AddComment(ghRepo, ghNumber, "alice", "first")
	f2.AddComment(ghRepo, ghNumber, "carol", "quote:\n<!-- mlship:report -->")
	f2.AddComment(ghRepo, ghNumber, "dave", "not it")
	id = f2.AddComment(ghRepo, ghNumber, "github-actions[bot]", "<!-- mlship:report -->\nold")
	f2.AddComment(ghRepo, ghNumber, "erin", "last")
	res, err = g2.Upsert(ctx, "report", "new")
	require.NoError(t, err)
	assert.Equal(t, &Result{Action: "updated", ID: id, URL: f2.Server.URL + "/acme/models/pull/12#issuecomment-" + strconv.FormatInt(id, 10)}, res)
	methods := f2.Methods()
	require.Len(t, methods, 3)
	assert.Equal(t, "GET /repos/acme/models/issues/12/comments", methods[0])
	assert.Regexp(t, `^GET /repositories/\d+/issues/12/comments$`, methods[1])
	assert.Equal(t, "PATCH /repos/acme/models/issues/comments/"+strconv.FormatInt(id, 10), methods[2])
	assert.Equal(t, "2", f2.Requests()[1].Query.Get("page"))
	assert.Equal(t, "<!-- mlship:report -->\nnew", f2.Comments(ghRepo, ghNumber)[3].Body)

	// Not there at all: every page is read, then it is created.
	f3, g3, _ := newGitHub(t)
	f3.MaxPerPage = 2
	for i := range 5 {
		f3.AddComment(ghRepo, ghNumber, "alice", "comment "+strconv.Itoa(i))
	}
	res, err = g3.Upsert(ctx, "report", "new")
	require.NoError(t, err)
	assert.Equal(t, "created", res.Action)
	assert.Len(t, f3.Methods(), 4) // 3 pages and a POST
}

func TestGitHubEnterprise(t *testing.T) {
	f := commenttest.NewGitHubEnterprise(t)
	f.AddPR(ghRepo, ghNumber)
	f.MaxPerPage = 1
	f.AddComment(ghRepo, ghNumber, "alice", "hi")
	require.True(t, strings.HasSuffix(f.APIURL, "/api/v3"))
	g := &GitHub{APIURL: f.APIURL + "/", Token: f.Token, Repo: ghRepo, Number: ghNumber}

	res, err := g.Upsert(context.Background(), "report", "body")
	require.NoError(t, err)
	assert.Equal(t, "created", res.Action)
	res, err = g.Upsert(context.Background(), "report", "body 2")
	require.NoError(t, err)
	assert.Equal(t, "updated", res.Action)
	assert.Len(t, f.Comments(ghRepo, ghNumber), 2)
	assert.Empty(t, f.Violations())
}

func TestGitHubForbidden(t *testing.T) {
	tests := []struct {
		name    string
		failure commenttest.Failure
		token   string
		status  int
		message string
	}{
		{
			name:    "403 on POST (fork pull request)",
			failure: commenttest.Failure{Method: "POST", Status: 403, Body: `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/issues/comments#create-an-issue-comment","status":"403"}`},
			status:  403, message: "Resource not accessible by integration",
		},
		{
			name:    "404 on POST",
			failure: commenttest.Failure{Method: "POST", Status: 404, Body: `{"message":"Not Found"}`},
			status:  404, message: "Not Found",
		},
		{name: "bad token", token: "wrong", status: 401, message: "Bad credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, g, w := newGitHub(t)
			if tt.failure.Status != 0 {
				f.Fail(tt.failure)
			}
			if tt.token != "" {
				g.Token = tt.token
			}
			_, err := g.Upsert(context.Background(), "report", "body")
			var fe *ForbiddenError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.status, fe.Status)
			assert.Equal(t, tt.message, fe.Message)
			assert.Equal(t, "acme/models#12", fe.Where)
			if tt.status == 401 {
				assert.Contains(t, err.Error(), "the token was refused")
			} else {
				assert.Contains(t, err.Error(), "workflow_run")
			}
			assert.NotContains(t, err.Error(), f.Token)
			assert.Empty(t, w.all(), "not retried")
			assert.Empty(t, f.Comments(ghRepo, ghNumber))
		})
	}
}

func TestGitHubRetries(t *testing.T) {
	tests := []struct {
		name      string
		failures  []commenttest.Failure
		wantWaits []time.Duration
		methods   []string
	}{
		{
			name:      "502 on GET",
			failures:  []commenttest.Failure{{Method: "GET", Status: 502, Body: "<html>bad gateway</html>"}},
			wantWaits: []time.Duration{time.Millisecond},
			methods:   []string{"GET", "GET", "POST"},
		},
		{
			name:      "500 twice, exponential backoff",
			failures:  []commenttest.Failure{{Method: "GET", Status: 500, Times: 2}},
			wantWaits: []time.Duration{time.Millisecond, 2 * time.Millisecond},
			methods:   []string{"GET", "GET", "GET", "POST"},
		},
		{
			name:      "502 on POST: look again, then post",
			failures:  []commenttest.Failure{{Method: "POST", Status: 502}},
			wantWaits: []time.Duration{time.Millisecond},
			methods:   []string{"GET", "POST", "GET", "POST"},
		},
		{
			name: "secondary rate limit with Retry-After",
			failures: []commenttest.Failure{{Method: "POST", Status: 403, Header: http.Header{"Retry-After": {"1"}},
				Body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`}},
			wantWaits: []time.Duration{50 * time.Millisecond}, // 1s, capped by MaxWait
			methods:   []string{"GET", "POST", "POST"},
		},
		{
			name:      "secondary rate limit without headers",
			failures:  []commenttest.Failure{{Method: "GET", Status: 403, Body: `{"message":"You have exceeded a secondary rate limit"}`}},
			wantWaits: []time.Duration{50 * time.Millisecond},
			methods:   []string{"GET", "GET", "POST"},
		},
		{
			name:      "429 with Retry-After 0",
			failures:  []commenttest.Failure{{Method: "POST", Status: 429, Header: http.Header{"Retry-After": {"0"}}}},
			wantWaits: []time.Duration{0},
			methods:   []string{"GET", "POST", "POST"},
		},
		{
			name: "primary rate limit",
			failures: []commenttest.Failure{{Method: "GET", Status: 403,
				Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1"}},
				Body:   `{"message":"API rate limit exceeded for installation ID 1."}`}},
			wantWaits: []time.Duration{time.Second}, // reset is long past: the extra second
			methods:   []string{"GET", "GET", "POST"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, g, w := newGitHub(t)
			g.Opts.MaxWait = 50 * time.Millisecond
			if tt.name == "primary rate limit" {
				g.Opts.MaxWait = time.Minute
			}
			for _, fl := range tt.failures {
				f.Fail(fl)
			}
			res, err := g.Upsert(context.Background(), "report", "body")
			require.NoError(t, err)
			assert.Equal(t, "created", res.Action)
			assert.Len(t, f.Comments(ghRepo, ghNumber), 1)
			assert.Equal(t, tt.wantWaits, w.all())
			var methods []string
			for _, r := range f.Requests() {
				methods = append(methods, r.Method)
			}
			assert.Equal(t, tt.methods, methods)
		})
	}
}

// A POST that GitHub carried out but answered with a 502 is not posted twice.
func TestGitHubPostDoneDespite502(t *testing.T) {
	f, g, _ := newGitHub(t)
	failed := false
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		f.Server.Config.Handler.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && !failed {
			failed = true
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(proxy.Close)
	g.APIURL = proxy.URL

	res, err := g.Upsert(context.Background(), "report", "body")
	require.NoError(t, err)
	assert.Equal(t, "updated", res.Action)
	assert.Len(t, f.Comments(ghRepo, ghNumber), 1)
	var methods []string
	for _, r := range f.Requests() {
		methods = append(methods, r.Method)
	}
	assert.Equal(t, []string{"GET", "POST", "GET", "PATCH"}, methods)
}

func TestGitHubRealWait(t *testing.T) {
	f, g, _ := newGitHub(t)
	g.Opts = Options{MaxWait: 5 * time.Millisecond, Backoff: time.Millisecond} // the real sleep
	f.Fail(commenttest.Failure{Method: "POST", Status: 403, Header: http.Header{"Retry-After": {"1"}},
		Body: `{"message":"You have exceeded a secondary rate limit."}`})
	start := time.Now()
	res, err := g.Upsert(context.Background(), "report", "body")
	require.NoError(t, err)
	assert.Equal(t, "created", res.Action)
	assert.GreaterOrEqual(t, time.Since(start), 5*time.Millisecond)
	assert.Less(t, time.Since(start), time.Second)
}

func TestGitHubErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *commenttest.FakeGitHub, g *GitHub)
		id, body string
		want     string // the whole message, or a part of it with contains
		contains bool
		requests int
		waits    int
	}{
		{
			name:  "pull request not found",
			setup: func(_ *commenttest.FakeGitHub, g *GitHub) { g.Number = 99 },
			want:  "github: GET /repos/acme/models/issues/99/comments: 404 Not Found: Not Found (no pull request acme/models#99, or the token cannot read acme/models)",
			id:    "report", requests: 1,
		},
		{
			name: "422 on PATCH names the request",
			setup: func(f *commenttest.FakeGitHub, _ *GitHub) {
				f.AddComment(ghRepo, ghNumber, "github-actions[bot]", "<!-- mlship:report -->\nold")
				f.Fail(commenttest.Failure{Method: "PATCH", Status: 422, Body: `{"message":"Validation Failed","documentation_url":"https://docs.github.com/rest"}`})
			},
			id:   "report",
			want: "github: PATCH /repos/acme/models/issues/comments/3000000001: 422 Unprocessable Entity: Validation Failed", requests: 2,
		},
		{
			name: "400 is not retried",
			setup: func(f *commenttest.FakeGitHub, _ *GitHub) {
				f.Fail(commenttest.Failure{Method: "GET", Status: 400, Body: `{"message":"Bad request"}`})
			},
			id: "report", want: "github: GET /repos/acme/models/issues/12/comments: 400 Bad Request: Bad request", requests: 1,
		},
		{
			name: "403 on GET is an error, not a refusal to write",
			setup: func(f *commenttest.FakeGitHub, _ *GitHub) {
				f.Fail(commenttest.Failure{Method: "GET", Status: 403, Body: `{"message":"Must have admin rights"}`})
			},
			id: "report", want: "github: GET /repos/acme/models/issues/12/comments: 403 Forbidden: Must have admin rights", requests: 1,
		},
		{
			name: "retries run out",
			setup: func(f *commenttest.FakeGitHub, _ *GitHub) {
				f.Fail(commenttest.Failure{Method: "GET", Status: 503, Times: -1})
			},
			id: "report", want: "github: GET /repos/acme/models/issues/12/comments: 503 Service Unavailable: Service Unavailable; gave up after 5 tries", requests: 5, waits: 4,
		},
		{
			name: "no retries",
			setup: func(f *commenttest.FakeGitHub, g *GitHub) {
				g.Opts.Retries = -1
				f.Fail(commenttest.Failure{Method: "GET", Status: 503})
			},
			id: "report", want: "github: GET /repos/acme/models/issues/12/comments: 503 Service Unavailable: Service Unavailable", requests: 1,
		},
		{
			name: "POST 502 retries run out",
			setup: func(f *commenttest.FakeGitHub, g *GitHub) {
				g.Opts.Retries = 1
				f.Fail(commenttest.Failure{Method: "POST", Status: 502, Times: -1})
			},
			id: "report", want: "github: POST /repos/acme/models/issues/12/comments: 502 Bad Gateway: Bad Gateway", requests: 4, waits: 1,
		},
		{
			name: "body too long",
			id:   "report", body: strings.Repeat("é", GitHubMaxBody),
			want: `github: comment "report" is 65559 characters, more than GitHub's limit of 65536 (marker line included)`,
		},
		{name: "bad id", id: "a b", want: `github: comment id "a b" has ' '`, contains: true},
		{name: "bad repository", id: "x", setup: func(_ *commenttest.FakeGitHub, g *GitHub) { g.Repo = "acme" }, want: `github: repository "acme" is not owner/name`},
		{name: "no token", id: "x", setup: func(_ *commenttest.FakeGitHub, g *GitHub) { g.Token = "" }, want: "github: no token"},
		{name: "bad API URL", id: "x", setup: func(_ *commenttest.FakeGitHub, g *GitHub) { g.APIURL = "ftp://x" }, want: `github: API URL "ftp://x" is not an http(s) URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, g, w := newGitHub(t)
			if tt.setup != nil {
				tt.setup(f, g)
			}
			_, err := g.Upsert(context.Background(), tt.id, tt.body)
			require.Error(t, err)
			if tt.contains {
				assert.Contains(t, err.Error(), tt.want)
			} else {
				assert.Equal(t, tt.want, err.Error())
			}
			assert.NotContains(t, err.Error(), f.Token)
			var fe *ForbiddenError
			assert.False(t, errors.As(err, &fe))
			assert.Len(t, f.Requests(), tt.requests)
			assert.Len(t, w.all(), tt.waits)
			assert.Empty(t, f.Violations())
		})
	}
}

func TestGitHubNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	w := &waits{}
	g := &GitHub{APIURL: url, Token: "secret-token", Repo: ghRepo, Number: ghNumber, Opts: fastOpts(w)}
	g.Opts.Retries = 2
	_, err := g.Upsert(context.Background(), "report", "body")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "github: GET /repos/acme/models/issues/12/comments: ")
	assert.Contains(t, err.Error(), "gave up after 3 tries")
	assert.NotContains(t, err.Error(), "secret-token")
	assert.Len(t, w.all(), 2)
}

func TestGitHubContextCanceled(t *testing.T) {
	f, g, _ := newGitHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.Fail(commenttest.Failure{Method: "GET", Status: 503, Times: -1})
	g.Opts.sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	_, err := g.Upsert(ctx, "report", "body")
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "github: GET /repos/acme/models/issues/12/comments: 503 Service Unavailable")
	assert.Len(t, f.Requests(), 1)

	_, err = g.Upsert(ctx, "report", "body")
	require.ErrorIs(t, err, context.Canceled)
}

// The token goes only to the API host, even when a Link header points away.
func TestGitHubLinkToOtherHost(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request to another host with Authorization %q", r.Header.Get("Authorization"))
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<`+other.URL+`/repos/acme/models/issues/12/comments?page=2>; rel="next"`)
		_, _ = w.Write([]byte(`[]`))
	}))
	t.Cleanup(srv.Close)
	g := &GitHub{APIURL: srv.URL, Token: "t", Repo: ghRepo, Number: ghNumber}
	_, err := g.Upsert(context.Background(), "report", "body")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to send the token to "+other.URL)
}

func TestGitHubWhere(t *testing.T) {
	assert.Equal(t, "acme/models#12", (&GitHub{Repo: "acme/models", Number: 12}).Where())
}

func TestGitHubFromEnv(t *testing.T) {
	event := func(name string) string { return filepath.Join("testdata", "events", name+".json") }
	base := map[string]string{
		"GITHUB_TOKEN":      "ghs_x",
		"GITHUB_REPOSITORY": "acme/models",
		"GITHUB_API_URL":    "https://api.github.com",
	}
	tests := []struct {
		name       string
		env        map[string]string // over base; "" removes
		want       *GitHub
		wantErr    string
		notPR      bool
		exactError bool
	}{
		{
			name: "pull_request",
			env:  map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": event("pull_request")},
			want: &GitHub{APIURL: "https://api.github.com", Token: "ghs_x", Repo: "acme/models", Number: 12},
		},
		{
			name: "pull_request_target",
			env:  map[string]string{"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_EVENT_PATH": event("pull_request_target")},
			want: &GitHub{APIURL: "https://api.github.com", Token: "ghs_x", Repo: "acme/models", Number: 34},
		},
		{
			name: "issue_comment on a pull request",
			env:  map[string]string{"GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": event("issue_comment_pr")},
			want: &GitHub{APIURL: "https://api.github.com", Token: "ghs_x", Repo: "acme/models", Number: 56},
		},
		{
			name:    "issue_comment on an issue",
			env:     map[string]string{"GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": event("issue_comment_issue")},
			wantErr: `not a pull request event: event "issue_comment" is about issue #78, not a pull request`, notPR: true, exactError: true,
		},
		{
			name: "workflow_run picks the pull request of this repository",
			env:  map[string]string{"GITHUB_EVENT_NAME": "workflow_run", "GITHUB_EVENT_PATH": event("workflow_run")},
			want: &GitHub{APIURL: "https://api.github.com", Token: "ghs_x", Repo: "acme/models", Number: 90},
		},
		{
			name:    "workflow_run from a fork",
			env:     map[string]string{"GITHUB_EVENT_NAME": "workflow_run", "GITHUB_EVENT_PATH": event("workflow_run_fork")},
			wantErr: "not a pull request event: the workflow_run event lists no pull request", notPR: true,
		},
		{
			name: "workflow_run from a fork with MLSHIP_PR_NUMBER",
			env:  map[string]string{"GITHUB_EVENT_NAME": "workflow_run", "GITHUB_EVENT_PATH": event("workflow_run_fork"), "MLSHIP_PR_NUMBER": "77"},
			want: &GitHub{APIURL: "https://api.github.com", Token: "ghs_x", Repo: "acme/models", Number: 77},
		},
		{
			name:    "push",
			env:     map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": event("push")},
			wantErr: `not a pull request event: event "push" has no pull_request, issue.pull_request or workflow_run.pull_requests`, notPR: true, exactError: true,
		},
		{
			name: "GHES API URL and repository from the event",
			env:  map[string]string{"GITHUB_EVENT_PATH": event("pull_request"), "GITHUB_REPOSITORY": "", "GITHUB_API_URL": "https://ghe.example.com/api/v3/"},
			want: &GitHub{APIURL: "https://ghe.example.com/api/v3", Token: "ghs_x", Repo: "acme/models", Number: 12},
		},
		{
			name: "default API URL",
			env:  map[string]string{"GITHUB_EVENT_PATH": event("pull_request"), "GITHUB_API_URL": ""},
			want: &GitHub{APIURL: "https://api.github.com", Token: "ghs_x", Repo: "acme/models", Number: 12},
		},
		{
			name:    "no token",
			env:     map[string]string{"GITHUB_EVENT_PATH": event("pull_request"), "GITHUB_TOKEN": ""},
			wantErr: "GITHUB_TOKEN is not set",
		},
		{
			name:    "no event",
			env:     map[string]string{},
			wantErr: "GITHUB_EVENT_PATH is not set",
		},
		{
			name:    "missing event file",
			env:     map[string]string{"GITHUB_EVENT_PATH": event("nope")},
			wantErr: "reading the event (GITHUB_EVENT_PATH): open testdata/events/nope.json: no such file or directory",
		},
		{
			name:    "bad MLSHIP_PR_NUMBER",
			env:     map[string]string{"MLSHIP_PR_NUMBER": "x"},
			wantErr: `MLSHIP_PR_NUMBER="x" is not a pull request number`,
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
			g, err := GitHubFromEnv(commenttest.Getenv(env), Options{Retries: 2})
			if tt.wantErr != "" {
				require.Error(t, err)
				if tt.exactError {
					assert.Equal(t, tt.wantErr, err.Error())
				} else {
					assert.Contains(t, err.Error(), tt.wantErr)
				}
				assert.Equal(t, tt.notPR, errors.Is(err, ErrNotPullRequest))
				return
			}
			require.NoError(t, err)
			tt.want.Opts = Options{Retries: 2}
			assert.Equal(t, tt.want, g)
		})
	}
}

// The fake's Env gives a working poster.
func TestGitHubFromFakeEnv(t *testing.T) {
	f := commenttest.NewGitHub(t)
	env := f.Env(t, "acme/models", 5)
	g, err := GitHubFromEnv(commenttest.Getenv(env), Options{})
	require.NoError(t, err)
	assert.Equal(t, "acme/models#5", g.Where())
	res, err := g.Upsert(context.Background(), "report", "hello")
	require.NoError(t, err)
	assert.Equal(t, "created", res.Action)
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(f.Requests()[1].Body), &ev))
	assert.Equal(t, "<!-- mlship:report -->\nhello", ev["body"])
}

// GitHub answers for a renamed repository with 301 for GET and 307 for other
// methods; both are followed on the same host. A 301 on a PATCH is not
// followed: net/http would turn it into a GET.
func TestGitHubRedirects(t *testing.T) {
	f, g, _ := newGitHub(t)
	id := f.AddComment(ghRepo, ghNumber, "github-actions[bot]", "<!-- mlship:report -->\nold")
	patchStatus := http.StatusTemporaryRedirect
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/repos/old/") {
			status := http.StatusMovedPermanently
			if r.Method != http.MethodGet {
				status = patchStatus
			}
			http.Redirect(w, r, strings.Replace(r.URL.RequestURI(), "/repos/old/", "/repos/acme/", 1), status)
			return
		}
		f.Server.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.APIURL = srv.URL
	g.Repo = "old/models"
	res, err := g.Upsert(context.Background(), "report", "new")
	require.NoError(t, err)
	assert.Equal(t, "updated", res.Action)
	assert.Equal(t, id, res.ID)
	assert.Equal(t, "<!-- mlship:report -->\nnew", f.Comments(ghRepo, ghNumber)[0].Body)

	patchStatus = http.StatusMovedPermanently
	_, err = g.Upsert(context.Background(), "report", "newer")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "github: PATCH /repos/old/models/issues/comments/"+strconv.FormatInt(id, 10)+": 301 Moved Permanently: redirect to ")
	assert.Equal(t, "<!-- mlship:report -->\nnew", f.Comments(ghRepo, ghNumber)[0].Body)
}
