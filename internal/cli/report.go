package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/report"
)

// reportFlags are the inputs of a report, shared by `report` and `comment`.
type reportFlags struct {
	configPath string
	modelDir   string
	gateJSON   string
	imageJSON  string
	deployJSON string
	runURL     string
	noGate     bool
}

func addReportFlags(fs *pflag.FlagSet, f *reportFlags) {
	fs.StringVar(&f.configPath, "config", "", "mlship.yaml (or a directory holding one): its train.out is the model and its gate section is evaluated")
	fs.StringVar(&f.modelDir, "model", "", "model directory (default: the config's train.out)")
	fs.StringVar(&f.gateJSON, "gate-json", "", "the gate's result, as written by `evaluate-gate --json` (default: evaluate the config's gate section)")
	fs.StringVar(&f.imageJSON, "image-json", "", "the image, as written by `build-push-image --json`")
	fs.StringVar(&f.deployJSON, "deploy-json", "", "the deployment, as written by `kubectl-deploy --json`")
	fs.StringVar(&f.runURL, "run-url", "", "link to the CI run (default: from GitHub or GitLab variables)")
	fs.BoolVar(&f.noGate, "no-gate", false, "leave the gate out even when the config has one")
}

// input gathers what the report shows.
func (f *reportFlags) input(cmd *cobra.Command, getenv func(string) string) (report.Input, error) {
	file, err := loadConfig(f.configPath)
	if err != nil {
		return report.Input{}, err
	}
	dir := f.modelDir
	if dir == "" && file != nil && file.Train.Out != "" {
		dir = file.Resolve(file.Train.Out)
	}
	if dir == "" {
		return report.Input{}, usageError{errors.New("no model directory (--model)")}
	}
	card, err := model.ReadCard(dir)
	if err != nil {
		return report.Input{}, err
	}
	in := report.Input{Card: card, RunURL: f.runURL}
	if in.RunURL == "" {
		in.RunURL = platform.Detect(getenv, io.Discard).RunURL()
	}
	switch {
	case f.noGate:
	case f.gateJSON != "":
		var g gate.Result
		if err := readJSON(f.gateJSON, "gate result", &g); err != nil {
			return in, err
		}
		in.Gate = &g
	case file != nil && hasChecks(file.Gate):
		gf := &gateFlags{}
		gfs := pflag.NewFlagSet("evaluate-gate", pflag.ContinueOnError)
		addGateFlags(gfs, gf)
		if err := gfs.Set("model", dir); err != nil {
			return in, err
		}
		gcfg, err := gf.resolve(gfs, file)
		if err != nil {
			return in, err
		}
		gcfg.JUnitPath = ""
		res, err := gate.Run(cmd.Context(), gcfg)
		var failed *gate.FailedError
		if err != nil && !errors.As(err, &failed) {
			return in, err
		}
		in.Gate = res
	}
	if f.imageJSON != "" {
		in.Image = &report.Image{}
		if err := readJSON(f.imageJSON, "image result", in.Image); err != nil {
			return in, err
		}
	}
	if f.deployJSON != "" {
		in.Deploy = &report.Deploy{}
		if err := readJSON(f.deployJSON, "deploy result", in.Deploy); err != nil {
			return in, err
		}
	}
	return in, nil
}

func hasChecks(g config.Gate) bool {
	return len(g.Min)+len(g.Max)+len(g.MaxDrop)+len(g.MaxDropRel) > 0
}

func readJSON(path, what string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s %q: %w", what, path, unwrapPath(err))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s %q: %w", what, path, err)
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

func newReportCmd(stdout io.Writer) *cobra.Command {
	f := &reportFlags{}
	var out string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Render the Markdown report of a model (metrics, baseline diff, checks, curve, lineage)",
		Long: `report renders what the pipeline produced as Markdown: a verdict line, the metrics with the
baseline, the change and a direction mark, the gate's checks, the confusion matrix, the training
curve as a Mermaid xychart, the lineage, and the image and deployment when given. It stays under
GitHub's 65536-character comment limit. mlship comment publishes it.`,
		Example: `  mlship report --config examples/heart-disease --image-json image.json > report.md`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.input(cmd, os.Getenv)
			if err != nil {
				return err
			}
			md := report.Markdown(in)
			if out == "" {
				_, err := io.WriteString(stdout, md)
				return err
			}
			return writeFileAtomic(out, md)
		},
	}
	addReportFlags(cmd.Flags(), f)
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the report to this file (default: stdout)")
	return cmd
}

func writeFileAtomic(path, s string) error {
	if err := fsutil.WriteFileAtomic(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return nil
}
