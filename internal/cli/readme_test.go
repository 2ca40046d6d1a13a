package cli

import (
	"io"
	"slices"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"

	"github.com/mlship/mlship/internal/spec"
)

// TestFlagsComeFromTheSpec: every flag of every step command is an input or an
// option of its step in the spec (the README's tables are generated from the
// spec, see internal/gen), and every input that is not a secret or an argument
// is a flag.
func TestFlagsComeFromTheSpec(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	for _, step := range spec.Steps() {
		cmd, _, err := root.Find([]string{step.Name})
		if !assert.NoError(t, err, step.Name) {
			continue
		}
		allowed := map[string]bool{"help": true}
		var want []string
		for _, in := range step.Inputs {
			for _, a := range in.Deprecated {
				if a.Flag != "" {
					allowed[a.Flag] = true
					assert.True(t, cmd.Flags().Lookup(a.Flag).Hidden, "old flag --%s is hidden", a.Flag)
				}
			}
			if in.Secret || in.Positional {
				assert.Nil(t, cmd.Flags().Lookup(in.Name), "%s: %s is not a flag", step.Name, in.Name)
				continue
			}
			want = append(want, in.Name)
			allowed[in.Name] = true
		}
		for _, o := range step.Options {
			want = append(want, o.Name)
			allowed[o.Name] = true
		}
		var got []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			assert.True(t, allowed[f.Name], "flag --%s of %s is not in the spec", f.Name, step.Name)
			if !f.Hidden && f.Name != "help" {
				got = append(got, f.Name)
			}
		})
		slices.Sort(want)
		slices.Sort(got)
		assert.Equal(t, want, got, step.Name)
	}
}
