package monitoring

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/mlship/mlship/internal/fault"
)

// Settings are the alert rules' thresholds, windows and `for:` durations.
// DefaultSettings are the values shipped in alerts.yml and in PrometheusRule;
// tests generate faster variants of the same rules by changing them.
type Settings struct {
	// Matchers are label matchers (PromQL, e.g. `namespace="prod"`) added to
	// every series selector. None: the rules cover every mlship-serve target
	// the Prometheus scrapes, one alert per model (job, namespace, service,
	// model name).
	Matchers []string
	// Scoped marks rules for one known Service: the model-down rule then also
	// fires when the model's targets are gone altogether (absent), and the
	// alerts carry ScopeLabels.
	Scoped      bool
	ScopeLabels map[string]string

	// ModelDownFor: how long no replica may be up and ready.
	ModelDownFor time.Duration
	// InfoLookback: how long a target that exported mlship_model_info is
	// remembered as a model server once it stops answering (unscoped rules).
	InfoLookback time.Duration

	// NoTrafficWindow and NoTrafficFor: no prediction request at all.
	NoTrafficWindow time.Duration
	NoTrafficFor    time.Duration

	// Window is the rate window of the error-rate and latency rules, and
	// MinRequests the prediction requests it must hold before they fire.
	Window      time.Duration
	MinRequests int
	// MaxErrorRate: share of prediction requests answered 5xx or 429.
	MaxErrorRate float64
	ErrorFor     time.Duration
	// MaxP99: the 99th percentile of prediction latency, in seconds.
	MaxP99     float64
	LatencyFor time.Duration

	// DriftWindow is the window of the drift and prediction-shift rules, and
	// MinRows the rows (predictions) it must hold before they fire.
	DriftWindow time.Duration
	MinRows     int
	// MaxMeanZ: largest |mean z-score| of a feature's live values (the
	// training rows have mean 0 and standard deviation 1 on that scale).
	MaxMeanZ float64
	DriftFor time.Duration
	// MaxClassShareDiff: largest absolute difference between a class's share
	// of live predictions and its share on the validation rows.
	MaxClassShareDiff float64
	// MaxValueMeanShift: largest difference between the live predicted
	// values' mean and the validation predictions' mean, in validation
	// standard deviations (regression).
	MaxValueMeanShift float64
	ShiftFor          time.Duration
}

// DefaultSettings are the shipped thresholds (README, "Monitoring and retraining").
func DefaultSettings() Settings {
	return Settings{
		ModelDownFor:      2 * time.Minute,
		InfoLookback:      time.Hour,
		NoTrafficWindow:   30 * time.Minute,
		NoTrafficFor:      30 * time.Minute,
		Window:            5 * time.Minute,
		MinRequests:       100,
		MaxErrorRate:      0.01,
		ErrorFor:          5 * time.Minute,
		MaxP99:            0.5,
		LatencyFor:        10 * time.Minute,
		DriftWindow:       30 * time.Minute,
		MinRows:           200,
		MaxMeanZ:          0.5,
		DriftFor:          15 * time.Minute,
		MaxClassShareDiff: 0.15,
		MaxValueMeanShift: 0.5,
		ShiftFor:          15 * time.Minute,
	}
}

// Alert names.
const (
	AlertModelDown     = "MlshipModelDown"
	AlertNoTraffic     = "MlshipNoTraffic"
	AlertHighErrorRate = "MlshipHighErrorRate"
	AlertHighLatency   = "MlshipHighLatencyP99"
	AlertInputDrift    = "MlshipInputDrift"
	AlertClassShift    = "MlshipPredictedClassShift"
	AlertValueShift    = "MlshipPredictedValueShift"
)

// GroupName is the rule group's name.
const GroupName = "mlship"

// Rule is one Prometheus alerting rule.
type Rule struct {
	Alert       string            `yaml:"alert" json:"alert"`
	Expr        string            `yaml:"expr" json:"expr"`
	For         string            `yaml:"for,omitempty" json:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// RuleGroup is a Prometheus rule group.
type RuleGroup struct {
	Name  string `yaml:"name" json:"name"`
	Rules []Rule `yaml:"rules" json:"rules"`
}

// RuleFile is a Prometheus rules file (rule_files:).
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups" json:"groups"`
}

// predictRoutes are the route labels of prediction requests.
const predictRoutes = `route=~"predict|v2_infer"`

// modelBy are the labels that identify one deployed model in the alerts: the
// scrape job and, on Kubernetes, the namespace and Service (set by a
// ServiceMonitor), and the model's name from mlship_model_info, which every
// series is joined to on its target (job, instance).
const modelBy = "job, namespace, service, name"

// Rules are the alerting rules with settings s.
func Rules(s Settings) RuleFile {
	g := gen{s}
	where := `{{ $labels.name }}{{ with $labels.namespace }} in {{ . }}{{ end }}{{ with $labels.service }} (service {{ . }}){{ end }}`
	if s.Scoped {
		where = `{{ $labels.name }}{{ with $labels.namespace }} in {{ . }}{{ end }} (service {{ $labels.service }})`
	}
	reqs := g.sel("mlship_http_requests_total", predictRoutes)
	var rules []Rule

	// Model down.
	down := Rule{
		Alert: AlertModelDown,
		For:   dur(s.ModelDownFor),
		Labels: map[string]string{
			"severity": "critical",
		},
		Annotations: map[string]string{
			"summary": "Model " + where + " has no replica up and ready",
			"description": "No mlship-serve target of model " + where + " has been scraped up with mlship_model_ready 1 for " +
				dur(s.ModelDownFor) + ": predictions fail. Check the pods (kubectl get pods, describe, logs) and the last rollout.",
		},
	}
	if s.Scoped {
		down.Expr = fmt.Sprintf("absent(%s == 1)", g.sel("mlship_model_ready"))
		down.Annotations["summary"] = "Model service " + g.scopeDesc() + " has no replica up and ready"
		down.Annotations["description"] = "No mlship-serve target of " + g.scopeDesc() + " has been scraped up with mlship_model_ready 1 for " +
			dur(s.ModelDownFor) + " (or none is scraped at all): predictions fail. Check the pods (kubectl get pods, describe, logs), the last rollout and the ServiceMonitor."
	} else {
		down.Expr = fmt.Sprintf(`count by (%[1]s) (
  last_over_time(%[2]s[%[3]s]) and on (job, instance) %[4]s
)
unless
count by (%[1]s) (
  %[2]s and on (job, instance) (%[5]s == 1)
)`, modelBy, g.sel("mlship_model_info"), dur(s.InfoLookback), g.sel("up"), g.sel("mlship_model_ready"))
	}
	rules = append(rules, down)

	// No traffic: the duration histogram's per-route series exist from the
	// start (the request counter's appear with the first request).
	rules = append(rules, Rule{
		Alert: AlertNoTraffic,
		Expr: fmt.Sprintf("%s == 0",
			g.sum("", fmt.Sprintf("rate(%s[%s])", g.sel("mlship_http_request_duration_seconds_count", predictRoutes), dur(s.NoTrafficWindow)))),
		For:    dur(s.NoTrafficFor),
		Labels: map[string]string{"severity": "warning"},
		Annotations: map[string]string{
			"summary": "Model " + where + " receives no prediction requests",
			"description": "Model " + where + " is up but has answered no prediction request (/predict, /v2/.../infer) for " +
				dur(s.NoTrafficWindow+s.NoTrafficFor) + ". Check the clients, the Service and the ingress.",
		},
	})

	// Error rate.
	enough := fmt.Sprintf("%s >= %d", g.sum("", fmt.Sprintf("increase(%s[%s])", reqs, dur(s.Window))), s.MinRequests)
	rules = append(rules, Rule{
		Alert: AlertHighErrorRate,
		Expr: fmt.Sprintf("(\n  %s\n/\n  %s\n) > %s\nand\n%s",
			g.sum("", fmt.Sprintf("rate(%s[%s])", g.sel("mlship_http_requests_total", predictRoutes, `code=~"5..|429"`), dur(s.Window))),
			g.sum("", fmt.Sprintf("rate(%s[%s])", reqs, dur(s.Window))),
			num(s.MaxErrorRate), enough),
		For:    dur(s.ErrorFor),
		Labels: map[string]string{"severity": "critical"},
		Annotations: map[string]string{
			"summary": "Model " + where + " answers {{ $value | humanizePercentage }} of prediction requests with an error",
			"description": "{{ $value | humanizePercentage }} of the prediction requests to model " + where + " over the last " + dur(s.Window) +
				" were answered 5xx or 429 (threshold " + pct(s.MaxErrorRate) + ", at least " + strconv.Itoa(s.MinRequests) +
				" requests). 429 means more requests than --max-inflight: add replicas. 5xx: see the server's log.",
		},
	})

	// Latency.
	rules = append(rules, Rule{
		Alert: AlertHighLatency,
		Expr: fmt.Sprintf("histogram_quantile(0.99,\n  %s\n) > %s\nand\n%s",
			g.sum("le", fmt.Sprintf("rate(%s[%s])", g.sel("mlship_http_request_duration_seconds_bucket", predictRoutes), dur(s.Window))),
			num(s.MaxP99), enough),
		For:    dur(s.LatencyFor),
		Labels: map[string]string{"severity": "warning"},
		Annotations: map[string]string{
			"summary": "Model " + where + " answers slowly: p99 {{ $value | humanizeDuration }}",
			"description": "The 99th percentile of prediction latency of model " + where + " over the last " + dur(s.Window) +
				" is {{ $value | humanizeDuration }} (threshold " + (time.Duration(s.MaxP99 * float64(time.Second))).String() +
				", at least " + strconv.Itoa(s.MinRequests) + " requests). Check CPU throttling (the dashboard's CPU panel), batch sizes and replicas.",
		},
	})

	// Input drift: the mean of a feature's live z-scores, i.e. how many
	// training standard deviations its live mean moved. The histogram's sum
	// goes down with negative z-scores, so it is a gauge to PromQL: delta(),
	// not rate() (which would take every decrease for a counter reset); and
	// a target whose server restarted within the window (its count reset)
	// is left out of the mean, since delta() cannot see through the reset.
	dw := dur(s.DriftWindow)
	zsum, zcount := g.sel("mlship_input_feature_zscore_sum"), g.sel("mlship_input_feature_zscore_count")
	rules = append(rules, Rule{
		Alert: AlertInputDrift,
		Expr: fmt.Sprintf("abs(\n  %s\n/\n  %s\n) > %s\nand\n%s >= %d",
			g.sum("feature", noReset(fmt.Sprintf("delta(%s[%s])", zsum, dw), zcount, dw)),
			g.sum("feature", noReset(fmt.Sprintf("increase(%s[%s])", zcount, dw), zcount, dw)),
			num(s.MaxMeanZ),
			g.sum("feature", fmt.Sprintf("increase(%s[%s])", g.sel("mlship_input_feature_zscore_count"), dw)), s.MinRows),
		For:    dur(s.DriftFor),
		Labels: map[string]string{"severity": "warning"},
		Annotations: map[string]string{
			"summary": "Model " + where + ": input feature {{ $labels.feature }} drifted ({{ $value | printf \"%.2f\" }} training std from the training mean)",
			"description": "Over the last " + dw + " the live values of feature {{ $labels.feature }} sent to model " + where +
				" have a mean {{ $value | printf \"%.2f\" }} training standard deviations away from the training mean (threshold " + num(s.MaxMeanZ) +
				", at least " + strconv.Itoa(s.MinRows) + " rows). The model was not trained on such inputs: check the client or the upstream data, " +
				"run `mlship monitor` for the per-feature PSI, and retrain on recent data if the shift is real.",
		},
	})

	// Prediction shift: classes.
	cls := fmt.Sprintf("rate(%s[%s])", g.sel("mlship_predicted_class_total"), dw)
	rules = append(rules, Rule{
		Alert: AlertClassShift,
		Expr: fmt.Sprintf("abs(\n  %s\n  / ignoring (class) group_left\n  %s\n-\n  %s\n) > %s\nand ignoring (class)\n%s >= %d",
			g.sum("class", cls), g.sum("", cls),
			g.agg("max", "class", g.sel("mlship_reference_predicted_class_share")),
			num(s.MaxClassShareDiff),
			g.sum("", fmt.Sprintf("increase(%s[%s])", g.sel("mlship_predicted_class_total"), dw)), s.MinRows),
		For:    dur(s.ShiftFor),
		Labels: map[string]string{"severity": "warning"},
		Annotations: map[string]string{
			"summary": "Model " + where + ": the share of class {{ $labels.class }} in its predictions moved by {{ $value | humanizePercentage }}",
			"description": "Over the last " + dw + " the share of predictions of class {{ $labels.class }} by model " + where +
				" differs by {{ $value | humanizePercentage }} (absolute) from its share on the validation rows (threshold " + pct(s.MaxClassShareDiff) +
				", at least " + strconv.Itoa(s.MinRows) + " predictions). The inputs or the world changed: look at the drift panels and retrain if the new distribution is real.",
		},
	})

	// Prediction shift: regression values.
	// Predicted values may be negative: delta() of their sum, as for drift.
	vals := func(fn, suffix string) string {
		return g.sum("", noReset(fmt.Sprintf("%s(%s[%s])", fn, g.sel("mlship_predicted_value_"+suffix), dw), g.sel("mlship_predicted_value_count"), dw))
	}
	rules = append(rules, Rule{
		Alert: AlertValueShift,
		Expr: fmt.Sprintf("abs(\n  %s\n/\n  %s\n-\n  %s\n)\n/\n%s\n> %s\nand\n%s >= %d",
			vals("delta", "sum"), vals("increase", "count"),
			g.agg("max", "", g.sel("mlship_reference_predicted_value_mean")),
			g.agg("max", "", g.sel("mlship_reference_predicted_value_std")),
			num(s.MaxValueMeanShift),
			g.sum("", fmt.Sprintf("increase(%s[%s])", g.sel("mlship_predicted_value_count"), dw)), s.MinRows),
		For:    dur(s.ShiftFor),
		Labels: map[string]string{"severity": "warning"},
		Annotations: map[string]string{
			"summary": "Model " + where + ": the mean of its predicted values moved by {{ $value | printf \"%.2f\" }} std",
			"description": "Over the last " + dw + " the mean value predicted by model " + where +
				" is {{ $value | printf \"%.2f\" }} standard deviations of the validation predictions away from their mean (threshold " + num(s.MaxValueMeanShift) +
				", at least " + strconv.Itoa(s.MinRows) + " predictions). The inputs or the world changed: look at the drift panels and retrain if the new distribution is real.",
		},
	})

	if s.Scoped {
		for i := range rules {
			for k, v := range s.ScopeLabels {
				rules[i].Labels[k] = v
			}
		}
	}
	return RuleFile{Groups: []RuleGroup{{Name: GroupName, Rules: rules}}}
}

// RulesYAML is Rules(s) as a Prometheus rules file.
func RulesYAML(s Settings) ([]byte, error) {
	return marshal(Rules(s))
}

// header starts the generated alerts.yml.
const header = `# Prometheus alert rules for mlship-serve (rule_files: in prometheus.yml).
# Generated from monitoring/rules.go (DefaultSettings) by
# "go test ./monitoring -run TestAlertsFile -update"; edit rules.go, not this file.
# The same rules, filtered to one Service, are the PrometheusRule that
# "mlship kubectl-deploy" applies (monitoring.PrometheusRule).
`

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// PrometheusRule is the YAML of a monitoring.coreos.com/v1 PrometheusRule
// named name in namespace with the alert rules (DefaultSettings) filtered to
// the series of the model served by Service (and Deployment) name in
// namespace, as a ServiceMonitor scrapes them (labels namespace and service).
// Its labels are those of the Deployment mlship kubectl-deploy writes.
func PrometheusRule(name, namespace string) ([]byte, error) {
	if !dns1123.MatchString(name) || len(name) > 63 {
		return nil, fault.Field("name", "must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters), got %q", name)
	}
	if !dns1123.MatchString(namespace) || len(namespace) > 63 {
		return nil, fault.Field("namespace", "must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters), got %q", namespace)
	}
	s := DefaultSettings()
	s.Matchers = []string{"namespace=" + strconv.Quote(namespace), "service=" + strconv.Quote(name)}
	s.Scoped = true
	s.ScopeLabels = map[string]string{"namespace": namespace, "service": name}
	obj := prometheusRule{
		APIVersion: "monitoring.coreos.com/v1",
		Kind:       "PrometheusRule",
		Metadata: objectMeta{
			Name:      name,
			Namespace: namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       name,
				"app.kubernetes.io/instance":   name,
				"app.kubernetes.io/component":  "model-server",
				"app.kubernetes.io/part-of":    "mlship",
				"app.kubernetes.io/managed-by": "mlship",
			},
		},
		Spec: Rules(s),
	}
	return marshal(obj)
}

type prometheusRule struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       RuleFile   `yaml:"spec"`
}

type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding rules: %w", err)
	}
	return []byte(b.String()), nil
}

// gen writes the rules' PromQL.
type gen struct{ s Settings }

// sel is a selector of metric with matchers and the settings' Matchers.
func (g gen) sel(metric string, matchers ...string) string {
	all := append(append([]string(nil), matchers...), g.s.Matchers...)
	if len(all) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(all, ", ") + "}"
}

// sum sums expr per model (and the extra labels), each series joined to its
// target's mlship_model_info for the model's name.
func (g gen) sum(extra, expr string) string { return g.agg("sum", extra, expr) }

func (g gen) agg(op, extra, expr string) string {
	by := modelBy
	if extra != "" {
		by += ", " + extra
	}
	return fmt.Sprintf("%s by (%s) (%s * on (job, instance) group_left (name) %s)", op, by, expr, g.sel("mlship_model_info"))
}

func (g gen) scopeDesc() string {
	return g.s.ScopeLabels["namespace"] + "/" + g.s.ScopeLabels["service"]
}

// noReset is expr without the targets whose counter (a selector) was reset
// within window: their server restarted.
func noReset(expr, counter, window string) string {
	return fmt.Sprintf("(%s unless on (job, instance) resets(%s[%s]) > 0)", expr, counter, window)
}

// dur is d in Prometheus's duration syntax (5m, 1h30m).
func dur(d time.Duration) string { return model.Duration(d).String() }

// num is f in PromQL.
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func pct(f float64) string { return strconv.FormatFloat(f*100, 'g', -1, 64) + "%" }
