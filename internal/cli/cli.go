// Package cli is the mlship command line: cobra commands whose flags come from
// the spec of inputs (internal/spec), mapped onto each step's Config by
// internal/pipeline. It parses, calls the step, renders the result and turns
// the error into an exit code (internal/fault); nothing else.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/version"
)

// Main runs the command line and returns the process exit code (see package
// fault: 0, 1 a check failed, 2 usage or input, 3 environment, 130
// interrupted). Errors are printed as one line on stderr, prefixed with
// "mlship: ".
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := fault.Code(ctx, err)
	if err != nil {
		msg := flatten(err.Error())
		if code == fault.Interrupted {
			msg = "interrupted"
		}
		// One line, whatever the error: cobra's own errors can span several
		// ("unknown command ...\n\nDid you mean this?\n\trun\n").
		fmt.Fprintf(stderr, "mlship: %s\n", msg)
	}
	return code
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "mlship",
		Short: "Carry a model from a pull request to production",
		Long: "mlship trains a model from a CSV with gorgonia, gates it on its metrics against thresholds and the\n" +
			"baseline model, packs it with its server into an OCI image, deploys it to Kubernetes and reports it.\n" +
			"Exit codes: 0 success, 1 a check failed, 2 usage or input error, 3 the environment failed (retry), 130 interrupted.",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addGlobalFlags(root)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fault.Input(err) })
	root.AddCommand(newTrainCmd(stdout, stderr), newGateCmd(stdout), newImageCmd(stdout, stderr), newDeployCmd(stdout, stderr),
		newReportCmd(stdout), newCommentCmd(stdout, stderr), newRunCmd(stdout, stderr), newVersionCmd(stdout), newGenCmd(stdout))
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

// publish sets a step's outputs where the job runs: GitHub step outputs, and a
// dotenv file when --dotenv is given (GitLab's artifacts: reports: dotenv).
func publish(cmd *cobra.Command, values map[string]string) error {
	path, _ := cmd.Flags().GetString("dotenv")
	return platform.Detect(os.Getenv, cmd.OutOrStdout()).SetOutputs(values, path)
}
