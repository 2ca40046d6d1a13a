package actions_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/testutil/drifted"
)

// TestMonitorWorkflow runs examples/github/monitor.yml on its schedule event:
// the monitor action reads a real Prometheus that scraped a real mlship-serve
// (namespace "models", as the example selects) whose traffic has `age` moved
// by two training standard deviations. The job fails with the report in its
// summary and an error annotation, and sends one repository_dispatch
// mlship-retrain (to the GitHub API fake) naming the drifted feature.
func TestMonitorWorkflow(t *testing.T) {
	p := drifted.Start(t, filepath.Join(root, "examples", "heart-disease", "heart.csv"))
	gh := commenttest.NewGitHub(t)
	ws := workspace(t, map[string]string{".github/workflows/monitor.yml": "examples/github/monitor.yml"}, "")
	r := runAct(t, ws, actOpts{
		event: "schedule", eventJSON: map[string]any{"schedule": "17 * * * *"}, workflow: ".github/workflows/monitor.yml", mlship: true,
		env:     map[string]string{"GITHUB_API_URL": gh.APIURL},
		vars:    map[string]string{"PROMETHEUS_URL": p.URL},
		secrets: map[string]string{"GITHUB_TOKEN": gh.Token},
	})
	require.NotEqual(t, 0, r.code, "a drifted model fails the job")
	d := gh.Dispatches()
	require.Len(t, d, 1, "one repository_dispatch")
	assert.Equal(t, "acme/models", d[0].Repo)
	assert.Equal(t, "mlship-retrain", d[0].EventType)
	assert.Equal(t, "age", d[0].ClientPayload["drifted"])
	assert.Equal(t, "heart-disease", d[0].ClientPayload["model"])
	assert.Equal(t, "age", output(r, "drifted"))
	assert.Equal(t, "false", output(r, "passed"))
	assert.Contains(t, r.summary, "heart-disease breached its bounds")
	assert.Contains(t, r.summary, "Retraining started")
	assert.Contains(t, strings.Join(r.commands, "\n"), `title="Monitor check failed: psi age"`)
	assert.Contains(t, r.log, "drifted features: age", "the example's follow-up step ran")
	assert.Equal(t, []string(nil), gh.Violations())
	t.Logf("monitor workflow under act: %.1f s", r.seconds)
}
