// Package monitoring holds what watches a deployed mlship model: the Grafana
// dashboard (dashboard.json) and the Prometheus alert rules, as a rules file
// (alerts.yml, generated from rules.go) and as a Prometheus Operator
// PrometheusRule for one Service (PrometheusRule).
//
// The files are embedded so that the mlship binary can write them out; tests
// keep alerts.yml equal to Rules(DefaultSettings()), check both with promtool,
// fire and clear every alert with promtool test rules, parse the dashboard's
// PromQL with Prometheus's parser against the metrics of a real mlship-serve,
// and run the drift alert in a real Prometheus.
package monitoring

import _ "embed"

// AlertsYAML is alerts.yml: the alert rules with DefaultSettings, for every
// mlship-serve target a Prometheus scrapes.
//
//go:embed alerts.yml
var AlertsYAML []byte

// DashboardJSON is dashboard.json: the Grafana dashboard of a deployed model.
//
//go:embed dashboard.json
var DashboardJSON []byte
