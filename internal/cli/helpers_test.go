package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/cli"
	"github.com/mlship/mlship/internal/gate/junittest"
	"github.com/mlship/mlship/internal/model"
)

// Absolute paths of the examples, computed before any test changes directory.
var (
	examplesDir = mustAbs("../../examples")
	heartDir    = filepath.Join(examplesDir, "heart-disease")
	heartCSV    = filepath.Join(heartDir, "heart.csv")
	digitsDir   = filepath.Join(examplesDir, "digits")
	digitsCSV   = filepath.Join(digitsDir, "digits.csv")
)

// heartRows is the number of data rows in heart.csv.
const heartRows = 303

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

// outcome is what one in-process mlship invocation produced.
type outcome struct {
	code           int
	stdout, stderr string
}

// mlship runs the command line in-process.
func mlship(t *testing.T, args ...string) outcome {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &errb)
	return outcome{code: code, stdout: out.String(), stderr: errb.String()}
}

// errLine checks that stderr is exactly one line "mlship: ..." with no trace of
// a panic, and returns the message after the prefix.
func errLine(t *testing.T, stderr string) string {
	t.Helper()
	assert.NotContains(t, stderr, "panic")
	assert.NotContains(t, stderr, "goroutine")
	require.True(t, strings.HasSuffix(stderr, "\n"), "stderr does not end in a newline: %q", stderr)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	require.Len(t, lines, 1, "stderr is not one line: %q", stderr)
	require.True(t, strings.HasPrefix(lines[0], "mlship: "), "stderr: %q", stderr)
	return strings.TrimPrefix(lines[0], "mlship: ")
}

// expand replaces {dir} in s.
func expand(s, dir string) string { return strings.ReplaceAll(s, "{dir}", dir) }

func expandAll(ss []string, dir string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = expand(s, dir)
	}
	return out
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	writeFile(t, dst, string(b))
}

// tree lists every path under dir (relative, sorted), with a trailing / on
// directories, so a test can check that a failed command left nothing behind.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

// assertNoTempModelDirs checks that no .mlship-model-* directory is left in dir.
func assertNoTempModelDirs(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".mlship-model-"), "temporary model directory left behind: %s", e.Name())
	}
}

// trainHeart trains the heart-disease MLP into out with a few epochs and
// returns out.
func trainHeart(t *testing.T, out string, extra ...string) string {
	t.Helper()
	args := append([]string{"train", "-q", "--data", heartCSV, "--target", "target", "--binarize", ">0",
		"--epochs", "3", "--out", out}, extra...)
	r := mlship(t, args...)
	require.Equal(t, 0, r.code, "train: %s", r.stderr)
	return out
}

func readCard(t *testing.T, dir string) *model.Card {
	t.Helper()
	c, err := model.ReadCard(dir)
	require.NoError(t, err)
	return c
}

func readMetrics(t *testing.T, dir string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	require.NoError(t, err)
	var m map[string]float64
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// junitReport is the part of a JUnit XML file the tests look at.
type junitReport struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name    string `xml:"name,attr"`
		Skipped int    `xml:"skipped,attr"`
		Cases   []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// readJUnit reads a JUnit file, checked against Jenkins' junit-10.xsd.
func readJUnit(t *testing.T, path string) junitReport {
	t.Helper()
	t.Run("junit-10.xsd", func(t *testing.T) { junittest.Validate(t, path) })
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var r junitReport
	require.NoError(t, xml.Unmarshal(b, &r), "junit XML:\n%s", b)
	return r
}
