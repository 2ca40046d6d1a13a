package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
)

func TestTable(t *testing.T) {
	require.NoError(t, check())
	for _, s := range Steps() {
		assert.NotEmpty(t, s.Short, s.Name)
		for _, in := range s.Inputs {
			if in.Secret {
				assert.Empty(t, in.Key, "%s %s: a secret has no key", s.Name, in.Name)
				assert.NotEmpty(t, in.NoKey, "%s %s: say why there is no key", s.Name, in.Name)
			}
		}
	}
	// One name, one meaning: train's image shape is not called "image".
	_, ok := Lookup("train").Input("image")
	assert.False(t, ok)
	// One name for the baseline image, read from one key.
	g, _ := Lookup("evaluate-gate").Input("baseline-image")
	i, _ := Lookup("build-push-image").Input("baseline-image")
	assert.Equal(t, g.Key, i.Key)
}

func TestNames(t *testing.T) {
	assert.Equal(t, "MLSHIP_BATCH_SIZE", EnvName("batch-size"))
	assert.Equal(t, "maxDropRel", CamelName("max-drop-rel"))
	assert.Equal(t, "COMMENT_URL", DotenvName("comment-url"))
}

func TestParseFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, f *File)
		wantErr string
	}{
		{
			name: "full",
			yaml: "name: heart\ndata: heart.csv\ntarget: target\nbinarize: \">0\"\ndrop: [id]\n" +
				"model: {kind: mlp, hidden: [64, 32], activation: relu}\n" +
				"train: {batch_size: 32, epochs: 100, seed: 7, out: model}\n" +
				"gate: {min: {accuracy: 0.8}, max: {log_loss: 0.6}, baseline: base}\n" +
				"image: {repository: r.example.com/x, push: true}\ndeploy: {enabled: false, timeout: 5m}\n",
			check: func(t *testing.T, f *File) {
				assert.True(t, f.Has("train.seed"))
				assert.Equal(t, 7, f.Line("train"))
				assert.Equal(t, "heart", f.String("name"))
				assert.False(t, f.Has("train.patience"))
			},
		},
		{name: "empty file", yaml: "", check: func(t *testing.T, f *File) { assert.False(t, f.Has("data")) }},
		{name: "comments only", yaml: "# nothing\n", check: func(t *testing.T, f *File) { assert.False(t, f.Has("data")) }},
		{name: "empty section", yaml: "gate:\n", check: func(t *testing.T, f *File) { assert.False(t, f.Has("gate.min")) }},
		{name: "unknown key with a suggestion", yaml: "target: y\ntrain:\n  epoch: 3\n", wantErr: `dir/mlship.yaml:3: unknown key "train.epoch" (did you mean "train.epochs"?)`},
		{name: "unknown key lists the section", yaml: "deploy:\n  zzzzzz: 1\n", wantErr: `dir/mlship.yaml:2: unknown key "deploy.zzzzzz" (deploy takes `},
		{name: "unknown top-level key", yaml: "batch_size: 3\n", wantErr: `dir/mlship.yaml:1: unknown key "batch_size"`},
		{name: "wrong type", yaml: "train: {epochs: many}\n", wantErr: `dir/mlship.yaml:1: train.epochs: "many" is not an integer`},
		{name: "bool as a string", yaml: "image: {push: \"yes\"}\n", wantErr: `dir/mlship.yaml:1: image.push: "yes" is not true or false`},
		{name: "list where a value is wanted", yaml: "target: [a, b]\n", wantErr: `dir/mlship.yaml:1: target: want a single value (string), not a list`},
		{name: "every bad value, in line order", yaml: "deploy: {timeout: soon}\ntrain: {seed: x}\n",
			wantErr: `dir/mlship.yaml:1: deploy.timeout: "soon" is not a duration (like 90s, 5m, 1h30m); dir/mlship.yaml:2: train.seed: "x" is not an integer`},
		{name: "a section that is a value", yaml: "train: 3\n", wantErr: `dir/mlship.yaml:1: train is a section: want a mapping, not a value`},
		{name: "twice", yaml: "target: a\ntarget: b\n", wantErr: `dir/mlship.yaml:2: target is set twice (first on line 1)`},
		{name: "not a mapping", yaml: "- a\n", wantErr: `dir/mlship.yaml:1: want a mapping of settings`},
		{name: "bad yaml", yaml: "target: [\n", wantErr: `reading config "dir/mlship.yaml": `},
		{name: "two documents", yaml: "target: a\n---\ntarget: b\n", wantErr: `more than one YAML document`},
		{name: "shape as text and as a mapping", yaml: "model: {input_shape: 1x8x8, conv: [16x3p2, {filters: 8, kernel: 3}]}\n",
			check: func(t *testing.T, f *File) { assert.True(t, f.Has("model.conv")) }},
		{name: "bad conv item", yaml: "model: {conv: [{filters: 8, kernel: 3, stride: 2}]}\n", wantErr: `model.conv: item 1: unknown key "stride"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFile("dir/mlship.yaml", []byte(tc.yaml))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Equal(t, fault.Usage, fault.CodeOf(err))
				return
			}
			require.NoError(t, err)
			tc.check(t, f)
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte("target: y\ndata: d.csv\n"), 0o644))
	f, err := LoadFile(dir) // a directory means DIR/mlship.yaml
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, FileName), f.Path)
	assert.Equal(t, filepath.Join(dir, "d.csv"), f.Resolve("d.csv"))
	assert.Equal(t, "/abs.csv", f.Resolve("/abs.csv"))
	_, err = LoadFile(filepath.Join(dir, "none.yaml"))
	assert.EqualError(t, err, `reading config "`+filepath.Join(dir, "none.yaml")+`": no such file`)
}

func resolveTrain(t *testing.T, yaml string, flags map[string][]string, env map[string]string) (*Resolved, error) {
	t.Helper()
	f, err := ParseFile("p/mlship.yaml", []byte(yaml))
	require.NoError(t, err)
	return Resolve(Lookup("train"), Sources{Flags: flags, File: f, Getenv: func(k string) string { return env[k] }})
}

func TestResolvePrecedence(t *testing.T) {
	yaml := "data: d.csv\ntarget: y\ntrain: {epochs: 7, seed: 1, batch_size: 8}\nmodel: {hidden: [5]}\n"
	r, err := resolveTrain(t, yaml,
		map[string][]string{"epochs": {"9"}, "hidden": {"4,3", "2"}},
		map[string]string{"MLSHIP_SEED": "5", "MLSHIP_EPOCHS": "11", "GITHUB_SHA": "abc", "CI_COMMIT_SHA": "def"})
	require.NoError(t, err)
	assert.Equal(t, int64(9), r.Values["epochs"], "a flag beats the variable and the file")
	assert.Equal(t, Origin{Kind: FromFlag, Name: "epochs"}, r.Origins["epochs"])
	assert.Equal(t, []int{4, 3, 2}, r.Values["hidden"], "a list flag: comma separated and repeated")
	assert.Equal(t, int64(5), r.Values["seed"], "$MLSHIP_SEED beats the file")
	assert.Equal(t, "$MLSHIP_SEED", r.Origins["seed"].String())
	assert.Equal(t, int64(8), r.Values["batch-size"])
	assert.Equal(t, "p/mlship.yaml:3: train.batch_size", r.Origins["batch-size"].String())
	assert.Equal(t, filepath.Join("p", "d.csv"), r.Values["data"], "paths are relative to the file")
	assert.Equal(t, "abc", r.Values["git-sha"], "the first fallback variable set")
	assert.False(t, r.Has("patience"), "no source: the step's default stands")

	// The file beats the fallback variables.
	r, err = resolveTrain(t, "train: {git_sha: fromfile}\n", nil, map[string]string{"GITHUB_SHA": "abc"})
	require.NoError(t, err)
	assert.Equal(t, "fromfile", r.Values["git-sha"])
}

func TestResolveErrors(t *testing.T) {
	_, err := resolveTrain(t, "", map[string][]string{"epochs": {"x"}, "kind": {"rnn"}}, map[string]string{"MLSHIP_SEED": "s"})
	require.Error(t, err)
	assert.Equal(t, `--kind: "rnn" is not one of mlp, cnn`+"\n"+`--epochs: "x" is not an integer`+"\n"+`$MLSHIP_SEED: "s" is not an integer`, err.Error(), "in the spec's order")
	assert.Equal(t, fault.Usage, fault.CodeOf(err))

	// An old key warns; the old and the new key together are an error.
	r, err := resolveTrain(t, "model: {image: {channels: 1, height: 8, width: 8}}\n", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, &model.Image{Channels: 1, Height: 8, Width: 8}, r.Values["input-shape"])
	assert.Equal(t, []string{"p/mlship.yaml:1: model.image is deprecated: use model.input_shape"}, r.Warnings)
	_, err = resolveTrain(t, "model: {image: 1x8x8, input_shape: 1x8x8}\n", nil, nil)
	assert.ErrorContains(t, err, "give model.input_shape or model.image, not both")
}

func TestSecretsOnlyFromTheEnvironment(t *testing.T) {
	step := Lookup("comment")
	r, err := Resolve(step, Sources{Flags: map[string][]string{"github-token": {"from-flag"}},
		Getenv: func(k string) string { return map[string]string{"GITHUB_TOKEN": "t1", "MLSHIP_GITLAB_TOKEN": "t2"}[k] }})
	require.NoError(t, err)
	assert.Equal(t, "t1", r.Values["github-token"], "a secret never comes from a flag")
	assert.Equal(t, "t2", r.Values["gitlab-token"])
}

type bindTarget struct {
	Epochs   int           `mlship:"epochs"`
	Seed     int64         `mlship:"seed"`
	Replicas int32         `mlship:"replicas"`
	Timeout  time.Duration `mlship:"timeout"`
	Nested   struct {
		Hidden []int `mlship:"hidden"`
	}
	Untagged string
}

func TestBindAndExplain(t *testing.T) {
	step := &Step{Name: "x", Inputs: []Input{
		{Name: "epochs", Type: Int, Key: "train.epochs"}, {Name: "seed", Type: Int, Key: "train.seed"},
		{Name: "replicas", Type: Int, Key: "deploy.replicas"}, {Name: "timeout", Type: Duration, Key: "deploy.timeout"},
		{Name: "hidden", Type: Ints, Key: "model.hidden"},
	}}
	r, err := Resolve(step, Sources{Flags: map[string][]string{"epochs": {"3"}, "seed": {"-2"}, "timeout": {"90s"}, "hidden": {"1,2"}}})
	require.NoError(t, err)
	var dst bindTarget
	dst.Replicas = 4
	require.NoError(t, r.Bind(&dst))
	assert.Equal(t, 3, dst.Epochs)
	assert.Equal(t, int64(-2), dst.Seed)
	assert.Equal(t, int32(4), dst.Replicas, "unset: the default stays")
	assert.Equal(t, 90*time.Second, dst.Timeout)
	assert.Equal(t, []int{1, 2}, dst.Nested.Hidden)
	assert.Equal(t, []string{"epochs", "hidden", "replicas", "seed", "timeout"}, Tagged(&dst))
	assert.Equal(t, map[string]string{"replicas": "4"}, Defaults(&bindTarget{Replicas: 4}))

	r, err = Resolve(step, Sources{Flags: map[string][]string{"replicas": {"3000000000"}}})
	require.NoError(t, err)
	err = r.Bind(&dst)
	assert.EqualError(t, err, "--replicas must be at most 2147483647, got 3000000000")

	// Field errors are spelled the way each input was given.
	f, err := ParseFile("m.yaml", []byte("train:\n  seed: 4\n"))
	require.NoError(t, err)
	r, err = Resolve(step, Sources{File: f, Flags: map[string][]string{"epochs": {"0"}}, Spell: func(in Input) string { return "<" + in.Name + ">" }})
	require.NoError(t, err)
	err = r.Explain(errors.Join(fault.Field("epochs", "must be at least 1, got 0"), fault.Field("seed", "must differ from {epochs}"),
		fault.Field("timeout", "is required with {seed}")))
	assert.EqualError(t, err, "--epochs must be at least 1, got 0; m.yaml:2: train.seed must differ from --epochs; <timeout> is required with train.seed")
	assert.Equal(t, fault.Usage, fault.CodeOf(err))
	plain := errors.New("not a field error")
	assert.Same(t, plain, r.Explain(plain))
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{5 * time.Minute, "5m"}, {90 * time.Second, "1m30s"}, {2 * time.Hour, "2h"},
		{[]int{64, 32}, "64,32"}, {map[string]float64{"b": 1, "a": 0.5}, "a=0.5,b=1"},
		{&model.Image{Channels: 1, Height: 8, Width: 8}, "1x8x8"},
		{[]model.ConvLayer{{Filters: 16, Kernel: 3, Pool: 2}, {Filters: 8, Kernel: 5}}, "16x3p2,8x5"},
		{int32(3), "3"}, {0.001, "0.001"},
	} {
		assert.Equal(t, tc.want, FormatValue(tc.v))
	}
}
