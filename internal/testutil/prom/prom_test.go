package prom_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/testutil/prom"
)

// TestStart starts Prometheus scraping itself with a rules file, queries a
// scraped series, an alert and a scalar, and reloads a changed rules file.
func TestStart(t *testing.T) {
	p := prom.Start(t, `
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yml]
scrape_configs:
  - job_name: self
    static_configs: [{targets: ["placeholder"]}]
`)
	// The port is known only now: point the scrape at Prometheus itself.
	host := strings.TrimPrefix(p.URL, "http://")
	cfg, err := os.ReadFile(filepath.Join(p.Dir, "prometheus.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "prometheus.yml"), []byte(strings.Replace(string(cfg), "placeholder", host, 1)), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "rules.yml"), []byte(`
groups:
  - name: t
    rules:
      - alert: Always
        expr: vector(1)
        labels: {severity: none}
`), 0o600))
	ctx := context.Background()
	require.NoError(t, p.Reload(ctx))

	require.Eventually(t, func() bool {
		s, err := p.Query(ctx, `up{job="self"} == 1`)
		return err == nil && len(s) == 1 && s[0].Labels["instance"] == host
	}, 20*time.Second, 100*time.Millisecond, "scraping itself; log:\n%s", p.Log())
	require.Eventually(t, func() bool {
		s, err := p.Query(ctx, `ALERTS{alertname="Always", alertstate="firing"}`)
		return err == nil && len(s) == 1 && s[0].Labels["severity"] == "none"
	}, 20*time.Second, 100*time.Millisecond, "alert firing; log:\n%s", p.Log())

	s, err := p.Query(ctx, "1 + 1")
	require.NoError(t, err)
	assert.Equal(t, []prom.Sample{{Value: 2}}, s)

	_, err = p.Query(ctx, "sum(")
	require.ErrorContains(t, err, "bad_data")

	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "rules.yml"), []byte("groups: [{name: t, rules: [{alert: X, expr: 'sum('}]}]\n"), 0o600))
	require.ErrorContains(t, p.Reload(ctx), "500")
}
