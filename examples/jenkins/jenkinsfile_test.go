// Package jenkins_test checks the Jenkinsfile against the spec: Jenkins cannot
// run here, so every mlship command line in it is extracted and each flag
// must be one its step takes (a flag of the spec, an option of the command,
// or a global option).
package jenkins_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/spec"
)

func TestJenkinsfileFlags(t *testing.T) {
	b, err := os.ReadFile("Jenkinsfile")
	require.NoError(t, err)
	// Join shell line continuations, then take every "mlship STEP ..." line.
	var code []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "//") {
			code = append(code, l)
		}
	}
	lines := regexp.MustCompile(`(?m)(?:^|[\s'])mlship ([a-z-]+)([^'\n]*)`).FindAllStringSubmatch(strings.Join(code, "\n"), -1)
	require.NotEmpty(t, lines)
	steps := map[string]bool{}
	for _, m := range lines {
		step := spec.Lookup(m[1])
		if !assert.NotNil(t, step, "mlship %s is not a command", m[1]) {
			continue
		}
		steps[m[1]] = true
		for _, f := range regexp.MustCompile(`(^|\s)--([a-z-]+)`).FindAllStringSubmatch(m[2], -1) {
			assert.True(t, takes(step, f[2]), "mlship %s has no flag --%s", m[1], f[2])
		}
	}
	for _, s := range []string{"train", "evaluate-gate", "report", "build-push-image", "kubectl-deploy"} {
		assert.True(t, steps[s], "the Jenkinsfile runs mlship %s", s)
	}
	// Secrets reach mlship through the environment (withCredentials), never a flag.
	assert.Contains(t, string(b), "passwordVariable: 'MLSHIP_REGISTRY_PASSWORD'")
	assert.Contains(t, string(b), "junit 'mlship-out/junit.xml'")
	assert.Contains(t, string(b), "archiveArtifacts")
}

func takes(s *spec.Step, flag string) bool {
	if in, ok := s.Input(flag); ok {
		return !in.Secret && !in.Positional
	}
	for _, o := range append(s.Options, spec.GlobalOptions...) {
		if o.Name == flag {
			return true
		}
	}
	return false
}
