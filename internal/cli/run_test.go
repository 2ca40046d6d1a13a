package cli_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/image/serverbin"
	"github.com/mlship/mlship/internal/spec"
)

func TestRunExample(t *testing.T) {
	before := tree(t, heartDir)
	out := filepath.Join(t.TempDir(), "out")
	r := mlship(t, "run", heartDir, "--out", out, "-q")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)

	// With --out the outputs go directly under it.
	files := tree(t, out)
	assertImageStep(t, r.stdout, files, "")
	assert.Equal(t, []string{"junit.xml", "model/", "model/metrics.json", "model/model.json", "model/model.safetensors", "report.md"}, withoutImage(files, ""))
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "### ✅ mlship: heart-disease passed the gate")
	assert.Contains(t, string(md), "```mermaid\nxychart-beta")
	card := readCard(t, filepath.Join(out, "model"))
	assert.Equal(t, "heart-disease", card.Name)
	assert.Equal(t, 100, card.Training.MaxEpochs)
	assert.Equal(t, int64(42), card.Seed)

	rep := readJUnit(t, filepath.Join(out, "junit.xml"))
	assert.Equal(t, 3, rep.Tests, "the example's gate has 3 checks")
	assert.Equal(t, 0, rep.Failures)

	assert.Contains(t, r.stdout, "== train ("+filepath.Join(heartDir, "mlship.yaml")+")\n")
	assert.Contains(t, r.stdout, "metrics   (test split, 61 rows)\n")
	assert.Contains(t, r.stdout, "\n== evaluate-gate\n")
	assert.Contains(t, r.stdout, "gate PASSED: all 3 checks passed\n")
	assert.Contains(t, r.stdout, "\noutputs: "+filepath.Join(out, "model")+" (model card, weights, metrics), "+filepath.Join(out, "junit.xml"))

	assert.Equal(t, before, tree(t, heartDir), "run must not write into the project directory")
}

// runProject writes a copy of the heart example with few epochs and the given
// gate section.
func runProject(t *testing.T, dir, gate string) string {
	t.Helper()
	copyFile(t, heartCSV, filepath.Join(dir, "heart.csv"))
	writeFile(t, filepath.Join(dir, "mlship.yaml"), "name: heart-small\ndata: heart.csv\ntarget: target\nbinarize: \">0\"\n"+
		"train:\n  epochs: 5\n  out: model\n"+gate)
	return dir
}

func TestRunDefaultOut(t *testing.T) {
	root := t.TempDir()
	proj := runProject(t, filepath.Join(root, "proj"), "gate:\n  min: {accuracy: 0.5}\n")
	work := filepath.Join(root, "work")
	require.NoError(t, os.Mkdir(work, 0o755))
	t.Chdir(work)

	r := mlship(t, "run", "../proj")
	require.Equal(t, 0, r.code, r.stderr)
	// Without --out: mlship-out/NAME under the working directory.
	files := tree(t, work)
	assertImageStep(t, r.stdout, files, "mlship-out/heart-small/")
	assert.Equal(t, []string{"mlship-out/", "mlship-out/heart-small/", "mlship-out/heart-small/junit.xml",
		"mlship-out/heart-small/model/", "mlship-out/heart-small/model/metrics.json",
		"mlship-out/heart-small/model/model.json", "mlship-out/heart-small/model/model.safetensors", "mlship-out/heart-small/report.md"}, withoutImage(files, "mlship-out/heart-small/"))
	// Progress goes to stderr without -q.
	assert.Contains(t, r.stderr, "epoch   1/5")
	assert.NotContains(t, r.stderr, "mlship: ")
	// The config's train.out is not used by run; nothing is written into the project.
	assert.Equal(t, []string{"heart.csv", "mlship.yaml"}, tree(t, proj))
}

func TestRunGateFails(t *testing.T) {
	dir := t.TempDir()
	proj := runProject(t, filepath.Join(dir, "proj"), "gate:\n  min: {accuracy: 0.99}\n  max: {log_loss: 5}\n")
	out := filepath.Join(dir, "out")
	r := mlship(t, "run", proj, "--out", out, "-q")
	assert.Equal(t, 1, r.code)
	msg := errLine(t, r.stderr)
	assert.True(t, strings.HasPrefix(msg, "gate failed: accuracy "), msg)
	assert.True(t, strings.HasSuffix(msg, " < min 0.99"), msg)
	assert.Contains(t, r.stdout, "gate FAILED: ")
	assert.Contains(t, r.stdout, "\noutputs: ")
	// The model and the report are kept: the report says why the gate failed.
	assert.FileExists(t, filepath.Join(out, "model", "model.json"))
	rep := readJUnit(t, filepath.Join(out, "junit.xml"))
	assert.Equal(t, 2, rep.Tests)
	assert.Equal(t, 1, rep.Failures)
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "failed the gate\n\n**Why:** accuracy ")
	assert.NoDirExists(t, filepath.Join(out, "image"), "no image for a model that failed its gate")
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, proj string)
		args  []string // after "run"; {dir} is the test's directory, the project is {dir}/proj
		want  string
	}{
		{
			name: "no such directory",
			args: []string{"{dir}/none"},
			want: `reading config "{dir}/none": no such file`,
		},
		{
			name:  "directory without mlship.yaml",
			setup: func(t *testing.T, proj string) { require.NoError(t, os.MkdirAll(proj, 0o755)) },
			args:  []string{"{dir}/proj"},
			want:  `reading config "{dir}/proj/mlship.yaml": no such file`,
		},
		{
			name: "unknown key in mlship.yaml",
			setup: func(t *testing.T, proj string) {
				runProject(t, proj, "gate:\n  min: {accuracy: 0.5}\n  mni: {f1: 0.5}\n")
			},
			args: []string{"{dir}/proj"},
			want: `{dir}/proj/mlship.yaml:10: unknown key "gate.mni" (did you mean "gate.max"?)`,
		},
		{
			name:  "unknown metric in the gate section",
			setup: func(t *testing.T, proj string) { runProject(t, proj, "gate:\n  min: {acc: 0.5}\n") },
			args:  []string{"{dir}/proj"},
			want:  `{dir}/proj/mlship.yaml:9: gate.min names an unknown metric "acc" (known: ` + knownMetrics + `)`,
		},
		{
			name: "bad data",
			setup: func(t *testing.T, proj string) {
				runProject(t, proj, "")
				writeFile(t, filepath.Join(proj, "heart.csv"), "a,b,target\n1,2,0\n2,inf,1\n")
			},
			args: []string{"{dir}/proj"},
			want: `reading dataset "{dir}/proj/heart.csv": line 3, column "b": "inf" is not a finite number`,
		},
		{
			name:  "unknown flag",
			setup: func(t *testing.T, proj string) { runProject(t, proj, "") },
			args:  []string{"{dir}/proj", "--epochs", "3"},
			want:  `unknown flag: --epochs`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, filepath.Join(dir, "proj"))
			}
			before := tree(t, dir)
			args := append([]string{"run", "-q", "--out", filepath.Join(dir, "out")}, expandAll(tt.args, dir)...)
			r := mlship(t, args...)
			assert.Equal(t, 2, r.code)
			assert.Equal(t, expand(tt.want, dir), errLine(t, r.stderr))
			assert.Equal(t, before, tree(t, dir), "a failed run must write nothing")
		})
	}
}

// TestReproducible: the same data, config and seed give byte-identical model
// directories; another seed gives other weights.
func TestReproducible(t *testing.T) {
	files := []string{"model.json", "model.safetensors", "metrics.json"}
	tests := []struct {
		name string
		args []string
	}{
		{"mlp", []string{"--data", heartCSV, "--target", "target", "--binarize", ">0", "--epochs", "5"}},
		{"cnn", []string{"--config", digitsDir, "--epochs", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			train := func(name, seed string) string {
				out := filepath.Join(dir, name)
				r := mlship(t, append([]string{"train", "-q", "--out", out, "--seed", seed}, tt.args...)...)
				require.Equal(t, 0, r.code, r.stderr)
				return out
			}
			a, b, c := train("a", "42"), train("b", "42"), train("c", "43")
			read := func(dir, name string) []byte {
				data, err := os.ReadFile(filepath.Join(dir, name))
				require.NoError(t, err)
				return data
			}
			for _, f := range files {
				assert.True(t, bytes.Equal(read(a, f), read(b, f)), "%s differs between two runs with the same seed", f)
			}
			assert.False(t, bytes.Equal(read(a, "model.safetensors"), read(c, "model.safetensors")), "another seed gave the same weights")
			assert.False(t, bytes.Equal(read(a, "model.json"), read(c, "model.json")))
			assert.Equal(t, int64(43), readCard(t, c).Seed)
		})
	}
}

// TestReproducibleRun: "mlship run" twice gives the same model and report.
func TestReproducibleRun(t *testing.T) {
	dir := t.TempDir()
	proj := runProject(t, filepath.Join(dir, "proj"), "gate:\n  min: {accuracy: 0.5}\n")
	for _, out := range []string{"a", "b"} {
		r := mlship(t, "run", "-q", proj, "--out", filepath.Join(dir, out))
		require.Equal(t, 0, r.code, r.stderr)
	}
	for _, f := range []string{"model/model.json", "model/model.safetensors", "model/metrics.json", "junit.xml"} {
		a, err := os.ReadFile(filepath.Join(dir, "a", f))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dir, "b", f))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "%s differs", f)
	}
}

// withoutImage drops what run's image and deploy steps write under prefix.
func withoutImage(files []string, prefix string) []string {
	var out []string
	for _, f := range files {
		if !strings.HasPrefix(f, prefix+"image/") && f != prefix+"manifests.yaml" {
			out = append(out, f)
		}
	}
	return out
}

// assertImageStep checks run's image step: an OCI layout under prefix when this
// test binary embeds mlship-serve (make test builds them first; CI must), else a
// clear skip line.
func assertImageStep(t *testing.T, stdout string, files []string, prefix string) {
	t.Helper()
	assert.Contains(t, stdout, "\n== build-push-image\n")
	if !slices.Contains(serverbin.Platforms(), "linux/amd64") {
		require.Empty(t, os.Getenv("CI"), "CI runs make test, which embeds mlship-serve: the image step must run")
		assert.Contains(t, stdout, "skipped: this mlship has no embedded mlship-serve for linux/amd64 (build it with `make build`)")
		return
	}
	assert.Contains(t, files, prefix+"image/index.json")
	assert.Contains(t, files, prefix+"image/oci-layout")
	assert.Contains(t, stdout, "written    OCI layout ")
	// The deploy step's embedded default: the manifests, rendered with the image's digest.
	assert.Contains(t, files, prefix+"manifests.yaml")
	assert.Contains(t, stdout, "\n== kubectl-deploy\nrendered Deployment/default/")
}

// TestRunJSON: `run --json` prints one result, the contract the CI front ends
// read: every step's status and outputs (named as in the spec), the report's
// path, the exit code. Its keys are checked here so a change to them is seen.
func TestRunJSON(t *testing.T) {
	dir := t.TempDir()
	proj := runProject(t, filepath.Join(dir, "proj"), "gate:\n  min: {accuracy: 0.5}\n")
	out := filepath.Join(dir, "out")
	r := mlship(t, "run", "--json", "-q", proj, "--out", out)
	require.Equal(t, 0, r.code, r.stderr)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	keys := slices.Sorted(maps.Keys(res))
	assert.Equal(t, []string{"config", "exit_code", "files", "name", "out", "outputs", "passed", "report", "steps"}, keys)
	assert.Equal(t, "heart-small", res["name"])
	assert.Equal(t, true, res["passed"])
	assert.Equal(t, 0.0, res["exit_code"])
	assert.Equal(t, filepath.Join(out, "report.md"), res["report"])
	assert.FileExists(t, filepath.Join(out, "report.md"))

	steps := res["steps"].([]any)
	require.Len(t, steps, 4)
	var names []string
	for _, s := range steps {
		st := s.(map[string]any)
		names = append(names, st["step"].(string))
		if st["status"] != "ok" {
			assert.NotEmpty(t, st["reason"], "a step that is not ok says why")
			continue
		}
		var want []string
		for _, o := range spec.Lookup(st["step"].(string)).Outputs {
			want = append(want, o.Name)
		}
		slices.Sort(want)
		assert.Equal(t, want, slices.Sorted(maps.Keys(st["outputs"].(map[string]any))), st["step"])
	}
	assert.Equal(t, []string{"train", "evaluate-gate", "build-push-image", "kubectl-deploy"}, names)
	outs := res["outputs"].(map[string]any)
	assert.Equal(t, "true", outs["passed"])
	assert.Equal(t, filepath.Join(out, "model"), outs["model-dir"])

	// A failed gate: exit 1, the gate failed, the image and deploy skipped.
	proj2 := runProject(t, filepath.Join(dir, "proj2"), "gate:\n  min: {accuracy: 0.999}\n")
	r = mlship(t, "run", "--json", "-q", proj2, "--out", filepath.Join(dir, "out2"))
	assert.Equal(t, 1, r.code)
	var failed struct {
		Passed   bool   `json:"passed"`
		ExitCode int    `json:"exit_code"`
		Error    string `json:"error"`
		Steps    []struct{ Step, Status, Reason string }
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &failed))
	assert.False(t, failed.Passed)
	assert.Equal(t, 1, failed.ExitCode)
	assert.Contains(t, failed.Error, "gate failed: accuracy ")
	assert.Equal(t, "failed", failed.Steps[1].Status)
	assert.Equal(t, "skipped", failed.Steps[2].Status)
	assert.Equal(t, "the gate did not pass", failed.Steps[2].Reason)
}

// TestOldNames: the spellings before the spec still work, with a warning.
func TestOldNames(t *testing.T) {
	dir := t.TempDir()
	r := mlship(t, "train", "-q", "--data", digitsCSV, "--target", "label", "--kind", "cnn", "--image", "1x8x8",
		"--conv", "4x3p2", "--epochs", "1", "--out", filepath.Join(dir, "a"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "mlship: warning: --image is deprecated: use --input-shape\n", r.stderr)
	assert.Equal(t, 8, readCard(t, filepath.Join(dir, "a")).Network.Image.Width)

	writeFile(t, filepath.Join(dir, "mlship.yaml"), "data: "+digitsCSV+"\ntarget: label\nmodel:\n  kind: cnn\n  image: {channels: 1, height: 8, width: 8}\n  conv: [{filters: 4, kernel: 3, pool: 2}]\ntrain: {epochs: 1, out: b}\n")
	r = mlship(t, "train", "-q", "--config", dir)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "mlship: warning: "+filepath.Join(dir, "mlship.yaml")+":5: model.image is deprecated: use model.input_shape\n", r.stderr)

	r = mlship(t, "train", "-q", "--data", digitsCSV, "--target", "label", "--kind", "cnn", "--image", "1x8x8", "--input-shape", "1x8x8")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "give --input-shape or --image (its old name), not both")
}

// TestRunRegistryDown: when the image cannot be pushed, the report is still
// written, naming the failed step, and the exit code is the push's (3).
func TestRunRegistryDown(t *testing.T) {
	if !slices.Contains(serverbin.Platforms(), "linux/amd64") {
		require.Empty(t, os.Getenv("CI"), "CI runs make test, which embeds mlship-serve")
		t.Skip("this test binary embeds no mlship-serve (make serverbins)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	dir := t.TempDir()
	proj := runProject(t, filepath.Join(dir, "proj"), "gate:\n  min: {accuracy: 0.5}\n"+
		"image:\n  repository: "+addr+"/heart:v1\n  push: true\n  smoke_test: \"false\"\n  timeout: 2s\n")
	out := filepath.Join(dir, "out")
	r := mlship(t, "run", "-q", "--json", proj, "--out", out)
	assert.Equal(t, 3, r.code, r.stderr)
	assert.Contains(t, errLine(t, r.stderr), "pushing ")
	var res struct {
		ExitCode int `json:"exit_code"`
		Report   string
		Steps    []struct{ Step, Status, Reason string }
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, "error", res.Steps[2].Status)
	assert.Equal(t, "skipped", res.Steps[3].Status)
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "**build-push-image failed:** pushing ")
	assert.FileExists(t, filepath.Join(out, "junit.xml"))
}
