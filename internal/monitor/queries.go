package monitor

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// queries writes monitor's PromQL. Every series is joined, on its target (job,
// instance), to the model's mlship_model_info: the series of the pods that
// served the model during the window, whatever the scrape configuration
// calls them, narrowed by the user's selector.
type queries struct {
	name     string // the model's name
	selector string // extra matchers, without braces
	window   string // Prometheus duration
}

func (q queries) extra() string {
	if q.selector == "" {
		return ""
	}
	return ", " + q.selector
}

// sel is metric{matchers, selector}.
func (q queries) sel(metric string, matchers ...string) string {
	all := append([]string(nil), matchers...)
	if q.selector != "" {
		all = append(all, q.selector)
	}
	if len(all) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(all, ", ") + "}"
}

func (q queries) infoSel() string {
	return q.sel("mlship_model_info", "name="+strconv.Quote(q.name))
}

// during keeps expr's series whose target served the model at some time in
// the last rng.
func (q queries) during(expr, rng string) string {
	return fmt.Sprintf("(%s and on (job, instance) max_over_time(%s[%s]))", expr, q.infoSel(), rng)
}

// now keeps expr's series whose target serves the model now.
func (q queries) now(expr string) string {
	return fmt.Sprintf("(%s and on (job, instance) %s)", expr, q.infoSel())
}

// reference reads the training reference mlship-serve exports from the card.
func (q queries) reference() string {
	return strings.Join([]string{
		"max by (feature, le) " + q.now(q.sel("mlship_reference_feature_share")),
		"max by (feature, category) " + q.now(q.sel("mlship_reference_category_share")),
		"max by (class) " + q.now(q.sel("mlship_reference_predicted_class_share")),
		"max by (le) " + q.now(q.sel("mlship_reference_predicted_value_share")),
	}, "\nor\n")
}

// live reads the window's distributions: z-score buckets and sums per
// feature, predicted classes, predicted value buckets.
func (q queries) live() string {
	inc := func(m string) string { return fmt.Sprintf("increase(%s[%s])", q.sel(m), q.window) }
	return strings.Join([]string{
		"sum by (feature, le) " + q.during(inc("mlship_input_feature_zscore_bucket"), q.window),
		"sum by (feature) " + q.during(inc("mlship_input_feature_zscore_sum"), q.window),
		"sum by (feature, category) " + q.during(inc("mlship_input_category_total"), q.window),
		"sum by (class) " + q.during(inc("mlship_predicted_class_total"), q.window),
		"sum by (le) " + q.during(inc("mlship_predicted_value_bucket"), q.window),
	}, "\nor\n")
}

// requests counts the window's prediction requests by status code.
func (q queries) requests() string {
	return "sum by (code) " + q.during(fmt.Sprintf("increase(%s[%s])", q.sel("mlship_http_requests_total", predictRoutes), q.window), q.window)
}

// latency is the window's 99th percentile of prediction latency.
func (q queries) latency() string {
	return "histogram_quantile(0.99, sum by (le) " +
		q.during(fmt.Sprintf("increase(%s[%s])", q.sel("mlship_http_request_duration_seconds_bucket", predictRoutes), q.window), q.window) + ")"
}

// info finds the model's servers in the window.
func (q queries) info() string {
	return fmt.Sprintf("max by (name, version, task) (max_over_time(%s[%s]))", q.infoSel(), q.window)
}

// sinceSteps is how many sub-windows the window is cut into to tell since when
// a feature drifted.
const sinceSteps = 24

// since finds, for each drifted feature, when its drift began: one range query
// of the drifted features' bucket counts per sub-window.
func since(ctx context.Context, pc *promClient, q queries, cfg Config, now time.Time, res *Result, ref *reference) error {
	step := (cfg.Window / sinceSteps).Round(time.Second)
	if step < time.Second {
		step = time.Second
	}
	var names []string
	for _, f := range res.Features {
		if f.Drifted && !f.Categorical {
			names = append(names, regexp.QuoteMeta(f.Name))
		}
	}
	if len(names) == 0 {
		return nil
	}
	rng := promDuration(step)
	expr := "sum by (feature, le) " + q.during(fmt.Sprintf("increase(%s[%s])",
		q.sel("mlship_input_feature_zscore_bucket", "feature=~"+strconv.Quote(strings.Join(names, "|"))), rng), rng)
	ss, err := pc.rangeQuery(ctx, expr, now.Add(-cfg.Window).Add(step), now, step)
	if err != nil {
		return err
	}
	// Per feature, per time: cumulative bucket counts.
	zi := zIndex()
	type key struct {
		f string
		t int64
	}
	cums := map[key][]float64{}
	var times []int64
	seen := map[int64]bool{}
	for _, s := range ss {
		i, ok := zi[normLE(s.Labels["le"])]
		if !ok {
			continue
		}
		for _, p := range s.Points {
			k := key{s.Labels["feature"], p.T.UnixNano()}
			if cums[k] == nil {
				cums[k] = make([]float64, len(zi))
			}
			cums[k][i] = p.V
			if !seen[k.t] {
				seen[k.t] = true
				times = append(times, k.t)
			}
		}
	}
	slices.Sort(times)
	minStep := math.Max(20, float64(cfg.MinRows)/sinceSteps)
	for i := range res.Features {
		f := &res.Features[i]
		if !f.Drifted || f.Categorical {
			continue
		}
		// Walk back from now over the sub-windows that drifted; the ones with
		// too few rows neither start nor end the run.
		first := -1
		for j := len(times) - 1; j >= 0; j-- {
			c := cums[key{f.Name, times[j]}]
			if c == nil {
				continue
			}
			d := compare(zLabels(), c, ref.features[f.Name])
			if d.Rows < minStep {
				continue
			}
			if d.PSI <= cfg.MaxPSI {
				break
			}
			first = j
		}
		switch {
		case first < 0:
		case first == 0 && times[0] <= now.Add(-cfg.Window).Add(step).UnixNano():
			f.SinceWindowStart = true
		default:
			t := time.Unix(0, times[first]).Add(-step).UTC()
			f.Since = &t
		}
	}
	return nil
}
