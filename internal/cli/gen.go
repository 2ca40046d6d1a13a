package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/gen"
)

// newGenCmd is the hidden generator: the README's tables and the spec as JSON
// come from internal/spec, never by hand.
func newGenCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "gen",
		Short:  "Write what is generated from the spec of inputs and outputs",
		Hidden: true,
	}
	var check bool
	readme := &cobra.Command{
		Use:   "readme [README.md]",
		Short: "Rewrite the README's generated reference tables",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := "README.md"
			if len(args) == 1 {
				path = args[0]
			}
			changed, err := gen.UpdateReadme(path, check)
			if err != nil {
				return err
			}
			if changed && check {
				return fault.Check(fmt.Errorf("%s is not current: run `mlship gen readme`", path))
			}
			return nil
		},
	}
	readme.Flags().BoolVar(&check, "check", false, "exit 1 when the file is not current, change nothing")
	specCmd := &cobra.Command{
		Use:   "spec",
		Short: "Print the spec of every step's inputs and outputs as JSON",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := gen.JSON()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		},
	}
	var checkFiles bool
	files := &cobra.Command{
		Use:   "files [ROOT]",
		Short: "Rewrite the generated front-end files (actions/*/action.yml, action.yml)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			root := "."
			if len(args) == 1 {
				root = args[0]
			}
			stale, err := gen.WriteFiles(root, gen.Files(), checkFiles)
			if err != nil {
				return err
			}
			if len(stale) > 0 && checkFiles {
				return fault.Check(fmt.Errorf("not current: %s: run `mlship gen files`", strings.Join(stale, ", ")))
			}
			return nil
		},
	}
	files.Flags().BoolVar(&checkFiles, "check", false, "exit 1 when a file is not current, change nothing")
	cmd.AddCommand(readme, specCmd, files)
	return cmd
}
