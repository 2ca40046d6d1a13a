package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/serve"
	"github.com/mlship/mlship/internal/testutil/prom"
	"github.com/mlship/mlship/internal/train"
)

// TestMonitorWorkflow runs examples/github/monitor.yml on its schedule event:
// the monitor action reads a real Prometheus that scraped a real mlship-serve
// (namespace "models", as the example selects) whose traffic has `age` moved
// by two training standard deviations. The job fails with the report in its
// summary and an error annotation, and sends one repository_dispatch
// mlship-retrain (to the GitHub API fake) naming the drifted feature.
func TestMonitorWorkflow(t *testing.T) {
	heart := filepath.Join(root, "examples", "heart-disease", "heart.csv")
	cfg := train.DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Binarize, cfg.Name = heart, "target", ">0", "heart-disease"
	cfg.OutDir = filepath.Join(t.TempDir(), "model")
	_, err := train.Run(context.Background(), cfg)
	require.NoError(t, err)
	m, err := model.Load(cfg.OutDir)
	require.NoError(t, err)
	s, err := serve.New(serve.Config{ModelDir: cfg.OutDir})
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	p := prom.Start(t, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: heart
    static_configs: [{targets: [%q], labels: {namespace: models}}]
`, strings.TrimPrefix(srv.URL, "http://")))
	waitScraped(t, p, 2)

	frame, err := dataset.ReadCSV(heart)
	require.NoError(t, err)
	ds, err := dataset.Build(frame, dataset.Spec{Target: "target", Binarize: ">0"})
	require.NoError(t, err)
	age := -1
	for j, f := range m.Card.Features {
		if f == "age" {
			age = j
		}
	}
	require.GreaterOrEqual(t, age, 0)
	for i := 0; i < 60; i++ {
		var batch [][]any
		for k := 0; k < 10; k++ {
			r := ds.X[(i*10+k)%len(ds.X)]
			row := make([]any, len(r))
			for j, v := range r {
				switch {
				case v != v:
					row[j] = nil
				case j == age:
					row[j] = v + 2*m.Card.Preprocess.Std[j]
				default:
					row[j] = v
				}
			}
			batch = append(batch, row)
		}
		b, _ := json.Marshal(map[string]any{"inputs": batch})
		res, err := http.Post(srv.URL+"/predict", "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
	}
	waitScraped(t, p, 3)

	gh := commenttest.NewGitHub(t)
	ws := workspace(t, map[string]string{".github/workflows/monitor.yml": "examples/github/monitor.yml"}, "")
	r := runAct(t, ws, actOpts{
		event: "schedule", eventJSON: map[string]any{"schedule": "17 * * * *"}, workflow: ".github/workflows/monitor.yml", mlship: true,
		env:     map[string]string{"GITHUB_API_URL": gh.APIURL},
		vars:    map[string]string{"PROMETHEUS_URL": p.URL},
		secrets: map[string]string{"GITHUB_TOKEN": gh.Token},
	})
	require.NotEqual(t, 0, r.code, "a drifted model fails the job")
	d := gh.Dispatches()
	require.Len(t, d, 1, "one repository_dispatch")
	assert.Equal(t, "acme/models", d[0].Repo)
	assert.Equal(t, "mlship-retrain", d[0].EventType)
	assert.Equal(t, "age", d[0].ClientPayload["drifted"])
	assert.Equal(t, "heart-disease", d[0].ClientPayload["model"])
	assert.Equal(t, "age", output(r, "drifted"))
	assert.Equal(t, "false", output(r, "passed"))
	assert.Contains(t, r.summary, "heart-disease breached its bounds")
	assert.Contains(t, r.summary, "Retraining started")
	assert.Contains(t, strings.Join(r.commands, "\n"), `title="Monitor check failed: psi age"`)
	assert.Contains(t, r.log, "drifted features: age", "the example's follow-up step ran")
	assert.Equal(t, []string(nil), gh.Violations())
	t.Logf("monitor workflow under act: %.1f s", r.seconds)
}

// waitScraped waits until Prometheus scraped every target n more times.
func waitScraped(t *testing.T, p *prom.Server, n int) {
	t.Helper()
	first := -1.0
	deadline := time.Now().Add(30 * time.Second)
	for {
		ss, err := p.Query(context.Background(), `min(count_over_time(up[1h]))`)
		require.NoError(t, err)
		if len(ss) == 1 {
			if first < 0 {
				first = ss[0].Value
			}
			if ss[0].Value >= first+float64(n) {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "Prometheus did not scrape %d times in 30s:\n%s", n, p.Log())
		time.Sleep(200 * time.Millisecond)
	}
}
