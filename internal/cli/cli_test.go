package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/version"
)

// smallCSV is a valid binary dataset "a,b,target" with n rows.
func smallCSV(n int) string {
	var b strings.Builder
	b.WriteString("a,b,target\n")
	for i := range n {
		fmt.Fprintf(&b, "%d,%d,%d\n", i, i%7, i%2)
	}
	return b.String()
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := mlship(t, args...)
			assert.Equal(t, 0, r.code)
			assert.Contains(t, r.stdout, version.Version)
			assert.Empty(t, r.stderr)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus" for "mlship"`},
		// cobra adds "\n\nDid you mean this?\n\trun\n": it must still be one line.
		{"unknown command with a suggestion", []string{"rn"}, `unknown command "rn" for "mlship"; Did you mean this? run`},
		{"unknown root flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"version takes no args", []string{"version", "x"}, `unknown command "x" for "mlship version"`},
		{"run takes one dir", []string{"run", "a", "b"}, "accepts at most 1 arg(s), received 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mlship(t, tt.args...)
			assert.Equal(t, 2, r.code)
			assert.Equal(t, tt.want, errLine(t, r.stderr))
			assert.Empty(t, r.stdout)
		})
	}
}

// TestTrainInputErrors checks that every bad input exits 2 with one line that
// names the problem, and that nothing is written: no model directory, no
// temporary .mlship-model-* directory, nothing else in the working directory.
func TestTrainInputErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // written under {dir} before the run
		args  []string          // after "train -q --out {dir}/out --epochs 2"
		want  string            // the whole message after "mlship: "
		// wantContains, when set, replaces want by substrings.
		wantContains []string
	}{
		{
			name: "missing data file",
			args: []string{"--data", "{dir}/nope.csv", "--target", "target"},
			want: `reading dataset "{dir}/nope.csv": open {dir}/nope.csv: no such file or directory`,
		},
		{
			name:  "empty file",
			files: map[string]string{"d.csv": ""},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": file is empty`,
		},
		{
			name:  "blank lines only",
			files: map[string]string{"d.csv": "\n  \n\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": file is empty`,
		},
		{
			name:  "header only",
			files: map[string]string{"d.csv": "a,b,target\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": file has a header but no data rows`,
		},
		{
			name:  "one data row",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": need at least 5 rows, have 1`,
		},
		{
			name:  "duplicate column names",
			files: map[string]string{"d.csv": "a,b,a,target\n1,2,3,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": line 1, column "a": duplicate column name (columns 1 and 3)`,
		},
		{
			name:  "empty column name",
			files: map[string]string{"d.csv": "a,,target\n1,2,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": line 1: column 2 has an empty name`,
		},
		{
			name:  "target absent",
			files: map[string]string{"d.csv": smallCSV(20)},
			args:  []string{"--data", "{dir}/d.csv", "--target", "label"},
			want:  `reading dataset "{dir}/d.csv": target column "label" not found; columns: a, b, target`,
		},
		{
			name:  "no target given",
			files: map[string]string{"d.csv": smallCSV(20)},
			args:  []string{"--data", "{dir}/d.csv"},
			want:  `--target is required (the column to predict)`,
		},
		{
			name: "no data given",
			args: []string{"--target", "target"},
			want: `--data is required (the training CSV)`,
		},
		{
			name:  "feature that does not exist",
			files: map[string]string{"d.csv": smallCSV(20)},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target", "--features", "a,c"},
			want:  `reading dataset "{dir}/d.csv": feature column "c" not found; columns: a, b, target`,
		},
		{
			name:  "drop column that does not exist",
			files: map[string]string{"d.csv": smallCSV(20)},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target", "--drop", "zz"},
			want:  `reading dataset "{dir}/d.csv": drop column "zz" not found; columns: a, b, target`,
		},
		{
			name:  "constant target",
			files: map[string]string{"d.csv": "a,b,target\n1,2,1\n2,3,1\n3,4,1\n4,5,1\n5,6,1\n6,7,1\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": column "target": target is constant (every row is 1)`,
		},
		{
			name:  "text in a regression target names file, line and column",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\n2,3,1\n3,4,abc\n4,5,1\n5,6,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target", "--task", "regression"},
			want:  `reading dataset "{dir}/d.csv": line 4, column "target": a regression target must be numbers, and "abc" is not one (a target of text is a classification target: set task to binary or multiclass, or fix the cell)`,
		},
		{
			name:  "text cell after a blank line keeps the file's line number",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\n\n2,3,1\n3,4,yes\n4,5,0\n5,6,1\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target", "--task", "regression"},
			want:  `reading dataset "{dir}/d.csv": line 5, column "target": a regression target must be numbers, and "yes" is not one (a target of text is a classification target: set task to binary or multiclass, or fix the cell)`,
		},
		{
			name:  "a text column for a cnn",
			files: map[string]string{"d.csv": "a,b,c,d,target\n1,2,3,4,0\n2,3,4,5,1\n3,x,5,6,0\n4,5,6,7,1\n5,6,7,8,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target", "--kind", "cnn", "--input-shape", "1x2x2", "--conv", "2x3"},
			want:  `reading dataset "{dir}/d.csv": line 4, column "b": "x" is not a number: a cnn takes numbers only (its inputs are an image's pixels); fix the cell or drop the column`,
		},
		{
			name:  "binarize ordering a text target",
			files: map[string]string{"d.csv": "a,b,target\n1,2,no\n2,3,yes\n3,4,no\n4,5,yes\n5,6,no\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target", "--binarize", ">0"},
			want:  `reading dataset "{dir}/d.csv": line 2, column "target": binarize ">0" compares numbers, and the target holds text ("no"); compare a label with == or !=`,
		},
		{
			name:  "--max-categories 0",
			files: map[string]string{"d.csv": smallCSV(20)},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target", "--max-categories", "0"},
			want:  `--max-categories must be at least 1, got 0`,
		},
		{
			name:  "inf cell",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\ninf,3,1\n3,4,0\n4,5,1\n5,6,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": line 3, column "a": "inf" is not a finite number`,
		},
		{
			name:  "-Infinity cell",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\n2,3,1\n3,-Infinity,0\n4,5,1\n5,6,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": line 4, column "b": "-Infinity" is not a finite number`,
		},
		{
			name:  "overflowing cell",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\n2,1e999,1\n3,4,0\n4,5,1\n5,6,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": line 3, column "b": "1e999" is not a finite number`,
		},
		{
			name:  "ragged row",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\n2,3\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": line 3: has 2 fields, want 3 (one per header column)`,
		},
		{
			name:  "missing target value",
			files: map[string]string{"d.csv": "a,b,target\n1,2,0\n2,3,1\n3,4,?\n4,5,1\n5,6,0\n"},
			args:  []string{"--data", "{dir}/d.csv", "--target", "target"},
			want:  `reading dataset "{dir}/d.csv": line 4, column "target": target value is missing`,
		},
		{
			name: "bad --binarize",
			args: []string{"--data", heartCSV, "--target", "target", "--binarize", "~0"},
			want: `reading dataset "` + heartCSV + `": column "target": bad binarize expression "~0": want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>`,
		},
		{
			name: "--binarize without a number",
			args: []string{"--data", heartCSV, "--target", "target", "--binarize", ">"},
			want: `reading dataset "` + heartCSV + `": column "target": bad binarize expression ">": want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>`,
		},
		{
			name: "--binarize that puts every row in one class",
			args: []string{"--data", heartCSV, "--target", "target", "--binarize", ">9"},
			want: `reading dataset "` + heartCSV + `": column "target": binarize ">9" puts every row in one class (0 of 303 rows positive)`,
		},
		{
			name: "--binarize with a non-binary task",
			args: []string{"--data", heartCSV, "--target", "target", "--binarize", ">0", "--task", "regression"},
			want: `reading dataset "` + heartCSV + `": column "target": binarize ">0" needs a binary task, not regression`,
		},
		{
			name: "bad --task",
			args: []string{"--data", heartCSV, "--target", "target", "--task", "classify"},
			want: `--task: "classify" is not one of binary, multiclass, regression, auto`,
		},
		{
			name: "--task binary on a 5-class target",
			args: []string{"--data", heartCSV, "--target", "target", "--task", "binary"},
			want: `reading dataset "` + heartCSV + `": column "target": binary task needs exactly 2 distinct target values, have 5 (0, 1, 2, 3, 4); set binarize to split them`,
		},
		{
			name: "bad --input-shape",
			args: []string{"--data", digitsCSV, "--target", "label", "--kind", "cnn", "--input-shape", "8x8", "--conv", "4x3"},
			want: `--input-shape: "8x8" is not CHANNELSxHEIGHTxWIDTH, e.g. 1x8x8`,
		},
		{
			name: "--input-shape with a zero",
			args: []string{"--data", digitsCSV, "--target", "label", "--kind", "cnn", "--input-shape", "1x0x8", "--conv", "4x3"},
			want: `--input-shape: "1x0x8" is not CHANNELSxHEIGHTxWIDTH with positive integers`,
		},
		{
			name: "bad --conv",
			args: []string{"--data", digitsCSV, "--target", "label", "--kind", "cnn", "--input-shape", "1x8x8", "--conv", "3"},
			want: `--conv: "3" is not FILTERSxKERNEL[pPOOL], e.g. 16x3p2`,
		},
		{
			name: "--conv with pool 0",
			args: []string{"--data", digitsCSV, "--target", "label", "--kind", "cnn", "--input-shape", "1x8x8", "--conv", "4x3p0"},
			want: `--conv: "4x3p0" is not FILTERSxKERNEL[pPOOL], e.g. 16x3p2`,
		},
		{
			name: "--input-shape on an mlp",
			args: []string{"--data", digitsCSV, "--target", "label", "--input-shape", "1x8x8"},
			want: `--input-shape is for a cnn only (set --kind to cnn)`,
		},
		{
			name: "cnn without image and conv",
			args: []string{"--data", digitsCSV, "--target", "label", "--kind", "cnn"},
			want: `--input-shape is required for a cnn (CHANNELSxHEIGHTxWIDTH); --conv is required for a cnn: at least one block FILTERSxKERNEL[pPOOL]`,
		},
		{
			name: "image that does not match the features",
			args: []string{"--data", heartCSV, "--target", "target", "--binarize", ">0", "--kind", "cnn", "--input-shape", "1x2x2", "--conv", "2x1"},
			want: `model for "` + heartCSV + `": network: image 1x2x2 has 4 values but the data has 13 features`,
		},
		{
			name: "even kernel",
			args: []string{"--data", digitsCSV, "--target", "label", "--kind", "cnn", "--input-shape", "1x8x8", "--conv", "4x8"},
			want: `model for "` + digitsCSV + `": network: conv layer 1: kernel must be odd and positive, got 8`,
		},
		{
			name: "unknown --kind",
			args: []string{"--data", heartCSV, "--target", "target", "--kind", "rnn"},
			want: `--kind: "rnn" is not one of mlp, cnn`,
		},
		{
			name: "negative --epochs",
			args: []string{"--data", heartCSV, "--target", "target", "--epochs", "-1"},
			want: `--epochs must be at least 1, got -1`,
		},
		{
			name: "zero --epochs",
			args: []string{"--data", heartCSV, "--target", "target", "--epochs", "0"},
			want: `--epochs must be at least 1, got 0`,
		},
		{
			name: "non-integer --epochs",
			args: []string{"--data", heartCSV, "--target", "target", "--epochs", "many"},
			want: `--epochs: "many" is not an integer`,
		},
		{
			name: "several config errors on one line",
			args: []string{"--data", heartCSV, "--target", "target", "--batch-size", "0", "--test-size", "1.5", "--hidden", "8,-1"},
			want: `--hidden sizes must be positive, got -1; --batch-size must be at least 1, got 0; --test-size must be between 0 and 1, got 1.5`,
		},
		{
			name: "test split so large the validation set is empty",
			args: []string{"--data", heartCSV, "--target", "target", "--binarize", ">0", "--test-size", "0.99"},
			want: `splitting "` + heartCSV + `": splitting 303 rows (test_frac 0.99, val_frac 0.2): the validation set is empty`,
		},
		{
			name: "unknown flag",
			args: []string{"--data", heartCSV, "--target", "target", "--bogus"},
			want: `unknown flag: --bogus`,
		},
		{
			name: "positional argument",
			args: []string{"--data", heartCSV, "--target", "target", "extra"},
			want: `unknown command "extra" for "mlship train"`,
		},
		{
			name:  "unknown key in mlship.yaml names the line",
			files: map[string]string{"mlship.yaml": "data: " + heartCSV + "\ntarget: target\ntrain:\n  epochs: 3\n  epoch: 2\n"},
			args:  []string{"--config", "{dir}/mlship.yaml"},
			want:  `{dir}/mlship.yaml:5: unknown key "train.epoch" (did you mean "train.epochs"?)`,
		},
		{
			name:  "unknown top-level key in mlship.yaml",
			files: map[string]string{"mlship.yaml": "data: " + heartCSV + "\ntargte: target\n"},
			args:  []string{"--config", "{dir}"},
			want:  `{dir}/mlship.yaml:2: unknown key "targte" (did you mean "target"?)`,
		},
		{
			name:  "wrong type in mlship.yaml names the line",
			files: map[string]string{"mlship.yaml": "data: x.csv\ntarget: target\ntrain:\n  epochs: many\n"},
			args:  []string{"--config", "{dir}/mlship.yaml"},
			want:  `{dir}/mlship.yaml:4: train.epochs: "many" is not an integer`,
		},
		{
			name:         "invalid YAML",
			files:        map[string]string{"mlship.yaml": "data: [x.csv\n"},
			args:         []string{"--config", "{dir}/mlship.yaml"},
			wantContains: []string{`reading config "{dir}/mlship.yaml": `},
		},
		{
			name: "missing config file",
			args: []string{"--config", "{dir}/none.yaml"},
			want: `reading config "{dir}/none.yaml": no such file`,
		},
		{
			name: "directory without mlship.yaml",
			args: []string{"--config", "{dir}"},
			want: `reading config "{dir}/mlship.yaml": no such file`,
		},
		{
			name:  "config data path is relative to the config file",
			files: map[string]string{"sub/mlship.yaml": "data: missing.csv\ntarget: target\n"},
			args:  []string{"--config", "{dir}/sub/mlship.yaml"},
			want:  `reading dataset "{dir}/sub/missing.csv": open {dir}/sub/missing.csv: no such file or directory`,
		},
		{
			// Training that blows up is an input problem too (the learning rate).
			name: "training diverges",
			// the first Adam step makes the weights about 1e299: the activations
			// overflow float64 (the log-softmax is stable, so nothing smaller does)
			args: []string{"--data", digitsCSV, "--target", "label", "--learning-rate", "1e300", "--epochs", "1"},
			want: `training on "` + digitsCSV + `": epoch 1: the training loss became NaN (try a lower learning rate)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			before := tree(t, dir)
			args := append([]string{"train", "-q", "--out", filepath.Join(dir, "out"), "--epochs", "2"}, expandAll(tt.args, dir)...)
			r := mlship(t, args...)
			assert.Equal(t, 2, r.code)
			msg := errLine(t, r.stderr)
			if tt.wantContains != nil {
				for _, s := range tt.wantContains {
					assert.Contains(t, msg, expand(s, dir))
				}
			} else {
				assert.Equal(t, expand(tt.want, dir), msg)
			}
			assert.Empty(t, r.stdout)
			assert.Equal(t, before, tree(t, dir), "a failed train must leave the directory as it was")
		})
	}
}

// TestTrainErrorAfterProgress: without -q, progress lines come first, and the
// error is still the one last line.
func TestTrainErrorAfterProgress(t *testing.T) {
	dir := t.TempDir()
	r := mlship(t, "train", "--data", digitsCSV, "--target", "label", "--learning-rate", "1e300", "--epochs", "1",
		"--out", filepath.Join(dir, "out"))
	assert.Equal(t, 2, r.code)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	require.NotEmpty(t, lines)
	assert.True(t, strings.HasPrefix(lines[0], "training digits on digits.csv:"), "stderr: %q", r.stderr)
	last := lines[len(lines)-1]
	assert.Equal(t, `mlship: training on "`+digitsCSV+`": epoch 1: the training loss became NaN (try a lower learning rate)`, last)
	assert.NotContains(t, r.stderr, "panic")
	assert.NoDirExists(t, filepath.Join(dir, "out"))
	assertNoTempModelDirs(t, dir)
}

// TestTrainRefusesNonModelOut: an existing directory that holds something else
// (or a file) is never replaced, and nothing is left next to it.
func TestTrainRefusesNonModelOut(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, out string)
		want  string
	}{
		{
			name: "non-empty directory",
			setup: func(t *testing.T, out string) {
				writeFile(t, filepath.Join(out, "notes.txt"), "keep me\n")
				writeFile(t, filepath.Join(out, "sub", "data.csv"), "a,b\n")
			},
			want: `writing model "{out}": the directory is not empty and holds no model.json; refusing to replace it`,
		},
		{
			name:  "a file",
			setup: func(t *testing.T, out string) { writeFile(t, out, "keep me\n") },
			want:  `writing model "{out}": it exists and is not a directory`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			tt.setup(t, out)
			before := tree(t, dir)
			r := mlship(t, "train", "-q", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2", "--out", out)
			assert.Equal(t, 2, r.code)
			assert.Equal(t, strings.ReplaceAll(tt.want, "{out}", out), errLine(t, r.stderr))
			assert.Empty(t, r.stdout)
			assert.Equal(t, before, tree(t, dir), "the refused --out and its parent must be left as they were")
			if st, err := os.Stat(out); err == nil && !st.IsDir() {
				b, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.Equal(t, "keep me\n", string(b))
			} else {
				b, err := os.ReadFile(filepath.Join(out, "notes.txt"))
				require.NoError(t, err)
				assert.Equal(t, "keep me\n", string(b))
			}
		})
	}
}

// TestTrainFailureLeavesNoSplitFile: --split-out is an output like the model
// directory; a train that fails must not leave one behind (a stale split next
// to no model, or next to an older model, misleads whoever reads it).
//
// Fails at the time of writing: train.Run writes the split file right after
// splitting, before training and before model.WriteDir checks --out.
func TestTrainFailureLeavesNoSplitFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, out string)
		args  []string
	}{
		{
			name: "training diverges",
			args: []string{"--data", digitsCSV, "--target", "label", "--learning-rate", "1e300", "--epochs", "1"},
		},
		{
			name:  "--out refused",
			setup: func(t *testing.T, out string) { writeFile(t, filepath.Join(out, "notes.txt"), "keep me\n") },
			args:  []string{"--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			if tt.setup != nil {
				tt.setup(t, out)
			}
			split := filepath.Join(dir, "split.json")
			r := mlship(t, append([]string{"train", "-q", "--out", out, "--split-out", split}, tt.args...)...)
			assert.Equal(t, 2, r.code)
			errLine(t, r.stderr)
			assert.NoFileExists(t, split, "bug: the split file is written before training and left behind when train fails")
		})
	}
}

// TestTrainChecksOutBeforeTraining: an unusable --out is a configuration
// problem and must be reported before any work is done, not after a (possibly
// long) training run whose result is then thrown away.
//
// Fails at the time of writing: model.WriteDir checks whether --out may be
// replaced only after train.Run has fitted the network; the progress lines on
// stderr show the training that was wasted.
func TestTrainChecksOutBeforeTraining(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	writeFile(t, filepath.Join(out, "notes.txt"), "keep me\n")
	r := mlship(t, "train", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2", "--out", out)
	assert.Equal(t, 2, r.code)
	assert.NotContains(t, r.stderr, "epoch ", "bug: the network was trained before --out was found unusable")
	errLine(t, r.stderr)
}

func TestTrainReplacesModelDir(t *testing.T) {
	t.Run("existing model directory", func(t *testing.T) {
		dir := t.TempDir()
		out := trainHeart(t, filepath.Join(dir, "model"), "--seed", "1")
		first, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
		require.NoError(t, err)

		trainHeart(t, out, "--seed", "2")
		assert.Equal(t, int64(2), readCard(t, out).Seed)
		second, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
		require.NoError(t, err)
		assert.NotEqual(t, first, second)
		assert.Equal(t, []string{"model/", "model/metrics.json", "model/model.json", "model/model.safetensors"}, tree(t, dir))

		// A file mlship did not write keeps the directory from being replaced.
		writeFile(t, filepath.Join(out, "stale.txt"), "old\n")
		r := mlship(t, "train", "-q", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "3", "--out", out, "--seed", "3")
		assert.Equal(t, 2, r.code)
		assert.Equal(t, `writing model "`+out+`": it holds stale.txt, which mlship did not write; refusing to replace the directory (move them out, or write the model elsewhere)`, errLine(t, r.stderr))
		assert.Equal(t, int64(2), readCard(t, out).Seed, "nothing touched")
		assert.FileExists(t, filepath.Join(out, "stale.txt"))
	})
	t.Run("existing empty directory", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "model")
		require.NoError(t, os.Mkdir(out, 0o755))
		trainHeart(t, out)
		assert.Equal(t, []string{"model/", "model/metrics.json", "model/model.json", "model/model.safetensors"}, tree(t, dir))
	})
	t.Run("missing parent directories are made", func(t *testing.T) {
		dir := t.TempDir()
		trainHeart(t, filepath.Join(dir, "a", "b", "model"))
		assert.FileExists(t, filepath.Join(dir, "a", "b", "model", "model.json"))
		assertNoTempModelDirs(t, filepath.Join(dir, "a", "b"))
	})
}

func TestTrainText(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "model")
	r := mlship(t, "train", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "3", "--out", out)
	require.Equal(t, 0, r.code, r.stderr)

	assert.Contains(t, r.stdout, "model     "+out+" (binary, mlp 13-64-32-1 relu/sigmoid)\n")
	assert.Contains(t, r.stdout, "data      heart.csv sha256:")
	assert.Contains(t, r.stdout, "303 rows, 6 missing values imputed\n")
	assert.Contains(t, r.stdout, "training  best epoch ")
	assert.Contains(t, r.stdout, " of 3, ")
	assert.Contains(t, r.stdout, "metrics   (test split, 61 rows)\n")
	// Binary metrics in their canonical order, 4 decimals.
	var names []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(line, "  ") {
			names = append(names, f[0])
			assert.Regexp(t, `^\d+\.\d{4}$`, f[1], line)
		}
	}
	assert.Equal(t, []string{"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}, names)

	// Progress on stderr, one line per epoch and a summary.
	assert.Contains(t, r.stderr, "training heart on heart.csv: 303 rows (train 194, val 48, test 61), 13 features, task binary")
	assert.Contains(t, r.stderr, "imputed 6 missing values with training means (ca 4, thal 2)\n")
	for e := 1; e <= 3; e++ {
		assert.Contains(t, r.stderr, fmt.Sprintf("epoch %3d/3  loss ", e))
	}
	assert.Contains(t, r.stderr, "wrote "+out+"\n")
	assert.NotContains(t, r.stderr, "mlship: ")

	assert.Equal(t, []string{"model/", "model/metrics.json", "model/model.json", "model/model.safetensors"}, tree(t, dir))
	card := readCard(t, out)
	assert.Equal(t, "heart", card.Name, "the default name is the data file's base name")
	assert.Equal(t, dataset.Task("binary"), card.Task)
	assert.Equal(t, ">0", card.Binarize)
	assert.Equal(t, 3, card.Training.MaxEpochs)
	assert.Equal(t, readMetrics(t, out), card.Metrics)
}

func TestTrainQuiet(t *testing.T) {
	dir := t.TempDir()
	r := mlship(t, "train", "-q", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "2", "--out", filepath.Join(dir, "m"))
	require.Equal(t, 0, r.code)
	assert.Empty(t, r.stderr)
	assert.Contains(t, r.stdout, "metrics ")
}

func TestTrainJSON(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "model")
	r := mlship(t, "train", "-q", "--json", "--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "3",
		"--out", out, "--name", "heart-test", "--git-sha", "abc123")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)

	var got struct {
		ModelDir         string             `json:"model_dir"`
		Name             string             `json:"name"`
		Task             string             `json:"task"`
		EpochsRun        int                `json:"epochs_run"`
		BestEpoch        int                `json:"best_epoch"`
		TrainRows        int                `json:"train_rows"`
		TrainSeconds     float64            `json:"train_seconds"`
		SamplesPerSecond float64            `json:"samples_per_second"`
		MissingFilled    int                `json:"missing_filled"`
		DataSHA256       string             `json:"data_sha256"`
		Metrics          map[string]float64 `json:"metrics"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&got), "stdout: %s", r.stdout)
	assert.False(t, dec.More(), "stdout holds one JSON document")

	assert.Equal(t, out, got.ModelDir)
	assert.Equal(t, "heart-test", got.Name)
	assert.Equal(t, "binary", got.Task)
	assert.Equal(t, 3, got.EpochsRun)
	assert.GreaterOrEqual(t, got.BestEpoch, 1)
	assert.LessOrEqual(t, got.BestEpoch, 3)
	assert.Equal(t, 194, got.TrainRows)
	assert.Positive(t, got.TrainSeconds)
	assert.Positive(t, got.SamplesPerSecond)
	assert.Equal(t, 6, got.MissingFilled)
	assert.Len(t, got.DataSHA256, 64)
	require.Contains(t, got.Metrics, "accuracy")
	assert.Greater(t, got.Metrics["accuracy"], 0.5)
	assert.LessOrEqual(t, got.Metrics["accuracy"], 1.0)
	assert.Equal(t, readMetrics(t, out), got.Metrics)

	card := readCard(t, out)
	assert.Equal(t, "heart-test", card.Name)
	assert.Equal(t, "abc123", card.GitSHA)
	assert.Equal(t, got.DataSHA256, card.Data.SHA256)
}

func TestTrainGitSHAFromEnvironment(t *testing.T) {
	t.Setenv("GITHUB_SHA", "")
	t.Setenv("CI_COMMIT_SHA", "fromgitlab")
	dir := t.TempDir()
	out := trainHeart(t, filepath.Join(dir, "m"))
	assert.Equal(t, "fromgitlab", readCard(t, out).GitSHA)

	t.Setenv("GITHUB_SHA", "fromgithub")
	out = trainHeart(t, filepath.Join(dir, "m2"))
	assert.Equal(t, "fromgithub", readCard(t, out).GitSHA)

	out = trainHeart(t, filepath.Join(dir, "m3"), "--git-sha", "fromflag")
	assert.Equal(t, "fromflag", readCard(t, out).GitSHA)
}

func TestTrainSplitOut(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "model")
	split := filepath.Join(dir, "split.json")
	trainHeart(t, out, "--split-out", split)

	b, err := os.ReadFile(split)
	require.NoError(t, err)
	var s map[string][]int
	require.NoError(t, json.Unmarshal(b, &s))
	assert.ElementsMatch(t, []string{"train", "val", "test"}, keys(s))
	assert.Equal(t, heartRows, len(s["train"])+len(s["val"])+len(s["test"]))

	seen := map[int]string{}
	for part, idx := range s {
		for _, i := range idx {
			assert.True(t, i >= 0 && i < heartRows, "%s index %d out of range", part, i)
			if prev, dup := seen[i]; dup {
				t.Errorf("row %d is in both %s and %s", i, prev, part)
			}
			seen[i] = part
		}
	}
	card := readCard(t, out)
	assert.Equal(t, len(s["train"]), card.Data.Split.Train)
	assert.Equal(t, len(s["val"]), card.Data.Split.Val)
	assert.Equal(t, len(s["test"]), card.Data.Split.Test)
	assert.Equal(t, heartRows, card.Data.Rows)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// heartProject writes a project directory: mlship.yaml (with the given train
// section lines) and the heart data under data/, so the config's data path is
// relative to the file.
func heartProject(t *testing.T, dir string, trainLines ...string) string {
	t.Helper()
	copyFile(t, heartCSV, filepath.Join(dir, "data", "heart.csv"))
	cfg := "name: heart-test\ndata: data/heart.csv\ntarget: target\nbinarize: \">0\"\nmodel:\n  hidden: [8]\ntrain:\n" +
		"  epochs: 100\n  seed: 7\n  out: model\n"
	for _, l := range trainLines {
		cfg += "  " + l + "\n"
	}
	cfg += "gate:\n  min: {accuracy: 0.5}\n"
	writeFile(t, filepath.Join(dir, "mlship.yaml"), cfg)
	return dir
}

func TestTrainConfigAndFlags(t *testing.T) {
	tests := []struct {
		name       string
		config     func(dir string) string // the --config value
		flags      []string
		wantOut    string // relative to the project dir
		wantEpochs int
		wantSeed   int64
		wantHidden []int
	}{
		{
			name:       "flag overrides config epochs",
			config:     func(dir string) string { return filepath.Join(dir, "mlship.yaml") },
			flags:      []string{"--epochs", "2"},
			wantOut:    "model",
			wantEpochs: 2, wantSeed: 7, wantHidden: []int{8},
		},
		{
			name:       "config given as its directory",
			config:     func(dir string) string { return dir },
			flags:      []string{"--epochs", "2"},
			wantOut:    "model",
			wantEpochs: 2, wantSeed: 7, wantHidden: []int{8},
		},
		{
			name:       "flags override seed, hidden and out",
			config:     func(dir string) string { return filepath.Join(dir, "mlship.yaml") },
			flags:      []string{"--epochs", "1", "--seed", "9", "--hidden", "4,4", "--out", "{dir}/elsewhere"},
			wantOut:    "elsewhere",
			wantEpochs: 1, wantSeed: 9, wantHidden: []int{4, 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := heartProject(t, t.TempDir())
			args := append([]string{"train", "-q", "--config", tt.config(dir)}, expandAll(tt.flags, dir)...)
			r := mlship(t, args...)
			require.Equal(t, 0, r.code, r.stderr)
			card := readCard(t, filepath.Join(dir, tt.wantOut))
			assert.Equal(t, tt.wantEpochs, card.Training.MaxEpochs)
			assert.LessOrEqual(t, card.Training.EpochsRun, tt.wantEpochs)
			assert.Equal(t, tt.wantSeed, card.Seed)
			assert.Equal(t, tt.wantHidden, card.Network.Hidden)
			assert.Equal(t, "heart-test", card.Name)
			assert.Equal(t, ">0", card.Binarize)
			assert.Equal(t, "heart.csv", card.Data.File)
		})
	}
}

// TestTrainConfigRelativeToFile runs from another working directory: paths in
// the file are relative to the file, paths in flags to the working directory.
func TestTrainConfigRelativeToFile(t *testing.T) {
	root := t.TempDir()
	heartProject(t, filepath.Join(root, "proj"))
	require.NoError(t, os.Mkdir(filepath.Join(root, "work"), 0o755))
	t.Chdir(filepath.Join(root, "work"))

	r := mlship(t, "train", "-q", "--config", "../proj/mlship.yaml", "--epochs", "1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.FileExists(t, filepath.Join(root, "proj", "model", "model.json"))

	r = mlship(t, "train", "-q", "--config", "../proj", "--epochs", "1", "--out", "m")
	require.Equal(t, 0, r.code, r.stderr)
	assert.FileExists(t, filepath.Join(root, "work", "m", "model.json"))
	assert.Equal(t, []string{"m/", "m/metrics.json", "m/model.json", "m/model.safetensors"}, tree(t, filepath.Join(root, "work")))
}

// TestTrainCNN trains the digits CNN from its example config for one epoch.
func TestTrainCNN(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "model")
	r := mlship(t, "train", "-q", "--json", "--config", digitsDir, "--epochs", "1", "--out", out)
	require.Equal(t, 0, r.code, r.stderr)
	var got struct {
		Task    string             `json:"task"`
		Metrics map[string]float64 `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, "multiclass", got.Task)
	assert.Contains(t, got.Metrics, "macro_f1")
	card := readCard(t, out)
	assert.Equal(t, "cnn", card.Network.Kind)
	assert.Equal(t, "digits", card.Name)
	assert.Len(t, card.Classes, 10)
}
