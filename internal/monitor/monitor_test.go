package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/monitor"
	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/serve"
	"github.com/mlship/mlship/internal/spec"
	"github.com/mlship/mlship/internal/testutil/prom"
	"github.com/mlship/mlship/internal/train"
)

const heartCSV = "../../examples/heart-disease/heart.csv"

// fixture is a model trained on the heart data, served by three mlship-serve
// instances scraped by a real Prometheus every second as jobs "same" (traffic
// drawn from the training rows), "shifted" (one feature moved by two training
// standard deviations) and "busy" (overloaded: some requests answered 429).
type fixture struct {
	dir     string
	card    *model.Card
	rows    [][]float64
	servers map[string]*httptest.Server
	prom    *prom.Server
}

func setup(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	cfg := train.DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Binarize = heartCSV, "target", ">0"
	cfg.OutDir = filepath.Join(t.TempDir(), "model")
	_, err := train.Run(context.Background(), cfg)
	require.NoError(t, err)
	m, err := model.Load(cfg.OutDir)
	require.NoError(t, err)
	frame, err := dataset.ReadCSV(heartCSV)
	require.NoError(t, err)
	ds, err := dataset.Build(frame, dataset.Spec{Target: "target", Binarize: ">0"})
	require.NoError(t, err)
	f := &fixture{dir: cfg.OutDir, card: m.Card, rows: ds.X, servers: map[string]*httptest.Server{}}
	var targets []string
	for _, job := range []string{"same", "shifted", "busy"} {
		sc := serve.Config{ModelDir: cfg.OutDir}
		if job == "busy" {
			sc.MaxInFlight = 1
		}
		s, err := serve.New(sc)
		require.NoError(t, err)
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		f.servers[job] = ts
		targets = append(targets, fmt.Sprintf("  - job_name: %s\n    static_configs: [{targets: [%q]}]\n", job, strings.TrimPrefix(ts.URL, "http://")))
	}
	f.prom = prom.Start(t, "global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n"+strings.Join(targets, ""))
	// Scraped at zero before any traffic, so increase() sees it all.
	f.waitScrapes(t, 2)

	age := index(t, m.Card.Features, "age")
	// 700 rows each, in requests of 10 rows.
	send := func(job string, shift bool, parallel int) (sent, refused int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < parallel; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < 70; i += parallel {
					batch := make([][]any, 0, 10)
					for k := 0; k < 10; k++ {
						r := f.rows[(i*10+k)%len(f.rows)]
						row := make([]any, len(r))
						for j, v := range r {
							if v != v { // NaN: missing
								row[j] = nil
								continue
							}
							if shift && j == age {
								v += 2 * m.Card.Preprocess.Std[j]
							}
							row[j] = v
						}
						batch = append(batch, row)
					}
					b, _ := json.Marshal(map[string]any{"inputs": batch})
					res, err := http.Post(f.servers[job].URL+"/predict", "application/json", bytes.NewReader(b))
					if !assert.NoError(t, err) {
						return
					}
					res.Body.Close()
					mu.Lock()
					sent++
					if res.StatusCode == http.StatusTooManyRequests {
						refused++
					} else {
						assert.Equal(t, http.StatusOK, res.StatusCode)
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		return sent, refused
	}
	send("same", false, 2)
	send("shifted", true, 2)
	// Overload: rounds of 32 clients at once against --max-inflight 1, until
	// some were refused with 429.
	refused := 0
	for round := 0; round < 50 && refused < 5; round++ {
		_, r := send("busy", false, 32)
		refused += r
	}
	require.GreaterOrEqual(t, refused, 5, "32 clients at once against --max-inflight 1 get some 429s")
	f.waitScrapes(t, 3)
	return f
}

// waitScrapes waits until every target was scraped n more times.
func (f *fixture) waitScrapes(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	start := map[string]float64{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ss, err := f.prom.Query(ctx, `count_over_time(up[1h])`)
		require.NoError(t, err)
		done := len(ss) == len(f.servers)
		for _, s := range ss {
			job := s.Labels["job"]
			if _, ok := start[job]; !ok {
				start[job] = s.Value
			}
			if s.Value < start[job]+float64(n) {
				done = false
			}
		}
		if done {
			return
		}
		require.True(t, time.Now().Before(deadline), "Prometheus did not scrape every target %d times in 30s:\n%s", n, f.prom.Log())
		time.Sleep(200 * time.Millisecond)
	}
}

func psis(r *monitor.Result) string {
	var b strings.Builder
	for _, f := range r.Features {
		fmt.Fprintf(&b, "%s %.3f (%.0f rows) live %v train %v\n", f.Name, f.PSI, f.Rows, f.Live, f.Training)
	}
	return b.String()
}

func index(t *testing.T, xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	t.Fatalf("no %q in %v", x, xs)
	return -1
}

// TestWithPrometheus runs monitor against a real Prometheus scraping real
// mlship-serve instances (one fixture for all the cases).
func TestWithPrometheus(t *testing.T) {
	f := setup(t)
	t.Run("in distribution passes", func(t *testing.T) { testInDistributionPasses(t, f) })
	t.Run("shifted feature breaches", func(t *testing.T) { testShiftedFeatureBreaches(t, f) })
	t.Run("service levels", func(t *testing.T) { testServiceLevelBreaches(t, f) })
	t.Run("too little traffic", func(t *testing.T) { testTooLittleTraffic(t, f) })
	t.Run("unknown model", func(t *testing.T) { testUnknownModel(t, f) })
	t.Run("trigger", func(t *testing.T) { testTrigger(t, f) })
}

// A breach starts retraining through the front end's inputs (trigger github);
// traffic within bounds does not.
func testTrigger(t *testing.T, f *fixture) {
	gh := commenttest.NewGitHub(t)
	env := map[string]string{"GITHUB_REPOSITORY": "acme/models", "GITHUB_TOKEN": gh.Token, "GITHUB_API_URL": gh.APIURL}
	for _, job := range []string{"same", "shifted"} {
		r, err := spec.Resolve(spec.Lookup("monitor"), spec.Sources{Flags: map[string][]string{
			"prometheus": {f.prom.URL}, "model": {f.card.Name}, "selector": {`job="` + job + `"`}, "window": {"5m"}, "trigger": {"github"},
		}, Getenv: func(k string) string { return env[k] }})
		require.NoError(t, err)
		cfg, _, err := pipeline.MonitorConfig(r, nil, func(k string) string { return env[k] })
		require.NoError(t, err)
		res, err := monitor.Run(context.Background(), cfg)
		if job == "same" {
			require.NoError(t, err)
			assert.Empty(t, res.Triggered)
			assert.Empty(t, gh.Dispatches(), "no retraining when within bounds")
			continue
		}
		require.Error(t, err)
		assert.Equal(t, fault.Failed, fault.CodeOf(err), "a breach is exit 1 also when retraining started")
		assert.Equal(t, "github acme/models repository_dispatch mlship-retrain", res.Triggered)
		d := gh.Dispatches()
		require.Len(t, d, 1)
		assert.Equal(t, "mlship-retrain", d[0].EventType)
		assert.Equal(t, "age", d[0].ClientPayload["drifted"])
		assert.Equal(t, f.card.Name, d[0].ClientPayload["model"])
	}
}

func config(f *fixture, job string) monitor.Config {
	c := monitor.DefaultConfig()
	c.Prometheus, c.Model, c.Selector, c.Window = f.prom.URL, f.card.Name, `job="`+job+`"`, 5*time.Minute
	return c
}

func testInDistributionPasses(t *testing.T, f *fixture) {
	for _, ref := range []string{"prometheus", "card"} {
		t.Run(ref, func(t *testing.T) {
			cfg := config(f, "same")
			if ref == "card" {
				cfg.Model = f.dir
			}
			res, err := monitor.Run(context.Background(), cfg)
			require.NoError(t, err)
			assert.True(t, res.Passed, res.Reason)
			assert.Equal(t, ref, res.Reference)
			assert.Empty(t, res.Drifted)
			assert.False(t, res.LowTraffic)
			assert.InEpsilon(t, 700, res.Rows, 0.2, "increase() extrapolates to the end of the window a little")
			assert.InEpsilon(t, 70, res.Requests, 0.2)
			require.NotNil(t, res.ErrorRate)
			assert.Zero(t, *res.ErrorRate)
			require.Len(t, res.Features, len(f.card.Features))
			for _, fd := range res.Features {
				assert.Less(t, fd.PSI, 0.2, fd.Name)
			}
			require.NotNil(t, res.Predictions)
			assert.Less(t, res.Predictions.PSI, 0.2)
			assert.LessOrEqual(t, res.Queries, 5, "one round trip per kind of query, not per feature")
			assert.Contains(t, res.Reason, "checks passed")
		})
	}
}

func testShiftedFeatureBreaches(t *testing.T, f *fixture) {
	start := time.Now().Add(-time.Minute)
	res, err := monitor.Run(context.Background(), config(f, "shifted"))
	require.Error(t, err)
	require.Equal(t, fault.Failed, fault.CodeOf(err), err.Error())
	require.Equal(t, []string{"age"}, res.Drifted, "only the shifted feature drifts: %s", psis(res))
	assert.Contains(t, res.Reason, "psi age")
	var age monitor.FeatureDrift
	for _, fd := range res.Features {
		if fd.Name == "age" {
			age = fd
		}
	}
	assert.Greater(t, age.PSI, 1.0)
	require.NotNil(t, age.MeanZ)
	assert.InDelta(t, 2, *age.MeanZ, 0.3, "moved by two training std")
	require.NotNil(t, age.Since, "the drift began with the traffic, inside the window")
	assert.True(t, age.Since.After(start.Add(-time.Minute)) && age.Since.Before(time.Now()), "since %s", age.Since)
}

func testServiceLevelBreaches(t *testing.T, f *fixture) {
	t.Run("error rate", func(t *testing.T) {
		res, err := monitor.Run(context.Background(), config(f, "busy"))
		require.Error(t, err)
		assert.Equal(t, fault.Failed, fault.CodeOf(err))
		require.NotNil(t, res.ErrorRate)
		assert.Greater(t, *res.ErrorRate, 0.01)
		assert.Contains(t, res.Reason, "error rate")
		assert.Empty(t, res.Drifted)
	})
	t.Run("latency", func(t *testing.T) {
		cfg := config(f, "same")
		cfg.MaxP99 = time.Microsecond
		res, err := monitor.Run(context.Background(), cfg)
		require.Error(t, err)
		assert.Equal(t, fault.Failed, fault.CodeOf(err))
		require.NotNil(t, res.P99)
		assert.Greater(t, *res.P99, 1e-6)
		assert.Contains(t, res.Reason, "latency p99")
	})
}

func testTooLittleTraffic(t *testing.T, f *fixture) {
	cfg := config(f, "same")
	cfg.MinRows = 100000
	res, err := monitor.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.True(t, res.Passed)
	assert.True(t, res.LowTraffic)
	assert.Contains(t, res.Reason, "too little traffic to judge drift")
	// Even the shifted one is not called drift on too little traffic.
	cfg = config(f, "shifted")
	cfg.MinRows = 100000
	res, err = monitor.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Empty(t, res.Drifted)
}

func testUnknownModel(t *testing.T, f *fixture) {
	cfg := config(f, "same")
	cfg.Model = "no-such-model"
	_, err := monitor.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Equal(t, fault.Usage, fault.CodeOf(err))
	assert.Contains(t, err.Error(), `no mlship_model_info{name="no-such-model", job="same"}`)
}

func TestPrometheusDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := monitor.DefaultConfig()
	cfg.Prometheus, cfg.Model = "http://"+addr, "heart"
	_, err = monitor.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Equal(t, fault.Environment, fault.CodeOf(err))
	assert.Contains(t, err.Error(), "prometheus http://"+addr)
	assert.Contains(t, err.Error(), "connection refused")
}
