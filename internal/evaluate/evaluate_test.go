package evaluate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/evaluate"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/train"
)

// TestFileOnTheTestSplit evaluates a model on a CSV holding exactly its test
// split: the metrics must equal the ones training wrote, so the gate's --data
// path and the training report agree.
func TestFileOnTheTestSplit(t *testing.T) {
	dir := t.TempDir()
	const csv = "../../examples/heart-disease/heart.csv"
	cfg := train.DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Binarize = csv, "target", ">0"
	cfg.OutDir, cfg.SplitOut, cfg.Epochs = filepath.Join(dir, "model"), filepath.Join(dir, "split.json"), 5
	_, err := train.Run(context.Background(), cfg)
	require.NoError(t, err)

	var split struct{ Test []int }
	b, err := os.ReadFile(cfg.SplitOut)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &split))
	f, err := os.Open(csv)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	out := []string{lines[0]}
	for _, i := range split.Test {
		out = append(out, lines[i+1])
	}
	testCSV := filepath.Join(dir, "test.csv")
	require.NoError(t, os.WriteFile(testCSV, []byte(strings.Join(out, "\n")+"\n"), 0o644))

	got, err := evaluate.File(context.Background(), cfg.OutDir, testCSV)
	require.NoError(t, err)
	want, err := metrics.ReadFile(filepath.Join(cfg.OutDir, model.MetricsFile))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := train.DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Binarize = "../../examples/heart-disease/heart.csv", "target", ">0"
	cfg.OutDir, cfg.Epochs = filepath.Join(dir, "model"), 2
	_, err := train.Run(context.Background(), cfg)
	require.NoError(t, err)
	other := filepath.Join(dir, "other.csv")
	require.NoError(t, os.WriteFile(other, []byte("age,target\n1,0\n"), 0o644))
	_, err = evaluate.File(context.Background(), cfg.OutDir, other)
	require.ErrorContains(t, err, "the model's feature columns sex, cp,")
	_, err = evaluate.File(context.Background(), filepath.Join(dir, "none"), other)
	require.ErrorContains(t, err, "no such directory")
}
