// Package cli is the mlship command line: cobra commands whose flags come from
// the spec of inputs (internal/spec), mapped onto each step's Config by
// internal/pipeline. It parses, calls the step, renders the result and turns
// the error into an exit code (internal/fault); nothing else.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/spec"
	"github.com/mlship/mlship/internal/version"
)

// Main runs the command line and returns the process exit code (see package
// fault: 0, 1 a check failed, 2 usage or input, 3 environment, 130
// interrupted). Errors are printed as one line on stderr, prefixed with
// "mlship: ".
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	ran, err := root.ExecuteContextC(ctx)
	code := fault.Code(ctx, err)
	gh := workflowCommands(ran, stdout, stderr)
	if err != nil {
		msg := flatten(err.Error())
		if code == fault.Interrupted {
			msg = "interrupted"
		}
		// On GitHub, an annotation on the run's page too (a failed gate has
		// one per check already).
		var failed *gate.FailedError
		if !errors.As(err, &failed) {
			gh.ErrorTitled(fmt.Sprintf("mlship %s: %s (exit %d)", commandName(ran), exitMeaning[code], code), msg)
		}
		// One line, whatever the error: cobra's own errors can span several
		// ("unknown command ...\n\nDid you mean this?\n\trun\n").
		fmt.Fprintf(stderr, "mlship: %s\n", msg)
	}
	if grouped(ran) {
		gh.EndGroup()
	}
	return code
}

var exitMeaning = map[int]string{
	fault.Failed:      "a check failed",
	fault.Usage:       "bad input",
	fault.Environment: "the environment failed",
	fault.Interrupted: "interrupted",
}

func commandName(cmd *cobra.Command) string {
	if cmd == nil {
		return ""
	}
	return cmd.Name()
}

// workflowCommands is where GitHub workflow commands (groups, annotations,
// masks) go: stdout, or stderr when stdout carries JSON.
func workflowCommands(cmd *cobra.Command, stdout, stderr io.Writer) *platform.Platform {
	out := stdout
	if cmd != nil {
		if j, err := cmd.Flags().GetBool("json"); err == nil && j {
			out = stderr
		}
	}
	return platform.Detect(os.Getenv, out)
}

// grouped says whether the command's log is a group on GitHub (steps, not
// version, help or gen; run makes one group per step itself).
func grouped(cmd *cobra.Command) bool {
	return cmd != nil && spec.Lookup(cmd.Name()) != nil && cmd.Name() != "run" && cmd.Parent() != nil && cmd.Parent().Parent() == nil
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
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if grouped(cmd) {
				workflowCommands(cmd, stdout, stderr).Group("mlship " + cmd.Name())
			}
		},
	}
	addGlobalFlags(root)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fault.Input(err) })
	root.AddCommand(newTrainCmd(stdout, stderr), newGateCmd(stdout), newImageCmd(stdout, stderr), newDeployCmd(stdout, stderr),
		newReportCmd(stdout), newCommentCmd(stdout, stderr), newMonitorCmd(stdout, stderr), newRunCmd(stdout, stderr), newVersionCmd(stdout), newGenCmd(stdout))
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

// publish sets a step's outputs where the job runs: GitHub step outputs, a
// dotenv file when --dotenv is given (GitLab's artifacts: reports: dotenv),
// and the result as JSON in --json-file.
func publish(cmd *cobra.Command, values map[string]string, result any) error {
	path, _ := cmd.Flags().GetString("dotenv")
	if err := platform.Detect(os.Getenv, cmd.OutOrStdout()).SetOutputs(values, path); err != nil {
		return err
	}
	jf, _ := cmd.Flags().GetString("json-file")
	if jf == "" || result == nil {
		return nil
	}
	b, err := json.MarshalIndent(result, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(jf, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing --json-file %q: %w", jf, err)
	}
	return nil
}
