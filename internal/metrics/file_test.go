package metrics

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name string
		v    Values
		want string
	}{
		{
			name: "sorted keys, indented, trailing newline",
			v:    Values{"roc_auc": 0.875, "accuracy": 0.8, "log_loss": 0.4727880339981031, "f1": 1},
			want: "{\n  \"accuracy\": 0.8,\n  \"f1\": 1,\n  \"log_loss\": 0.4727880339981031,\n  \"roc_auc\": 0.875\n}\n",
		},
		{
			name: "empty",
			v:    Values{},
			want: "{}\n",
		},
		{
			name: "nil",
			want: "{}\n",
		},
		{
			name: "large and negative numbers",
			v:    Values{"mse": 1.5e22, "r2": -3},
			want: "{\n  \"mse\": 1.5e+22,\n  \"r2\": -3\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "metrics.json")
			require.NoError(t, WriteFile(path, tt.v))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(data))

			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())

			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file left behind")
		})
	}
}

func TestWriteFileDeterministic(t *testing.T) {
	v := Values{}
	for _, n := range All() {
		v[n] = float64(len(n)) / 7
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	require.NoError(t, WriteFile(a, v))
	require.NoError(t, WriteFile(b, v))
	da, err := os.ReadFile(a)
	require.NoError(t, err)
	db, err := os.ReadFile(b)
	require.NoError(t, err)
	assert.Equal(t, string(da), string(db))
}

func TestWriteFileReplacesExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.json")
	require.NoError(t, WriteFile(path, Values{"accuracy": 0.5, "f1": 0.4}))
	require.NoError(t, WriteFile(path, Values{"accuracy": 0.9}))
	got, err := ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, Values{"accuracy": 0.9}, got)
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
	tests := []struct {
		name string
		path string
		v    Values
		want string
	}{
		{
			name: "NaN",
			path: filepath.Join(dir, "nan.json"),
			v:    Values{"accuracy": 0.5, "roc_auc": math.NaN()},
			want: `writing metrics "` + filepath.Join(dir, "nan.json") + `": roc_auc is NaN, which JSON cannot hold`,
		},
		{
			name: "Inf",
			path: filepath.Join(dir, "inf.json"),
			v:    Values{"log_loss": math.Inf(1)},
			want: `writing metrics "` + filepath.Join(dir, "inf.json") + `": log_loss is +Inf, which JSON cannot hold`,
		},
		{
			name: "a file where the directory should be",
			path: filepath.Join(dir, "file", "metrics.json"),
			v:    Values{"accuracy": 1},
			want: `writing metrics "` + filepath.Join(dir, "file", "metrics.json") + `": `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFile(tt.path, tt.v)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			_, statErr := os.Stat(tt.path)
			assert.Error(t, statErr, "nothing written")
		})
	}
}

func TestReadFileRoundTrip(t *testing.T) {
	v := Values{"accuracy": 0.8, "log_loss": 0.4727880339981031, "roc_auc": 0.875, "r2": -3, "custom": 1e-300}
	path := filepath.Join(t.TempDir(), "metrics.json")
	require.NoError(t, WriteFile(path, v))
	got, err := ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, v, got)
}

func TestReadFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    Values
		wantErr string
	}{
		{name: "object", content: `{"accuracy": 0.9, "f1": 1}`, want: Values{"accuracy": 0.9, "f1": 1}},
		{name: "empty object", content: "{}\n", want: Values{}},
		{name: "unknown keys kept", content: `{"custom_score": 3}`, want: Values{"custom_score": 3}},
		{name: "empty file", content: "", wantErr: "EOF"},
		{name: "not JSON", content: "accuracy=0.9", wantErr: "invalid character"},
		{name: "array", content: "[0.9]", wantErr: "want a JSON object of numbers, got a JSON array"},
		{name: "null", content: "null", wantErr: "want a JSON object of numbers, got null"},
		{name: "string value", content: `{"accuracy": "0.9"}`, wantErr: "accuracy is a JSON string, want a number"},
		{name: "null value", content: `{"accuracy": null}`, wantErr: "accuracy is null, want a number"},
		{name: "trailing data", content: `{"accuracy": 0.9} {}`, wantErr: "unexpected data after the JSON object"},
		{name: "truncated", content: `{"accuracy": 0.9`, wantErr: "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "metrics.json")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o644))
			got, err := ReadFile(path)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), `reading metrics "`+path+`": `)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "metrics.json")
		_, err := ReadFile(path)
		require.Error(t, err)
		assert.True(t, errors.Is(err, fs.ErrNotExist), "wraps fs.ErrNotExist: %v", err)
		assert.Contains(t, err.Error(), path)
	})
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name      string
		cur, base Values
		want      []Delta
	}{
		{
			name: "binary, ordered like Names, directions",
			// Dyadic numbers keep the deltas exact.
			cur:  Values{"log_loss": 0.375, "roc_auc": 0.875, "accuracy": 0.75, "f1": 0.625, "precision": 0.5},
			base: Values{"log_loss": 0.5, "roc_auc": 0.875, "accuracy": 0.8125, "f1": 0.5, "macro_f1": 0.25},
			want: []Delta{
				{Name: "accuracy", Value: 0.75, Baseline: 0.8125, Delta: -0.0625, Better: false, HasBaseline: true},
				{Name: "precision", Value: 0.5},
				{Name: "f1", Value: 0.625, Baseline: 0.5, Delta: 0.125, Better: true, HasBaseline: true},
				{Name: "roc_auc", Value: 0.875, Baseline: 0.875, Delta: 0, Better: false, HasBaseline: true},
				{Name: "log_loss", Value: 0.375, Baseline: 0.5, Delta: -0.125, Better: true, HasBaseline: true},
			},
		},
		{
			name: "regression, lower is better",
			cur:  Values{"r2": 0.5, "mae": 2, "rmse": 1, "mse": 1},
			base: Values{"r2": 0.75, "mae": 1, "rmse": 2, "mse": 1},
			want: []Delta{
				{Name: "mse", Value: 1, Baseline: 1, HasBaseline: true},
				{Name: "rmse", Value: 1, Baseline: 2, Delta: -1, Better: true, HasBaseline: true},
				{Name: "mae", Value: 2, Baseline: 1, Delta: 1, Better: false, HasBaseline: true},
				{Name: "r2", Value: 0.5, Baseline: 0.75, Delta: -0.25, Better: false, HasBaseline: true},
			},
		},
		{
			name: "unknown names last, alphabetical; nil baseline",
			cur:  Values{"zeta": 1, "alpha": 2, "macro_f1": 0.5},
			want: []Delta{
				{Name: "macro_f1", Value: 0.5},
				{Name: "alpha", Value: 2},
				{Name: "zeta", Value: 1},
			},
		},
		{
			name: "empty current",
			base: Values{"accuracy": 1},
			want: []Delta{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Diff(tt.cur, tt.base))
		})
	}
}
