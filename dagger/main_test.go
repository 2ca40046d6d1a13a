package main

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pragmaDefaults are the +default values of every function's arguments, read
// from the module's source as the engine reads them, by function then
// argument: the engine fills them in for arguments a call leaves out.
func pragmaDefaults(t *testing.T) map[string]map[string]string {
	t.Helper()
	paths, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	out := map[string]map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			defs := map[string]string{}
			for _, field := range fd.Type.Params.List {
				for _, line := range strings.Split(paramDoc(fset, f, field), "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(line), "+default="); ok {
						for _, n := range field.Names {
							defs[n.Name] = v
						}
					}
				}
			}
			out[fd.Name.Name] = defs
		}
	}
	return out
}

// paramDoc is the comment on the lines just above a parameter, as the
// engine's codegen reads it (go/ast attaches none to parameters).
func paramDoc(fset *token.FileSet, f *ast.File, field *ast.Field) string {
	line := fset.Position(field.Pos()).Line
	for _, g := range f.Comments {
		if fset.Position(g.End()).Line == line-1 {
			return g.Text()
		}
	}
	return ""
}

// module is the module as the engine sees it: constructed with args, then
// its functions called through the generated invoke with JSON arguments.
type module struct {
	t        *testing.T
	parent   []byte
	defaults map[string]map[string]string
}

func newModule(t *testing.T, args map[string]any) *module {
	t.Helper()
	m := &module{t: t, defaults: pragmaDefaults(t)}
	if _, ok := args["sourceDir"]; !ok {
		args["sourceDir"] = "dir:source"
	}
	obj, err := m.invoke("{}", "", "New", args)
	require.NoError(t, err)
	m.parent, err = json.Marshal(obj)
	require.NoError(t, err)
	return m
}

func (m *module) invoke(parent, fnName, goName string, args map[string]any) (any, error) {
	in := map[string][]byte{}
	for k, v := range m.defaults[goName] {
		in[k] = []byte(v)
	}
	for k, v := range args {
		b, err := json.Marshal(v)
		require.NoError(m.t, err)
		in[k] = b
	}
	return invoke(context.Background(), []byte(parent), "Mlship", fnName, in)
}

// call runs a function; engine holds the scenario.
func (m *module) call(fn string, args map[string]any) (any, error) {
	return m.invoke(string(m.parent), fn, fn, args)
}

// id is the ID of a returned object (the engine records what made it).
func id(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var s string
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

// execChain is the chain of the container that ran mlship (the query of its
// exit code).
func execChain(t *testing.T) []call {
	t.Helper()
	var found []call
	for _, ch := range engine.chains() {
		if ch[len(ch)-1].name == "exitCode" {
			found = ch
		}
	}
	require.NotNil(t, found, "no exitCode query")
	return found
}

func calls(chain []call, name string) []call {
	var out []call
	for _, c := range chain {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// argv is the mlship command line the container runs.
func argv(t *testing.T, chain []call) []string {
	t.Helper()
	for _, c := range calls(chain, "withExec") {
		if a := strs(c.args["args"]); a[0] == "mlship" {
			assert.Equal(t, "ANY", c.args["expect"], "the exit code is read, not failed on")
			return a
		}
	}
	t.Fatal("no mlship exec")
	return nil
}

func mounts(chain []call) map[string]string {
	out := map[string]string{}
	for _, c := range chain {
		switch c.name {
		case "withMountedFile", "withMountedDirectory", "withMountedCache":
			src, _ := c.args["source"].(string)
			if src == "" {
				src, _ = c.args["cache"].(string)
			}
			out[c.args["path"].(string)] = c.name + " " + src
		case "withMountedSecret":
			out[c.args["path"].(string)] = c.name + " " + c.args["source"].(string)
		}
	}
	return out
}

func envs(chain []call) map[string]string {
	out := map[string]string{}
	for _, c := range chain {
		switch c.name {
		case "withEnvVariable":
			out[c.args["name"].(string)] = c.args["value"].(string)
		case "withSecretVariable":
			out[c.args["name"].(string)] = "secret " + c.args["secret"].(string)
		}
	}
	return out
}

const base = "mlship --dotenv=/mlship/outputs.env "

func TestTrainCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"required only: defaults are left to mlship.yaml and the step",
			map[string]any{"data": "file:heart.csv", "target": "target"},
			"train --data=/mlship/in/data/heart.csv --target=target --out=/mlship/out/model --quiet"},
		{"values, lists and a default given again",
			map[string]any{"data": "file:heart.csv", "target": "target", "binarize": ">0", "drop": []string{"id", "ts"},
				"hidden": []int{16}, "epochs": 20, "learningRate": 0.01, "seed": 0, "batchSize": 32, "gitSha": "abc"},
			"train --data=/mlship/in/data/heart.csv --target=target --binarize=>0 --drop=id --drop=ts --hidden=16 --epochs=20 --learning-rate=0.01 --seed=0 --git-sha=abc --out=/mlship/out/model --quiet"},
		{"config",
			map[string]any{"data": "file:heart.csv", "target": "target", "config": "dir:models/heart"},
			"train --data=/mlship/in/data/heart.csv --target=target --config=/mlship/config --out=/mlship/out/model --quiet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine.reset(0, "", "", nil)
			m := newModule(t, map[string]any{})
			out, err := m.call("Train", tc.args)
			require.NoError(t, err)
			chain := execChain(t)
			assert.Equal(t, base+tc.want, strings.Join(argv(t, chain), " "))
			mnt := mounts(chain)
			assert.Equal(t, "withMountedFile file:heart.csv", mnt["/mlship/in/data/heart.csv"])
			if tc.args["config"] != nil {
				assert.Equal(t, "withMountedDirectory dir:models/heart", mnt["/mlship/config"])
			}
			assert.Empty(t, calls(chain, "experimentalWithAllGPUs"))
			assert.Equal(t, "/mlship/work", calls(chain, "withWorkdir")[0].args["path"])

			// The model directory returned is the container's --out.
			made := engine.object(id(t, out))
			last := made[len(made)-1]
			assert.Equal(t, "directory", last.name)
			assert.Equal(t, "/mlship/out/model", last.args["path"])
			assert.Equal(t, argv(t, chain), argv(t, made))
		})
	}
}

// TestFromSource: without a version, mlship is built from the source with
// make build on the Go image, with caches for modules and builds, and put on
// the runtime image.
func TestFromSource(t *testing.T) {
	engine.reset(0, "", "", nil)
	m := newModule(t, map[string]any{})
	_, err := m.call("Train", map[string]any{"data": "file:heart.csv", "target": "target", "gpu": true})
	require.NoError(t, err)
	chain := execChain(t)
	assert.Equal(t, runtimeImage, chain[1].args["address"], "runs on %v", chain[:2])
	assert.Len(t, calls(chain, "experimentalWithAllGPUs"), 1, "gpu")
	files := calls(chain, "withFile")
	require.Len(t, files, 1)
	assert.Equal(t, "/usr/local/bin/mlship", files[0].args["path"])
	build := engine.object(files[0].args["source"].(string))
	require.NotEmpty(t, build)
	assert.Equal(t, goImage, build[1].args["address"])
	mnt := mounts(build)
	assert.Equal(t, "withMountedDirectory dir:source", mnt["/src"])
	assert.Contains(t, mnt["/go/pkg/mod"], "withMountedCache ")
	assert.Contains(t, mnt["/root/.cache/go-build"], "withMountedCache ")
	assert.Equal(t, []string{"make", "build", "BIN=/out", "VERSION=source"}, strs(calls(build, "withExec")[0].args["args"]))
	assert.Equal(t, "/out/mlship", build[len(build)-1].args["path"])
	for _, cache := range []string{mnt["/go/pkg/mod"], mnt["/root/.cache/go-build"]} {
		made := engine.object(strings.TrimPrefix(cache, "withMountedCache "))
		require.Len(t, made, 1)
		assert.Equal(t, "cacheVolume", made[0].name)
	}
}

// TestFromRelease: with a version, the release's archive is downloaded and
// checked against its sha256 by the engine, and mlship unpacked from it.
func TestFromRelease(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	engine.reset(0, "", "", nil)
	m := newModule(t, map[string]any{"version": "v1.2.3", "checksum": sum})
	_, err := m.call("Report", map[string]any{"model": "dir:model"})
	require.NoError(t, err)
	chain := execChain(t)
	assert.Equal(t, runtimeImage, chain[1].args["address"])
	assert.Empty(t, calls(chain, "withFile"), "no build")
	file := mounts(chain)["/tmp/mlship_1.2.3_linux_amd64.tar.gz"]
	require.NotEmpty(t, file)
	made := engine.object(strings.TrimPrefix(file, "withMountedFile "))
	require.Len(t, made, 1)
	assert.Equal(t, "http", made[0].name)
	assert.Equal(t, "https://github.com/mlship/mlship/releases/download/v1.2.3/mlship_1.2.3_linux_amd64.tar.gz", made[0].args["url"])
	assert.Equal(t, "sha256:"+sum, made[0].args["checksum"])
	assert.Equal(t, []string{"tar", "-xzf", "/tmp/mlship_1.2.3_linux_amd64.tar.gz", "-C", "/usr/local/bin", "mlship"}, strs(calls(chain, "withExec")[0].args["args"]))

	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"version": "1.2.3"}, "mlship 1.2.3 has no sha256 pinned in this module: give --checksum (the line of mlship_1.2.3_linux_amd64.tar.gz in the release's checksums.txt)"},
		{map[string]any{"version": "1.2.3", "checksum": "abc"}, `checksum "abc" is not a sha256 (64 hex digits)`},
		{map[string]any{"version": "latest", "checksum": sum}, `version "latest" is not a release version like 1.2.3`},
	} {
		engine.reset(0, "", "", nil)
		_, err := newModule(t, tc.args).call("Report", map[string]any{"model": "dir:model"})
		var ie *InputError
		require.ErrorAs(t, err, &ie)
		assert.EqualError(t, err, tc.want)
		for _, ch := range engine.chains() {
			assert.NotEqual(t, "exitCode", ch[len(ch)-1].name, "nothing ran")
		}
	}
}

// TestSecrets: registry password, kubeconfig, kubeconfig data and tokens
// reach mlship as the engine's secrets (by ID: withSecretVariable,
// withMountedSecret), never as a plain value, a variable or a flag.
func TestSecrets(t *testing.T) {
	for _, tc := range []struct {
		fn      string
		args    map[string]any
		files   map[string]string
		env     map[string]string // secret variables
		mounted map[string]string // secret files
		flags   []string
		want    string
	}{
		{fn: "BuildPushImage",
			args:  map[string]any{"model": "dir:model", "image": "ghcr.io/acme/heart:pr-1", "push": true, "registryUsername": "bot", "registryPassword": "secret:registry"},
			files: map[string]string{outputsFile: "DIGEST=sha256:0123\nIMAGE=ghcr.io/acme/heart@sha256:0123\nTAGS=pr-1\n"},
			env:   map[string]string{"MLSHIP_REGISTRY_PASSWORD": "secret secret:registry"},
			flags: []string{"--model=/mlship/in/model", "--image=ghcr.io/acme/heart:pr-1", "--push=true", "--registry-username=bot", "--quiet"},
			want:  "ghcr.io/acme/heart@sha256:0123"},
		{fn: "KubectlDeploy",
			args:    map[string]any{"image": "ghcr.io/acme/heart@sha256:0123", "kubeconfig": "secret:kubeconfig", "kubeconfigData": "secret:kubeconfig-data", "context": "prod", "manifests": []string{"dir:k8s", "dir:extra"}},
			files:   map[string]string{outputsFile: "NAMESPACE=default\nREVISION=4\n"},
			env:     map[string]string{"MLSHIP_KUBECONFIG_DATA": "secret secret:kubeconfig-data"},
			mounted: map[string]string{"/mlship/secrets/kubeconfig": "withMountedSecret secret:kubeconfig"},
			flags:   []string{"--image=ghcr.io/acme/heart@sha256:0123", "--manifests=/mlship/in/manifests/0", "--manifests=/mlship/in/manifests/1", "--kubeconfig=/mlship/secrets/kubeconfig", "--context=prod", "--quiet"},
			want:    "4"},
		{fn: "Comment",
			args:  map[string]any{"model": "dir:model", "repo": "acme/heart", "pr": 12, "githubToken": "secret:gh"},
			files: map[string]string{outputsFile: "COMMENT_URL=https://github.com/acme/heart/pull/12#issuecomment-1\n"},
			env:   map[string]string{"MLSHIP_GITHUB_TOKEN": "secret secret:gh", "GITHUB_ACTIONS": "true"},
			flags: []string{"--model=/mlship/in/model", "--repo=acme/heart", "--pr=12"},
			want:  "https://github.com/acme/heart/pull/12#issuecomment-1"},
		{fn: "Comment",
			args:  map[string]any{"model": "dir:model", "gitlabToken": "secret:gl", "env": []string{"GITLAB_CI=true", "CI_API_V4_URL=https://gitlab.example/api/v4", "CI_PROJECT_ID=7", "CI_MERGE_REQUEST_IID=3"}},
			files: map[string]string{outputsFile: "COMMENT_URL=https://gitlab.example/acme/heart/-/merge_requests/3#note_1\n"},
			env:   map[string]string{"MLSHIP_GITLAB_TOKEN": "secret secret:gl", "GITLAB_CI": "true", "CI_API_V4_URL": "https://gitlab.example/api/v4", "CI_PROJECT_ID": "7", "CI_MERGE_REQUEST_IID": "3"},
			flags: []string{"--model=/mlship/in/model"},
			want:  "https://gitlab.example/acme/heart/-/merge_requests/3#note_1"},
		{fn: "Monitor",
			args:  map[string]any{"prometheus": "http://prometheus:9090", "model": "heart", "window": "24h", "trigger": "github", "repo": "acme/heart", "prometheusToken": "secret:prom", "githubToken": "secret:gh"},
			env:   map[string]string{"MLSHIP_PROMETHEUS_TOKEN": "secret secret:prom", "MLSHIP_GITHUB_TOKEN": "secret secret:gh"},
			flags: []string{"--prometheus=http://prometheus:9090", "--model=heart", "--window=24h", "--trigger=github", "--repo=acme/heart", "--quiet"}},
		{fn: "Run",
			args:  map[string]any{"project": "dir:models/heart", "deploy": true, "registryPassword": "secret:registry", "kubeconfigData": "secret:kubeconfig-data"},
			env:   map[string]string{"MLSHIP_REGISTRY_PASSWORD": "secret secret:registry", "MLSHIP_KUBECONFIG_DATA": "secret secret:kubeconfig-data"},
			flags: []string{"--deploy=true", "--out=/mlship/out", "--quiet", "/mlship/project"}},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			engine.reset(0, "", "", tc.files)
			out, err := newModule(t, map[string]any{}).call(tc.fn, tc.args)
			require.NoError(t, err)
			if tc.want != "" {
				assert.Equal(t, tc.want, out)
			}
			chain := execChain(t)
			assert.Equal(t, tc.flags, argv(t, chain)[3:])
			got := envs(chain)
			assert.NotEmpty(t, got[nonceEnv], "a call with effects runs afresh")
			delete(got, nonceEnv)
			assert.Equal(t, tc.env, got)
			for p, want := range tc.mounted {
				assert.Equal(t, want, mounts(chain)[p])
			}
			// No secret ID reaches a flag or a variable's value, no secret is
			// made from a plain value, and no variable holds a credential.
			for _, a := range argv(t, chain) {
				assert.NotContains(t, a, "secret:", "flag %s", a)
			}
			for _, c := range calls(chain, "withEnvVariable") {
				assert.NotContains(t, c.args["value"], "secret:")
			}
			for _, q := range engine.rawQueries() {
				assert.NotContains(t, q, "setSecret")
				assert.NotContains(t, q, "plaintext")
			}
		})
	}
}

// TestExitCodes: mlship's exit codes become errors that say which: 1 a failed
// check (the gate with its table), 2 a bad input, 3 the environment.
func TestExitCodes(t *testing.T) {
	table := "evaluate-gate: model (metrics from metrics.json)\nMETRIC    KIND  VALUE     BOUND  BASELINE  VERDICT\naccuracy  min   0.868852  0.99   -         fail\ngate FAILED: accuracy 0.868852 < min 0.99\n"
	for _, tc := range []struct {
		name   string
		fn     string
		args   map[string]any
		code   int
		stdout string
		stderr string
		want   string
	}{
		{"gate failed", "EvaluateGate", map[string]any{"model": "dir:model", "min": []string{"accuracy=0.99"}}, 1, table,
			"mlship: gate failed: accuracy 0.868852 < min 0.99\n",
			"mlship evaluate-gate: the gate failed (exit 1): gate failed: accuracy 0.868852 < min 0.99\n" + strings.TrimSuffix(table, "\n")},
		{"rollout failed", "KubectlDeploy", map[string]any{"image": "r/heart@sha256:01"}, 1, "",
			"mlship: warning: something\nmlship: rollout of deployment default/heart failed: progress deadline exceeded; rolled back to revision 3\n",
			"mlship kubectl-deploy: a check failed (exit 1): rollout of deployment default/heart failed: progress deadline exceeded; rolled back to revision 3"},
		{"bad input", "Train", map[string]any{"data": "file:heart.csv", "target": "target", "testSize": 1.5}, 2, "",
			"mlship: --test-size must be between 0 and 1, got 1.5\n",
			"mlship train: bad input (exit 2): --test-size must be between 0 and 1, got 1.5"},
		{"environment", "BuildPushImage", map[string]any{"model": "dir:model", "image": "r.example/heart:1", "push": true}, 3, "",
			"mlship: pushing \"r.example/heart:1\": dial tcp: connection refused\n",
			"mlship build-push-image: the environment failed, safe to retry (exit 3): pushing \"r.example/heart:1\": dial tcp: connection refused"},
		{"monitor breach", "Monitor", map[string]any{"prometheus": "http://prometheus:9090", "model": "heart"}, 1,
			"monitor: heart, window 1h, 1200 rows\npsi age 0.31 > 0.2: drifted\n", "mlship: monitor: 1 check failed: psi of age 0.31 > 0.2\n",
			"mlship monitor: a check failed (exit 1): monitor: 1 check failed: psi of age 0.31 > 0.2\nmonitor: heart, window 1h, 1200 rows\npsi age 0.31 > 0.2: drifted"},
		{"interrupted", "Report", map[string]any{"model": "dir:model"}, 130, "", "mlship: interrupted\n",
			"mlship report: interrupted (exit 130)"},
		{"killed", "Train", map[string]any{"data": "file:heart.csv", "target": "target"}, 137, "", "",
			"mlship train: killed by signal 9 (exit 137; 9 is often the memory limit)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine.reset(tc.code, tc.stdout, tc.stderr, nil)
			_, err := newModule(t, map[string]any{}).call(tc.fn, tc.args)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			var ee *ExitError
			require.True(t, errors.As(err, &ee))
			assert.Equal(t, tc.code, ee.ExitCode())
		})
	}

	t.Run("passed gate", func(t *testing.T) {
		passed := strings.Replace(strings.Replace(table, "fail\n", "pass\n", 1), "gate FAILED: accuracy 0.868852 < min 0.99", "gate PASSED: 1 check passed", 1)
		engine.reset(0, passed, "", nil)
		out, err := newModule(t, map[string]any{}).call("EvaluateGate", map[string]any{"model": "dir:model", "min": []string{"accuracy=0.8"}, "baseline": "dir:baseline", "data": "file:holdout.csv"})
		require.NoError(t, err)
		assert.Equal(t, passed, out)
		assert.Equal(t, []string{"--model=/mlship/in/model", "--data=/mlship/in/data/holdout.csv", "--min=accuracy=0.8", "--baseline=/mlship/in/baseline"}, argv(t, execChain(t))[3:])
	})

	t.Run("junit of a failed gate", func(t *testing.T) {
		engine.reset(1, table, "mlship: gate failed: accuracy 0.868852 < min 0.99\n", nil)
		out, err := newModule(t, map[string]any{}).call("EvaluateGateJunit", map[string]any{"model": "dir:model", "min": []string{"accuracy=0.99"}})
		require.NoError(t, err, "a failed gate has its report")
		made := engine.object(id(t, out))
		assert.Equal(t, call{name: "file", args: map[string]any{"path": "/mlship/out/junit.xml"}}, made[len(made)-1])
		assert.Contains(t, argv(t, made), "--junit=/mlship/out/junit.xml")
	})
}

func TestOutputs(t *testing.T) {
	t.Run("image layout", func(t *testing.T) {
		engine.reset(0, "", "", nil)
		out, err := newModule(t, map[string]any{}).call("BuildImageLayout", map[string]any{"model": "dir:model", "image": "mlship.local/heart:latest", "platform": []string{"linux/amd64", "linux/arm64"}})
		require.NoError(t, err)
		made := engine.object(id(t, out))
		assert.Equal(t, call{name: "directory", args: map[string]any{"path": "/mlship/out/oci"}}, made[len(made)-1])
		assert.Equal(t, []string{"--model=/mlship/in/model", "--image=mlship.local/heart:latest", "--platform=linux/amd64", "--platform=linux/arm64", "--oci-layout=/mlship/out/oci", "--quiet"}, argv(t, made)[3:])
	})
	t.Run("render", func(t *testing.T) {
		engine.reset(0, "apiVersion: apps/v1\nkind: Deployment\n", "", nil)
		out, err := newModule(t, map[string]any{}).call("KubectlDeploy", map[string]any{"image": "r/heart@sha256:01", "render": true, "replicas": 0, "model": "dir:model"})
		require.NoError(t, err)
		assert.Equal(t, "apiVersion: apps/v1\nkind: Deployment\n", out)
		assert.Equal(t, []string{"--image=r/heart@sha256:01", "--replicas=0", "--model=/mlship/in/model", "--render=true"}, argv(t, execChain(t))[3:])
	})
	t.Run("no output", func(t *testing.T) {
		engine.reset(0, "", "", map[string]string{outputsFile: "DIGEST=sha256:01\n"})
		_, err := newModule(t, map[string]any{}).call("BuildPushImage", map[string]any{"model": "dir:model", "image": "r/heart:1"})
		assert.EqualError(t, err, "mlship wrote no IMAGE output")
	})
	t.Run("comment with nothing to comment on", func(t *testing.T) {
		engine.reset(0, "::add-mask::s3cr3t\n# heart\n::warning::no pull request\n", "", map[string]string{outputsFile: ""})
		out, err := newModule(t, map[string]any{}).call("Comment", map[string]any{"model": "dir:model", "fromFile": "file:mlship-report.md"})
		require.NoError(t, err)
		assert.Equal(t, "# heart\n", out)
		chain := execChain(t)
		assert.Equal(t, []string{"--from-file=/mlship/in/from-file/mlship-report.md", "--model=/mlship/in/model"}, slices.Sorted(slices.Values(argv(t, chain)[3:])))
		assert.NotContains(t, envs(chain), "GITHUB_ACTIONS")
	})
}

// TestEnvRefusesCredentials: Comment's env takes CI variables, not tokens.
func TestEnvRefusesCredentials(t *testing.T) {
	for _, kv := range []string{"GITHUB_TOKEN=x", "CI_JOB_TOKEN=x", "MLSHIP_REGISTRY_PASSWORD=x", "KUBECONFIG=/x", "no-equals"} {
		engine.reset(0, "", "", nil)
		_, err := newModule(t, map[string]any{}).call("Comment", map[string]any{"model": "dir:model", "env": []string{kv}})
		var ie *InputError
		require.ErrorAs(t, err, &ie, kv)
		assert.Contains(t, err.Error(), "--env ")
		for _, ch := range engine.chains() {
			assert.NotEqual(t, "exitCode", ch[len(ch)-1].name, "nothing ran")
		}
	}
}

// TestDispatch runs the module as the engine does: its main's dispatch reads
// the call from currentFunctionCall (parent, name, arguments as JSON) and
// hands back the result with returnValue, or an error with returnError, whose
// message is what `dagger call` prints.
func TestDispatch(t *testing.T) {
	m := newModule(t, map[string]any{})
	args := map[string]string{"data": `"file:heart.csv"`, "target": `"target"`, "testSize": "1.5"}
	for k, v := range m.defaults["Train"] {
		if _, ok := args[k]; !ok {
			args[k] = v
		}
	}
	fn := functionCall{parentName: "Mlship", name: "Train", parent: string(m.parent), args: args}

	engine.reset(2, "", "mlship: --test-size must be between 0 and 1, got 1.5\n", nil)
	engine.setCall(fn)
	require.Error(t, dispatch(context.Background()))
	value, errID := engine.result()
	assert.Empty(t, value)
	made := engine.object(errID)
	require.NotEmpty(t, made, "returnError with an Error object")
	assert.Equal(t, "error", made[0].name)
	assert.Equal(t, "mlship train: bad input (exit 2): --test-size must be between 0 and 1, got 1.5", made[0].args["message"])

	engine.reset(0, "", "", nil)
	args["testSize"] = "0.25"
	engine.setCall(fn)
	require.NoError(t, dispatch(context.Background()))
	value, errID = engine.result()
	assert.Empty(t, errID)
	var dirID string
	require.NoError(t, json.Unmarshal([]byte(value), &dirID))
	made = engine.object(dirID)
	require.NotEmpty(t, made)
	assert.Equal(t, call{name: "directory", args: map[string]any{"path": "/mlship/out/model"}}, made[len(made)-1])
	assert.Contains(t, argv(t, made), "--test-size=0.25")
}
