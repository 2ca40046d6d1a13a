package model_test

// The model directory as users meet it, through the real binaries: train
// --out never deletes what mlship did not write and checks the path before
// training; every command that reads a model directory refuses a damaged one
// with exit 2 and one line naming the file.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/model/modeltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	modeltest.RemoveBinaries()
	os.Exit(code)
}

var heartCSV = mustAbs("../../examples/heart-disease/heart.csv")

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

func mlship(t *testing.T, dir string, args ...string) modeltest.Result {
	t.Helper()
	return modeltest.Run(t, dir, modeltest.Binary(t, "mlship"), args...)
}

func trainArgs(out string) []string {
	return []string{"train", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2", "--out", out}
}

// snapshot lists every path under root with its content, to show that a
// refused command changed nothing.
func snapshot(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			rel += " -> " + target
		case info.IsDir():
			rel += "/"
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			rel += " " + string(b)
		}
		out = append(out, rel)
		return nil
	}))
	sort.Strings(out)
	return out
}

func write(t *testing.T, p, data string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
}

// TestTrainOutRefused: train --out refuses, before any training and without
// touching anything, a directory holding files mlship did not write, the
// working directory or a parent of it, and paths it could not write.
func TestTrainOutRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) (wd, out string) // out as given on the command line
		want  string                                           // the error after `writing model "OUT": `
	}{
		{
			name: "a user's notes.txt in a model directory",
			setup: func(t *testing.T, root string) (string, string) {
				out := filepath.Join(root, "model")
				r := mlship(t, "", append(trainArgs(out), "-q")...)
				require.Equal(t, 0, r.Code, r.Stderr)
				write(t, filepath.Join(out, "notes.txt"), "why this model is special\n")
				return root, out
			},
			want: "it holds notes.txt, which mlship did not write; refusing to replace the directory (move them out, or write the model elsewhere)",
		},
		{
			name: "src/train.py next to an mlship card",
			setup: func(t *testing.T, root string) (string, string) {
				out := filepath.Join(root, "model")
				r := mlship(t, "", append(trainArgs(out), "-q")...)
				require.Equal(t, 0, r.Code, r.Stderr)
				write(t, filepath.Join(out, "src", "train.py"), "import torch\n")
				return root, out
			},
			want: "it holds src/, which mlship did not write; refusing to replace the directory (move them out, or write the model elsewhere)",
		},
		{
			name: "a TF.js model",
			setup: func(t *testing.T, root string) (string, string) {
				out := filepath.Join(root, "web_model")
				write(t, filepath.Join(out, "model.json"), `{"format": "layers-model", "generatedBy": "keras v2.15.0", "convertedBy": "TensorFlow.js Converter v4.17.0", "modelTopology": {}, "weightsManifest": []}`)
				write(t, filepath.Join(out, "group1-shard1of1.bin"), "\x00\x01\x02")
				return root, out
			},
			want: `its model.json is not an mlship model card (format "layers-model", want "mlship.model/v1"); refusing to replace the directory`,
		},
		{
			name: "the working directory",
			setup: func(t *testing.T, root string) (string, string) {
				write(t, filepath.Join(root, "data.csv"), "a,b\n")
				return root, "."
			},
			want: "it is the working directory, which cannot be replaced; give a directory inside it (e.g. model)",
		},
		{
			name: "the working directory, a model directory itself",
			setup: func(t *testing.T, root string) (string, string) {
				r := mlship(t, "", append(trainArgs(root), "-q")...)
				require.Equal(t, 0, r.Code, r.Stderr)
				return root, "."
			},
			want: "it is the working directory, which cannot be replaced; give a directory inside it (e.g. model)",
		},
		{
			name: "a parent of the working directory",
			setup: func(t *testing.T, root string) (string, string) {
				wd := filepath.Join(root, "sub")
				require.NoError(t, os.Mkdir(wd, 0o755))
				return wd, ".."
			},
			want: "it holds the working directory, which cannot be replaced; give a directory inside it (e.g. model)",
		},
		{
			name: "a path below a file",
			setup: func(t *testing.T, root string) (string, string) {
				write(t, filepath.Join(root, "data.csv"), "a,b\n")
				return root, filepath.Join(root, "data.csv", "model")
			},
			want: `"{root}/data.csv" is not a directory`,
		},
		{
			name: "an unwritable parent",
			setup: func(t *testing.T, root string) (string, string) {
				if os.Geteuid() != 0 {
					ro := filepath.Join(root, "ro")
					require.NoError(t, os.Mkdir(ro, 0o555))
					t.Cleanup(func() { os.Chmod(ro, 0o755) })
					return root, filepath.Join(ro, "model")
				}
				if err := os.Mkdir("/sys/mlship-probe", 0o755); err == nil {
					os.Remove("/sys/mlship-probe")
					t.Skip("root, and /sys is writable: no unwritable directory to try")
				}
				return root, "/sys/mlship-model"
			},
			want: "cannot create files in ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			wd, out := tt.setup(t, root)
			before := snapshot(t, root)
			r := mlship(t, wd, trainArgs(out)...) // with progress lines, to see that none came
			assert.Equal(t, 2, r.Code, r.Stderr)
			msg := modeltest.ErrLine(t, r.Stderr, "mlship: ")
			want := `writing model "` + out + `": ` + strings.ReplaceAll(tt.want, "{root}", root)
			if strings.HasSuffix(tt.want, " ") {
				assert.True(t, strings.HasPrefix(msg, want), "%q does not start with %q", msg, want)
			} else {
				assert.Equal(t, want, msg)
			}
			assert.NotContains(t, r.Stderr, "epoch ", "refused before training")
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
			assert.Empty(t, r.Stdout)
			assert.Equal(t, before, snapshot(t, root), "nothing changed, nothing left behind")
		})
	}
}

// TestTrainOutReplacesOwnModel: a directory mlship wrote (and nothing else)
// is replaced, as is an empty one.
func TestTrainOutReplacesOwnModel(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "model")
	r := mlship(t, "", append(trainArgs(out), "-q", "--seed", "1")...)
	require.Equal(t, 0, r.Code, r.Stderr)
	r = mlship(t, root, append(trainArgs("model"), "-q", "--seed", "2")...)
	require.Equal(t, 0, r.Code, r.Stderr)
	card, err := model.ReadCard(out)
	require.NoError(t, err)
	assert.Equal(t, int64(2), card.Seed)
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary or probe directory left")
}

// damages are the ways a model directory is found damaged in the field.
var damages = []struct {
	name   string
	damage func(t *testing.T, dir string)
	file   string // the file the error names
	want   string // in the message
}{
	{
		name: "truncated weights",
		damage: func(t *testing.T, dir string) {
			p := filepath.Join(dir, model.WeightsFile)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, b[:len(b)/2], 0o644))
		},
		file: model.WeightsFile,
		want: "the file is damaged or was changed after training",
	},
	{
		name: "metrics.json edited by hand",
		damage: func(t *testing.T, dir string) {
			p := filepath.Join(dir, model.MetricsFile)
			var m map[string]float64
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &m))
			m["accuracy"] = 0.99
			b, err = json.MarshalIndent(m, "", "  ")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, b, 0o644))
		},
		file: model.MetricsFile,
		want: "disagrees with model.json: accuracy is 0.99, the card says ",
	},
}

// TestReadersRefuseDamagedModel: evaluate-gate (with and without --data),
// report, build-push-image and mlship-serve all refuse a damaged model
// directory: exit 2, one line naming the file, nothing written.
func TestReadersRefuseDamagedModel(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good")
	r := mlship(t, "", append(trainArgs(good), "-q")...)
	require.Equal(t, 0, r.Code, r.Stderr)

	r = mlship(t, "", "evaluate-gate", "--model", good, "--min", "accuracy=0.5")
	require.Equal(t, 0, r.Code, "the intact model passes: %s", r.Stderr)

	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			require.NoError(t, os.CopyFS(dir, os.DirFS(good)))
			d.damage(t, dir)
			file := filepath.Join(dir, d.file)
			out := t.TempDir()
			commands := []struct {
				name string
				bin  string
				args []string
			}{
				{"evaluate-gate", "mlship", []string{"evaluate-gate", "--model", dir, "--min", "accuracy=0.5", "--junit", filepath.Join(out, "junit.xml")}},
				{"evaluate-gate --data", "mlship", []string{"evaluate-gate", "--model", dir, "--data", heartCSV, "--min", "accuracy=0.5"}},
				{"report", "mlship", []string{"report", "--model", dir, "--no-gate", "--out", filepath.Join(out, "report.md")}},
				{"report to stdout", "mlship", []string{"report", "--model", dir, "--no-gate"}},
				{"build-push-image", "mlship", []string{"build-push-image", "--model", dir, "--image", "localhost/heart:test", "--oci-layout", filepath.Join(out, "layout"), "--smoke-test", "false"}},
				{"mlship-serve", "mlship-serve", []string{"--model", dir, "--addr", "127.0.0.1:0"}},
			}
			for _, c := range commands {
				t.Run(c.name, func(t *testing.T) {
					before := snapshot(t, filepath.Dir(dir))
					r := modeltest.Run(t, "", modeltest.Binary(t, c.bin), c.args...)
					assert.Equal(t, 2, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
					msg := modeltest.ErrLine(t, r.Stderr, c.bin+": ")
					assert.Contains(t, msg, file+": ", "names the file")
					assert.Contains(t, msg, d.want)
					assert.Empty(t, r.Stdout)
					assert.Equal(t, before, snapshot(t, filepath.Dir(dir)))
					ents, err := os.ReadDir(out)
					require.NoError(t, err)
					assert.Empty(t, ents, "nothing written")
				})
			}
		})
	}
}
