package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/monitor"
	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/report"
	"github.com/mlship/mlship/internal/version"
)

func newMonitorCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd, step := command("monitor", `monitor reads a deployed model's live traffic over --window from Prometheus (the series
mlship-serve exports) and checks it: the population stability index (PSI) of each feature's
z-score histogram against the training rows' shares in the same buckets (the model card's
reference, which mlship-serve also exports), the same for the predictions, the error rate (5xx
and 429) and the 99th percentile latency. It prints the Markdown report (which features drifted,
by how much, since when; --out, the step summary), writes the outputs, and exits 1 on a breach,
3 when Prometheus cannot be reached, 0 otherwise. Too little traffic is reported as such, not as
drift. With --trigger it starts retraining on a breach: GitHub repository_dispatch (event type
mlship-retrain, the result in client_payload) or a GitLab pipeline (MLSHIP_RETRAIN=true).`,
		`  mlship monitor --prometheus http://prometheus:9090 --model heart --window 24h
  mlship monitor --prometheus $PROM_URL --model heart --selector 'namespace="prod"' --trigger github`)
	f := addStepFlags(cmd, step)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r, file, err := f.resolve(stderr, nil)
		if err != nil {
			return err
		}
		cfg, in, err := pipeline.MonitorConfig(r, file, os.Getenv)
		if err != nil {
			return err
		}
		if !f.quiet {
			cfg.Log = stderr
		}
		res, err := monitor.Run(cmd.Context(), cfg)
		if res == nil {
			return err
		}
		md := report.Monitor(res, in.RunURL, version.Version)
		p := workflowCommands(cmd, stdout, stderr)
		if cfg.Out != "" {
			if werr := fsutil.WriteFileAtomic(cfg.Out, []byte(md), 0o644); werr != nil && err == nil {
				err = fmt.Errorf("writing the report %q: %w", cfg.Out, werr)
			}
		}
		if _, serr := p.StepSummary(md); serr != nil && err == nil {
			err = serr
		}
		for _, c := range res.Checks {
			if !c.Passed {
				p.ErrorTitled("Monitor check failed: "+c.Name,
					fmt.Sprintf("model %s: %s is %s, bound %s (window %s)", res.Model, c.Name,
						strconv.FormatFloat(c.Value, 'g', 4, 64), strconv.FormatFloat(c.Bound, 'g', 4, 64), res.Window))
			}
		}
		if perr := publish(cmd, pipeline.MonitorOutputs(res), res); perr != nil && err == nil {
			err = perr
		}
		var werr error
		if f.json {
			werr = writeJSON(stdout, res)
		} else {
			werr = pipeline.MonitorText(stdout, res)
		}
		if werr != nil && err == nil {
			err = werr
		}
		return err
	}
	return cmd
}
