package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/report"
	"github.com/mlship/mlship/internal/spec"
)

// ReportInput gathers what a report shows: the model card, the gate's result
// (from gate-json, else the gate section of mlship.yaml evaluated now), the
// image and the deployment.
func ReportInput(ctx context.Context, src ReportSource, file *spec.File, getenv Getenv) (report.Input, error) {
	if src.ModelDir == "" {
		return report.Input{}, fault.Field("model", "is required (the model directory)")
	}
	card, err := model.ReadCard(src.ModelDir)
	if err != nil {
		return report.Input{}, err
	}
	in := report.Input{Card: card, RunURL: src.RunURL}
	if in.RunURL == "" {
		in.RunURL = platform.Detect(getenv, io.Discard).RunURL()
	}
	switch {
	case src.NoGate:
	case src.GateJSON != "":
		var g gate.Result
		if err := readJSON(src.GateJSON, "gate result", &g); err != nil {
			return in, err
		}
		in.Gate = &g
	case hasChecks(file):
		r, err := spec.Resolve(spec.Lookup("evaluate-gate"), spec.Sources{
			File: file, Getenv: getenv, Set: map[string]any{"model": src.ModelDir, "junit": ""},
			Spell: FileSpelling(file),
		})
		if err != nil {
			return in, err
		}
		gcfg, err := GateConfig(r, nil)
		if err != nil {
			return in, err
		}
		res, err := gate.Run(ctx, gcfg)
		var failed *gate.FailedError
		if err != nil && !errors.As(err, &failed) {
			return in, err
		}
		in.Gate = res
	}
	if src.ImageJSON != "" {
		in.Image = &report.Image{}
		if err := readJSON(src.ImageJSON, "image result", in.Image); err != nil {
			return in, err
		}
	}
	if src.DeployJSON != "" {
		in.Deploy = &report.Deploy{}
		if err := readJSON(src.DeployJSON, "deploy result", in.Deploy); err != nil {
			return in, err
		}
	}
	return in, nil
}

// hasChecks reports whether mlship.yaml's gate section has a bound.
func hasChecks(file *spec.File) bool {
	for _, k := range []string{"gate.min", "gate.max", "gate.max_drop", "gate.max_drop_rel"} {
		if file.Has(k) {
			return true
		}
	}
	return false
}

func readJSON(path, what string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fault.Inputf("reading %s %q: %w", what, path, unwrapPath(err))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fault.Inputf("reading %s %q: %w", what, path, err)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// FileSpelling names an input that no source gave by its mlship.yaml key (for
// `mlship run`, which takes the steps' inputs from the file only).
func FileSpelling(file *spec.File) func(spec.Input) string {
	return func(in spec.Input) string {
		name := in.Key
		if name == "" {
			name = in.Name
		}
		if file == nil {
			return name
		}
		return fmt.Sprintf("%s: %s", file.Path, name)
	}
}

// OpenMetrics renders the metrics (and the baseline's) for GitLab's metrics report.
func OpenMetrics(in report.Input) string {
	cur := map[string]float64(in.Card.Metrics)
	var base map[string]float64
	if in.Gate != nil {
		if in.Gate.Metrics != nil {
			cur = in.Gate.Metrics
		}
		base = in.Gate.Baseline
	}
	keys := make([]string, 0, len(cur))
	for k := range cur {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		n := "mlship_" + strings.NewReplacer("-", "_", ".", "_").Replace(k)
		fmt.Fprintf(&b, "# TYPE %s gauge\n%s %s\n", n, n, strconv.FormatFloat(cur[k], 'g', -1, 64))
		if v, ok := base[k]; ok {
			fmt.Fprintf(&b, "# TYPE %s_baseline gauge\n%s_baseline %s\n", n, n, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}
