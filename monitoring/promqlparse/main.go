// Command promqlparse parses PromQL expressions with Prometheus's own parser
// (github.com/prometheus/prometheus/promql/parser) for monitoring's tests: it
// reads a JSON array of expressions on stdin and writes, for each, the parse
// error or the series selectors it contains (metric name and label matchers).
//
// It is a module of its own so that mlship's go.mod does not require
// github.com/prometheus/prometheus: that module's graph (cloud SDKs, modern
// genproto) meets gorgonia's old one (genproto and cloud.google.com/go of 2021)
// in ambiguous imports that make `go mod tidy` fail, and resolving them
// upgrades gonum under gorgonia.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// Result is what promqlparse writes for one expression.
type Result struct {
	Error     string     `json:"error,omitempty"`
	Selectors []Selector `json:"selectors,omitempty"`
}

// Selector is one vector selector (also those inside range selectors and
// subqueries).
type Selector struct {
	Name     string    `json:"name"`
	Matchers []Matcher `json:"matchers"`
	Text     string    `json:"text"`
}

// Matcher is a label matcher; Type is =, !=, =~ or !~.
type Matcher struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintf(os.Stderr, "promqlparse: reading a JSON array of strings on stdin: %v\n", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	out := make([]Result, len(exprs))
	for i, s := range exprs {
		e, err := p.ParseExpr(s)
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			sel := Selector{Name: vs.Name, Text: vs.String()}
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					continue
				}
				sel.Matchers = append(sel.Matchers, Matcher{Name: m.Name, Type: m.Type.String(), Value: m.Value})
			}
			out[i].Selectors = append(out[i].Selectors, sel)
			return nil
		})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "promqlparse: %v\n", err)
		os.Exit(1)
	}
}
