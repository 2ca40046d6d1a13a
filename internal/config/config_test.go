package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, f *File)
		wantErr string
	}{
		{
			name: "full",
			yaml: `name: heart
data: heart.csv
target: target
binarize: ">0"
drop: [id]
model: {kind: mlp, hidden: [64, 32], activation: relu}
train: {batch_size: 32, epochs: 100, patience: 10, learning_rate: 0.001, test_size: 0.2, val_size: 0.2, seed: 7, out: model}
gate: {min: {accuracy: 0.8}, max: {log_loss: 0.6}, max_drop: {accuracy: 0.02}, baseline: base}
`,
			check: func(t *testing.T, f *File) {
				assert.Equal(t, "heart", f.Name)
				assert.Equal(t, []int{64, 32}, f.Model.Hidden)
				require.NotNil(t, f.Train.Seed)
				assert.Equal(t, int64(7), *f.Train.Seed)
				assert.Equal(t, 0.8, f.Gate.Min["accuracy"])
				assert.Equal(t, filepath.Join("dir", "heart.csv"), f.Resolve(f.Data))
			},
		},
		{name: "empty file", yaml: "", check: func(t *testing.T, f *File) { assert.Nil(t, f.Train.Seed) }},
		{name: "unknown key", yaml: "target: y\nbatch_size: 3\n", wantErr: `reading config "dir/mlship.yaml": line 2: field batch_size not found in type config.File`},
		{name: "wrong type", yaml: "train: {epochs: many}\n", wantErr: "cannot unmarshal !!str `many` into int"},
		{name: "bad yaml", yaml: "target: [\n", wantErr: `reading config "dir/mlship.yaml": line 1: did not find expected node content`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("dir/mlship.yaml", []byte(tc.yaml))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, f)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, Name), []byte("target: y\n"), 0o644))
	f, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, "y", f.Target)
	assert.Equal(t, dir, f.Dir)
	assert.Equal(t, "/abs/x.csv", f.Resolve("/abs/x.csv"))

	_, err = Load(filepath.Join(dir, "nope.yaml"))
	require.EqualError(t, err, `reading config "`+filepath.Join(dir, "nope.yaml")+`": no such file`)
	_, err = Load(t.TempDir())
	require.ErrorContains(t, err, "mlship.yaml\": no such file")
}
