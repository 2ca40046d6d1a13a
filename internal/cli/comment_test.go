package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
)

// setEnv sets the variables for the test and clears the other CI ones.
func setEnv(t *testing.T, env map[string]string) {
	for _, k := range []string{"GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_EVENT_PATH", "GITHUB_TOKEN",
		"GITHUB_API_URL", "GITHUB_REPOSITORY", "GITLAB_CI", "CI_API_V4_URL", "CI_MERGE_REQUEST_IID", "MLSHIP_GITLAB_TOKEN",
		"GITLAB_TOKEN", "CI_PROJECT_ID", "MLSHIP_PR_NUMBER"} {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestCommentGitHub(t *testing.T) {
	dir := t.TempDir()
	model := trainHeart(t, filepath.Join(dir, "m"))
	gh := commenttest.NewGitHubEnterprise(t)
	env := gh.Env(t, "acme/models", 12)
	env["GITHUB_STEP_SUMMARY"] = filepath.Join(dir, "summary.md")
	env["GITHUB_OUTPUT"] = filepath.Join(dir, "output")
	setEnv(t, env)

	args := []string{"comment", "--model", model, "--id", "heart"}
	r := mlship(t, args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "created comment ")
	r = mlship(t, args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "updated comment ")
	cs := gh.Comments("acme/models", 12)
	require.Len(t, cs, 1, "the second run edits the same comment")
	assert.True(t, strings.HasPrefix(cs[0].Body, "<!-- mlship:heart -->\n"))
	assert.Contains(t, cs[0].Body, "#### Metrics (test split, 61 rows)")

	// Another id: another comment.
	r = mlship(t, "comment", "--model", model, "--id", "digits")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, gh.Comments("acme/models", 12), 2)

	summary, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(summary), "### mlship: heart\n"), "every run writes the step summary")
	out, err := os.ReadFile(env["GITHUB_OUTPUT"])
	require.NoError(t, err)
	assert.Contains(t, string(out), "comment-url<<")
	assert.Empty(t, gh.Violations())
}

// TestCommentForkPR: the token may not comment (a fork's pull request). The job
// stays green, the report is saved with the pull request beside it, and a
// workflow_run job with a write token posts it with --from-file.
func TestCommentForkPR(t *testing.T) {
	dir := t.TempDir()
	model := trainHeart(t, filepath.Join(dir, "m"))
	gh := commenttest.NewGitHub(t)
	env := gh.Env(t, "acme/models", 7)
	env["GITHUB_STEP_SUMMARY"] = filepath.Join(dir, "summary.md")
	setEnv(t, env)
	gh.Fail(commenttest.Failure{Method: "POST", Status: 403, Body: `{"message":"Resource not accessible by integration"}`})
	artifact := filepath.Join(dir, "mlship-report.md")
	r := mlship(t, "comment", "--model", model, "--id", "heart", "--artifact", artifact)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "::warning::could not comment on acme/models#7")
	assert.Contains(t, r.stdout, "mlship comment --from-file mlship-report.md")
	assert.Empty(t, gh.Comments("acme/models", 7))
	assert.FileExists(t, env["GITHUB_STEP_SUMMARY"])
	var side struct {
		ID     string `json:"id"`
		Repo   string `json:"repo"`
		Number int    `json:"number"`
	}
	b, err := os.ReadFile(artifact + ".json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &side))
	assert.Equal(t, "heart", side.ID)
	assert.Equal(t, "acme/models", side.Repo)
	assert.Equal(t, 7, side.Number)

	// The workflow_run job: its event names no pull request (GitHub leaves it empty
	// for forks); the sidecar does.
	ev := filepath.Join(dir, "workflow_run.json")
	require.NoError(t, os.WriteFile(ev, []byte(`{"workflow_run":{"pull_requests":[]},"repository":{"full_name":"acme/models"}}`), 0o644))
	t.Setenv("GITHUB_EVENT_PATH", ev)
	r = mlship(t, "comment", "--from-file", artifact)
	require.Equal(t, 0, r.code, r.stderr)
	cs := gh.Comments("acme/models", 7)
	require.Len(t, cs, 1)
	md, _ := os.ReadFile(artifact)
	assert.Equal(t, "<!-- mlship:heart -->\n"+string(md), cs[0].Body)
}

func TestCommentGitLab(t *testing.T) {
	dir := t.TempDir()
	model := trainHeart(t, filepath.Join(dir, "m"))
	gl := commenttest.NewGitLab(t)
	setEnv(t, gl.Env("acme/models", 3))
	metricsFile := filepath.Join(dir, "metrics.txt")
	dotenv := filepath.Join(dir, "comment.env")
	for i := 0; i < 2; i++ {
		r := mlship(t, "--dotenv", dotenv, "comment", "--model", model, "--metrics-file", metricsFile)
		require.Equal(t, 0, r.code, r.stderr)
	}
	notes := gl.Notes("acme/models", 3)
	require.Len(t, notes, 1)
	// The note's URL reaches later jobs through the dotenv report (both runs append).
	envFile, err := os.ReadFile(dotenv)
	require.NoError(t, err)
	assert.Regexp(t, `^COMMENT_URL=http://\S+#note_\d+\nCOMMENT_URL=http://\S+#note_\d+\n$`, string(envFile))
	assert.True(t, strings.HasPrefix(notes[0].Body, "<!-- mlship:heart -->\n"))
	m, err := os.ReadFile(metricsFile)
	require.NoError(t, err)
	assert.Contains(t, string(m), "# TYPE mlship_accuracy gauge\nmlship_accuracy 0.")
	assert.True(t, strings.HasSuffix(string(m), "# EOF\n"))

	// Only the job token: a clear error.
	env := gl.Env("acme/models", 4)
	delete(env, "MLSHIP_GITLAB_TOKEN")
	setEnv(t, env)
	r := mlship(t, "comment", "--model", model)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, errLine(t, r.stderr), "CI_JOB_TOKEN")
}

func TestCommentTerminal(t *testing.T) {
	dir := t.TempDir()
	model := trainHeart(t, filepath.Join(dir, "m"))
	setEnv(t, nil)
	r := mlship(t, "comment", "--model", model)
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "### mlship: heart\n"), r.stdout)

	r = mlship(t, "report", "--model", model, "--no-gate", "-o", filepath.Join(dir, "r.md"))
	require.Equal(t, 0, r.code, r.stderr)
	b, err := os.ReadFile(filepath.Join(dir, "r.md"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "xychart-beta")

	r = mlship(t, "report", "--model", model, "--gate-json", filepath.Join(dir, "nope.json"))
	assert.Equal(t, 2, r.code)
	assert.Contains(t, errLine(t, r.stderr), "reading gate result")
	r = mlship(t, "comment", "--model", model, "--id", "bad id")
	assert.Equal(t, 2, r.code)
}

// TestOutputs: each step publishes its results as GitHub step outputs, or to the
// GitLab dotenv file given with --dotenv.
func TestOutputs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "github_output")
	setEnv(t, map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": out})
	model := trainHeart(t, filepath.Join(dir, "m"))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	outs := parseGitHubOutput(t, string(b))
	assert.Equal(t, model, outs["model-dir"])
	assert.Equal(t, "binary", outs["task"])
	assert.Contains(t, outs["metrics"], `"accuracy":`)

	// --dotenv writes the file wherever the job runs, a terminal too.
	setEnv(t, nil)
	termEnv := filepath.Join(dir, "term.env")
	r := mlship(t, "--dotenv", termEnv, "evaluate-gate", "--model", model, "--min", "accuracy=0.5")
	require.Equal(t, 0, r.code, r.stderr)
	b, err = os.ReadFile(termEnv)
	require.NoError(t, err)
	assert.Equal(t, "PASSED=true\nREASON=1 check passed\n", string(b))

	setEnv(t, map[string]string{"GITLAB_CI": "true"})
	dotenv := filepath.Join(dir, "gate.env")
	r = mlship(t, "evaluate-gate", "--model", model, "--min", "accuracy=0.99", "--dotenv", dotenv)
	assert.Equal(t, 1, r.code)
	b, err = os.ReadFile(dotenv)
	require.NoError(t, err)
	assert.Contains(t, string(b), "PASSED=false\n")
	assert.Contains(t, string(b), "REASON=accuracy ")
}

// parseGitHubOutput reads $GITHUB_OUTPUT the way the runner does
// (name<<DELIMITER, value lines, DELIMITER), failing on a reused delimiter.
func parseGitHubOutput(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	seen := map[string]bool{}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		require.True(t, ok, "line %q is not name<<delimiter", lines[i])
		require.Regexp(t, "^ghadelimiter_[0-9a-f]{32}$", delim)
		require.False(t, seen[delim], "delimiter %q used twice", delim)
		seen[delim] = true
		var val []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			val = append(val, lines[i])
		}
		require.Less(t, i, len(lines), "no closing delimiter for %s", name)
		out[name] = strings.Join(val, "\n")
	}
	return out
}
