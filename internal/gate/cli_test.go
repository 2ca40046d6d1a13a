package gate_test

// evaluate-gate as users meet it, through the real binary: baselines of
// another model are refused, baselines that are only metrics are compared by
// name with a note, and the JUnit report validates against junit-10.xsd.

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/gate/junittest"
	"github.com/mlship/mlship/internal/model/modeltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	modeltest.RemoveBinaries()
	os.Exit(code)
}

var heartCSV = func() string {
	p, err := filepath.Abs("../../examples/heart-disease/heart.csv")
	if err != nil {
		panic(err)
	}
	return p
}()

func mlship(t *testing.T, args ...string) modeltest.Result {
	t.Helper()
	return modeltest.Run(t, "", modeltest.Binary(t, "mlship"), args...)
}

func train(t *testing.T, out string, args ...string) string {
	t.Helper()
	r := mlship(t, append([]string{"train", "-q", "--data", heartCSV, "--epochs", "2", "--out", out}, args...)...)
	require.Equal(t, 0, r.Code, r.Stderr)
	return out
}

func TestGateBaselineOfAnotherModelCLI(t *testing.T) {
	root := t.TempDir()
	binary := train(t, filepath.Join(root, "binary"), "--target", "target", "--binarize", ">0")
	same := train(t, filepath.Join(root, "same"), "--target", "target", "--binarize", ">0", "--seed", "7")
	multi := train(t, filepath.Join(root, "multi"), "--target", "target") // 0..4: five classes
	multiMetrics := filepath.Join(root, "multi-metrics.json")
	b, err := os.ReadFile(filepath.Join(multi, "metrics.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(multiMetrics, b, 0o644))
	binMetrics := filepath.Join(root, "prod.json")
	require.NoError(t, os.WriteFile(binMetrics, []byte(`{"accuracy": 0.5, "log_loss": 5}`), 0o644))

	tests := []struct {
		name     string
		baseline string
		code     int
		wantErr  string // the whole error line after "mlship: "
		wantNote bool
	}{
		{
			name: "a 5-class model against a binary one", baseline: multi, code: 2,
			wantErr: `comparing with baseline "` + multi + `": it is a multiclass model of "target" with 5 classes (0, 1, 2, 3, 4), ` +
				`the model is a binary model of "target" >0 with 2 classes (0, 1); a baseline must predict the same target the same way`,
		},
		{
			name: "the 5-class model's metrics.json", baseline: multiMetrics, code: 2,
			wantErr: `comparing with baseline "` + multiMetrics + `": it has "macro_f1", which a binary model does not report ` +
				`(it reports accuracy, precision, recall, f1, roc_auc, log_loss); is it the baseline of another task?`,
		},
		{name: "the same model, another seed", baseline: same, code: 0},
		{name: "a binary metrics file", baseline: binMetrics, code: 0, wantNote: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			junit := filepath.Join(t.TempDir(), "junit.xml")
			r := mlship(t, "evaluate-gate", "--model", binary, "--baseline", tt.baseline, "--max-drop", "accuracy=0.5", "--allow-missing-baseline", "--junit", junit)
			require.Equal(t, tt.code, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
			if tt.code != 0 {
				assert.Equal(t, tt.wantErr, modeltest.ErrLine(t, r.Stderr, "mlship: "))
				assert.Empty(t, r.Stdout)
				assert.NoFileExists(t, junit)
				return
			}
			note := `note: baseline "` + tt.baseline + `" holds metrics only: their names fit a binary model, but its target and classes are unknown and were not checked` + "\n"
			if tt.wantNote {
				assert.Contains(t, r.Stdout, note)
			} else {
				assert.NotContains(t, r.Stdout, "note:")
			}
			t.Run("junit-10.xsd", func(t *testing.T) { junittest.Validate(t, junit) })
		})
	}
}

// TestGateJUnitCLI: the JUnit report of a passing, a failing and a partly
// skipped gate validates against the Jenkins xunit plugin's junit-10.xsd, and
// the skipped count is on the test suite.
func TestGateJUnitCLI(t *testing.T) {
	model := train(t, filepath.Join(t.TempDir(), "model"), "--target", "target", "--binarize", ">0")
	tests := []struct {
		name    string
		args    []string
		code    int
		skipped string
	}{
		{"pass", []string{"--min", "accuracy=0.1", "--max", "log_loss=5"}, 0, "0"},
		{"fail", []string{"--min", "accuracy=0.999"}, 1, "0"},
		{"skip", []string{"--min", "accuracy=0.1,r2=0.5", "--allow-unmeasured", "--max-drop", "f1=0.1", "--allow-missing-baseline"}, 0, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			junit := filepath.Join(t.TempDir(), "junit.xml")
			r := mlship(t, append([]string{"evaluate-gate", "--model", model, "--junit", junit}, tt.args...)...)
			require.Equal(t, tt.code, r.Code, r.Stderr)
			t.Run("junit-10.xsd", func(t *testing.T) { junittest.Validate(t, junit) })
			b, err := os.ReadFile(junit)
			require.NoError(t, err)
			var doc struct {
				Attrs []xml.Attr `xml:",any,attr"`
				Suite struct {
					Skipped string `xml:"skipped,attr"`
				} `xml:"testsuite"`
			}
			require.NoError(t, xml.Unmarshal(b, &doc))
			for _, a := range doc.Attrs {
				assert.NotEqual(t, "skipped", a.Name.Local, "junit-10.xsd allows no skipped on <testsuites>")
			}
			assert.Equal(t, tt.skipped, doc.Suite.Skipped)
			assert.True(t, strings.HasPrefix(string(b), xml.Header))
		})
	}
}
