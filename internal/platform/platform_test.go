package platform

import (
	"bytes"
	"os"
	"path/filepath"
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
	assert.Contains(t, string(b), "digest<<_GitHubActionsFileCommandDelimeter_\nsha256:abc\n_GitHubActionsFileCommandDelimeter_\n")
	assert.Contains(t, string(b), "notes<<")
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
	out.Reset()
	p.Warning("w")
	assert.Equal(t, "warning: w\n", out.String())
}
