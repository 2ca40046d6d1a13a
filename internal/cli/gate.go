package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/evaluate"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/metrics"
)

type gateFlags struct {
	configPath string
	cfg        gate.Config
	insecure   bool
	min, max   metricMap
	drop, rel  metricMap
	jsonOut    bool
}

func addGateFlags(fs *pflag.FlagSet, f *gateFlags) {
	c := &f.cfg
	fs.StringVar(&c.ModelDir, "model", "", "model directory written by mlship train (default: the config's train.out)")
	fs.StringVar(&c.DataPath, "data", "", "evaluate on this CSV instead of the model's held-out test split (metrics.json)")
	fs.Var(&f.min, "min", "lower bound, metric=value (repeatable, or comma separated)")
	fs.Var(&f.max, "max", "upper bound, metric=value")
	fs.StringVar(&c.Baseline, "baseline", "", "baseline model directory or metrics.json (the model in production)")
	fs.StringVar(&c.BaselineImage, "baseline-image", "", "baseline image REPO:TAG in a registry: its metrics are read from its annotations, no layers pulled")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP to the baseline image's registry (loopback registries get it without)")
	fs.Var(&f.drop, "max-drop", "largest allowed drop against the baseline, metric=amount (an increase for log_loss, mse, rmse, mae)")
	fs.Var(&f.rel, "max-drop-rel", "largest allowed relative drop against the baseline, metric=fraction (0.05 = 5%)")
	fs.StringVar(&c.JUnitPath, "junit", "", "write a JUnit XML report here (one test case per check)")
	fs.BoolVar(&c.AllowUnmeasured, "allow-unmeasured", false, "a check on a metric the model does not report is skipped instead of failing")
	fs.BoolVar(&c.AllowMissingBaseline, "allow-missing-baseline", false, "baseline checks are skipped when there is no baseline instead of failing")
}

func newGateCmd(stdout, _ io.Writer) *cobra.Command {
	f := &gateFlags{}
	cmd := &cobra.Command{
		Use:   "evaluate-gate",
		Short: "Check a model's metrics against thresholds and the baseline model",
		Long: `evaluate-gate reads the model's test-split metrics (or evaluates it on --data), checks each bound
and each allowed drop against the baseline, prints a table of every check and exits 0 when all pass,
1 when any fails (the last line says why) and 2 on usage or input errors. A check on a metric that
is not measured, or a baseline check without a baseline, fails unless allowed.`,
		Example: `  mlship evaluate-gate --model model --min accuracy=0.8 --max log_loss=0.6
  mlship evaluate-gate --model model --baseline prod-model --max-drop accuracy=0.02 --junit gate.xml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := loadConfig(f.configPath)
			if err != nil {
				return err
			}
			cfg, err := f.resolve(cmd.Flags(), file)
			if err != nil {
				return err
			}
			res, err := runGate(cmd, stdout, cfg, f.jsonOut)
			if res != nil {
				if perr := publish(cmd, map[string]string{"passed": strconv.FormatBool(res.Passed), "reason": res.Reason}); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.configPath, "config", "", "mlship.yaml (or a directory holding one); flags override it")
	addGateFlags(fs, f)
	fs.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	return cmd
}

// resolve merges the config file's gate section and the flags; a metric given in
// a flag overrides the same metric in the file.
func (f *gateFlags) resolve(fs *pflag.FlagSet, file *config.File) (gate.Config, error) {
	cfg := f.cfg
	merge := func(fromFile map[string]float64, fromFlags metricMap) map[string]float64 {
		out := map[string]float64{}
		maps.Copy(out, fromFile)
		maps.Copy(out, fromFlags)
		if len(out) == 0 {
			return nil
		}
		return out
	}
	var g config.Gate
	if file != nil {
		g = file.Gate
		if !changed(fs, "model") && file.Train.Out != "" {
			cfg.ModelDir = file.Resolve(file.Train.Out)
		}
		if !changed(fs, "baseline") && !changed(fs, "baseline-image") && g.Baseline != "" {
			cfg.Baseline = file.Resolve(g.Baseline)
		}
		if !changed(fs, "baseline-image") && !changed(fs, "baseline") && g.BaselineImage != "" {
			cfg.BaselineImage = g.BaselineImage
		}
		if !changed(fs, "junit") && g.JUnit != "" {
			cfg.JUnitPath = file.Resolve(g.JUnit)
		}
		if !changed(fs, "allow-unmeasured") {
			cfg.AllowUnmeasured = g.AllowUnmeasured
		}
		if !changed(fs, "allow-missing-baseline") {
			cfg.AllowMissingBaseline = g.AllowMissingBaseline
		}
	}
	cfg.Min = merge(g.Min, f.min)
	cfg.Max = merge(g.Max, f.max)
	cfg.MaxDrop = merge(g.MaxDrop, f.drop)
	cfg.MaxDropRel = merge(g.MaxDropRel, f.rel)
	if cfg.ModelDir == "" {
		return cfg, usageError{errors.New("no model directory (--model)")}
	}
	if cfg.DataPath != "" {
		cfg.Evaluate = evaluate.File
	}
	if ref := cfg.BaselineImage; ref != "" {
		insecure := f.insecure
		cfg.LoadBaseline = func(ctx context.Context) (metrics.Values, error) {
			v, _, err := image.BaselineMetrics(ctx, ref, image.Config{Insecure: insecure})
			return v, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{oneLine(err)}
	}
	return cfg, nil
}

// runGate runs the gate and prints its table (or JSON); a failed gate comes back
// as *gate.FailedError, which Main turns into exit code 1.
func runGate(cmd *cobra.Command, w io.Writer, cfg gate.Config, jsonOut bool) (*gate.Result, error) {
	res, err := gate.Run(cmd.Context(), cfg)
	if res == nil {
		return nil, err
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return res, jerr
		}
	} else {
		fmt.Fprintf(w, "evaluate-gate: %s (metrics from %s)\n", cfg.ModelDir, res.Source)
		fmt.Fprint(w, res.Table())
		verdict := "PASSED"
		if !res.Passed {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "gate %s: %s\n", verdict, res.Reason)
	}
	return res, err
}

// writeMetrics prints metrics in the task's canonical order.
func writeMetrics(w io.Writer, v metrics.Values, task string) error {
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
