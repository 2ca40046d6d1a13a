package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// notExported are the series the dashboard and rules may name that
// mlship-serve does not export: Prometheus's own (up, ALERTS) and cAdvisor's
// (the kubelet's container metrics, on Kubernetes).
var notExported = map[string]string{
	"up":                                 "Prometheus: a target's scrape health",
	"ALERTS":                             "Prometheus: the alerts of its rules",
	"container_cpu_usage_seconds_total":  "cAdvisor (kubelet)",
	"container_memory_working_set_bytes": "cAdvisor (kubelet)",
}

// targetLabels are the labels Prometheus attaches at scrape time (static
// configs, Kubernetes service discovery, ServiceMonitors); queries may match
// them although mlship-serve does not export them.
var targetLabels = []string{"job", "instance", "namespace", "service", "pod", "container", "endpoint"}

// exported scrapes a real mlship-serve for a classifier and one for a
// regression model, after a good and a bad request each, and returns their
// series by name.
func exported(t *testing.T) map[string][]series {
	t.Helper()
	out := map[string][]series{}
	for _, task := range []string{"binary", "regression"} {
		dir, _ := trainToy(t, task)
		url := startServe(t, dir)
		predict(t, url, [][]float64{{50, -3, 0}}, 200)
		predict(t, url, [][]float64{{50, -3}}, 400)
		for _, s := range scrape(t, url) {
			out[s.name] = append(out[s.name], s)
		}
	}
	return out
}

// query is one PromQL query of the dashboard and where it is.
type query struct {
	where, expr string
}

// dashboard is the parts of dashboard.json the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string          `json:"name"`
			Expr       string          `json:"expr"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource json.RawMessage          `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource json.RawMessage `json:"datasource"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

func (v variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	require.NoError(t, json.Unmarshal(DashboardJSON, &d))
	return d
}

// allPanels are the dashboard's panels, those inside rows too.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// queries are the PromQL queries of the dashboard: panels' targets,
// annotations, and the selectors of label_values variables.
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, query{fmt.Sprintf("annotation %q", a.Name), a.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.query())
		require.NotNil(t, m, "variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, v.query())
		out = append(out, query{fmt.Sprintf("variable %s (label %s)", v.Name, m[2]), m[1]})
	}
	return out
}

// placeholder stands for the value of a query variable in a substituted
// query; matchers with it are not checked against the scraped values.
const placeholder = "placeholder"

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)`)

// substitute replaces Grafana's variables in expr with values PromQL parses:
// the global intervals with 5m, interval variables with their current value,
// others with a placeholder. An unknown variable is an error.
func (d dashboard) substitute(expr string) (string, error) {
	vals := map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "interval", "custom", "constant":
			vals[v.Name] = fmt.Sprint(v.Current.Value)
		default:
			vals[v.Name] = placeholder
		}
	}
	var bad []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sm := grafanaVar.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		v, ok := vals[name]
		if !ok {
			bad = append(bad, m)
		}
		return v
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("unknown variables %v", bad)
	}
	return out, nil
}

// parsed is promqlparse's answer for one expression.
type parsed struct {
	Error     string `json:"error"`
	Selectors []struct {
		Name     string `json:"name"`
		Text     string `json:"text"`
		Matchers []struct {
			Name, Type, Value string
		} `json:"matchers"`
	} `json:"selectors"`
}

var (
	promqlparseOnce sync.Once
	promqlparseBin  string
	promqlparseErr  error
)

// parseQueries parses exprs with Prometheus's own parser: the promqlparse
// command (a module of its own, see its doc), built once per test binary.
func parseQueries(t *testing.T, exprs []string) []parsed {
	t.Helper()
	promqlparseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "promqlparse")
		if err != nil {
			promqlparseErr = err
			return
		}
		promqlparseBin = filepath.Join(dir, "promqlparse")
		cmd := exec.Command("go", "build", "-o", promqlparseBin, ".")
		cmd.Dir = "promqlparse"
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			promqlparseErr = fmt.Errorf("building monitoring/promqlparse: %v\n%s", err, out)
		}
	})
	require.NoError(t, promqlparseErr)
	in, err := json.Marshal(exprs)
	require.NoError(t, err)
	cmd := exec.Command(promqlparseBin)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err)
	var res []parsed
	require.NoError(t, json.Unmarshal(out, &res))
	require.Len(t, res, len(exprs))
	return res
}

// matches reports whether value v satisfies a matcher of type typ with value
// want, with PromQL's semantics (regular expressions anchored at both ends).
func matches(typ, want, v string) bool {
	switch typ {
	case "=":
		return v == want
	case "!=":
		return v != want
	}
	re := regexp.MustCompile("^(?:" + want + ")$")
	if typ == "=~" {
		return re.MatchString(v)
	}
	return !re.MatchString(v)
}

// checkMetrics returns the metric names of the series p selects and what is
// wrong with them: a name mlship-serve does not export (outside notExported),
// a label no exported series of that name has (outside targetLabels), or an
// equality matcher no exported series satisfies.
func checkMetrics(p parsed, have map[string][]series) (names, problems []string) {
	for _, sel := range p.Selectors {
		name := sel.Name
		if name == "" {
			problems = append(problems, fmt.Sprintf("selector %s names no metric", sel.Text))
			continue
		}
		names = append(names, name)
		if _, ok := notExported[name]; ok {
			continue
		}
		ss, ok := have[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("metric %s is not exported by mlship-serve", name))
			continue
		}
		for _, m := range sel.Matchers {
			if slices.Contains(targetLabels, m.Name) {
				continue
			}
			found, matched := false, false
			for _, s := range ss {
				v, ok := s.labels[m.Name]
				found = found || ok
				matched = matched || (ok && matches(m.Type, m.Value, v))
			}
			switch {
			case !found:
				problems = append(problems, fmt.Sprintf("metric %s has no label %s", name, m.Name))
			case m.Type == "=" && !matched && m.Value != placeholder:
				problems = append(problems, fmt.Sprintf("no series %s{%s=%q}", name, m.Name, m.Value))
			}
		}
	}
	return names, problems
}

// TestDashboardQueries parses every query of dashboard.json with Prometheus's
// parser and checks each series it selects against what a real mlship-serve
// exports; and that the dashboard shows every mlship metric.
func TestDashboardQueries(t *testing.T) {
	d := readDashboard(t)
	have := exported(t)
	qs := d.queries(t)
	require.Greater(t, len(qs), 20)
	exprs := make([]string, len(qs))
	for i, q := range qs {
		expr, err := d.substitute(q.expr)
		assert.NoError(t, err, q.where)
		exprs[i] = expr
	}
	used := map[string]bool{}
	for i, p := range parseQueries(t, exprs) {
		if !assert.Empty(t, p.Error, "%s: %s", qs[i].where, exprs[i]) {
			continue
		}
		names, problems := checkMetrics(p, have)
		assert.Empty(t, problems, qs[i].where)
		for _, n := range names {
			used[n] = true
		}
	}
	// Every mlship metric is on the dashboard (a histogram by one of its series).
	var missing []string
	for name := range have {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !strings.HasPrefix(name, "mlship_") || used[name] || used[base+"_bucket"] || used[base+"_sum"] || used[base+"_count"] {
			continue
		}
		missing = append(missing, name)
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "mlship metrics the dashboard does not show")
	for name := range notExported {
		if name != "ALERTS" && name != "up" {
			assert.True(t, used[name], "%s is listed in notExported but unused", name)
		}
	}
}

// TestRuleQueries checks the alert rules' series likewise, for alerts.yml
// and for the PrometheusRule's filtered rules.
func TestRuleQueries(t *testing.T) {
	have := exported(t)
	scoped := DefaultSettings()
	scoped.Matchers, scoped.Scoped = []string{`namespace="prod"`, `service="heart"`}, true
	for name, s := range map[string]Settings{"alerts.yml": DefaultSettings(), "PrometheusRule": scoped} {
		rules := Rules(s).Groups[0].Rules
		exprs := make([]string, len(rules))
		for i, r := range rules {
			exprs[i] = r.Expr
		}
		for i, p := range parseQueries(t, exprs) {
			require.Empty(t, p.Error, "%s %s", name, rules[i].Alert)
			_, problems := checkMetrics(p, have)
			assert.Empty(t, problems, "%s %s", name, rules[i].Alert)
		}
	}
}

// TestDashboardLayout checks the dashboard's frame: schema version, the
// datasource and model variables, every query on the datasource variable,
// unique panel ids and panels that fit the 24-column grid without overlap.
func TestDashboardLayout(t *testing.T) {
	d := readDashboard(t)
	assert.Equal(t, 39, d.SchemaVersion)
	assert.Equal(t, "mlship-model", d.UID)
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	require.Contains(t, vars, "datasource")
	assert.Equal(t, "datasource", vars["datasource"].Type)
	assert.JSONEq(t, `"prometheus"`, string(vars["datasource"].Query))
	require.Contains(t, vars, "model")
	assert.Equal(t, "label_values(mlship_model_info, name)", vars["model"].query())

	const ds = `{"type": "prometheus", "uid": "${datasource}"}`
	ids := map[int]string{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		assert.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "panel %q: gridPos %+v", p.Title, g)
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		assert.JSONEq(t, ds, string(p.Datasource), "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q", p.Title)
		for _, tg := range p.Targets {
			assert.JSONEq(t, ds, string(tg.Datasource), "panel %q target %s", p.Title, tg.RefID)
		}
	}
}

// TestSubstitute checks the variable substitution the query tests rely on.
func TestSubstitute(t *testing.T) {
	d := readDashboard(t)
	got, err := d.substitute(`rate(x{name=~"$model", ns="${namespace}", a="[[model]]"}[$__rate_interval]) / y[$window]`)
	require.NoError(t, err)
	assert.Equal(t, `rate(x{name=~"placeholder", ns="placeholder", a="placeholder"}[5m]) / y[30m]`, got)
	_, err = d.substitute(`x{name="$modle"}`)
	require.ErrorContains(t, err, "$modle")
}

// TestCheckMetrics checks that the query checks catch what they are for.
func TestCheckMetrics(t *testing.T) {
	have := map[string][]series{
		"mlship_http_requests_total":         {{"mlship_http_requests_total", map[string]string{"route": "predict", "code": "200"}}},
		"mlship_input_feature_zscore_bucket": {{"mlship_input_feature_zscore_bucket", map[string]string{"feature": "age", "le": "2"}}},
	}
	for _, tc := range []struct {
		expr, problem string
	}{
		{`sum(rate(mlship_http_requests_total{route="predict", namespace="x"}[5m]))`, ""},
		{`mlship_input_feature_zscore_bucket{le="2", feature="placeholder"}`, ""},
		{`up == 0 and on (job) container_cpu_usage_seconds_total`, ""},
		{`rate(mlship_http_request_total[5m])`, "metric mlship_http_request_total is not exported by mlship-serve"},
		{`mlship_http_requests_total{rout="predict"}`, "metric mlship_http_requests_total has no label rout"},
		{`mlship_input_feature_zscore_bucket{le="2.0"}`, `no series mlship_input_feature_zscore_bucket{le="2.0"}`},
		{`{__name__=~"mlship_.*"}`, `selector {__name__=~"mlship_.*"} names no metric`},
		{`sum(`, "parse error"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			p := parseQueries(t, []string{tc.expr})[0]
			if tc.problem == "parse error" {
				assert.Contains(t, p.Error, "parse error")
				return
			}
			require.Empty(t, p.Error)
			_, problems := checkMetrics(p, have)
			if tc.problem == "" {
				assert.Empty(t, problems)
			} else {
				assert.Equal(t, []string{tc.problem}, problems)
			}
		})
	}
}
