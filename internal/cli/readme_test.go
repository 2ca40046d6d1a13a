package cli

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadmeDocumentsEveryFlag keeps the README's command reference complete: every
// flag of every command must appear in it as `--name`.
func TestReadmeDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	root := newRoot(io.Discard, io.Discard)
	for _, cmd := range root.Commands() {
		if cmd.Hidden || cmd.Name() == "help" || cmd.Name() == "completion" {
			continue
		}
		assert.True(t, strings.Contains(readme, "mlship "+cmd.Name()), "command %s is not in the README", cmd.Name())
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			assert.True(t, strings.Contains(readme, "`--"+f.Name+"`") || strings.Contains(readme, "`--"+f.Name+" "),
				"flag --%s of %s is not documented in README.md", f.Name, cmd.Name())
		})
	}
}
