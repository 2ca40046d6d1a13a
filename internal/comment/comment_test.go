package comment

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waits records the waits a client asks for, without waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// fastOpts are Options that record waits instead of waiting.
func fastOpts(w *waits) Options {
	return Options{Backoff: time.Millisecond, MaxWait: 50 * time.Millisecond, sleep: w.sleep}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string
	}{
		{id: "report"},
		{id: "heart-disease.v2_main"},
		{id: strings.Repeat("a", 64)},
		{id: "", wantErr: "comment id is empty"},
		{id: strings.Repeat("a", 65), wantErr: "65 characters, more than 64"},
		{id: "a b", wantErr: `has ' '`},
		{id: "x-->", wantErr: `has '>'`},
		{id: "é", wantErr: `has 'é'`},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := ValidID(tt.id)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestMarker(t *testing.T) {
	assert.Equal(t, "<!-- mlship:report -->", Marker("report"))
}

func TestWithMarker(t *testing.T) {
	tests := []struct {
		name, id, body, want string
	}{
		{"adds the marker line", "a", "## Report\n", "<!-- mlship:a -->\n## Report\n"},
		{"empty body", "a", "", "<!-- mlship:a -->\n"},
		{"already marked", "a", "<!-- mlship:a -->\n## Report", "<!-- mlship:a -->\n## Report"},
		{"another id's marker", "a", "<!-- mlship:b -->\nx", "<!-- mlship:a -->\n<!-- mlship:b -->\nx"},
		{"marker below the first line", "a", "x\n<!-- mlship:a -->", "<!-- mlship:a -->\nx\n<!-- mlship:a -->"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, withMarker(tt.id, tt.body))
		})
	}
}

func TestHasMarker(t *testing.T) {
	m := Marker("train")
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"first line", m + "\nbody", true},
		{"only line", m, true},
		{"inside the first line", "  " + m + " ## Report\nbody", true},
		{"CRLF", m + "\r\nbody", true},
		{"second line", "hello\n" + m, false},
		{"other id", Marker("train2") + "\nbody", false},
		{"prefix of another id", Marker("xtrain") + "\nbody", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, hasMarker(tt.body, m))
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	assert.Equal(t, 4, o.Retries)
	assert.Equal(t, time.Second, o.Backoff)
	assert.Equal(t, 60*time.Second, o.MaxWait)
	assert.Equal(t, "mlship", o.UserAgent)
	assert.NotNil(t, o.HTTPClient)

	assert.Equal(t, 0, Options{Retries: -1}.withDefaults().Retries)
	assert.Equal(t, 2, Options{Retries: 2}.withDefaults().Retries)
}

func TestBackoff(t *testing.T) {
	o := Options{Backoff: time.Second, MaxWait: 5 * time.Second}.withDefaults()
	var got []time.Duration
	for n := range 6 {
		got = append(got, o.backoff(n))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}, got)
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"github", `{"message":"Validation Failed","documentation_url":"x"}`, "Validation Failed"},
		{"github details", `{"message":"Validation Failed","errors":[{"resource":"IssueComment","code":"custom","field":"body","message":"body is too long"}]}`, "Validation Failed: body is too long"},
		{"github code only", `{"message":"Validation Failed","errors":[{"resource":"IssueComment","code":"missing_field","field":"body"}]}`, "Validation Failed: body missing_field"},
		{"gitlab string", `{"message":"403 Forbidden"}`, "403 Forbidden"},
		{"gitlab object", `{"message":{"note":["is too long"]}}`, `{"note":["is too long"]}`},
		{"gitlab error", `{"error":"insufficient_scope","error_description":"The request requires higher privileges."}`, "insufficient_scope The request requires higher privileges."},
		{"not json", "<html>\n<body>Bad gateway</body>\n</html>", "<html> <body>Bad gateway</body> </html>"},
		{"empty", "", ""},
		{"long", strings.Repeat("x", 300), strings.Repeat("x", 200) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, errorMessage([]byte(tt.body)))
		})
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"github", []string{`<https://api.github.com/repositories/1/issues/12/comments?page=2>; rel="next", <https://api.github.com/repositories/1/issues/12/comments?page=5>; rel="last"`}, "https://api.github.com/repositories/1/issues/12/comments?page=2"},
		{"next not first", []string{`<https://x/a?page=1>; rel="prev", <https://x/a?page=3>; rel="next"`}, "https://x/a?page=3"},
		{"last page", []string{`<https://x/a?page=1>; rel="first", <https://x/a?page=1>; rel="prev"`}, ""},
		{"unquoted and several rels", []string{`<https://x/a?page=2>; title="t"; rel=next`}, "https://x/a?page=2"},
		{"two header lines", []string{`<https://x/a?page=1>; rel="prev"`, `<https://x/a?page=3>; rel="next"`}, "https://x/a?page=3"},
		{"none", nil, ""},
		{"garbage", []string{`nonsense; rel="next"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Link", v)
			}
			assert.Equal(t, tt.want, nextLink(h))
		})
	}
}

func TestClassify(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name      string
		gitlab    bool
		status    int
		header    map[string]string
		body      string
		retryable bool
		wait      time.Duration // when the server sets it
	}{
		{name: "500", status: 500, retryable: true},
		{name: "502", status: 502, retryable: true},
		{name: "503 with Retry-After", status: 503, header: map[string]string{"Retry-After": "7"}, retryable: true, wait: 7 * time.Second},
		{name: "429", status: 429, retryable: true},
		{name: "429 Retry-After date", status: 429, header: map[string]string{"Retry-After": now.Add(30 * time.Second).UTC().Format(http.TimeFormat)}, retryable: true, wait: 30 * time.Second},
		{name: "403 secondary rate limit text", status: 403, body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`, retryable: true, wait: time.Minute},
		{name: "403 Retry-After", status: 403, header: map[string]string{"Retry-After": "1"}, retryable: true, wait: time.Second},
		{name: "403 rate limit reset", status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000010"}, retryable: true, wait: 11 * time.Second},
		{name: "403 forbidden", status: 403, body: `{"message":"Resource not accessible by integration"}`},
		{name: "403 with requests left", status: 403, header: map[string]string{"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "1700000010"}},
		{name: "404", status: 404},
		{name: "422", status: 422},
		{name: "gitlab 403 is not a rate limit", gitlab: true, status: 403, header: map[string]string{"Retry-After": "1"}},
		{name: "gitlab 429 RateLimit-Reset", gitlab: true, status: 429, header: map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": "1700000004"}, retryable: true, wait: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &api{gitlab: tt.gitlab, opts: Options{now: func() time.Time { return now }}.withDefaults()}
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			e := &apiError{status: tt.status}
			a.classify(e, &response{status: tt.status, header: h, body: []byte(tt.body)})
			assert.Equal(t, tt.retryable, e.retryable)
			assert.Equal(t, tt.wait, e.wait)
			assert.Equal(t, tt.wait != 0, e.waitKnown)
		})
	}
}

func TestForbiddenErrorMessage(t *testing.T) {
	gh := &ForbiddenError{Status: 403, Message: "Resource not accessible by integration", Where: "acme/models#12", request: "POST /repos/acme/models/issues/12/comments"}
	assert.Equal(t, "github: no permission to comment on acme/models#12 (POST /repos/acme/models/issues/12/comments): 403 Forbidden: Resource not accessible by integration; "+
		"the token has no write access to the pull request (pull requests from forks get a read-only GITHUB_TOKEN): "+
		"give the job `permissions: pull-requests: write`, and for forks post the comment from a separate workflow triggered by `workflow_run`", gh.Error())

	gl := &ForbiddenError{Status: 401, Where: "group/proj!7", gitlab: true}
	assert.Contains(t, gl.Error(), "gitlab: no permission to comment on group/proj!7: 401 Unauthorized; ")
	assert.Contains(t, gl.Error(), "MLSHIP_GITLAB_TOKEN")

	var fe *ForbiddenError
	assert.True(t, errors.As(error(gh), &fe))
}
