package monitor

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fault"
)

func TestPSI(t *testing.T) {
	same := []float64{0.1, 0.2, 0.3, 0.4}
	assert.Zero(t, psi(same, same))
	// The textbook example: 10 equal deciles against a shift.
	assert.InDelta(t, 0.0, psi([]float64{0.25, 0.25, 0.25, 0.25}, []float64{0.25, 0.25, 0.25, 0.25}), 1e-12)
	got := psi([]float64{0.5, 0.5}, []float64{0.9, 0.1})
	want := (0.5-0.9)*math.Log(0.5/0.9) + (0.5-0.1)*math.Log(0.5/0.1)
	assert.InDelta(t, want, got, 1e-12)
	// An empty training bucket that live traffic fills counts (floored, not infinite).
	p := psi([]float64{0.5, 0.5}, []float64{1, 0})
	assert.False(t, math.IsInf(p, 0) || math.IsNaN(p))
	assert.Greater(t, p, 2.0)
}

func TestCompare(t *testing.T) {
	// Cumulative counts 10, 30, 30, 40 are buckets 10, 20, 0, 10.
	d := compare([]string{"0", "1", "2", "+Inf"}, []float64{10, 30, 30, 40}, []float64{0.25, 0.5, 0, 0.25})
	assert.Equal(t, 40.0, d.Rows)
	assert.Equal(t, []float64{0.25, 0.5, 0, 0.25}, d.Live)
	assert.Zero(t, d.PSI)
	// increase() extrapolation may break monotony a little: never a negative count.
	d = compare([]string{"0", "+Inf"}, []float64{10.2, 10.1}, []float64{1, 0})
	assert.Equal(t, []float64{1, 0}, d.Live)
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 24 * time.Hour: "1d", 10 * time.Second: "10s", 1500 * time.Millisecond: "2s",
	} {
		assert.Equal(t, want, promDuration(d))
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Prometheus, ok.Model = "http://p:9090", "heart"
	require.NoError(t, ok.Validate())
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
		msg   string
	}{
		{"no prometheus", func(c *Config) { c.Prometheus = "" }, "prometheus", "is required"},
		{"no model", func(c *Config) { c.Model = " " }, "model", "is required"},
		{"bad selector", func(c *Config) { c.Selector = "namespace=prod" }, "selector", "must be PromQL label matchers"},
		{"selector injection", func(c *Config) { c.Selector = `job="a"} or vector(1) or up{x="y"` }, "selector", "must be PromQL label matchers"},
		{"short window", func(c *Config) { c.Window = time.Second }, "window", "at least 10s"},
		{"psi", func(c *Config) { c.MaxPSI = 0 }, "max-psi", "positive"},
		{"error rate", func(c *Config) { c.MaxErrorRate = 1.5 }, "max-error-rate", "between 0 and 1"},
		{"p99", func(c *Config) { c.MaxP99 = 0 }, "max-p99", "positive"},
		{"rows", func(c *Config) { c.MinRows = 0 }, "min-rows", "at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			require.Error(t, err)
			fs := fault.Fields(err)
			require.Len(t, fs, 1)
			assert.Equal(t, tc.field, fs[0].Field)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	c := ok
	c.Selector = `namespace="prod", service=~"heart.*",`
	assert.NoError(t, c.Validate())
}

// Answers that are not Prometheus's: the exit code says whose fault it is.
func TestPromErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		code   int
		want   string
	}{
		{"not prometheus", 200, "text/html", "<html>grafana</html>", fault.Usage, "not the Prometheus HTTP API"},
		{"unavailable", 503, "application/json", `{"status":"error","errorType":"unavailable","error":"tsdb not ready"}`, fault.Environment, "503: tsdb not ready"},
		{"bad query", 400, "application/json", `{"status":"error","errorType":"bad_data","error":"parse error"}`, fault.Usage, "query refused (bad_data): parse error"},
		{"timeout", 422, "application/json", `{"status":"error","errorType":"timeout","error":"query timed out"}`, fault.Environment, "query timeout"},
		{"unauthorized", 401, "text/plain", "no", fault.Usage, "401 Unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var auth string
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth = r.Header.Get("Authorization")
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			pc, err := newPromClient(ts.URL, "tok", time.Second)
			require.NoError(t, err)
			_, err = pc.instant(context.Background(), "up", time.Now())
			require.Error(t, err)
			assert.Equal(t, tc.code, fault.CodeOf(err), err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "prometheus "+ts.URL), err.Error())
			assert.Equal(t, "Bearer tok", auth)
		})
	}
}

// Categorical features: the reference and live samples by category, as
// mlship-serve exports them (mlship_reference_category_share,
// mlship_input_category_total), sorted into per-feature maps.
func TestCategorySamples(t *testing.T) {
	ref, err := gaugeReference([]sample{
		{Labels: map[string]string{"feature": "age", "le": "0"}, Value: 0.5},
		{Labels: map[string]string{"feature": "city", "category": "paris"}, Value: 0.6},
		{Labels: map[string]string{"feature": "city", "category": "(other)"}, Value: 0.3},
		{Labels: map[string]string{"class": "yes"}, Value: 0.4},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"city"}, ref.catOrder)
	assert.Equal(t, map[string]float64{"paris": 0.6, "(other)": 0.3}, ref.categories["city"])
	assert.Equal(t, 0.5, ref.features["age"][zBucketIndex("0")])
	live := collect([]sample{
		{Labels: map[string]string{"feature": "city", "category": "paris"}, Value: 10},
		{Labels: map[string]string{"feature": "city", "category": "(other)"}, Value: 90},
		{Labels: map[string]string{"feature": "age"}, Value: 3},
	})
	assert.Equal(t, map[string]float64{"paris": 10, "(other)": 90}, live.categories["city"])
	assert.Equal(t, 3.0, live.sums["age"])
	// A category share that moved from 2/3 to 1/10 is a major shift.
	d := compareCounts([]string{"(other)", "paris"}, []float64{90, 10}, []float64{1.0 / 3, 2.0 / 3})
	assert.Greater(t, d.PSI, 0.2)
}

func zBucketIndex(le string) int {
	for i, l := range zLabels() {
		if l == le {
			return i
		}
	}
	return -1
}
