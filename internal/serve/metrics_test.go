package serve

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape reads /metrics the way Prometheus does and returns the families by name.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return fams
}

// sample returns the metric of family name whose labels include all of want.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "no metric family %s", name)
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	t.Fatalf("no %s with labels %v", name, want)
	return nil
}

func TestMetrics(t *testing.T) {
	s, ts := newTestServer(t, "binary", nil)
	require.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"inputs":[[1,2,3],[1,null,3],[9,9,9]]}`).code)
	require.Equal(t, 400, do(t, "POST", ts.URL+"/predict", `{"input":[1]}`).code)
	require.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"input":[1,2,3]}`).code)
	want, err := s.Model().Predict([][]float64{{1, 2, 3}, {1, 2, 3}, {9, 9, 9}, {1, 2, 3}})
	require.NoError(t, err)
	ones := 0
	for _, c := range want.Class {
		ones += c
	}

	fams := scrape(t, ts.URL)
	assert.Equal(t, 2.0, sample(t, fams, "mlship_http_requests_total", map[string]string{"route": "predict", "code": "200"}).Counter.GetValue())
	assert.Equal(t, 1.0, sample(t, fams, "mlship_http_requests_total", map[string]string{"route": "predict", "code": "400"}).Counter.GetValue())
	// The prediction routes' counters exist at 0 before their first request,
	// so that rate() and increase() count that request.
	assert.Equal(t, 0.0, sample(t, fams, "mlship_http_requests_total", map[string]string{"route": "v2_infer", "code": "429"}).Counter.GetValue())
	assert.Equal(t, 0.0, sample(t, fams, "mlship_http_requests_total", map[string]string{"route": "predict", "code": "500"}).Counter.GetValue())
	assert.Equal(t, uint64(3), sample(t, fams, "mlship_http_request_duration_seconds", map[string]string{"route": "predict"}).Histogram.GetSampleCount())
	assert.Equal(t, 4.0, sample(t, fams, "mlship_predicted_rows_total", nil).Counter.GetValue())
	assert.Equal(t, float64(ones), sample(t, fams, "mlship_predicted_class_total", map[string]string{"class": "1"}).Counter.GetValue())
	assert.Equal(t, float64(4-ones), sample(t, fams, "mlship_predicted_class_total", map[string]string{"class": "0"}).Counter.GetValue())
	assert.Equal(t, 1.0, sample(t, fams, "mlship_input_missing_total", map[string]string{"feature": "b"}).Counter.GetValue())
	// Feature a: values 1, 1, 9, 1 standardised with mean 1, std 1: z = 0, 0, 8, 0.
	za := sample(t, fams, "mlship_input_feature_zscore", map[string]string{"feature": "a"}).Histogram
	assert.Equal(t, uint64(4), za.GetSampleCount())
	assert.Equal(t, 8.0, za.GetSampleSum())
	for _, b := range za.Bucket {
		if b.GetUpperBound() == 0 {
			assert.Equal(t, uint64(3), b.GetCumulativeCount())
		}
	}
	info := sample(t, fams, "mlship_model_info", map[string]string{"name": "toy-binary", "task": "binary", "data_sha256": "abc123"})
	assert.Equal(t, 1.0, info.Gauge.GetValue())
	assert.Equal(t, 0.9, sample(t, fams, "mlship_model_metric", map[string]string{"metric": "accuracy"}).Gauge.GetValue())
	assert.Equal(t, 1.0, sample(t, fams, "mlship_model_ready", nil).Gauge.GetValue())
	// The card's reference: the share of each class among its validation predictions.
	assert.Equal(t, 0.25, sample(t, fams, "mlship_reference_predicted_class_share", map[string]string{"class": "0"}).Gauge.GetValue())
	assert.Equal(t, 0.75, sample(t, fams, "mlship_reference_predicted_class_share", map[string]string{"class": "1"}).Gauge.GetValue())
	assert.NotContains(t, fams, "mlship_reference_predicted_value_mean")
	// Training shares per z-score bucket, with the histogram's "le" labels.
	assert.Equal(t, 0.5, sample(t, fams, "mlship_reference_feature_share", map[string]string{"feature": "b", "le": "0"}).Gauge.GetValue())
	assert.Equal(t, 0.25, sample(t, fams, "mlship_reference_feature_share", map[string]string{"feature": "b", "le": "-1"}).Gauge.GetValue())
	assert.Equal(t, 0.0, sample(t, fams, "mlship_reference_feature_share", map[string]string{"feature": "b", "le": "+Inf"}).Gauge.GetValue())
	assert.Contains(t, fams, "go_goroutines", "runtime collector")
	for name := range fams {
		assert.False(t, strings.HasPrefix(name, "promhttp_"), "only the server's own registry is served: %s", name)
	}
}

func TestRegressionMetrics(t *testing.T) {
	_, ts := newTestServer(t, "regression", nil)
	require.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"input":[1,2,3]}`).code)
	fams := scrape(t, ts.URL)
	h := sample(t, fams, "mlship_predicted_value", nil).Histogram
	assert.Equal(t, uint64(1), h.GetSampleCount())
	// Buckets sit at the training target's mean + k std (mean 100, std 10).
	assert.Equal(t, 70.0, h.Bucket[0].GetUpperBound())
	assert.NotContains(t, fams, "mlship_predicted_class_total")
	assert.Equal(t, 101.0, sample(t, fams, "mlship_reference_predicted_value_mean", nil).Gauge.GetValue())
	assert.Equal(t, 9.0, sample(t, fams, "mlship_reference_predicted_value_std", nil).Gauge.GetValue())
	// 95, 101, 110, 98 against buckets at 100 + 10k: one each in le 95, 100, 105 and 110.
	for _, le := range []string{"95", "100", "105", "110"} {
		assert.Equal(t, 0.25, sample(t, fams, "mlship_reference_predicted_value_share", map[string]string{"le": le}).Gauge.GetValue(), le)
	}
	assert.Equal(t, 0.0, sample(t, fams, "mlship_reference_predicted_value_share", map[string]string{"le": "+Inf"}).Gauge.GetValue())
	assert.NotContains(t, fams, "mlship_reference_predicted_class_share")
}

// A card without a training reference (written by an older mlship) is served
// without the reference gauges.
func TestNoReferenceNoGauges(t *testing.T) {
	_, ts := newTestServer(t, "multiclass", nil)
	fams := scrape(t, ts.URL)
	assert.Contains(t, fams, "mlship_predicted_class_total")
	for name := range fams {
		assert.False(t, strings.HasPrefix(name, "mlship_reference_"), name)
	}
}
