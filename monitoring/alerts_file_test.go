package monitoring

import (
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite alerts.yml and prometheusrule.yaml from rules.go")

// TestAlertsFile keeps alerts.yml equal to the rules generated from rules.go.
func TestAlertsFile(t *testing.T) {
	y, err := RulesYAML(DefaultSettings())
	require.NoError(t, err)
	want := header + string(y)
	if *update {
		require.NoError(t, os.WriteFile("alerts.yml", []byte(want), 0o644))
		return
	}
	require.Equal(t, want, string(AlertsYAML), "alerts.yml is stale: go test ./monitoring -run TestAlertsFile -update")
}

// TestPrometheusRuleExample keeps prometheusrule.yaml equal to
// PrometheusRule("heart-disease", "default").
func TestPrometheusRuleExample(t *testing.T) {
	y, err := PrometheusRule("heart-disease", "default")
	require.NoError(t, err)
	want := exampleHeader + string(y)
	if *update {
		require.NoError(t, os.WriteFile("prometheusrule.yaml", []byte(want), 0o644))
		return
	}
	got, err := os.ReadFile("prometheusrule.yaml")
	require.NoError(t, err)
	require.Equal(t, want, string(got), "prometheusrule.yaml is stale: go test ./monitoring -run TestPrometheusRuleExample -update")
}

const exampleHeader = `# The PrometheusRule that "mlship kubectl-deploy --name heart-disease
# --namespace default" applies with the Deployment when the cluster serves the
# Prometheus Operator's CRDs: alerts.yml's rules filtered to the series of
# Service heart-disease (as its ServiceMonitor scrapes them). Generated from
# monitoring/rules.go by "go test ./monitoring -run TestPrometheusRuleExample
# -update". kube-prometheus-stack selects rules by the label release: <its
# release name> by default: add it (or set ruleSelector) if yours does.
`
