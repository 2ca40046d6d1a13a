package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	mlmodel "github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/serve"
	"github.com/mlship/mlship/internal/train"
)

// toyFeatures are the columns of the toy data: different means and scales, so
// that the server's standardisation matters.
var toyFeatures = []string{"x1", "x2", "x3"}

// toyRow draws one row of the toy data's features.
func toyRow(r *rand.Rand) []float64 {
	return []float64{50 + 10*r.NormFloat64(), -3 + 2*r.NormFloat64(), r.NormFloat64()}
}

// trainToy trains a small model on toy data (task "binary" or "regression")
// with the train step and returns its directory and its card.
func trainToy(t testing.TB, task string) (string, *mlmodel.Card) {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString(strings.Join(toyFeatures, ",") + ",y\n")
	for range 400 {
		x := toyRow(r)
		s := (x[0]-50)/10 + (x[1]+3)/2 + 0.3*r.NormFloat64()
		var y string
		if task == "binary" {
			y = "0"
			if s > 0 {
				y = "1"
			}
		} else {
			y = fmt.Sprintf("%.3f", 100+10*s)
		}
		fmt.Fprintf(&b, "%.4f,%.4f,%.4f,%s\n", x[0], x[1], x[2], y)
	}
	data := filepath.Join(dir, "toy.csv")
	require.NoError(t, os.WriteFile(data, []byte(b.String()), 0o600))
	cfg := train.DefaultConfig()
	cfg.Name, cfg.DataPath, cfg.Target, cfg.Task = "toy-"+task, data, "y", task
	cfg.Hidden, cfg.Epochs, cfg.OutDir = []int{4}, 5, filepath.Join(dir, "model")
	_, err := train.Run(context.Background(), cfg)
	require.NoError(t, err)
	card, err := mlmodel.ReadCard(cfg.OutDir)
	require.NoError(t, err)
	return cfg.OutDir, card
}

// startServe serves model directory dir with mlship-serve's handler on
// 127.0.0.1 and returns its URL.
func startServe(t testing.TB, dir string) string {
	t.Helper()
	s, err := serve.New(serve.Config{ModelDir: dir})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// predict POSTs rows to /predict and requires the answer code.
func predict(t testing.TB, url string, rows [][]float64, code int) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"inputs": rows})
	require.NoError(t, err)
	resp, err := http.Post(url+"/predict", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, code, resp.StatusCode)
}

// series is one scraped series: its name and labels.
type series struct {
	name   string
	labels map[string]string
}

// scrape GETs url/metrics and returns every series it exports, histograms
// expanded into _bucket (with le), _sum and _count.
func scrape(t testing.TB, url string) []series {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	var out []series
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				for _, b := range m.GetHistogram().GetBucket() {
					bl := map[string]string{"le": formatFloat(b.GetUpperBound())}
					for k, v := range ls {
						bl[k] = v
					}
					out = append(out, series{name + "_bucket", bl})
				}
				out = append(out, series{name + "_bucket", with(ls, "le", "+Inf")}, series{name + "_sum", ls}, series{name + "_count", ls})
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					out = append(out, series{name, with(ls, "quantile", formatFloat(q.GetQuantile()))})
				}
				out = append(out, series{name + "_sum", ls}, series{name + "_count", ls})
			default:
				out = append(out, series{name, ls})
			}
		}
	}
	return out
}

func with(ls map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range ls {
		out[a] = b
	}
	return out
}

// formatFloat is v as the text exposition format writes a bucket bound.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// postRows POSTs rows to url/predict and wants 200.
func postRows(url string, rows [][]float64) error {
	body, err := json.Marshal(map[string]any{"inputs": rows})
	if err != nil {
		return err
	}
	resp, err := http.Post(url+"/predict", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /predict: %s", resp.Status)
	}
	return nil
}
