package comment_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment"
	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/fault"
)

var fastOpts = comment.Options{Backoff: time.Millisecond, MaxWait: 10 * time.Millisecond}

func TestGitHubDispatch(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		fail    *commenttest.Failure
		payload map[string]any
		want    string // error substring; "" for success
		code    int
	}{
		{name: "sent", payload: map[string]any{"model": "heart", "reason": "psi age 0.4"}},
		{name: "bad token", token: "nope", want: "github: POST /repos/acme/models/dispatches: 401 Unauthorized: Bad credentials", code: 2},
		{name: "server error is not resent", fail: &commenttest.Failure{Status: 503}, want: "503 Service Unavailable", code: 3},
		{name: "too many properties", payload: map[string]any{"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9, "10": 10, "11": 11},
			want: "client_payload has 11 top-level properties, GitHub allows 10", code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gh := commenttest.NewGitHub(t)
			if tc.fail != nil {
				gh.Fail(*tc.fail)
			}
			tok := gh.Token
			if tc.token != "" {
				tok = tc.token
			}
			d := &comment.GitHubDispatch{APIURL: gh.APIURL, Repo: "acme/models", Token: tok, Opts: fastOpts}
			res, err := d.Send(context.Background(), comment.DispatchEventType, tc.payload)
			if tc.want != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
				assert.Equal(t, tc.code, fault.CodeOf(err))
				assert.Empty(t, gh.Dispatches())
				if tc.fail != nil {
					assert.Len(t, gh.Requests(), 1, "a POST that may have been acted on is not sent again")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "github acme/models repository_dispatch mlship-retrain", res.Where)
			got := gh.Dispatches()
			require.Len(t, got, 1)
			assert.Equal(t, "mlship-retrain", got[0].EventType)
			assert.Equal(t, "acme/models", got[0].Repo)
			assert.Equal(t, "heart", got[0].ClientPayload["model"])
		})
	}
}

func TestGitLabTrigger(t *testing.T) {
	gl := commenttest.NewGitLab(t)
	pid := gl.AddProject("group/models")
	gl.JobToken = "job-token-123"
	vars := map[string]string{"MLSHIP_RETRAIN": "true", "MLSHIP_RETRAIN_REASON": "psi age 0.4"}

	for _, tc := range []struct{ name, project, token string }{
		{"by path with a trigger token", "group/models", gl.TriggerToken},
		{"by id with the job token", strconv.FormatInt(pid, 10), "job-token-123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &comment.GitLabTrigger{APIURL: gl.APIURL, ProjectID: tc.project, Token: tc.token, Ref: "main", Opts: fastOpts}
			res, err := g.Send(context.Background(), vars)
			require.NoError(t, err)
			all := gl.Triggered()
			last := all[len(all)-1]
			assert.Equal(t, last.ID, res.ID)
			assert.Equal(t, "group/models", last.Project)
			assert.Equal(t, "main", last.Ref)
			assert.Equal(t, vars, last.Variables)
			assert.Contains(t, res.URL, "/group/models/-/pipelines/")
		})
	}

	t.Run("wrong token", func(t *testing.T) {
		g := &comment.GitLabTrigger{APIURL: gl.APIURL, ProjectID: "group/models", Token: "glptt-wrong", Ref: "main", Opts: fastOpts}
		_, err := g.Send(context.Background(), vars)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "gitlab: POST /projects/group%2Fmodels/trigger/pipeline: 404 Not Found")
		assert.Equal(t, 2, fault.CodeOf(err))
	})
	t.Run("no ref", func(t *testing.T) {
		g := &comment.GitLabTrigger{APIURL: gl.APIURL, ProjectID: "group/models", Token: gl.TriggerToken, Opts: fastOpts}
		_, err := g.Send(context.Background(), vars)
		require.EqualError(t, err, "gitlab: no ref to run the pipeline on (CI_DEFAULT_BRANCH)")
	})
}
