package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/train"
)

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	var out string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "run [DIR]",
		Short: "Run the whole pipeline on a project directory holding mlship.yaml",
		Long: `run is the main job: it reads DIR/mlship.yaml (default DIR: .) and runs the pipeline as far as
it exists: train -> evaluate-gate -> report on the terminal. Outputs go under --out (default
mlship-out/NAME): the model directory (model/) and the gate's JUnit report (junit.xml). No
registry or cluster is needed.`,
		Example: `  mlship run examples/heart-disease`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			file, err := config.Load(dir)
			if err != nil {
				return err
			}
			// The same resolution as "mlship train --config DIR" and
			// "mlship evaluate-gate --config DIR", with the outputs placed under --out.
			tf := &trainFlags{configPath: file.Path}
			tfs := pflag.NewFlagSet("train", pflag.ContinueOnError)
			addTrainFlags(tfs, tf)
			cfg, err := tf.resolve(tfs)
			if err != nil {
				return err
			}
			if cfg.Name == "" {
				cfg.Name = filepath.Base(filepath.Clean(file.Dir))
				if cfg.Name == "." || cfg.Name == string(filepath.Separator) {
					cfg.Name = "model"
				}
			}
			base := out
			if !changed(cmd.Flags(), "out") {
				base = filepath.Join(out, cfg.Name)
			}
			cfg.OutDir = filepath.Join(base, "model")
			if !quiet {
				cfg.Log = stderr
			}

			gf := &gateFlags{}
			gfs := pflag.NewFlagSet("evaluate-gate", pflag.ContinueOnError)
			addGateFlags(gfs, gf)
			if err := gfs.Set("model", cfg.OutDir); err != nil {
				return err
			}
			if file.Gate.JUnit == "" {
				if err := gfs.Set("junit", filepath.Join(base, "junit.xml")); err != nil {
					return err
				}
			}
			gcfg, err := gf.resolve(gfs, file)
			if err != nil {
				return err
			}

			fmt.Fprintf(stdout, "== train (%s)\n", file.Path)
			res, err := train.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := writeTrainText(stdout, res); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "\n== evaluate-gate\n")
			err = runGate(cmd, stdout, gcfg, false)
			var failed *gate.FailedError
			if err != nil && !errors.As(err, &failed) {
				return err
			}
			fmt.Fprintf(stdout, "\noutputs: %s (model card, weights, metrics), %s\n", cfg.OutDir, gcfg.JUnitPath)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "mlship-out", "output directory (default: mlship-out/NAME)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}
