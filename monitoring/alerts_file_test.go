package monitoring

import (
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite alerts.yml from rules.go")

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
