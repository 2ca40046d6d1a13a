// Package cli is the mlship command line: cobra commands that map flags and
// mlship.yaml onto each step's Config, run the step and turn its Result into
// output and an exit code. Steps know nothing of flags or CI variables.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/version"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitFailed    = 1 // the step ran and failed: a gate check, a rollout
	ExitUserError = 2 // usage, configuration or input error: nothing was produced
)

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs the command line and returns the process exit code. Errors are
// printed as one line on stderr, prefixed with "mlship: ".
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	// One line, whatever the error: cobra's own errors can span several
	// ("unknown command ...\n\nDid you mean this?\n\trun\n").
	fmt.Fprintf(stderr, "mlship: %s\n", flatten(err.Error()))
	var failed *gate.FailedError
	var rollout *deploy.RolloutError
	if errors.As(err, &failed) || errors.As(err, &rollout) {
		return ExitFailed
	}
	return ExitUserError
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "mlship",
		Short:         "Carry a model from a pull request to production",
		Long:          "mlship trains a model from a CSV with gorgonia, gates it on its metrics against thresholds and the\nbaseline model, and (in later steps) packs, deploys and reports it. See README.md.",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("dotenv", "", "GitLab CI: also write the step's outputs to this dotenv file (for artifacts: reports: dotenv)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newTrainCmd(stdout, stderr), newGateCmd(stdout, stderr), newImageCmd(stdout, stderr), newDeployCmd(stdout, stderr), newReportCmd(stdout), newCommentCmd(stdout, stderr), newRunCmd(stdout, stderr), newVersionCmd(stdout))
	return root
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the mlship version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, version.Version)
			return err
		},
	}
}

// publish sets a step's outputs where the job runs: GitHub step outputs, a GitLab
// dotenv file (--dotenv), nothing in a terminal.
func publish(cmd *cobra.Command, values map[string]string) error {
	path, _ := cmd.Flags().GetString("dotenv")
	return platform.Detect(os.Getenv, cmd.OutOrStdout()).SetOutputs(values, path)
}

// loadConfig reads mlship.yaml when a --config was given; nil otherwise.
func loadConfig(path string) (*config.File, error) {
	if path == "" {
		return nil, nil
	}
	return config.Load(path)
}

// changed reports whether a flag was given on the command line.
func changed(fs *pflag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Changed
}
