package platform

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestGitHub(t *testing.T) {
	dir := t.TempDir()
	summary, output := filepath.Join(dir, "summary.md"), filepath.Join(dir, "output")
	var out bytes.Buffer
	p := Detect(env(map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": summary, "GITHUB_OUTPUT": output,
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/models", "GITHUB_RUN_ID": "42",
	}), &out)
	assert.Equal(t, GitHub, p.Kind)
	ok, err := p.StepSummary("### report\n")
	require.NoError(t, err)
	assert.True(t, ok)
	require.NoError(t, p.SetOutputs(map[string]string{"digest": "sha256:abc", "notes": "two\nlines"}, ""))
	b, _ := os.ReadFile(summary)
	assert.Equal(t, "### report\n\n", string(b))
	b, _ = os.ReadFile(output)
	assert.NotContains(t, string(b), "_GitHubActionsFileCommandDelimeter_")
	assert.Equal(t, map[string]string{"digest": "sha256:abc", "notes": "two\nlines"}, parseGitHubOutput(t, string(b)))
	p.Warning("fork PR: no write access")
	assert.Equal(t, "::warning::fork PR: no write access\n", out.String())
	assert.Equal(t, "https://github.com/acme/models/actions/runs/42", p.RunURL())

	// An unwritable summary file is an error, not a panic.
	p = Detect(env(map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": filepath.Join(dir, "no", "such", "dir", "x")}), &out)
	_, err = p.StepSummary("x")
	require.ErrorContains(t, err, "writing $GITHUB_STEP_SUMMARY")
}

func TestGitLabAndTerminal(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	p := Detect(env(map[string]string{"GITLAB_CI": "true", "CI_PIPELINE_URL": "https://gitlab.example.com/p/-/pipelines/7"}), &out)
	assert.Equal(t, GitLab, p.Kind)
	dotenv := filepath.Join(dir, "build.env")
	require.NoError(t, p.SetOutputs(map[string]string{"image-ref": "r@sha256:1", "revision": "3"}, dotenv))
	b, _ := os.ReadFile(dotenv)
	assert.Equal(t, "IMAGE_REF=r@sha256:1\nREVISION=3\n", string(b))
	ok, err := p.StepSummary("x")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, "https://gitlab.example.com/p/-/pipelines/7", p.RunURL())

	p = Detect(env(nil), &out)
	assert.Equal(t, Terminal, p.Kind)
	require.NoError(t, p.SetOutputs(map[string]string{"a": "b"}, ""))
	// --dotenv FILE writes the file wherever the job runs, multi-line values on one line.
	term := filepath.Join(dir, "term.env")
	require.NoError(t, p.SetOutputs(map[string]string{"a": "b", "reason": "x\ny"}, term))
	b, _ = os.ReadFile(term)
	assert.Equal(t, "A=b\nREASON=x y\n", string(b))
	out.Reset()
	p.Warning("w")
	assert.Equal(t, "warning: w\n", out.String())
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

// TestGitHubOutputDelimiter: a value holding the delimiter drawn first gets
// another one, so no value can end its block early and inject an output.
func TestGitHubOutputDelimiter(t *testing.T) {
	draws := []string{"D1", "D1", "D2"}
	next := func() string { d := draws[0]; draws = draws[1:]; return d }
	got := githubOutputs([]string{"evil"}, map[string]string{"evil": "x\nD1\npassed<<EOF\ntrue\nEOF"}, next)
	assert.Equal(t, "evil<<D2\nx\nD1\npassed<<EOF\ntrue\nEOF\nD2\n", got)
	a, b := randomDelimiter(), randomDelimiter()
	assert.NotEqual(t, a, b)
	assert.Regexp(t, "^ghadelimiter_[0-9a-f]{32}$", a)
}
