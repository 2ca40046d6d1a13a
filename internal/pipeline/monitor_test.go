package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/monitor"
	"github.com/mlship/mlship/internal/spec"
)

func resolveMonitor(t *testing.T, flags map[string][]string, env map[string]string) (*spec.Resolved, error) {
	t.Helper()
	return spec.Resolve(spec.Lookup("monitor"), spec.Sources{Flags: flags, Getenv: func(k string) string { return env[k] }})
}

func breach() *monitor.Result {
	rate := 0.05
	return &monitor.Result{Model: "heart", Window: "1h", Time: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		Drifted: []string{"age", "chol"}, ErrorRate: &rate, Reason: "live traffic breached psi age 0.9 > 0.2"}
}

// The trigger input and the CI's variables make the retraining call the
// documented APIs expect.
func TestMonitorTrigger(t *testing.T) {
	base := map[string][]string{"prometheus": {"http://prom:9090"}, "model": {"heart"}}
	with := func(k, v string) map[string][]string {
		m := map[string][]string{k: {v}}
		for kk, vv := range base {
			m[kk] = vv
		}
		return m
	}

	t.Run("github", func(t *testing.T) {
		gh := commenttest.NewGitHub(t)
		env := map[string]string{"GITHUB_REPOSITORY": "acme/models", "GITHUB_TOKEN": gh.Token, "GITHUB_API_URL": gh.APIURL,
			"GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "7", "GITHUB_ACTIONS": "true"}
		r, err := resolveMonitor(t, with("trigger", "github"), env)
		require.NoError(t, err)
		cfg, _, err := MonitorConfig(r, nil, func(k string) string { return env[k] })
		require.NoError(t, err)
		require.NotNil(t, cfg.Trigger)
		where, err := cfg.Trigger(context.Background(), breach())
		require.NoError(t, err)
		assert.Equal(t, "github acme/models repository_dispatch mlship-retrain", where)
		d := gh.Dispatches()
		require.Len(t, d, 1)
		p := d[0].ClientPayload
		assert.Equal(t, "heart", p["model"])
		assert.Equal(t, "age,chol", p["drifted"])
		assert.Equal(t, "live traffic breached psi age 0.9 > 0.2", p["reason"])
		assert.Equal(t, 0.05, p["error_rate"])
		assert.LessOrEqual(t, len(p), 10)
	})

	t.Run("gitlab", func(t *testing.T) {
		gl := commenttest.NewGitLab(t)
		gl.AddProject("group/models")
		env := map[string]string{"CI_PROJECT_ID": "1001", "CI_DEFAULT_BRANCH": "main", "CI_API_V4_URL": gl.APIURL,
			"MLSHIP_GITLAB_TRIGGER_TOKEN": gl.TriggerToken}
		r, err := resolveMonitor(t, with("trigger", "gitlab"), env)
		require.NoError(t, err)
		cfg, _, err := MonitorConfig(r, nil, func(k string) string { return env[k] })
		require.NoError(t, err)
		where, err := cfg.Trigger(context.Background(), breach())
		require.NoError(t, err)
		assert.Contains(t, where, "gitlab 1001 pipeline 5000001 http")
		p := gl.Triggered()
		require.Len(t, p, 1)
		assert.Equal(t, "main", p[0].Ref)
		assert.Equal(t, map[string]string{"MLSHIP_RETRAIN": "true", "MLSHIP_RETRAIN_MODEL": "heart",
			"MLSHIP_RETRAIN_REASON": "live traffic breached psi age 0.9 > 0.2", "MLSHIP_RETRAIN_DRIFTED": "age,chol"}, p[0].Variables)
	})

	t.Run("gitlab job token", func(t *testing.T) {
		gl := commenttest.NewGitLab(t)
		gl.AddProject("group/models")
		gl.JobToken = "job-tok"
		env := map[string]string{"CI_PROJECT_ID": "group/models", "CI_API_V4_URL": gl.APIURL, "CI_JOB_TOKEN": "job-tok"}
		r, err := resolveMonitor(t, with("trigger", "gitlab"), env)
		require.NoError(t, err)
		_, _, err = MonitorConfig(r, nil, func(k string) string { return env[k] })
		require.Error(t, err, "no ref and no CI_DEFAULT_BRANCH")
		assert.Contains(t, err.Error(), "CI_DEFAULT_BRANCH is not set")
		r, err = resolveMonitor(t, with("trigger", "gitlab"), map[string]string{"CI_PROJECT_ID": "group/models", "CI_API_V4_URL": gl.APIURL, "CI_JOB_TOKEN": "job-tok", "CI_DEFAULT_BRANCH": "main"})
		require.NoError(t, err)
		env["CI_DEFAULT_BRANCH"] = "main"
		cfg, _, err := MonitorConfig(r, nil, func(k string) string { return env[k] })
		require.NoError(t, err)
		_, err = cfg.Trigger(context.Background(), breach())
		require.NoError(t, err)
		assert.Equal(t, "job-tok", gl.Triggered()[0].Token)
	})

	t.Run("github without a token", func(t *testing.T) {
		env := map[string]string{"GITHUB_REPOSITORY": "acme/models"}
		r, err := resolveMonitor(t, with("trigger", "github"), env)
		require.NoError(t, err)
		_, _, err = MonitorConfig(r, nil, func(k string) string { return env[k] })
		require.Error(t, err)
		assert.Equal(t, fault.Usage, fault.CodeOf(err))
		assert.Contains(t, err.Error(), "github-token is required with --trigger github")
	})
}
