package monitoring

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/mlship/mlship/internal/fault"
)

func TestPrometheusRule(t *testing.T) {
	b, err := PrometheusRule("heart", "prod")
	require.NoError(t, err)
	var obj struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name, Namespace string
			Labels          map[string]string
		}
		Spec RuleFile
	}
	require.NoError(t, yaml.Unmarshal(b, &obj))
	assert.Equal(t, "monitoring.coreos.com/v1", obj.APIVersion)
	assert.Equal(t, "PrometheusRule", obj.Kind)
	assert.Equal(t, "heart", obj.Metadata.Name)
	assert.Equal(t, "prod", obj.Metadata.Namespace)
	assert.Equal(t, "heart", obj.Metadata.Labels["app.kubernetes.io/name"])
	require.Len(t, obj.Spec.Groups, 1)
	names := map[string]bool{}
	for _, r := range obj.Spec.Groups[0].Rules {
		names[r.Alert] = true
		assert.Equal(t, "prod", r.Labels["namespace"], r.Alert)
		assert.Equal(t, "heart", r.Labels["service"], r.Alert)
		assert.Contains(t, r.Expr, `namespace="prod", service="heart"`, r.Alert)
	}
	for _, a := range []string{AlertModelDown, AlertNoTraffic, AlertHighErrorRate, AlertHighLatency, AlertInputDrift, AlertClassShift, AlertValueShift} {
		assert.True(t, names[a], a)
	}

	again, err := PrometheusRule("heart", "prod")
	require.NoError(t, err)
	assert.Equal(t, string(b), string(again), "output is deterministic")
}

func TestPrometheusRuleRefusesBadNames(t *testing.T) {
	for _, tc := range []struct{ name, namespace, field string }{
		{"", "prod", "name"},
		{"Heart", "prod", "name"},
		{`a"b`, "prod", "name"},
		{"heart", "", "namespace"},
		{"heart", "prod_1", "namespace"},
	} {
		t.Run(tc.name+"/"+tc.namespace, func(t *testing.T) {
			_, err := PrometheusRule(tc.name, tc.namespace)
			require.Error(t, err)
			fs := fault.Fields(err)
			require.Len(t, fs, 1)
			assert.Equal(t, tc.field, fs[0].Field)
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
		})
	}
}
