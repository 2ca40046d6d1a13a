package pipeline

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/train"
)

// The steps' results as text, for a terminal or a CI log.

// TrainText prints what train produced.
func TrainText(w io.Writer, r *train.Result) error {
	c := r.Card
	fmt.Fprintf(w, "model     %s (%s, %s)\n", r.ModelDir, c.Task, c.Network.String())
	fmt.Fprintf(w, "data      %s sha256:%s, %d rows, %d missing values imputed\n", c.Data.File, short(c.Data.SHA256), c.Data.Rows, c.Data.Missing)
	fmt.Fprintf(w, "training  best epoch %d of %d, %.0f samples/s\n", c.Training.BestEpoch, c.Training.EpochsRun, r.SamplesPerSecond)
	fmt.Fprintf(w, "metrics   (test split, %d rows)\n", c.Data.Split.Test)
	return MetricsText(w, r.Metrics, string(c.Task))
}

// MetricsText prints metrics in the task's canonical order.
func MetricsText(w io.Writer, v metrics.Values, task string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	seen := map[string]bool{}
	for _, name := range metrics.Names(task) {
		if x, ok := v[name]; ok {
			fmt.Fprintf(tw, "  %s\t%s\n", name, strconv.FormatFloat(x, 'f', 4, 64))
			seen[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(v)) {
		if !seen[name] {
			fmt.Fprintf(tw, "  %s\t%s\n", name, strconv.FormatFloat(v[name], 'f', 4, 64))
		}
	}
	return tw.Flush()
}

// GateText prints the gate's table and verdict.
func GateText(w io.Writer, modelDir string, res *gate.Result) error {
	fmt.Fprintf(w, "evaluate-gate: %s (metrics from %s)\n", modelDir, res.Source)
	fmt.Fprint(w, res.Table())
	verdict := "PASSED"
	if !res.Passed {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "gate %s: %s\n", verdict, res.Reason)
	return err
}

// ImageText prints what build-push-image produced.
func ImageText(w io.Writer, r *image.Result) error {
	fmt.Fprintf(w, "image      %s\n", r.Ref)
	fmt.Fprintf(w, "digest     %s\n", r.Digest)
	fmt.Fprintf(w, "tags       %s\n", strings.Join(r.Tags, ", "))
	fmt.Fprintf(w, "platforms  %s\n", strings.Join(r.Platforms, ", "))
	fmt.Fprintf(w, "size       %.1f MB compressed (one platform)\n", float64(r.SizeCompressed)/1e6)
	fmt.Fprintf(w, "smoke test %s\n", r.Smoke)
	var where []string
	if r.Pushed {
		where = append(where, "pushed")
	}
	if r.OCILayout != "" {
		where = append(where, "OCI layout "+r.OCILayout)
	}
	if r.Tarball != "" {
		where = append(where, "tarball "+r.Tarball)
	}
	_, err := fmt.Fprintf(w, "written    %s\n", strings.Join(where, ", "))
	return err
}

// DeployText prints what kubectl-deploy did.
func DeployText(w io.Writer, res *deploy.Result) error {
	_, err := fmt.Fprintf(w, "deployment %s/%s at revision %s, image %s, service %s\n", res.Namespace, res.Deployment, res.Revision, res.Image, res.Service)
	return err
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
