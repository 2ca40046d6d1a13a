package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fault"
)

// writeTestDir writes testModel with metrics to dir.
func writeTestDir(t *testing.T, dir string, m map[string]float64) {
	t.Helper()
	card, tensors := testModel()
	card.Metrics = m
	require.NoError(t, WriteDir(dir, card, tensors, nil))
}

// listTree lists the files and directories under root ("sub/" for a
// directory), so a test can show that nothing was changed.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			rel += " -> " + target
		case info.IsDir():
			rel += "/"
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			rel += " " + string(b[:min(len(b), 20)])
		}
		out = append(out, rel)
		return nil
	}))
	sort.Strings(out)
	return out
}

func TestCheckReplaceable(t *testing.T) {
	file := func(p, data string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, out string)
		want  string // after `writing model "OUT": `; "" allows
	}{
		{name: "does not exist", setup: func(*testing.T, string) {}},
		{name: "parents do not exist", setup: func(*testing.T, string) {}},
		{name: "empty directory", setup: func(t *testing.T, out string) { require.NoError(t, os.Mkdir(out, 0o755)) }},
		{name: "model directory mlship wrote", setup: func(t *testing.T, out string) { writeTestDir(t, out, map[string]float64{"accuracy": 0.8}) }},
		{
			name: "model directory with a user's notes.txt",
			setup: func(t *testing.T, out string) {
				writeTestDir(t, out, nil)
				file(filepath.Join(out, "notes.txt"), "keep me")
			},
			want: "it holds notes.txt, which mlship did not write; refusing to replace the directory (move them out, or write the model elsewhere)",
		},
		{
			name: "model directory with a source tree",
			setup: func(t *testing.T, out string) {
				writeTestDir(t, out, nil)
				file(filepath.Join(out, "src", "train.py"), "print(1)")
				file(filepath.Join(out, "a.txt"), "a")
			},
			want: "it holds a.txt, src/, which mlship did not write; refusing to replace the directory (move them out, or write the model elsewhere)",
		},
		{
			name: "many foreign files are counted",
			setup: func(t *testing.T, out string) {
				writeTestDir(t, out, nil)
				for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
					file(filepath.Join(out, n), n)
				}
			},
			want: "it holds a, b, c, d, e, and 2 more, which mlship did not write; refusing to replace the directory (move them out, or write the model elsewhere)",
		},
		{
			name: "a TF.js model",
			setup: func(t *testing.T, out string) {
				file(filepath.Join(out, "model.json"), `{"format": "layers-model", "generatedBy": "keras v2.15.0", "modelTopology": {}}`)
				file(filepath.Join(out, "group1-shard1of1.bin"), "\x00\x01")
			},
			want: `its model.json is not an mlship model card (format "layers-model", want "mlship.model/v1"); refusing to replace the directory`,
		},
		{
			name:  "a model.json without a format",
			setup: func(t *testing.T, out string) { file(filepath.Join(out, "model.json"), `{"name": "x"}`) },
			want:  `its model.json is not an mlship model card (format missing, want "mlship.model/v1"); refusing to replace the directory`,
		},
		{
			name:  "a model.json that is not JSON",
			setup: func(t *testing.T, out string) { file(filepath.Join(out, "model.json"), `not json`) },
			want:  `its model.json is not an mlship model card (format unreadable: not a JSON object, want "mlship.model/v1"); refusing to replace the directory`,
		},
		{
			name: "a model.json that is a directory",
			setup: func(t *testing.T, out string) {
				require.NoError(t, os.MkdirAll(filepath.Join(out, "model.json"), 0o755))
			},
			want: "the directory is not empty and holds no model.json; refusing to replace it",
		},
		{
			name:  "a directory of other files",
			setup: func(t *testing.T, out string) { file(filepath.Join(out, "train.csv"), "a,b") },
			want:  "the directory is not empty and holds no model.json; refusing to replace it",
		},
		{
			name:  "a file",
			setup: func(t *testing.T, out string) { file(out, "a,b") },
			want:  "it exists and is not a directory",
		},
		{
			name: "a symbolic link to a model directory",
			setup: func(t *testing.T, out string) {
				target := filepath.Join(filepath.Dir(out), "real")
				writeTestDir(t, target, nil)
				require.NoError(t, os.Symlink(target, out))
			},
			want: `it is a symbolic link (to "{dir}/real"), which would be replaced by a directory; give the directory itself`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			if tt.name == "parents do not exist" {
				out = filepath.Join(dir, "a", "b", "out")
			}
			tt.setup(t, out)
			before := listTree(t, dir)
			err := CheckReplaceable(out)
			assert.Equal(t, before, listTree(t, dir), "nothing is changed, not even a probe left behind")
			if tt.want == "" {
				require.NoError(t, err)
				card, tensors := testModel()
				require.NoError(t, WriteDir(out, card, tensors, nil))
				_, err := Load(out)
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, `writing model "`+out+`": `+strings.ReplaceAll(tt.want, "{dir}", dir), err.Error())
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
			card, tensors := testModel()
			require.Error(t, WriteDir(out, card, tensors, nil), "WriteDir checks again")
			assert.Equal(t, before, listTree(t, dir))
		})
	}
}

func TestCheckReplaceableWorkingDir(t *testing.T) {
	root := t.TempDir()
	wd := filepath.Join(root, "proj", "work")
	require.NoError(t, os.MkdirAll(wd, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(wd, "data.csv"), []byte("a,b\n"), 0o644))
	writeTestDir(t, filepath.Join(root, "proj", "model"), nil)
	require.NoError(t, os.Symlink(wd, filepath.Join(root, "link")))
	t.Chdir(wd)
	tests := []struct {
		out  string
		want string
	}{
		{".", "it is the working directory"},
		{"./", "it is the working directory"},
		{wd, "it is the working directory"},
		{filepath.Join(root, "link"), "it is the working directory"},
		{"..", "it holds the working directory"},
		{"../..", "it holds the working directory"},
		{"/", "it holds the working directory"},
	}
	for _, tt := range tests {
		t.Run(tt.out, func(t *testing.T) {
			err := CheckReplaceable(tt.out)
			require.Error(t, err)
			assert.Equal(t, `writing model "`+tt.out+`": `+tt.want+", which cannot be replaced; give a directory inside it (e.g. model)", err.Error())
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
		})
	}
	t.Run("a directory inside it is fine", func(t *testing.T) {
		require.NoError(t, CheckReplaceable("model"))
		require.NoError(t, CheckReplaceable("../model"))
	})
}

func TestCheckReplaceableUnwritable(t *testing.T) {
	t.Run("parent is a file", func(t *testing.T) {
		dir := t.TempDir()
		f := filepath.Join(dir, "data.csv")
		require.NoError(t, os.WriteFile(f, []byte("a,b\n"), 0o644))
		for _, out := range []string{filepath.Join(f, "model"), filepath.Join(f, "x", "model")} {
			err := CheckReplaceable(out)
			require.Error(t, err)
			assert.Equal(t, `writing model "`+out+`": "`+f+`" is not a directory`, err.Error())
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
		}
	})
	t.Run("parent not writable", func(t *testing.T) {
		parent, why := unwritableDir(t)
		out := filepath.Join(parent, "mlship-test-model")
		err := CheckReplaceable(out)
		require.Error(t, err)
		assert.Equal(t, `writing model "`+out+`": cannot create files in "`+parent+`": `+why, err.Error())
		assert.Equal(t, fault.Usage, fault.CodeOf(err))
		// Missing directories below it are not the problem: the first existing one is probed.
		out = filepath.Join(parent, "a", "b", "model")
		err = CheckReplaceable(out)
		require.Error(t, err)
		assert.Equal(t, `writing model "`+out+`": cannot create files in "`+parent+`": `+why, err.Error())
	})
	t.Run("mount point", func(t *testing.T) {
		if st, err := os.Stat("/proc"); err != nil || !st.IsDir() {
			t.Skip("no /proc mount to try")
		}
		err := CheckReplaceable("/proc")
		require.EqualError(t, err, `writing model "/proc": it is a mount point, which cannot be replaced by renaming; give a directory inside it`)
	})
}

// unwritableDir is a directory in which this process cannot create anything:
// a read-only directory, or (as root, who may write anywhere) /sys.
func unwritableDir(t *testing.T) (string, string) {
	if os.Geteuid() != 0 {
		d := filepath.Join(t.TempDir(), "ro")
		require.NoError(t, os.Mkdir(d, 0o555))
		t.Cleanup(func() { os.Chmod(d, 0o755) })
		return d, "permission denied"
	}
	if err := os.Mkdir("/sys/mlship-probe", 0o755); err == nil {
		os.Remove("/sys/mlship-probe")
		t.Skip("running as root and /sys is writable: no unwritable directory to try")
	}
	return "/sys", "operation not permitted"
}

func TestWriteDirMetrics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	card, tensors := testModel()
	card.Metrics = map[string]float64{"accuracy": 0.869, "log_loss": 0.3}
	t.Run("nil writes the card's", func(t *testing.T) {
		require.NoError(t, WriteDir(dir, card, tensors, nil))
		b, err := os.ReadFile(filepath.Join(dir, MetricsFile))
		require.NoError(t, err)
		assert.Equal(t, "{\n  \"accuracy\": 0.869,\n  \"log_loss\": 0.3\n}\n", string(b))
	})
	t.Run("the same metrics in another layout", func(t *testing.T) {
		require.NoError(t, WriteDir(dir, card, tensors, []byte(`{"log_loss":0.30, "accuracy":8.69e-1}`)))
		_, err := Load(dir)
		require.NoError(t, err)
	})
	t.Run("other metrics are refused", func(t *testing.T) {
		err := WriteDir(dir, card, tensors, []byte("{}\n"))
		require.EqualError(t, err, `writing model "`+dir+`": metrics.json disagrees with model.json: accuracy is missing, the card says 0.869; log_loss is missing, the card says 0.3`)
	})
}

// TestReadersVerify: ReadCard and Load (every reader of a model directory
// goes through one of them) refuse a directory whose files disagree with the
// card, naming the file, with exit code 2.
func TestReadersVerify(t *testing.T) {
	good := map[string]float64{"accuracy": 0.869, "f1": 0.8}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		file   string // named in the error; "" for model.json
		want   string
	}{
		{
			name: "truncated weights",
			damage: func(t *testing.T, dir string) {
				p := filepath.Join(dir, WeightsFile)
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(p, b[:len(b)-8], 0o644))
			},
			file: WeightsFile,
			want: "does not match the card's",
		},
		{
			name: "one weight changed",
			damage: func(t *testing.T, dir string) {
				p := filepath.Join(dir, WeightsFile)
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				b[len(b)-1] ^= 1
				require.NoError(t, os.WriteFile(p, b, 0o644))
			},
			file: WeightsFile,
			want: "the file is damaged or was changed after training",
		},
		{
			name:   "weights missing",
			damage: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, WeightsFile))) },
			file:   WeightsFile,
			want:   "missing (the card names it)",
		},
		{
			name: "metrics.json edited",
			damage: func(t *testing.T, dir string) {
				writeJSON(t, filepath.Join(dir, MetricsFile), map[string]float64{"accuracy": 0.99, "f1": 0.8})
			},
			file: MetricsFile,
			want: "disagrees with model.json: accuracy is 0.99, the card says 0.869 (was it edited by hand?)",
		},
		{
			name:   "metrics.json missing",
			damage: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, MetricsFile))) },
			file:   MetricsFile,
			want:   "missing (train writes it next to the card)",
		},
		{
			name: "metrics.json not numbers",
			damage: func(t *testing.T, dir string) {
				writeJSON(t, filepath.Join(dir, MetricsFile), map[string]any{"accuracy": "high"})
			},
			file: MetricsFile,
			want: `"accuracy" is "high", want a number`,
		},
		{
			name: "metrics.json huge",
			damage: func(t *testing.T, dir string) {
				writeJSON(t, filepath.Join(dir, MetricsFile), strings.Repeat("x", maxMetricsFile))
			},
			file: MetricsFile,
			want: "larger than 1048576 bytes; it holds a few numbers",
		},
		{
			name: "card names another weights file",
			damage: func(t *testing.T, dir string) {
				editCard(t, dir, func(c *Card) { c.Weights.File = "../../etc/passwd" })
			},
			want: `weights.file is "../../etc/passwd", want "model.safetensors"`,
		},
		{
			name:   "card without the weights' sha256",
			damage: func(t *testing.T, dir string) { editCard(t, dir, func(c *Card) { c.Weights.SHA256 = "" }) },
			want:   `weights.sha256 "" is not a sha256 (64 lower-case hex digits)`,
		},
	}
	for _, tt := range tests {
		for _, reader := range []struct {
			name string
			read func(string) error
		}{
			{"ReadCard", func(d string) error { _, err := ReadCard(d); return err }},
			{"Load", func(d string) error { _, err := Load(d); return err }},
		} {
			t.Run(tt.name+"/"+reader.name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "m")
				writeTestDir(t, dir, good)
				require.NoError(t, reader.read(dir), "intact")
				tt.damage(t, dir)
				err := reader.read(dir)
				require.Error(t, err)
				if tt.file != "" {
					var de *DamagedError
					require.True(t, errors.As(err, &de), "%T %v", err, err)
					assert.Equal(t, filepath.Join(dir, tt.file), de.File)
					assert.True(t, strings.HasPrefix(err.Error(), `reading model "`+dir+`": `+filepath.Join(dir, tt.file)+": "), err.Error())
				} else {
					assert.True(t, strings.HasPrefix(err.Error(), `reading model card "`+filepath.Join(dir, CardFile)+`": `), err.Error())
				}
				assert.Contains(t, err.Error(), tt.want)
				assert.Equal(t, fault.Usage, fault.CodeOf(err))
				assert.NotContains(t, err.Error(), "\n")
			})
		}
	}
}

func writeJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o644))
}

func editCard(t *testing.T, dir string, edit func(*Card)) {
	t.Helper()
	p := filepath.Join(dir, CardFile)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var c Card
	require.NoError(t, json.Unmarshal(b, &c))
	edit(&c)
	b, err = c.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o644))
}

// BenchmarkVerify measures what verification costs a reader: ReadCard (one
// streamed sha256 of the weights and metrics.json) and Load (the same on the
// bytes it decodes) on an MLP of about a million parameters (8 MB of weights).
func BenchmarkVerify(b *testing.B) {
	card, _ := testModel()
	card.Features = make([]string, 256)
	for i := range card.Features {
		card.Features[i] = "f" + strings.Repeat("x", i%3)
	}
	card.Preprocess.Impute = make([]float64, 256)
	card.Preprocess.Mean = make([]float64, 256)
	card.Preprocess.Std = make([]float64, 256)
	for i := range card.Preprocess.Std {
		card.Preprocess.Std[i] = 1
	}
	card.Network.Inputs, card.Network.Hidden = 256, []int{1024, 512}
	card.Metrics = map[string]float64{"accuracy": 0.9, "log_loss": 0.3}
	tensors := map[string]Tensor{}
	for _, p := range card.Network.Params() {
		tensors[p.Name] = Tensor{Shape: p.Shape, Data: make([]float64, p.Size())}
	}
	dir := filepath.Join(b.TempDir(), "m")
	require.NoError(b, WriteDir(dir, card, tensors, nil))
	st, err := os.Stat(filepath.Join(dir, WeightsFile))
	require.NoError(b, err)
	b.Run("ReadCard", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if _, err := ReadCard(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readCard without verification", func(b *testing.B) {
		for b.Loop() {
			if _, err := readCard(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Load", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if _, err := Load(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}
