package gate

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/gate/junittest"
	"github.com/mlship/mlship/internal/metrics"
)

// Structures to read the report back, written independently of the ones
// that produce it.
type parsedSuites struct {
	XMLName  xml.Name      `xml:"testsuites"`
	Tests    int           `xml:"tests,attr"`
	Failures int           `xml:"failures,attr"`
	Skipped  *int          `xml:"skipped,attr"` // not allowed by junit-10.xsd
	Suites   []parsedSuite `xml:"testsuite"`
}

type parsedSuite struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	Skipped  int    `xml:"skipped,attr"`
	Props    []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []parsedCase `xml:"testcase"`
}

type parsedCase struct {
	Classname string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

// readJUnit reads the report back after checking it against junit-10.xsd
// (in a subtest, which skips when xmllint is missing outside CI).
func readJUnit(t *testing.T, path string) parsedSuites {
	t.Helper()
	t.Run("junit-10.xsd", func(t *testing.T) { junittest.Validate(t, path) })
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(data), xml.Header), "starts with the XML header")
	var doc parsedSuites
	require.NoError(t, xml.Unmarshal(data, &doc))
	return doc
}

func TestWriteJUnit(t *testing.T) {
	res := &Result{
		Source: "metrics.json",
		Checks: []Check{
			{Metric: "accuracy", Kind: "min", Value: 0.71, Measured: true, Bound: 0.8, Verdict: Fail, Reason: "accuracy 0.71 < min 0.8"},
			{Metric: "roc_auc", Kind: "min", Bound: 0.7, Verdict: Skip, Reason: "not measured (allowed)"},
			{Metric: "log_loss", Kind: "max", Value: 0.3, Measured: true, Bound: 0.5, Verdict: Pass, Reason: "log_loss 0.3 <= max 0.5"},
			{Metric: "f1", Kind: "max-drop", Value: 0.5, Measured: true, Bound: 0.02, Baseline: 0.6, HasBaseline: true, Verdict: Fail,
				Reason: `f1 dropped by 0.1 (baseline 0.6, now 0.5), more than max-drop 0.02 <&"'>`},
			{Metric: "r2", Kind: "max-drop-rel", Value: 0.5, Measured: true, Bound: 0.05, Verdict: Skip, Reason: "no baseline (allowed)"},
		},
	}
	// The parent directory is created.
	path := filepath.Join(t.TempDir(), "reports", "gate", "junit.xml")
	require.NoError(t, WriteJUnit(path, res))
	doc := readJUnit(t, path)

	assert.Equal(t, 5, doc.Tests)
	assert.Equal(t, 2, doc.Failures)
	assert.Nil(t, doc.Skipped, "junit-10.xsd has no skipped on <testsuites>; the suite carries it")
	require.Len(t, doc.Suites, 1)
	s := doc.Suites[0]
	assert.Equal(t, "mlship.evaluate-gate", s.Name)
	assert.Equal(t, 5, s.Tests)
	assert.Equal(t, 2, s.Failures)
	assert.Equal(t, 0, s.Errors)
	assert.Equal(t, 2, s.Skipped)
	require.Len(t, s.Cases, 5)

	names := make([]string, 0, len(s.Cases))
	for _, c := range s.Cases {
		assert.Equal(t, "mlship.gate", c.Classname)
		names = append(names, c.Name)
	}
	assert.Equal(t, []string{"accuracy min 0.8", "roc_auc min 0.7", "log_loss max 0.5", "f1 max-drop 0.02", "r2 max-drop-rel 0.05"}, names)

	tests := []struct {
		i       int
		failure string
		skipped string
	}{
		{0, "accuracy 0.71 < min 0.8", ""},
		{1, "", "not measured (allowed)"},
		{2, "", ""},
		{3, `f1 dropped by 0.1 (baseline 0.6, now 0.5), more than max-drop 0.02 <&"'>`, ""},
		{4, "", "no baseline (allowed)"},
	}
	for _, tt := range tests {
		t.Run(names[tt.i], func(t *testing.T) {
			c := s.Cases[tt.i]
			if tt.failure == "" {
				assert.Nil(t, c.Failure)
			} else {
				require.NotNil(t, c.Failure)
				assert.Equal(t, tt.failure, c.Failure.Message)
				assert.Contains(t, c.Failure.Text, "source: metrics.json")
			}
			if tt.skipped == "" {
				assert.Nil(t, c.Skipped)
			} else {
				require.NotNil(t, c.Skipped)
				assert.Equal(t, tt.skipped, c.Skipped.Message)
			}
		})
	}
	assert.Equal(t, "f1 dropped by 0.1 (baseline 0.6, now 0.5), more than max-drop 0.02 <&\"'>\n"+
		"metric: f1\nkind: max-drop\nvalue: 0.5\nbound: 0.02\nbaseline: 0.6\nsource: metrics.json\n", s.Cases[3].Failure.Text)

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestWriteJUnitEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	require.NoError(t, WriteJUnit(path, &Result{}))
	doc := readJUnit(t, path)
	require.Len(t, doc.Suites, 1)
	assert.Equal(t, 0, doc.Suites[0].Tests)
	assert.Empty(t, doc.Suites[0].Cases)
}

func TestWriteJUnitError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	path := filepath.Join(blocker, "junit.xml") // parent is a file
	err := WriteJUnit(path, &Result{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `writing junit report "`+path+`": `)
}

func TestRunWritesJUnit(t *testing.T) {
	tests := []struct {
		name     string
		min      float64
		failures int
	}{
		{"on pass", 0.5, 0},
		{"on failure", 0.9, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "junit.xml")
			res, err := Run(context.Background(), Config{
				ModelDir:        modelDir(t, metrics.Values{"accuracy": 0.8}),
				Min:             map[string]float64{"accuracy": tt.min, "r2": 0.1},
				AllowUnmeasured: true,
				JUnitPath:       path,
			})
			require.NotNil(t, res)
			var fe *FailedError
			assert.Equal(t, tt.failures > 0, errors.As(err, &fe))
			doc := readJUnit(t, path)
			require.Len(t, doc.Suites, 1)
			assert.Equal(t, 2, doc.Suites[0].Tests)
			assert.Equal(t, tt.failures, doc.Suites[0].Failures)
			assert.Equal(t, 1, doc.Suites[0].Skipped)
		})
	}

	t.Run("write error is returned with the result", func(t *testing.T) {
		blocker := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(blocker, nil, 0o644))
		res, err := Run(context.Background(), Config{
			ModelDir:  modelDir(t, metrics.Values{"accuracy": 0.8}),
			Min:       map[string]float64{"accuracy": 0.9},
			JUnitPath: filepath.Join(blocker, "junit.xml"),
		})
		require.NotNil(t, res)
		assert.False(t, res.Passed)
		require.Error(t, err)
		var fe *FailedError
		assert.False(t, errors.As(err, &fe), "an output error is not a gate failure")
		assert.Contains(t, err.Error(), "writing junit report")
	})
}

func TestWriteJUnitProperties(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	res := &Result{
		Source: "holdout <new>.csv", BaselineSource: `prod & "old".json`,
		BaselineNote: `baseline "prod" holds metrics only`,
		Checks:       []Check{{Metric: "accuracy", Kind: KindMaxDrop, Value: 0.8, Measured: true, Bound: 0.1, Baseline: 0.85, HasBaseline: true, Verdict: Pass, Reason: "ok"}},
	}
	require.NoError(t, WriteJUnit(path, res))
	doc := readJUnit(t, path)
	require.Len(t, doc.Suites, 1)
	props := map[string]string{}
	for _, p := range doc.Suites[0].Props {
		props[p.Name] = p.Value
	}
	assert.Equal(t, map[string]string{"source": res.Source, "baseline": res.BaselineSource, "baseline_note": res.BaselineNote}, props)
}

// TestJUnitSchemaRejectsTopLevelSkipped shows the schema check catches the
// report mlship used to write (skipped on <testsuites>), so a pass means something.
func TestJUnitSchemaRejectsTopLevelSkipped(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		junittest.Validate(t, "") // skips, or fails in CI
	}
	schema, err := junittest.Schema()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "old.xml")
	require.NoError(t, os.WriteFile(path, []byte(xml.Header+`<testsuites name="mlship.evaluate-gate" tests="1" failures="0" errors="0" skipped="1">
  <testsuite name="mlship.evaluate-gate" tests="1" failures="0" errors="0" skipped="1">
    <testcase classname="mlship.gate" name="r2 min 0.1"><skipped message="not measured (allowed)"></skipped></testcase>
  </testsuite>
</testsuites>
`), 0o644))
	out, err := exec.Command("xmllint", "--noout", "--nonet", "--schema", schema, path).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "attribute 'skipped': The attribute 'skipped' is not allowed")
}
