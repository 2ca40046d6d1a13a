package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/testutil/prom"
)

// BenchmarkMonitor100Features24h: mlship monitor over a model of 100 features
// and a 24 h window of history (a sample every 5 minutes, backfilled into a
// real Prometheus with promtool; one feature drifts in the last 6 hours, so the
// "since when" range query runs too), against Prometheus's own evaluation time
// for the same queries (stats=all). Run it with `make bench-monitor`.
func BenchmarkMonitor100Features24h(b *testing.B) {
	if _, err := exec.LookPath("promtool"); err != nil {
		b.Skip("promtool not on PATH (hack/setup.sh installs Debian's prometheus)")
	}
	dir := b.TempDir()
	end := time.Now().Truncate(time.Minute)
	om := filepath.Join(dir, "history.om")
	series := writeHistory(b, om, end, 100, 24*time.Hour, 5*time.Minute)
	start := time.Now()
	out, err := exec.Command("promtool", "tsdb", "create-blocks-from", "openmetrics", om, filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		b.Fatalf("promtool: %v\n%s", err, out)
	}
	b.Logf("backfilled %d series over 24h in %s", series, time.Since(start).Round(time.Millisecond))
	p := prom.StartDir(b, dir, "global: {scrape_interval: 1m}\n")

	cfg := DefaultConfig()
	cfg.Prometheus, cfg.Model, cfg.Window, cfg.Now = p.URL, "wide", 24*time.Hour, end
	var res *Result
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err = Run(context.Background(), cfg)
	}
	b.StopTimer()
	if res == nil {
		b.Fatal(err)
	}
	if len(res.Features) != 100 || len(res.Drifted) != 1 || res.Drifted[0] != "f007" {
		b.Fatalf("want 100 features and f007 drifted, got %d features, drifted %v (%v)", len(res.Features), res.Drifted, err)
	}
	perRun := b.Elapsed().Seconds() / float64(b.N)

	// Prometheus's own time: the same queries, one after the other, their
	// server-side evaluation time (stats=all), and the slowest.
	q := queries{name: "wide", window: "1d"}
	step := 24 * time.Hour / sinceSteps
	var total, slowest float64
	for _, qq := range []struct {
		expr  string
		rng   bool
		query string
	}{
		{q.reference(), false, ""}, {q.live(), false, ""}, {q.requests(), false, ""}, {q.latency(), false, ""}, {q.info(), false, ""},
		{"sum by (feature, le) " + q.during(fmt.Sprintf("increase(%s[%s])", q.sel("mlship_input_feature_zscore_bucket", `feature=~"f007"`), promDuration(step)), promDuration(step)), true, ""},
	} {
		form := url.Values{"query": {qq.expr}, "time": {formatTime(end)}, "stats": {"all"}}
		path := "/api/v1/query"
		if qq.rng {
			form = url.Values{"query": {qq.expr}, "start": {formatTime(end.Add(-24 * time.Hour).Add(step))}, "end": {formatTime(end)},
				"step": {fmt.Sprint(step.Seconds())}, "stats": {"all"}}
			path = "/api/v1/query_range"
		}
		resp, err := http.PostForm(p.URL+path, form)
		if err != nil {
			b.Fatal(err)
		}
		var a struct {
			Data struct {
				Stats struct {
					Timings struct {
						EvalTotalTime float64 `json:"evalTotalTime"`
					} `json:"timings"`
				} `json:"stats"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		t := a.Data.Stats.Timings.EvalTotalTime
		total += t
		slowest = math.Max(slowest, t)
	}
	b.ReportMetric(res.Rows, "rows")
	b.ReportMetric(float64(res.Queries), "round-trips")
	b.ReportMetric(total*1000, "prom-eval-ms")
	b.ReportMetric(perRun/total, "x-prom-eval")
	b.Logf("monitor %.1f ms per run, %d round trips; Prometheus evaluates the same queries in %.1f ms (sum), %.1f ms (slowest): %.2fx the sum",
		perRun*1000, res.Queries, total*1000, slowest*1000, perRun/total)
}

// writeHistory writes an OpenMetrics file of a model "wide" with n features
// served for span until end, a sample every step: 500 rows per step, feature
// f007 moved by 2 standard deviations in the last quarter. It returns the
// number of series.
func writeHistory(b *testing.B, path string, end time.Time, n int, span, step time.Duration) int {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	lbl := `job="m",instance="10.0.0.1:8080"`
	steps := int(span / step)
	ts := func(i int) string { return fmt.Sprint(end.Add(-time.Duration(steps-i) * step).Unix()) }
	// Shares of N(mu, 1) in the z buckets.
	shares := func(mu float64) []float64 {
		cdf := func(x float64) float64 { return 0.5 * math.Erfc(-(x-mu)/math.Sqrt2) }
		s := make([]float64, len(model.ZBuckets)+1)
		prev := 0.0
		for i, bd := range model.ZBuckets {
			c := cdf(bd)
			s[i], prev = c-prev, c
		}
		s[len(s)-1] = 1 - prev
		return s
	}
	base, moved := shares(0), shares(2)
	les := zLabels()
	nseries := 0
	family := func(name string) { fmt.Fprintf(w, "# TYPE %s gauge\n", name) }

	family("mlship_model_info")
	nseries++
	for i := 0; i <= steps; i++ {
		fmt.Fprintf(w, "mlship_model_info{%s,name=\"wide\",version=\"1\",task=\"binary\"} 1 %s\n", lbl, ts(i))
	}
	family("mlship_input_feature_zscore_bucket")
	for j := 0; j < n; j++ {
		for k := range les {
			nseries++
			cum := 0.0
			for i := 0; i <= steps; i++ {
				s := base
				if j == 7 && i > steps*3/4 {
					s = moved
				}
				if i > 0 {
					cum += 500 * sum(s[:k+1])
				}
				fmt.Fprintf(w, "mlship_input_feature_zscore_bucket{%s,feature=\"f%03d\",le=\"%s\"} %g %s\n", lbl, j, les[k], math.Round(cum), ts(i))
			}
		}
	}
	family("mlship_input_feature_zscore_sum")
	for j := 0; j < n; j++ {
		nseries++
		cum := 0.0
		for i := 0; i <= steps; i++ {
			if j == 7 && i > steps*3/4 {
				cum += 1000
			}
			fmt.Fprintf(w, "mlship_input_feature_zscore_sum{%s,feature=\"f%03d\"} %g %s\n", lbl, j, cum, ts(i))
		}
	}
	family("mlship_reference_feature_share")
	for j := 0; j < n; j++ {
		for k := range les {
			nseries++
			for i := steps - 12; i <= steps; i++ {
				fmt.Fprintf(w, "mlship_reference_feature_share{%s,feature=\"f%03d\",le=\"%s\"} %g %s\n", lbl, j, les[k], base[k], ts(i))
			}
		}
	}
	family("mlship_predicted_class_total")
	for c, share := range []float64{0.55, 0.45} {
		nseries++
		for i := 0; i <= steps; i++ {
			fmt.Fprintf(w, "mlship_predicted_class_total{%s,class=\"%d\"} %g %s\n", lbl, c, math.Round(float64(i)*500*share), ts(i))
		}
	}
	family("mlship_reference_predicted_class_share")
	for c, share := range []float64{0.55, 0.45} {
		nseries++
		for i := steps - 12; i <= steps; i++ {
			fmt.Fprintf(w, "mlship_reference_predicted_class_share{%s,class=\"%d\"} %g %s\n", lbl, c, share, ts(i))
		}
	}
	family("mlship_http_requests_total")
	for _, code := range []string{"200", "500"} {
		nseries++
		per := 50.0
		if code == "500" {
			per = 0
		}
		for i := 0; i <= steps; i++ {
			fmt.Fprintf(w, "mlship_http_requests_total{%s,route=\"predict\",code=\"%s\"} %g %s\n", lbl, code, float64(i)*per, ts(i))
		}
	}
	family("mlship_http_request_duration_seconds_bucket")
	for _, le := range []string{"0.001", "0.01", "0.1", "+Inf"} {
		nseries++
		frac := map[string]float64{"0.001": 0.5, "0.01": 0.99, "0.1": 1, "+Inf": 1}[le]
		for i := 0; i <= steps; i++ {
			fmt.Fprintf(w, "mlship_http_request_duration_seconds_bucket{%s,route=\"predict\",le=\"%s\"} %g %s\n", lbl, le, math.Round(float64(i)*50*frac), ts(i))
		}
	}
	w.WriteString("# EOF\n")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return nseries
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}
