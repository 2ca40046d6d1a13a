package monitoring

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/testutil/prom"
)

// fastSettings are DefaultSettings with windows and `for:` durations short
// enough for a test that scrapes every second.
func fastSettings() Settings {
	s := DefaultSettings()
	s.ModelDownFor = 2 * time.Second
	s.InfoLookback = time.Minute
	s.NoTrafficWindow, s.NoTrafficFor = 10*time.Second, time.Minute
	s.Window, s.ErrorFor, s.LatencyFor = 5*time.Second, 2*time.Second, 2*time.Second
	s.MinRequests = 20
	s.DriftWindow, s.DriftFor, s.ShiftFor = 10*time.Second, 2*time.Second, 2*time.Second
	s.MinRows = 100
	return s
}

// traffic posts batches of toy rows to url until stopped; shift is added to
// each row (in the features' raw units).
type traffic struct {
	mu    sync.Mutex
	shift []float64
	stop  chan struct{}
	done  sync.WaitGroup
	rows  int
	err   error
}

func startTraffic(t *testing.T, url string) *traffic {
	tr := &traffic{shift: make([]float64, len(toyFeatures)), stop: make(chan struct{})}
	tr.done.Add(1)
	go func() {
		defer tr.done.Done()
		r := rand.New(rand.NewPCG(3, 4))
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			tr.mu.Lock()
			shift := append([]float64(nil), tr.shift...)
			tr.mu.Unlock()
			rows := make([][]float64, 10)
			for i := range rows {
				rows[i] = toyRow(r)
				for j := range rows[i] {
					rows[i][j] += shift[j]
				}
			}
			if err := postRows(url, rows); err != nil {
				tr.mu.Lock()
				tr.err = err
				tr.mu.Unlock()
				return
			}
			tr.mu.Lock()
			tr.rows += len(rows)
			tr.mu.Unlock()
		}
	}()
	t.Cleanup(tr.Stop)
	return tr
}

func (tr *traffic) setShift(shift []float64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.shift = shift
}

// Stop ends the traffic (idempotent).
func (tr *traffic) Stop() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.done.Wait()
}

func (tr *traffic) check(t *testing.T) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	require.NoError(t, tr.err)
}

// TestDriftAlertInPrometheus runs the alert rules (fastSettings, generated from
// the same Go definition as alerts.yml) in a real Prometheus that scrapes a
// real mlship-serve every second: traffic drawn from the training distribution
// raises no drift alert, then the same traffic with one feature shifted by two
// training standard deviations makes MlshipInputDrift fire for that feature
// alone. Every rule evaluates without error on the real series.
func TestDriftAlertInPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and runs for about 30s")
	}
	start := time.Now()
	dir, card := trainToy(t, "binary")
	url := startServe(t, dir)

	rulesDir := t.TempDir()
	rules, err := RulesYAML(fastSettings())
	require.NoError(t, err)
	rulesPath := filepath.Join(rulesDir, "alerts.yml")
	require.NoError(t, os.WriteFile(rulesPath, rules, 0o600))
	p := prom.Start(t, fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: model
    static_configs: [{targets: [%q]}]
`, rulesPath, strings.TrimPrefix(url, "http://")))
	ctx := context.Background()
	query := func(q string) []prom.Sample {
		s, err := p.Query(ctx, q)
		require.NoError(t, err)
		return s
	}
	require.Eventually(t, func() bool { return len(query(`up{job="model"} == 1`)) == 1 },
		15*time.Second, 100*time.Millisecond, "Prometheus scraping mlship-serve; its log:\n%s", p.Log())

	// Traffic from the training distribution: enough rows for the rule to
	// judge, and no drift alert, not even pending, for longer than a full
	// window and the rule's for: duration.
	tr := startTraffic(t, url)
	s := fastSettings()
	quiet := time.Now().Add(s.DriftWindow + s.DriftFor + 3*time.Second)
	for time.Now().Before(quiet) {
		tr.check(t)
		require.Empty(t, query(`ALERTS{alertname="MlshipInputDrift"}`), "drift alert on in-distribution traffic")
		time.Sleep(250 * time.Millisecond)
	}
	rows := query(fmt.Sprintf(`min(increase(mlship_input_feature_zscore_count[%s]))`, dur(s.DriftWindow)))
	require.Len(t, rows, 1)
	require.GreaterOrEqual(t, rows[0].Value, float64(s.MinRows), "too little traffic for the drift rule to judge")
	means := query(fmt.Sprintf(`delta(mlship_input_feature_zscore_sum[%[1]s]) / increase(mlship_input_feature_zscore_count[%[1]s])`, dur(s.DriftWindow)))
	require.Len(t, means, len(toyFeatures))
	for _, m := range means {
		t.Logf("in distribution: mean z of %s = %.3f", m.Labels["feature"], m.Value)
		assert.Less(t, math.Abs(m.Value), s.MaxMeanZ/2, m.Labels["feature"])
	}

	// Feature x2 shifted by two training standard deviations.
	std := card.Preprocess.Std[1]
	tr.setShift([]float64{0, 2 * std, 0})
	shifted := time.Now()
	require.Eventually(t, func() bool {
		tr.check(t)
		return len(query(`ALERTS{alertname="MlshipInputDrift", alertstate="firing", feature="x2"}`)) == 1
	}, 30*time.Second, 250*time.Millisecond, "MlshipInputDrift firing for x2; rules:\n%s", p.Log())
	t.Logf("MlshipInputDrift fired %s after the shift", time.Since(shifted).Round(100*time.Millisecond))
	firing := query(`ALERTS{alertname="MlshipInputDrift"}`)
	require.Len(t, firing, 1, "only x2 drifts")
	assert.Equal(t, "toy-binary", firing[0].Labels["name"])
	assert.Equal(t, "model", firing[0].Labels["job"])
	assert.Equal(t, "warning", firing[0].Labels["severity"])

	// Every rule evaluated cleanly on the real series.
	var groups struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, p.API(ctx, "/api/v1/rules", &groups))
	require.Len(t, groups.Groups, 1)
	require.Len(t, groups.Groups[0].Rules, 7)
	for _, r := range groups.Groups[0].Rules {
		assert.Equal(t, "ok", r.Health, "%s: %s", r.Name, r.LastError)
	}
	tr.Stop()
	tr.check(t)
	t.Logf("%d rows sent; test took %s", tr.rows, time.Since(start).Round(100*time.Millisecond))
}
