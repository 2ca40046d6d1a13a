package serve

import (
	"runtime"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mlship/mlship/internal/category"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/version"
)

// Metrics are the server's Prometheus metrics, registered on a registry of its
// own (never the global one). Names are in base units.
type Metrics struct {
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route
	inflight prometheus.Gauge
	bodies   prometheus.Gauge
	rows     prometheus.Counter
	classes  *prometheus.CounterVec // class (classifiers)
	values   *shardedHistogram      // predicted value (regression)
	drift    *shardedHistogram
	missing  *prometheus.CounterVec
	ready    prometheus.Gauge
	classCtr []prometheus.Counter // per class index, resolved once
	missObs  []prometheus.Counter // per feature, resolved once
	// numeric lists the numeric features (those in the z-score histogram,
	// in its series order) and their network inputs.
	numeric []numericInput
	// catObs holds, per categorical feature, a counter per one-hot slot (nil
	// for a numeric feature); unseenObs its unseen-category counter.
	catObs    [][]prometheus.Counter
	unseenObs []prometheus.Counter
	durObs    map[string]prometheus.Observer // per route, resolved once
	codeCtr   sync.Map                       // routeCode -> prometheus.Counter, resolved on first use
}

// numericInput is a numeric feature (its index among the features) and its
// network input.
type numericInput struct{ Feature, Offset int }

// predictCodes are the status codes the prediction routes answer.
var predictCodes = []int{200, 400, 405, 408, 413, 429, 500, 503}

type routeCode struct {
	route string
	code  int
}

// zBuckets are the buckets of the live inputs' standardised values: the training
// data has mean 0 and standard deviation 1 on this scale, so a shift of the live
// distribution across these buckets is input drift. The model card's reference
// records the training rows' shares in the same buckets.
var zBuckets = model.ZBuckets

// NewMetrics creates the metrics for model m and registers them on reg, with the
// Go runtime and process collectors.
func NewMetrics(reg prometheus.Registerer, m *model.Model, modelVersion string) *Metrics {
	c := m.Card
	var numeric []numericInput
	var numericNames []string
	for j, in := range m.Inputs() {
		if in.Encoder == nil {
			numeric = append(numeric, numericInput{Feature: j, Offset: in.Offset})
			numericNames = append(numericNames, in.Name)
		}
	}
	x := &Metrics{
		numeric: numeric,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlship_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mlship_http_request_duration_seconds", Help: "Time from request to response by route.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16), // 50us to about 1.6s
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mlship_http_requests_in_flight", Help: "Prediction requests being served now (their bodies read).",
		}),
		bodies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mlship_http_request_bodies_reading", Help: "Prediction request bodies being received now.",
		}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mlship_predicted_rows_total", Help: "Rows predicted.",
		}),
		drift: newDriftHistogram(numericNames, 4*runtime.GOMAXPROCS(0)),
		missing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlship_input_missing_total", Help: "Missing input values (null), by feature: a numeric one is imputed with the training mean, a categorical one sets none of its one-hot inputs.",
		}, []string{"feature"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mlship_model_ready", Help: "1 when the model is loaded and the server takes traffic, 0 while draining.",
		}),
		durObs: map[string]prometheus.Observer{},
	}
	for _, r := range routes {
		x.durObs[r] = x.duration.WithLabelValues(r)
	}
	// The prediction routes' request counters exist from the start at 0, for
	// the codes they answer: a counter that first appears with a value hides
	// its first requests from increase() and rate() (and so from the error
	// rate alert and mlship monitor).
	for _, r := range []string{routePredict, routeInfer} {
		for _, code := range predictCodes {
			x.codeCtr.Store(routeCode{r, code}, x.requests.WithLabelValues(r, strconv.Itoa(code)))
		}
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mlship_model_info", Help: "The model being served (value 1).",
	}, []string{"name", "version", "task", "data_sha256", "git_sha", "mlship_version", "server_version"})
	info.WithLabelValues(c.Name, modelVersion, string(c.Task), c.Data.SHA256, c.GitSHA, c.Version, version.Version).Set(1)
	offline := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mlship_model_metric", Help: "The model's offline metrics on its held-out test split (from the model card).",
	}, []string{"metric"})
	for k, v := range c.Metrics {
		offline.WithLabelValues(k).Set(v)
	}
	reg.MustRegister(x.requests, x.duration, x.inflight, x.bodies, x.rows, x.drift, x.missing, x.ready, info, offline,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if len(c.Classes) > 0 {
		x.classes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlship_predicted_class_total", Help: "Predicted classes (by label).",
		}, []string{"class"})
		reg.MustRegister(x.classes)
		for _, l := range c.Classes {
			x.classCtr = append(x.classCtr, x.classes.WithLabelValues(l))
		}
	} else {
		b := c.ValueBuckets()
		desc := prometheus.NewDesc("mlship_predicted_value",
			"Predicted values (regression); buckets at the training target's mean + k std.", nil, nil)
		x.values = newShardedHistogram(desc, [][]string{nil}, b, len(x.drift.shards))
		reg.MustRegister(x.values)
	}
	for _, f := range c.Features {
		x.missObs = append(x.missObs, x.missing.WithLabelValues(f))
	}
	x.registerCategories(reg, m)
	registerReference(reg, c)
	return x
}

// registerCategories creates the categorical features' metrics, each series
// at 0 from the start (increase() and rate() count their first values):
// mlship_input_category_total, the live values per one-hot slot, and
// mlship_input_unseen_category_total, the values that are none of the
// model's categories (seen in no training row, or left out as rare; they
// take the (other) slot). A model without categorical features has neither.
func (x *Metrics) registerCategories(reg prometheus.Registerer, m *model.Model) {
	inputs := m.Inputs()
	x.catObs = make([][]prometheus.Counter, len(inputs))
	x.unseenObs = make([]prometheus.Counter, len(inputs))
	var cats, unseen *prometheus.CounterVec
	for j, in := range inputs {
		e := in.Encoder
		if e == nil {
			continue
		}
		if cats == nil {
			cats = prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "mlship_input_category_total",
				Help: "Values of each categorical input by category; category=\"" + category.Other + "\" takes those the model does not list (rare in training, or unseen). Missing values are in mlship_input_missing_total.",
			}, []string{"feature", "category"})
			unseen = prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "mlship_input_unseen_category_total",
				Help: "Values of each categorical input that are none of the model's categories (rare in training, or never seen); the model takes them as category=\"" + category.Other + "\".",
			}, []string{"feature"})
			reg.MustRegister(cats, unseen)
		}
		for slot := range e.Width() {
			x.catObs[j] = append(x.catObs[j], cats.WithLabelValues(in.Name, e.Label(slot)))
		}
		x.unseenObs[j] = unseen.WithLabelValues(in.Name)
	}
}

// registerReference exports the card's prediction reference (the distribution
// of the model's predictions on its validation rows) as gauges, so that alert
// rules can compare live predictions with it in PromQL. Cards without a
// reference (older mlship) export none.
func registerReference(reg prometheus.Registerer, c *model.Card) {
	r := c.Reference
	if r == nil || r.Predictions.Rows == 0 {
		return
	}
	shares := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mlship_reference_feature_share",
		Help: "Share of the training rows whose standardised value of the feature falls in the bucket le of mlship_input_feature_zscore (not cumulative; from the model card).",
	}, []string{"feature", "le"})
	for _, f := range r.Features {
		for b, v := range f.Shares {
			shares.WithLabelValues(f.Name, leLabel(r.Buckets, b)).Set(v)
		}
	}
	reg.MustRegister(shares)
	if len(r.Categories) > 0 {
		cs := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mlship_reference_category_share",
			Help: "Share of the training rows whose categorical feature is the category (the label category of mlship_input_category_total; from the model card).",
		}, []string{"feature", "category"})
		for _, f := range r.Categories {
			e := category.NewEncoder(c.Categories[f.Name])
			for slot, v := range f.Shares {
				cs.WithLabelValues(f.Name, e.Label(slot)).Set(v)
			}
		}
		reg.MustRegister(cs)
	}
	p := r.Predictions
	if len(c.Classes) > 0 && len(p.Classes) == len(c.Classes) {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mlship_reference_predicted_class_share",
			Help: "Share of each class among the model's predictions on its validation rows (from the model card).",
		}, []string{"class"})
		for i, l := range c.Classes {
			g.WithLabelValues(l).Set(p.Classes[i])
		}
		reg.MustRegister(g)
		return
	}
	if p.Mean != nil && p.Std != nil {
		mean := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mlship_reference_predicted_value_mean",
			Help: "Mean of the model's predictions on its validation rows (from the model card).",
		})
		std := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mlship_reference_predicted_value_std",
			Help: "Standard deviation of the model's predictions on its validation rows (from the model card).",
		})
		mean.Set(*p.Mean)
		std.Set(*p.Std)
		reg.MustRegister(mean, std)
	}
	if len(p.Values) == len(r.Buckets)+1 {
		vs := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mlship_reference_predicted_value_share",
			Help: "Share of the model's predictions on its validation rows in the bucket le of mlship_predicted_value (not cumulative; from the model card).",
		}, []string{"le"})
		bounds := c.ValueBuckets()
		for b, v := range p.Values {
			vs.WithLabelValues(leLabel(bounds, b)).Set(v)
		}
		reg.MustRegister(vs)
	}
}

// leLabel is the "le" label of bucket b of bounds as Prometheus histograms
// write it: the upper bound, +Inf for the last bucket.
func leLabel(bounds []float64, b int) string {
	if b >= len(bounds) {
		return "+Inf"
	}
	return strconv.FormatFloat(bounds[b], 'g', -1, 64)
}

// record counts one request and its duration. durObs is only read after
// NewMetrics, so concurrent handlers may use it.
func (x *Metrics) record(route string, code int, seconds float64) {
	if o, ok := x.durObs[route]; ok {
		o.Observe(seconds)
	} else {
		x.duration.WithLabelValues(route).Observe(seconds)
	}
	key := routeCode{route, code}
	c, ok := x.codeCtr.Load(key)
	if !ok {
		c, _ = x.codeCtr.LoadOrStore(key, x.requests.WithLabelValues(route, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}
