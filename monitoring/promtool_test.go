package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/mlship/mlship/internal/testutil/prom"
)

// runPromtool runs promtool with args in dir and fails the test with its
// output when it exits non-zero.
func runPromtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prom.Promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %v:\n%s", args, out)
	return string(out)
}

// prometheusRuleGroups writes the rule groups of PrometheusRule(name,
// namespace) as a rules file in dir and returns its name.
func prometheusRuleGroups(t *testing.T, dir, name, namespace string) string {
	t.Helper()
	b, err := PrometheusRule(name, namespace)
	require.NoError(t, err)
	var obj struct {
		Spec RuleFile `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(b, &obj))
	out, err := marshal(obj.Spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yml"), out, 0o600))
	return "rules.yml"
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Run("alerts.yml", func(t *testing.T) {
		out := runPromtool(t, ".", "check", "rules", "alerts.yml")
		require.Contains(t, out, "SUCCESS: 7 rules found")
	})
	t.Run("PrometheusRule", func(t *testing.T) {
		dir := t.TempDir()
		out := runPromtool(t, dir, "check", "rules", prometheusRuleGroups(t, dir, "heart-disease", "ml-prod"))
		require.Contains(t, out, "SUCCESS: 7 rules found")
	})
}

// TestPromtoolTestRules fires and clears every alert of alerts.yml
// (alerts_test.yml).
func TestPromtoolTestRules(t *testing.T) {
	out := runPromtool(t, ".", "test", "rules", "alerts_test.yml")
	require.Contains(t, out, "SUCCESS")
}

// TestPromtoolTestPrometheusRule checks that the PrometheusRule's rules see
// only their Service's series: its model-down rule fires when the Service's
// replicas are gone or not ready, not for another Service; the drift of another
// Service in the same namespace does not fire its drift rule.
func TestPromtoolTestPrometheusRule(t *testing.T) {
	dir := t.TempDir()
	rules := prometheusRuleGroups(t, dir, "heart", "prod")
	test := `rule_files: [` + rules + `]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # heart: its only replica stops being scraped at 3m, and is back at 12m.
      - series: 'mlship_model_ready{job="heart", instance="a:8080", namespace="prod", service="heart", pod="heart-a"}'
        values: '1 1 1 stale _x8 1x10'
      - series: 'mlship_model_info{job="heart", instance="a:8080", namespace="prod", service="heart", pod="heart-a", name="heart-disease"}'
        values: '1 1 1 stale _x8 1x10'
      # other: never ready; its inputs drift.
      - series: 'mlship_model_ready{job="other", instance="b:8080", namespace="prod", service="other", pod="other-b"}'
        values: '0x60'
      - series: 'mlship_model_info{job="other", instance="b:8080", namespace="prod", service="other", pod="other-b", name="other"}'
        values: '1x60'
      - series: 'mlship_input_feature_zscore_count{job="other", instance="b:8080", namespace="prod", service="other", pod="other-b", feature="x"}'
        values: '0+100x60'
      - series: 'mlship_input_feature_zscore_sum{job="other", instance="b:8080", namespace="prod", service="other", pod="other-b", feature="x"}'
        values: '0+300x60'
      # heart in another namespace drifts too.
      - series: 'mlship_model_info{job="heart", instance="c:8080", namespace="staging", service="heart", pod="heart-c", name="heart-disease"}'
        values: '1x60'
      - series: 'mlship_input_feature_zscore_count{job="heart", instance="c:8080", namespace="staging", service="heart", pod="heart-c", feature="x"}'
        values: '0+100x60'
      - series: 'mlship_input_feature_zscore_sum{job="heart", instance="c:8080", namespace="staging", service="heart", pod="heart-c", feature="x"}'
        values: '0+300x60'
    alert_rule_test:
      - {eval_time: 2m, alertname: MlshipModelDown, exp_alerts: []}
      - eval_time: 6m
        alertname: MlshipModelDown
        exp_alerts:
          - exp_labels: {severity: critical, namespace: prod, service: heart}
            exp_annotations:
              summary: "Model service prod/heart has no replica up and ready"
              description: "No mlship-serve target of prod/heart has been scraped up with mlship_model_ready 1 for 2m (or none is scraped at all): predictions fail. Check the pods (kubectl get pods, describe, logs), the last rollout and the ServiceMonitor."
      - {eval_time: 20m, alertname: MlshipModelDown, exp_alerts: []}
      - {eval_time: 59m, alertname: MlshipInputDrift, exp_alerts: []}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test.yml"), []byte(test), 0o600))
	runPromtool(t, dir, "test", "rules", "test.yml")
}
