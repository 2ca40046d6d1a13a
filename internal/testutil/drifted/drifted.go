// Package drifted starts, for tests of the monitoring loop's front ends, a real
// Prometheus that has scraped a real mlship-serve whose traffic drifted: a
// model trained on the heart example (name "heart-disease"), served on
// loopback, scraped every second as job "heart" with the label
// namespace="models", and sent 600 rows of the heart data with `age` moved by
// two training standard deviations.
package drifted

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

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/serve"
	"github.com/mlship/mlship/internal/testutil/prom"
	"github.com/mlship/mlship/internal/train"
)

// Model is the model's name; Feature the drifted feature.
const (
	Model   = "heart-disease"
	Feature = "age"
)

// Start trains, serves, scrapes and sends the drifted traffic; heartCSV is
// examples/heart-disease/heart.csv. Everything stops when the test ends.
func Start(t testing.TB, heartCSV string) *prom.Server {
	t.Helper()
	cfg := train.DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Binarize, cfg.Name = heartCSV, "target", ">0", Model
	cfg.OutDir = filepath.Join(t.TempDir(), "model")
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := serve.New(serve.Config{ModelDir: cfg.OutDir})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	p := prom.Start(t, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: heart
    static_configs: [{targets: [%q], labels: {namespace: models}}]
`, strings.TrimPrefix(srv.URL, "http://")))
	WaitScraped(t, p, 2) // at zero before any traffic, so increase() sees it all

	frame, err := dataset.ReadCSV(heartCSV)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.Build(frame, dataset.Spec{Target: "target", Binarize: ">0"})
	if err != nil {
		t.Fatal(err)
	}
	shift := -1
	for j, f := range m.Card.Features {
		if f == Feature {
			shift = j
		}
	}
	if shift < 0 {
		t.Fatalf("no feature %q", Feature)
	}
	for i := 0; i < 60; i++ {
		var batch [][]any
		for k := 0; k < 10; k++ {
			r := ds.X[(i*10+k)%len(ds.X)]
			row := make([]any, len(r))
			for j, v := range r {
				switch {
				case v != v: // missing
				case j == shift:
					row[j] = v + 2*m.Card.Preprocess.Std[j]
				default:
					row[j] = v
				}
			}
			batch = append(batch, row)
		}
		b, _ := json.Marshal(map[string]any{"inputs": batch})
		res, err := http.Post(srv.URL+"/predict", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("/predict answered %d", res.StatusCode)
		}
	}
	WaitScraped(t, p, 3)
	return p
}

// WaitScraped waits until Prometheus scraped every target n more times.
func WaitScraped(t testing.TB, p *prom.Server, n int) {
	t.Helper()
	first := -1.0
	deadline := time.Now().Add(30 * time.Second)
	for {
		ss, err := p.Query(context.Background(), `min(count_over_time(up[1h]))`)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) == 1 {
			if first < 0 {
				first = ss[0].Value
			}
			if ss[0].Value >= first+float64(n) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape %d times in 30s:\n%s", n, p.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
