// Package monitor checks a deployed model's live traffic against its training
// data and its service levels, from the series mlship-serve exports, read
// through the Prometheus HTTP API: the population stability index (PSI) of
// each feature's z-score histogram against the training rows' shares in the
// same buckets (the model card's reference), the same for the predictions,
// the error rate and the 99th percentile latency over a window. It makes one
// round trip per kind of query, whatever the number of features.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mlship/mlship/internal/category"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
)

// Config is what monitor checks.
type Config struct {
	// Prometheus is the base URL of the Prometheus HTTP API (or a compatible
	// one: Thanos, Mimir, VictoriaMetrics).
	Prometheus string `mlship:"prometheus"`
	// Model names the deployed model: the name label of mlship_model_info,
	// or a model directory, whose card gives the name and the training
	// reference (instead of the reference gauges mlship-serve exports).
	Model string `mlship:"model"`
	// Selector holds extra PromQL label matchers every series must match
	// (`namespace="prod"`), for several deployments of one model name.
	Selector string `mlship:"selector"`
	// Window is how far back the live traffic is read.
	Window time.Duration `mlship:"window"`
	// MaxPSI is the largest population stability index a feature's (or the
	// predictions') live distribution may have against training.
	MaxPSI float64 `mlship:"max-psi"`
	// MaxErrorRate is the largest share of prediction requests answered 5xx
	// or 429.
	MaxErrorRate float64 `mlship:"max-error-rate"`
	// MaxP99 is the largest 99th percentile of prediction latency.
	MaxP99 time.Duration `mlship:"max-p99"`
	// MinRows is the fewest rows the window must hold to judge drift; a
	// tenth of it (at least 10) is the fewest requests to judge the error
	// rate and latency.
	MinRows int `mlship:"min-rows"`
	// Timeout bounds each query.
	Timeout time.Duration `mlship:"timeout"`
	// Out, when set, is where the Markdown report is written.
	Out string `mlship:"out"`
	// Token is a bearer token for Prometheus.
	Token string `mlship:"prometheus-token"`

	// Now is the end of the window; zero means time.Now().
	Now time.Time
	// Trigger, when set, is called on a breach (retraining).
	Trigger func(ctx context.Context, r *Result) (string, error)
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DefaultConfig is the defaults: a 1 hour window, PSI 0.2 (the usual "major
// shift" line), 1% errors, p99 500 ms, 200 rows.
func DefaultConfig() Config {
	return Config{Window: time.Hour, MaxPSI: 0.2, MaxErrorRate: 0.01, MaxP99: 500 * time.Millisecond, MinRows: 200, Timeout: 30 * time.Second}
}

var selectorRE = regexp.MustCompile(`^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*(,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)*,?\s*$`)

// Validate checks the settings.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Prometheus) == "":
		return fault.Field("prometheus", "is required: the base URL of Prometheus's HTTP API, e.g. http://prometheus.monitoring:9090")
	case strings.TrimSpace(c.Model) == "":
		return fault.Field("model", "is required: the model's name (mlship_model_info's name label) or its model directory")
	case c.Selector != "" && !selectorRE.MatchString(c.Selector):
		return fault.Field("selector", "must be PromQL label matchers like `namespace=\"prod\", service=\"heart\"`, got %q", c.Selector)
	case c.Window < 10*time.Second:
		return fault.Field("window", "must be at least 10s, got %s", c.Window)
	case c.Window > 90*24*time.Hour:
		return fault.Field("window", "must be at most 90 days, got %s", c.Window)
	case !(c.MaxPSI > 0) || math.IsInf(c.MaxPSI, 0):
		return fault.Field("max-psi", "must be a positive number, got %g", c.MaxPSI)
	case !(c.MaxErrorRate >= 0 && c.MaxErrorRate <= 1):
		return fault.Field("max-error-rate", "must be between 0 and 1, got %g", c.MaxErrorRate)
	case c.MaxP99 <= 0:
		return fault.Field("max-p99", "must be positive, got %s", c.MaxP99)
	case c.MinRows < 1:
		return fault.Field("min-rows", "must be at least 1, got %d", c.MinRows)
	case c.Timeout <= 0:
		return fault.Field("timeout", "must be positive, got %s", c.Timeout)
	}
	return nil
}

// Result is what monitor found.
type Result struct {
	Model      string    `json:"model"`
	Prometheus string    `json:"prometheus"`
	Window     string    `json:"window"`
	Time       time.Time `json:"time"`
	// Reference says where the training distribution came from: "card"
	// (a model directory) or "prometheus" (mlship-serve's reference gauges).
	Reference string `json:"reference"`
	Task      string `json:"task,omitempty"`

	Requests  float64  `json:"requests"`
	Errors    float64  `json:"errors"`
	ErrorRate *float64 `json:"error_rate,omitempty"`
	P99       *float64 `json:"p99_seconds,omitempty"`
	Rows      float64  `json:"rows"`

	Features    []FeatureDrift `json:"features"`
	Predictions *Drift         `json:"predictions,omitempty"`
	Checks      []Check        `json:"checks"`

	// LowTraffic: the window held too few rows to judge drift.
	LowTraffic bool     `json:"low_traffic"`
	Drifted    []string `json:"drifted"`
	Passed     bool     `json:"passed"`
	Reason     string   `json:"reason"`
	Triggered  string   `json:"triggered,omitempty"`
	// Queries is the number of round trips to Prometheus.
	Queries int `json:"queries"`
}

// Drift is one distribution's comparison with training.
type Drift struct {
	PSI  float64 `json:"psi"`
	Rows float64 `json:"rows"`
	// Buckets label the shares: z-score bounds ("-3" ... "+Inf") or classes.
	Buckets  []string  `json:"buckets"`
	Live     []float64 `json:"live"`
	Training []float64 `json:"training"`
	Drifted  bool      `json:"drifted"`
	// Since is when the drift began, for a drifted distribution: the start
	// of the run of sub-windows up to now that each drifted; nil when it did
	// not drift, or when the whole window drifted (SinceWindowStart).
	Since            *time.Time `json:"since,omitempty"`
	SinceWindowStart bool       `json:"since_window_start,omitempty"`
}

// FeatureDrift is a feature's Drift, with the mean of its live z-scores
// (training: 0).
type FeatureDrift struct {
	Name  string   `json:"name"`
	MeanZ *float64 `json:"mean_z,omitempty"`
	// Categorical: the buckets are the feature's categories.
	Categorical bool `json:"categorical,omitempty"`
	Drift
}

// Check is one bound checked.
type Check struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Bound   float64 `json:"bound"`
	Passed  bool    `json:"passed"`
	Skipped string  `json:"skipped,omitempty"` // why it was not judged
}

// BreachError is a bound that live traffic broke (exit 1).
type BreachError struct{ Reason string }

func (e *BreachError) Error() string { return e.Reason }

// ExitCode is 1: a check failed.
func (e *BreachError) ExitCode() int { return fault.Failed }

// predictRoutes are the route labels of prediction requests.
const predictRoutes = `route=~"predict|v2_infer"`

// reference is the training distribution.
type reference struct {
	source   string
	task     string
	features map[string][]float64 // per-bucket shares, len(ZBuckets)+1
	order    []string             // feature order (the card's, or sorted)
	// categories: per categorical feature, the training share of each
	// category label (the server's category label, "(other)" included).
	categories map[string]map[string]float64
	catOrder   []string
	classes    map[string]float64
	values     []float64 // regression: per-bucket shares
	valueLE    []string
}

// Run reads the window's traffic from Prometheus and checks it. A breach
// returns the Result and a *BreachError; when cfg.Trigger is set it is called
// first and its outcome recorded in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	var card *model.Card
	name := cfg.Model
	if st, err := os.Stat(cfg.Model); err == nil && st.IsDir() {
		c, err := model.ReadCard(cfg.Model)
		if err != nil {
			return nil, fault.Input(err)
		}
		card = c
		if card.Reference == nil {
			return nil, fault.Inputf("model %q: its card has no training reference (trained by mlship before it recorded one): retrain it, or give the model's name to use the reference mlship-serve exports", cfg.Model)
		}
		name = card.Name
	}
	pc, err := newPromClient(cfg.Prometheus, cfg.Token, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	q := queries{name: name, selector: strings.TrimSuffix(strings.TrimSpace(cfg.Selector), ","), window: promDuration(cfg.Window)}
	res := &Result{Model: name, Prometheus: pc.base.Redacted(), Window: q.window, Time: now.UTC(), Drifted: []string{}}
	fmt.Fprintf(logw, "monitor: model %s, window %s ending %s, from %s\n", name, q.window, res.Time.Format(time.RFC3339), res.Prometheus)

	// One round trip per kind, all at once.
	var (
		wg                            sync.WaitGroup
		refS, liveS, reqS, latS, infS []sample
		errs                          [5]error
	)
	run := func(i int, dst *[]sample, query string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*dst, errs[i] = pc.instant(ctx, query, now)
		}()
	}
	if card == nil {
		run(0, &refS, q.reference())
	}
	run(1, &liveS, q.live())
	run(2, &reqS, q.requests())
	run(3, &latS, q.latency())
	run(4, &infS, q.info())
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if len(infS) == 0 {
		return nil, fault.Inputf("prometheus %s: no mlship_model_info{name=%q%s} in the last %s: no mlship-serve of that model was scraped (check --model, --selector and Prometheus's targets)",
			res.Prometheus, name, q.extra(), q.window)
	}
	var ref *reference
	if card != nil {
		ref = cardReference(card)
	} else {
		if ref, err = gaugeReference(refS); err != nil {
			return nil, fault.Inputf("model %s: %v", name, err)
		}
	}
	res.Reference, res.Task = ref.source, ref.task
	if res.Task == "" {
		for _, s := range infS {
			res.Task = s.Labels["task"]
		}
	}

	// Traffic, errors, latency.
	for _, s := range reqS {
		res.Requests += s.Value
		if c := s.Labels["code"]; strings.HasPrefix(c, "5") || c == "429" {
			res.Errors += s.Value
		}
	}
	minReq := max(10, cfg.MinRows/10)
	if res.Requests > 0 {
		er := res.Errors / res.Requests
		res.ErrorRate = &er
	}
	for _, s := range latS {
		if !math.IsNaN(s.Value) {
			v := s.Value
			res.P99 = &v
		}
	}
	res.Checks = append(res.Checks, judge("error rate", res.ErrorRate, cfg.MaxErrorRate, res.Requests, float64(minReq), "requests"))
	res.Checks = append(res.Checks, judge("latency p99 (s)", res.P99, cfg.MaxP99.Seconds(), res.Requests, float64(minReq), "requests"))

	// Distributions.
	live := collect(liveS)
	for _, f := range ref.order {
		fd := FeatureDrift{Name: f}
		cum := live.features[f]
		fd.Drift = compare(zLabels(), cum, ref.features[f])
		if s, ok := live.sums[f]; ok && fd.Rows > 0 {
			m := s / fd.Rows
			fd.MeanZ = &m
		}
		res.Features = append(res.Features, fd)
		res.Rows = math.Max(res.Rows, fd.Rows)
	}
	// Categorical features: the live share of each category against the
	// training rows' (rows missing the feature are in neither).
	for _, f := range ref.catOrder {
		train := ref.categories[f]
		labels := make([]string, 0, len(train))
		for c := range train {
			labels = append(labels, c)
		}
		sort.Strings(labels)
		var shares, counts []float64
		total := 0.0
		for _, c := range labels {
			total += train[c]
		}
		for _, c := range labels {
			v := train[c]
			if total > 0 {
				v /= total
			}
			shares = append(shares, v)
			counts = append(counts, live.categories[f][c])
		}
		fd := FeatureDrift{Name: f, Categorical: true, Drift: compareCounts(labels, counts, shares)}
		res.Features = append(res.Features, fd)
		res.Rows = math.Max(res.Rows, fd.Rows)
	}
	if ref.classes != nil {
		labels := make([]string, 0, len(ref.classes))
		for c := range ref.classes {
			labels = append(labels, c)
		}
		sort.Strings(labels)
		var train, counts []float64
		for _, c := range labels {
			train = append(train, ref.classes[c])
			counts = append(counts, live.classes[c])
		}
		d := compareCounts(labels, counts, train)
		res.Predictions = &d
	} else if ref.values != nil {
		d := compare(ref.valueLE, live.values, ref.values)
		res.Predictions = &d
	}
	res.LowTraffic = res.Rows < float64(cfg.MinRows)
	for i := range res.Features {
		f := &res.Features[i]
		f.Drifted = !res.LowTraffic && f.PSI > cfg.MaxPSI
		if f.Drifted {
			res.Drifted = append(res.Drifted, f.Name)
		}
		c := Check{Name: "psi " + f.Name, Value: f.PSI, Bound: cfg.MaxPSI, Passed: !f.Drifted}
		if res.LowTraffic {
			c.Skipped = fmt.Sprintf("%.0f rows < %d", f.Rows, cfg.MinRows)
			c.Passed = true
		}
		res.Checks = append(res.Checks, c)
	}
	if p := res.Predictions; p != nil {
		p.Drifted = p.Rows >= float64(cfg.MinRows) && p.PSI > cfg.MaxPSI
		c := Check{Name: "psi predictions", Value: p.PSI, Bound: cfg.MaxPSI, Passed: !p.Drifted}
		if p.Rows < float64(cfg.MinRows) {
			c.Skipped = fmt.Sprintf("%.0f rows < %d", p.Rows, cfg.MinRows)
			c.Passed = true
		}
		res.Checks = append(res.Checks, c)
	}

	// Since when: one range query for the drifted features.
	if len(res.Drifted) > 0 {
		if err := since(ctx, pc, q, cfg, now, res, ref); err != nil {
			fmt.Fprintf(logw, "monitor: warning: could not tell since when the features drifted: %v\n", err)
		}
	}

	var failed []string
	for _, c := range res.Checks {
		if !c.Passed {
			failed = append(failed, fmt.Sprintf("%s %s > %s", c.Name, short(c.Value), short(c.Bound)))
		}
	}
	res.Passed = len(failed) == 0
	switch {
	case !res.Passed:
		res.Reason = "live traffic breached " + strings.Join(failed, ", ")
	case res.Requests == 0:
		res.Reason = "no prediction requests in the last " + q.window + ": nothing to judge"
	case res.LowTraffic:
		res.Reason = fmt.Sprintf("too little traffic to judge drift: %.0f rows in the last %s (--min-rows %d); error rate and latency within bounds", res.Rows, q.window, cfg.MinRows)
	default:
		res.Reason = fmt.Sprintf("all %d checks passed over %.0f rows in the last %s", len(res.Checks), res.Rows, q.window)
	}
	res.Queries = pc.queries
	if res.Passed {
		return res, nil
	}
	if cfg.Trigger != nil {
		where, err := cfg.Trigger(ctx, res)
		if err != nil {
			return res, fmt.Errorf("%s; starting retraining: %w", res.Reason, err)
		}
		res.Triggered = where
		fmt.Fprintf(logw, "monitor: started retraining: %s\n", where)
	}
	return res, &BreachError{Reason: res.Reason}
}

// judge checks value <= bound when there were at least min of unit.
func judge(name string, value *float64, bound, have, min float64, unit string) Check {
	c := Check{Name: name, Bound: bound, Passed: true}
	switch {
	case value == nil:
		c.Skipped = "no " + unit
	case have < min:
		c.Value = *value
		c.Skipped = fmt.Sprintf("%.0f %s < %.0f", have, unit, min)
	default:
		c.Value = *value
		c.Passed = *value <= bound
	}
	return c
}

// psiFloor stands for an empty bucket in the PSI (ln 0 is not finite); a
// bucket the training rows never reached but live traffic fills stands out.
const psiFloor = 1e-4

// psi is the population stability index of shares live against train.
func psi(live, train []float64) float64 {
	var s float64
	for i := range live {
		a, e := math.Max(live[i], psiFloor), math.Max(train[i], psiFloor)
		s += float64(a-e) * math.Log(a/e)
	}
	return s
}

// compare turns cumulative live bucket counts (Prometheus histogram order)
// into shares and compares them with the training shares.
func compare(labels []string, cum, train []float64) Drift {
	counts := make([]float64, len(cum))
	prev := 0.0
	for i, c := range cum {
		counts[i] = math.Max(0, c-prev) // increase() extrapolates: keep it monotone
		prev = math.Max(prev, c)
	}
	return compareCounts(labels, counts, train)
}

// compareCounts compares per-bucket live counts with training shares.
func compareCounts(labels []string, counts, train []float64) Drift {
	d := Drift{Buckets: labels, Training: train, Live: make([]float64, len(counts))}
	for _, c := range counts {
		d.Rows += c
	}
	if d.Rows > 0 && len(train) == len(counts) {
		for i, c := range counts {
			d.Live[i] = c / d.Rows
		}
		d.PSI = psi(d.Live, train)
	}
	return d
}

// zLabels are the "le" labels of the z-score buckets.
func zLabels() []string {
	out := make([]string, 0, len(model.ZBuckets)+1)
	for _, b := range model.ZBuckets {
		out = append(out, formatLE(b))
	}
	return append(out, "+Inf")
}

func formatLE(b float64) string { return strconv.FormatFloat(b, 'g', -1, 64) }

// dist is a set of distributions read from samples: the live counts of a
// window (cumulative per z-score bucket, as Prometheus histograms are) or the
// training shares mlship-serve exports.
type dist struct {
	features   map[string][]float64          // {feature, le}: per z-score bucket
	sums       map[string]float64            // {feature}: z-score sums
	categories map[string]map[string]float64 // {feature, category}
	classes    map[string]float64            // {class}
	values     []float64                     // {le}: predicted value buckets, by bound
	valueLE    []string
}

// collect sorts samples by their labels: {feature, le} z-score buckets,
// {feature, category} categories, {feature} z-score sums, {class} predicted
// classes and {le} predicted value buckets.
func collect(ss []sample) dist {
	d := dist{features: map[string][]float64{}, sums: map[string]float64{}, categories: map[string]map[string]float64{}, classes: map[string]float64{}}
	zi := zIndex()
	type vb struct {
		le    float64
		label string
		v     float64
	}
	var values []vb
	for _, s := range ss {
		f, hasF := s.Labels["feature"]
		le, hasLE := s.Labels["le"]
		c, hasC := s.Labels["class"]
		cat, hasCat := s.Labels["category"]
		switch {
		case hasF && hasCat:
			if d.categories[f] == nil {
				d.categories[f] = map[string]float64{}
			}
			d.categories[f][cat] = s.Value
		case hasF && hasLE:
			i, ok := zi[normLE(le)]
			if !ok {
				continue
			}
			if d.features[f] == nil {
				d.features[f] = make([]float64, len(model.ZBuckets)+1)
			}
			d.features[f][i] = s.Value
		case hasF:
			d.sums[f] = s.Value
		case hasC:
			d.classes[c] = s.Value
		case hasLE:
			if v, err := strconv.ParseFloat(le, 64); err == nil {
				values = append(values, vb{v, le, s.Value})
			}
		}
	}
	sort.Slice(values, func(i, j int) bool { return values[i].le < values[j].le })
	for _, v := range values {
		d.values = append(d.values, v.v)
		d.valueLE = append(d.valueLE, normLE(v.label))
	}
	return d
}

// zIndex maps the z-score buckets' "le" labels to their index.
func zIndex() map[string]int {
	zi := map[string]int{}
	for i, le := range zLabels() {
		zi[le] = i
	}
	return zi
}

// normLE writes an "le" label the way formatLE does ("1.0" is "1").
func normLE(le string) string {
	if v, err := strconv.ParseFloat(le, 64); err == nil && !math.IsInf(v, 0) {
		return formatLE(v)
	}
	return le
}

// cardReference is a card's training reference.
func cardReference(c *model.Card) *reference {
	r := &reference{source: "card", task: string(c.Task), features: map[string][]float64{}}
	for _, f := range c.Reference.Features {
		r.features[f.Name] = f.Shares
		r.order = append(r.order, f.Name)
	}
	for _, f := range c.Reference.Categories {
		if r.categories == nil {
			r.categories = map[string]map[string]float64{}
		}
		e := category.NewEncoder(c.Categories[f.Name])
		m := map[string]float64{}
		for slot, v := range f.Shares {
			m[e.Label(slot)] = v
		}
		r.categories[f.Name] = m
		r.catOrder = append(r.catOrder, f.Name)
	}
	p := c.Reference.Predictions
	if p.Rows > 0 && len(c.Classes) > 0 && len(p.Classes) == len(c.Classes) {
		r.classes = map[string]float64{}
		for i, l := range c.Classes {
			r.classes[l] = p.Classes[i]
		}
	} else if p.Rows > 0 && len(p.Values) > 0 {
		r.values = p.Values
		for _, b := range c.ValueBuckets() {
			r.valueLE = append(r.valueLE, formatLE(b))
		}
		r.valueLE = append(r.valueLE, "+Inf")
	}
	return r
}

// gaugeReference is the training reference from mlship-serve's gauges.
func gaugeReference(ss []sample) (*reference, error) {
	d := collect(ss)
	if len(d.features) == 0 && len(d.categories) == 0 {
		return nil, errors.New("mlship-serve exports no training reference (mlship_reference_feature_share): the model was trained by an mlship that did not record one; retrain it, or give its model directory as --model")
	}
	r := &reference{source: "prometheus", features: d.features, values: d.values, valueLE: d.valueLE}
	for f := range d.features {
		r.order = append(r.order, f)
	}
	sort.Strings(r.order)
	if len(d.categories) > 0 {
		r.categories = d.categories
		for f := range d.categories {
			r.catOrder = append(r.catOrder, f)
		}
		sort.Strings(r.catOrder)
	}
	if len(d.classes) > 0 {
		r.classes = d.classes
	}
	return r, nil
}

// short formats a number for messages.
func short(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// promDuration writes d in Prometheus's duration syntax (1h30m, 90s).
func promDuration(d time.Duration) string {
	d = d.Round(time.Second)
	var b strings.Builder
	for _, u := range []struct {
		s string
		d time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.s)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
