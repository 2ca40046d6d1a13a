package templates_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/testutil/drifted"
)

// TestMonitorSchedule: a scheduled pipeline of a project that includes the
// pipeline and the monitor templates, run by gitlab-ci-local against a real
// Prometheus that scraped a drifted mlship-serve, runs the monitor job alone
// (the model's jobs stay out of schedules), which fails with exit 1 and
// triggers the retraining pipeline through the GitLab fake's pipeline
// triggers API with MLSHIP_RETRAIN=true and the drifted feature.
func TestMonitorSchedule(t *testing.T) {
	p := drifted.Start(t, filepath.Join(root, "examples", "heart-disease", "heart.csv"))
	gl := commenttest.NewGitLab(t)
	pid := gl.AddProject("acme/models")
	ws := workspace(t, `stages: [build, test, deploy]
include:
  - local: ci-templates/pipeline.yml
    inputs:
      config: examples/heart-disease
  - local: ci-templates/monitor.yml
    inputs:
      prometheus: `+p.URL+`
      model: heart-disease
      selector: namespace="models"
      window: 1h
      trigger: gitlab
`, "")
	r := runPipeline(t, ws, map[string]string{
		"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main",
		"CI_API_V4_URL": gl.APIURL, "CI_PROJECT_ID": strconv.FormatInt(pid, 10), "CI_PROJECT_PATH": "acme/models",
		"MLSHIP_GITLAB_TRIGGER_TOKEN": gl.TriggerToken,
	})
	assert.NotEqual(t, 0, r.code, "a drifted model fails the pipeline")
	assert.Equal(t, map[string]string{"mlship-monitor": "exit 1"}, r.results, "only the monitor job runs in a schedule, and it fails with exit 1")
	tp := gl.Triggered()
	require.Len(t, tp, 1, "one retraining pipeline")
	assert.Equal(t, "main", tp[0].Ref)
	assert.Equal(t, "true", tp[0].Variables["MLSHIP_RETRAIN"])
	assert.Equal(t, "age", tp[0].Variables["MLSHIP_RETRAIN_DRIFTED"])
	assert.Equal(t, "heart-disease", tp[0].Variables["MLSHIP_RETRAIN_MODEL"])
	assert.Contains(t, r.log, "BREACHED: live traffic breached psi age")
	assert.Equal(t, []string(nil), gl.Violations())
	t.Logf("scheduled monitor pipeline under gitlab-ci-local: %.1f s", r.seconds)
}
