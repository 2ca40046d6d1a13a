package report

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/mlship/mlship/internal/monitor"
)

func TestMonitorReport(t *testing.T) {
	since := time.Date(2026, 12, 1, 11, 20, 0, 0, time.UTC)
	rate, p99, mz := 0.002, 0.012, 2.05
	r := &monitor.Result{
		Model: "heart", Prometheus: "http://prom:9090", Window: "1h", Time: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		Reference: "prometheus", Task: "binary", Requests: 1200, Rows: 12000, ErrorRate: &rate, P99: &p99,
		Drifted: []string{"age"}, Passed: false, Reason: "live traffic breached psi age 1.3 > 0.2",
		Triggered: "github acme/models repository_dispatch mlship-retrain",
		Checks: []monitor.Check{
			{Name: "error rate", Value: rate, Bound: 0.01, Passed: true},
			{Name: "latency p99 (s)", Value: p99, Bound: 0.5, Passed: true},
			{Name: "psi age", Value: 1.3, Bound: 0.2},
			{Name: "psi predictions", Value: 0.01, Bound: 0.2, Passed: true},
		},
		Predictions: &monitor.Drift{PSI: 0.01, Rows: 12000, Buckets: []string{"0", "1"}, Live: []float64{0.52, 0.48}, Training: []float64{0.55, 0.45}},
	}
	for i := 0; i < 60; i++ {
		f := monitor.FeatureDrift{Name: fmt.Sprintf("f%02d", i), Drift: monitor.Drift{PSI: float64(i) / 1000}}
		r.Features = append(r.Features, f)
	}
	r.Features = append(r.Features, monitor.FeatureDrift{Name: "age", MeanZ: &mz, Drift: monitor.Drift{PSI: 1.3, Drifted: true, Since: &since}})

	md := Monitor(r, "https://ci/run/1", "1.2.3")
	for _, want := range []string{
		"### ❌ mlship monitor: heart breached its bounds",
		"**Why:** live traffic breached psi age 1.3 &gt; 0.2.",
		"1200 prediction requests, 12000 rows",
		"> 🔁 **Retraining started:** github acme/models repository_dispatch mlship-retrain.",
		"| error rate | 0.20% | ≤ 1.00% | ✅ |",
		"| psi age | 1.3 | ≤ 0.2 | ❌ |",
		"| `age` | 1.3 | +2.0500 | 2026-12-01T11:20:00Z |",
		"#### Predictions (PSI 0.01 over 12000 rows)",
		"| 1 | 48.00% | 45.00% |",
		"<summary>All 61 features by PSI</summary>",
		"11 more features, each with a PSI of at most 0.01.",
		"[CI run](https://ci/run/1) · mlship 1.2.3",
	} {
		assert.Contains(t, md, want)
	}
	// The most drifted first.
	assert.Less(t, strings.Index(md, "| `age` | 1.3 | +2.0500 |\n"), strings.Index(md, "| `f59` |"))

	ok := &monitor.Result{Model: "heart", Window: "1h", Passed: true, LowTraffic: true, Reason: "too little traffic to judge drift: 12 rows in the last 1h (--min-rows 200); error rate and latency within bounds",
		Checks: []monitor.Check{{Name: "psi age", Passed: true, Skipped: "12 rows < 200"}, {Name: "error rate", Bound: 0.01, Passed: true, Skipped: "no requests"}}}
	md = Monitor(ok, "", "1.2.3")
	assert.Contains(t, md, "### ✅ mlship monitor: heart within bounds")
	assert.Contains(t, md, "Too little traffic to judge drift")
	assert.Contains(t, md, "| psi age | 0 | ≤ 0 | ➖ not judged: 12 rows &lt; 200 |")
	assert.Contains(t, md, "| error rate | – | ≤ 1.00% | ➖ not judged: no requests |")
	assert.NotContains(t, md, "Drifted features")
}
