package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bad training inputs through the real binary: each ends in one line and exit
// 2 (or trains, where the input is fine), never in a Go stack trace or the
// out-of-memory crash, and with bounded memory.

var digitsCSV = mustAbs("../../examples/digits/digits.csv")

// runRSS runs the binary like run and also returns its peak RSS in MiB.
func runRSS(t *testing.T, args ...string) (result, float64) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	rss := 0.0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return result{code, out.String(), errb.String()}, rss
}

// heartEdited writes the heart data with edit applied to each data row (i
// from 0, on line i+2) and header to the header, and returns its path.
func heartEdited(t *testing.T, header func([]string) []string, edit func(i int, row []string) []string) string {
	t.Helper()
	b, err := os.ReadFile(heartCSV)
	require.NoError(t, err)
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err)
	if header != nil {
		recs[0] = header(recs[0])
	}
	for i := range recs[1:] {
		recs[i+1] = edit(i, recs[i+1])
	}
	p := filepath.Join(t.TempDir(), "heart.csv")
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	require.NoError(t, w.WriteAll(recs))
	require.NoError(t, os.WriteFile(p, out.Bytes(), 0o644))
	return p
}

const chol = 4 // the cholesterol column of the heart data

func scaled(t *testing.T, k float64) func(int, []string) []string {
	return func(_ int, row []string) []string {
		v, err := strconv.ParseFloat(row[chol], 64)
		require.NoError(t, err)
		row[chol] = strconv.FormatFloat(v*k, 'g', -1, 64)
		return row
	}
}

func TestTrainRefusesWhatCannotFit(t *testing.T) {
	heart := []string{"train", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2"}
	digits := []string{"train", "--data", digitsCSV, "--target", "label", "--task", "multiclass", "--kind", "cnn",
		"--input-shape", "1x8x8", "--hidden", "8", "--epochs", "1"}
	layers := strings.TrimSuffix(strings.Repeat("4,", 300), ",")
	tests := []struct {
		name string
		args []string
		want []string // parts of the error line
	}{
		// Each of these died in the runtime's out-of-memory crash, or would.
		{"hidden", append(heart, "--hidden", "100000000"), []string{"hidden 100000000 needs about 116 GiB for the network and its Adam state; ", ", at most half of it is used"}},
		{"hidden beyond int64 products", append(heart, "--hidden", "9223372036854775807,9223372036854775807"), []string{"hidden 9223372036854775807,9223372036854775807 needs about "}},
		{"conv filters", append(digits, "--conv", "100000000x3"), []string{"conv 100000000x3 needs about ", "for the network and its Adam state"}},
		{"conv kernel", append(digits, "--conv", "1x100000001"), []string{"conv 1x100000001 needs about ", "for the network's intermediate values of even one row"}},
		{"conv kernel beyond int64 products", append(digits, "--conv", "3x3037000501"), []string{"conv 3x3037000501 needs about "}},
		{"input shape beyond int64 products", append(digits, "--input-shape", "4294967296x4294967296x1", "--conv", "1x3"), []string{"--input-shape 4294967296x4294967296x1 has more values than any data file has columns"}},
		{"hidden layers", append(heart, "--hidden", layers), []string{"--hidden has 300 layers, at most 256 are supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model")
			r, rss := runRSS(t, append(tt.args, "--out", out)...)
			assert.Equal(t, 2, r.code, r.stderr)
			line := oneLine(t, r.stderr)
			for _, w := range tt.want {
				assert.Contains(t, line, w)
			}
			assert.Less(t, rss, 200.0, "MiB of peak RSS for a refusal")
			assert.NoDirExists(t, out)
		})
	}
}

// TestTrainBatchClamped: a batch beyond the training rows is the training rows
// (it took 4 GB for 128 rows, or crashed), logged and recorded in the card.
func TestTrainBatchClamped(t *testing.T) {
	out := filepath.Join(t.TempDir(), "model")
	r, rss := runRSS(t, "train", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2",
		"--batch-size", "100000000", "--out", out)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "batch size 100000000 is more than the 194 training rows: using 194\n")
	assert.Less(t, rss, 300.0, "MiB of peak RSS")
	var card struct {
		Training struct {
			BatchSize int `json:"batch_size"`
		} `json:"training"`
	}
	b, err := os.ReadFile(filepath.Join(out, "model.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &card))
	assert.Equal(t, 194, card.Training.BatchSize)
}

// TestTrainScaleInvariant: a column multiplied by 1e200 or 1e-200 gives the
// model metrics of the unscaled data (it gave accuracy 0.42 with exit 0).
func TestTrainScaleInvariant(t *testing.T) {
	metrics := func(data string) map[string]float64 {
		out := filepath.Join(t.TempDir(), "model")
		r := run(t, "train", "-q", "--data", data, "--target", "target", "--binarize", ">0", "--out", out)
		require.Equal(t, 0, r.code, r.stderr)
		b, err := os.ReadFile(filepath.Join(out, "metrics.json"))
		require.NoError(t, err)
		var m map[string]float64
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	want := metrics(heartCSV)
	for _, k := range []float64{1e200, 1e-200} {
		got := metrics(heartEdited(t, nil, scaled(t, k)))
		require.Len(t, got, len(want))
		for name, v := range want {
			assert.InDelta(t, v, got[name], 1e-9, "%s with chol times %g", name, k)
		}
	}
}

func TestTrainBadNumbers(t *testing.T) {
	var quoted strings.Builder
	b, err := os.ReadFile(heartCSV)
	require.NoError(t, err)
	for i, l := range strings.SplitAfter(string(b), "\n") {
		if i == 21 { // line 22
			l = strings.Replace(l, ",", `,"`, 1)
		}
		quoted.WriteString(l)
	}
	quotedCSV := filepath.Join(t.TempDir(), "quoted.csv")
	require.NoError(t, os.WriteFile(quotedCSV, []byte(quoted.String()), 0o644))

	withEmpty := heartEdited(t,
		func(h []string) []string { return append(h, "notes") },
		func(_ int, row []string) []string { return append(row, "") })

	tests := []struct {
		name string
		data string
		args []string
		want string
	}{
		{"a column's range overflows float64", heartEdited(t, nil, func(i int, row []string) []string {
			switch i {
			case 3:
				row[chol] = "-1e308"
			case 9:
				row[chol] = "1.7e308"
			}
			return row
		}), nil, `line 11, column "chol": 1.7e+308 is too far from -1e+308 (line 5) for float64: their difference overflows; rescale the column`},
		{"an unclosed quote names the line it opened on", quotedCSV, nil, `quoted.csv": line 22: a quoted field in the row starting on this line has no closing quote (the file ends at line 304)`},
		{"an empty column asked for as a feature", withEmpty, []string{"--features", "age,notes"}, `column "notes": is empty in every row (303 rows), so it cannot be a feature; remove it from the features`},
		{"an empty target", withEmpty, []string{"--target", "notes", "--binarize", ""}, `column "notes": the target column is empty in every row (303 rows)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model")
			args := append([]string{"train", "--data", tt.data, "--target", "target", "--binarize", ">0", "--out", out}, tt.args...)
			r := run(t, args...)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, oneLine(t, r.stderr), tt.want)
			assert.NoDirExists(t, out)
		})
	}

	t.Run("cells of 1e308 train", func(t *testing.T) {
		// They ended in "the training loss became NaN (try a lower learning rate)".
		data := heartEdited(t, nil, func(i int, row []string) []string {
			if i%3 == 0 {
				row[chol] = "1e308"
			}
			return row
		})
		r := run(t, "train", "-q", "--data", data, "--target", "target", "--binarize", ">0", "--out", filepath.Join(t.TempDir(), "model"))
		assert.Equal(t, 0, r.code, r.stderr)
	})

	t.Run("an empty column is left out and recorded", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "model")
		r := run(t, "train", "--data", withEmpty, "--target", "target", "--binarize", ">0", "--epochs", "2", "--out", out)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stderr, "warning: left out 1 column empty in every row: notes\n")
		b, err := os.ReadFile(filepath.Join(out, "model.json"))
		require.NoError(t, err)
		var card struct {
			Features []string `json:"features"`
			Data     struct {
				Empty []string `json:"dropped_empty"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(b, &card))
		assert.Equal(t, []string{"notes"}, card.Data.Empty)
		assert.NotContains(t, card.Features, "notes")
	})
}
