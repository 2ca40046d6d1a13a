// Package actions_test runs mlship's GitHub actions and workflows with a real
// runner: nektos/act in host mode, against a real registry (Debian
// docker-registry), a real Kubernetes control plane and the GitHub REST API
// fake of internal/comment/commenttest. The workflow files are the ones users
// copy (examples/github, .github/workflows/mlship.yml); the test only points
// their `uses: mlship/mlship/...@v1` at this checkout and their artifact
// actions, which need github.com, at local stand-ins that keep artifacts in a
// folder.
package actions_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/testutil"
	"github.com/mlship/mlship/internal/testutil/kube"
	"github.com/mlship/mlship/internal/testutil/registry"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

var root = mustAbs("..")

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

// tools builds mlship (with the mlship-serve binaries `make serverbins`
// embeds) and finds act (hack/tools.sh installs it), once per test binary.
var tools struct {
	mlshipDir, act string
	err            error
}

func setup(t *testing.T) (mlshipDir, act string) {
	t.Helper()
	if tools.act == "" && tools.err == nil {
		tools.mlshipDir, tools.err = testutil.BuildMlship(root, "mlship-actions-bin-")
		if tools.err == nil {
			tools.act, tools.err = testutil.Tool(root, "act")
		}
	}
	require.NoError(t, tools.err)
	return tools.mlshipDir, tools.act
}

// usesRe matches the references the test points at this checkout.
var usesRe = regexp.MustCompile(`uses: mlship/mlship/((actions/[a-z-]+)|(\.github/workflows/mlship\.yml))@v1`)

// offline replaces what needs github.com: the artifact actions keep
// artifacts in $MLSHIP_TEST_ARTIFACTS (act's own artifact server needs the
// actions themselves, downloaded from github.com).
var offline = map[string]string{
	"actions/upload-artifact@v4":   "./.github/offline/upload-artifact",
	"actions/download-artifact@v4": "./.github/offline/download-artifact",
}

const uploadStandIn = `name: upload-artifact (offline stand-in)
inputs:
  name: {required: true}
  path: {required: true}
runs:
  using: composite
  steps:
    - shell: bash
      env: {NAME: "${{ inputs.name }}", PATHS: "${{ inputs.path }}"}
      run: |
        dst="$MLSHIP_TEST_ARTIFACTS/$NAME"; mkdir -p "$dst"
        while IFS= read -r p; do
          [ -n "$p" ] || continue
          if [ -d "$p" ]; then cp -a "$p/." "$dst/"; else cp -a "$p" "$dst/"; fi
        done <<< "$PATHS"
`

const downloadStandIn = `name: download-artifact (offline stand-in)
inputs:
  name: {required: true}
  path: {required: false, default: "."}
  run-id: {required: false}
  github-token: {required: false}
runs:
  using: composite
  steps:
    - shell: bash
      env: {NAME: "${{ inputs.name }}", DST: "${{ inputs.path }}"}
      run: mkdir -p "$DST" && cp -a "$MLSHIP_TEST_ARTIFACTS/$NAME/." "$DST/"
`

// workspace makes a git repository (origin acme/models) holding the actions,
// the reusable workflow, the heart example and the given workflows (read from
// this checkout, references rewritten), and returns its path.
func workspace(t *testing.T, workflows map[string]string, gate string) string {
	t.Helper()
	ws := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = ws
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%v: %s", args, out)
	}
	run("cp", "-a", filepath.Join(root, "actions"), filepath.Join(ws, "actions"))
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "examples", "heart-disease"), 0o755))
	run("cp", filepath.Join(root, "examples", "heart-disease", "heart.csv"), filepath.Join(ws, "examples", "heart-disease"))
	cfg, err := os.ReadFile(filepath.Join(root, "examples", "heart-disease", "mlship.yaml"))
	require.NoError(t, err)
	if gate != "" {
		i := bytes.Index(cfg, []byte("\ngate:"))
		require.GreaterOrEqual(t, i, 0)
		cfg = append(cfg[:i+1], []byte(gate)...)
	}
	write(t, filepath.Join(ws, "examples", "heart-disease", "mlship.yaml"), string(cfg))
	write(t, filepath.Join(ws, ".github", "offline", "upload-artifact", "action.yml"), uploadStandIn)
	write(t, filepath.Join(ws, ".github", "offline", "download-artifact", "action.yml"), downloadStandIn)
	workflows[".github/workflows/mlship.yml"] = ".github/workflows/mlship.yml"
	for dst, src := range workflows {
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil { // an inline workflow
			b = []byte(src)
		}
		s := usesRe.ReplaceAllString(string(b), "uses: ./$1")
		for from, to := range offline {
			s = strings.ReplaceAll(s, "uses: "+from, "uses: "+to)
		}
		// Host mode starts with an empty workspace: a job that uses a
		// stand-in without checking out (fork-comment.yml) gets a checkout.
		s = strings.ReplaceAll(s, "    steps:\n      - uses: ./.github/offline/", "    steps:\n      - uses: actions/checkout@v4\n      - uses: ./.github/offline/")
		write(t, filepath.Join(ws, dst), s)
	}
	run("git", "init", "-q")
	run("git", "remote", "add", "origin", "https://github.com/acme/models.git")
	run("git", "add", "-A")
	run("git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "test")
	return ws
}

func write(t *testing.T, path, s string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(s), 0o644))
}

// actRun is one run of act.
type actRun struct {
	code     int
	log      string   // every line act printed
	outputs  []string // "::set-output:: name=value" lines
	summary  string   // what steps wrote to the step summary
	commands []string // workflow commands act saw (annotations, groups)
	seconds  float64
}

type actOpts struct {
	event     string // pull_request, workflow_run, ...
	eventJSON map[string]any
	workflow  string // path in the workspace
	env       map[string]string
	vars      map[string]string
	secrets   map[string]string
	mlship    bool // put the built mlship on PATH
}

func runAct(t *testing.T, ws string, o actOpts) actRun {
	t.Helper()
	mlshipDir, act := setup(t)
	event := filepath.Join(t.TempDir(), "event.json")
	b, err := json.Marshal(o.eventJSON)
	require.NoError(t, err)
	write(t, event, string(b))
	args := []string{o.event, "-P", "ubuntu-latest=-self-hosted", "-e", event, "--no-cache-server", "--json",
		"-W", filepath.Join(ws, o.workflow)}
	for k, v := range o.env {
		args = append(args, "--env", k+"="+v)
	}
	for k, v := range o.vars {
		args = append(args, "--var", k+"="+v)
	}
	for k, v := range o.secrets {
		args = append(args, "--secret", k+"="+v)
	}
	cmd := exec.Command(act, args...)
	cmd.Dir = ws
	path := os.Getenv("PATH")
	if o.mlship {
		path = mlshipDir + string(os.PathListSeparator) + path
	}
	cmd.Env = append(cleanEnv(), "PATH="+path, "XDG_CACHE_HOME="+t.TempDir(), "HOME="+os.Getenv("HOME"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	r := actRun{seconds: time.Since(start).Seconds()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	var logb strings.Builder
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		var j struct {
			Msg     string            `json:"msg"`
			Command string            `json:"command"`
			Name    string            `json:"name"`
			Arg     string            `json:"arg"`
			Content string            `json:"content"`
			KV      map[string]string `json:"kvPairs"`
		}
		if json.Unmarshal([]byte(line), &j) != nil {
			logb.WriteString(line + "\n")
			continue
		}
		logb.WriteString(j.Msg)
		if !strings.HasSuffix(j.Msg, "\n") {
			logb.WriteString("\n")
		}
		switch j.Command {
		case "set-output":
			r.outputs = append(r.outputs, j.Name+"="+j.Arg)
		case "summary":
			r.summary += j.Content
		case "":
		case "add-mask":
			// act's JSON log carries the masked value in "arg": not ours to check.
		default:
			r.commands = append(r.commands, fmt.Sprintf("%s title=%q %s", j.Command, j.KV["title"], j.Arg))
		}
	}
	r.log = logb.String()
	if t.Failed() || r.code != 0 {
		t.Logf("act log:\n%s", r.log)
	}
	return r
}

// cleanEnv is the environment without CI variables, so the tests act the same
// on a laptop and in CI (act sets its own).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "GITLAB_") || strings.HasPrefix(k, "CI_") ||
			strings.HasPrefix(k, "MLSHIP_") || strings.HasPrefix(k, "RUNNER_") || k == "KUBECONFIG" || k == "PATH" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func prEvent(number int) map[string]any {
	return map[string]any{
		"action": "synchronize", "number": number,
		"pull_request": map[string]any{"number": number, "head": map[string]any{"ref": "feature"}, "base": map[string]any{"ref": "main"}},
		"repository":   map[string]any{"full_name": "acme/models"},
	}
}

func output(r actRun, name string) string {
	for _, o := range r.outputs {
		if v, ok := strings.CutPrefix(o, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestPullRequestWorkflow runs examples/github/pull-request.yml: train,
// gate, push to a real registry, deploy to a real control plane, comment on
// the pull request through the API fake.
func TestPullRequestWorkflow(t *testing.T) {
	reg := registry.StartDistribution(t, registry.Options{Username: "ci", Password: "registry-pass-3f9a1c"})
	cluster := kube.Shared(t)
	kc, err := os.ReadFile(cluster.Kubeconfig)
	require.NoError(t, err)
	gh := commenttest.NewGitHub(t)
	gh.AddPR("acme/models", 7)
	artifacts := t.TempDir()

	ws := workspace(t, map[string]string{".github/workflows/pr.yml": "examples/github/pull-request.yml"}, "")
	r := runAct(t, ws, actOpts{
		event: "pull_request", eventJSON: prEvent(7), workflow: ".github/workflows/pr.yml", mlship: true,
		env:     map[string]string{"GITHUB_API_URL": gh.APIURL, "MLSHIP_TEST_ARTIFACTS": artifacts},
		vars:    map[string]string{"IMAGE_REPOSITORY": reg.Ref("acme/heart"), "REGISTRY_USERNAME": "ci", "PREVIEW_NAMESPACE": "default"},
		secrets: map[string]string{"GITHUB_TOKEN": gh.Token, "REGISTRY_PASSWORD": reg.Password, "KUBECONFIG_DATA": base64.StdEncoding.EncodeToString(kc)},
	})
	require.Equal(t, 0, r.code, "the job must succeed")

	// Outputs arrive in later steps: the image step's digest is what deploy ran.
	digest := output(r, "digest")
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, digest)
	assert.Equal(t, reg.Ref("acme/heart")+"@"+digest, output(r, "image"))
	assert.Equal(t, "true", output(r, "passed"))
	assert.Equal(t, reg.Ref("acme/heart")+"@"+digest, output(r, "image"))
	assert.NotEmpty(t, output(r, "revision"), "kubectl-deploy's revision")
	out, err := exec.Command("kubectl", "--kubeconfig", cluster.Kubeconfig, "get", "deployment", "heart-pr-7",
		"-o", "jsonpath={.spec.template.spec.containers[0].image}").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, reg.Ref("acme/heart")+"@"+digest, string(out), "the pushed image by digest runs in the cluster")

	// One sticky comment with the gate, the image and the deployment.
	cs := gh.Comments("acme/models", 7)
	require.Len(t, cs, 1)
	assert.Contains(t, cs[0].Body, "<!-- mlship:heart-disease -->")
	assert.Contains(t, cs[0].Body, "passed the gate")
	assert.Contains(t, cs[0].Body, digest)
	assert.Contains(t, cs[0].Body, "heart-pr-7")
	assert.Equal(t, []string(nil), gh.Violations())

	// The report in the job summary; a group per step; no error annotations.
	assert.Contains(t, r.summary, "passed the gate")
	assert.Contains(t, r.log, "::group::mlship train")
	assert.NotContains(t, strings.Join(r.commands, "\n"), "error")
	// Secrets never in the log: the registry password, the kubeconfig's token.
	assert.NotContains(t, r.log, reg.Password)
	assert.NotContains(t, r.log, cluster.AdminToken)
	assert.NotContains(t, r.log, base64.StdEncoding.EncodeToString(kc)[:40])
	t.Logf("pull-request workflow under act: %.1f s", r.seconds)
}

// TestFailingGate: a gate that fails fails the job with exit 1, an error
// annotation per failed check, and the comment still says why.
func TestFailingGate(t *testing.T) {
	gh := commenttest.NewGitHub(t)
	gh.AddPR("acme/models", 8)
	wf := `name: model
on: pull_request
jobs:
  model:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: train
        uses: mlship/mlship/actions/train@v1
        with: {config: examples/heart-disease, out: mlship-out/model, epochs: "3"}
      - id: gate
        uses: mlship/mlship/actions/evaluate-gate@v1
        with: {config: examples/heart-disease, model: "${{ steps.train.outputs.model-dir }}"}
      - if: ${{ !cancelled() }}
        uses: mlship/mlship/actions/comment@v1
        with: {model: "${{ steps.train.outputs.model-dir }}"}
`
	ws := workspace(t, map[string]string{".github/workflows/gate.yml": wf}, "gate:\n  min: {accuracy: 0.99}\n")
	r := runAct(t, ws, actOpts{
		event: "pull_request", eventJSON: prEvent(8), workflow: ".github/workflows/gate.yml", mlship: true,
		env:     map[string]string{"GITHUB_API_URL": gh.APIURL},
		secrets: map[string]string{"GITHUB_TOKEN": gh.Token},
	})
	assert.NotEqual(t, 0, r.code, "a failed gate fails the job")
	assert.Contains(t, r.log, "exit status 1", "the gate step exits 1")
	assert.Contains(t, r.commands, `error title="Gate check failed: accuracy min" accuracy 0.852459 < min 0.99 (metric accuracy, value 0.852459, min bound 0.99)`)
	assert.Equal(t, "false", output(r, "passed"))
	cs := gh.Comments("acme/models", 8)
	require.Len(t, cs, 1)
	assert.Contains(t, cs[0].Body, "failed the gate")
}

// TestInputErrorNamesTheInput: a bad input fails with exit 2, the message names
// the action's input, and an annotation says so.
func TestInputErrorNamesTheInput(t *testing.T) {
	wf := `name: bad
on: pull_request
jobs:
  model:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: mlship/mlship/actions/train@v1
        with: {config: examples/heart-disease, test-size: "1.5"}
`
	ws := workspace(t, map[string]string{".github/workflows/bad.yml": wf}, "")
	r := runAct(t, ws, actOpts{event: "pull_request", eventJSON: prEvent(9), workflow: ".github/workflows/bad.yml", mlship: true})
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.log, "exit status 2")
	assert.Contains(t, r.log, "mlship: input test-size must be between 0 and 1, got 1.5")
	assert.Contains(t, r.commands, `error title="mlship train: bad input (exit 2)" input test-size must be between 0 and 1, got 1.5`)
}

// TestReusableWorkflow calls .github/workflows/mlship.yml from a caller
// workflow: train and gate, push, comment, across jobs.
func TestReusableWorkflow(t *testing.T) {
	reg := registry.StartDistribution(t, registry.Options{})
	gh := commenttest.NewGitHub(t)
	gh.AddPR("acme/models", 11)
	caller := fmt.Sprintf(`name: caller
on: pull_request
jobs:
  model:
    uses: mlship/mlship/.github/workflows/mlship.yml@v1
    with:
      project: examples/heart-disease
      image: %s
`, reg.Ref("acme/heart:pr-11"))
	ws := workspace(t, map[string]string{".github/workflows/caller.yml": caller}, "")
	r := runAct(t, ws, actOpts{
		event: "pull_request", eventJSON: prEvent(11), workflow: ".github/workflows/caller.yml", mlship: true,
		env:     map[string]string{"GITHUB_API_URL": gh.APIURL, "MLSHIP_TEST_ARTIFACTS": t.TempDir()},
		secrets: map[string]string{"GITHUB_TOKEN": gh.Token},
	})
	require.Equal(t, 0, r.code)
	digest := output(r, "digest")
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, digest)
	cs := gh.Comments("acme/models", 11)
	require.Len(t, cs, 1)
	assert.Contains(t, cs[0].Body, "passed the gate")
	assert.Contains(t, cs[0].Body, digest, "the comment job read the image job's result")
}

// TestForkPullRequest: on a fork's pull request the token may not comment: the
// job stays green and saves the report; the workflow_run workflow
// (examples/github/fork-comment.yml) posts it.
func TestForkPullRequest(t *testing.T) {
	gh := commenttest.NewGitHub(t)
	gh.AddPR("acme/models", 12)
	gh.Fail(commenttest.Failure{Method: "POST", Status: 403, Body: `{"message":"Resource not accessible by integration"}`})
	artifacts := t.TempDir()
	ws := workspace(t, map[string]string{
		".github/workflows/pr.yml":   "examples/github/pull-request.yml",
		".github/workflows/fork.yml": "examples/github/fork-comment.yml",
	}, "")
	reg := registry.StartDistribution(t, registry.Options{})
	r := runAct(t, ws, actOpts{
		event: "pull_request", eventJSON: prEvent(12), workflow: ".github/workflows/pr.yml", mlship: true,
		env:     map[string]string{"GITHUB_API_URL": gh.APIURL, "MLSHIP_TEST_ARTIFACTS": artifacts},
		vars:    map[string]string{"IMAGE_REPOSITORY": reg.Ref("fork/heart")},
		secrets: map[string]string{"GITHUB_TOKEN": gh.Token},
	})
	require.Equal(t, 0, r.code, "a 403 on the comment does not fail the job")
	assert.Regexp(t, `(?m)^warning .*could not comment on acme/models#12`, strings.Join(r.commands, "\n"))
	assert.Empty(t, gh.Comments("acme/models", 12))
	assert.FileExists(t, filepath.Join(artifacts, "mlship-report", "mlship-report.md"))

	r = runAct(t, ws, actOpts{
		event: "workflow_run", workflow: ".github/workflows/fork.yml", mlship: true,
		eventJSON: map[string]any{"workflow_run": map[string]any{"id": 99, "event": "pull_request",
			"pull_requests": []any{map[string]any{"number": 12, "base": map[string]any{"repo": map[string]any{"url": gh.APIURL + "/repos/acme/models"}}}}},
			"repository": map[string]any{"full_name": "acme/models"}},
		env:     map[string]string{"GITHUB_API_URL": gh.APIURL, "MLSHIP_TEST_ARTIFACTS": artifacts},
		secrets: map[string]string{"GITHUB_TOKEN": gh.Token},
	})
	require.Equal(t, 0, r.code)
	cs := gh.Comments("acme/models", 12)
	require.Len(t, cs, 1)
	assert.Contains(t, cs[0].Body, "<!-- mlship:heart-disease -->")
}

// TestInstallFromRelease builds a release with the real GoReleaser config
// (`goreleaser check`, then a snapshot named 1.4.2), serves its dist/ folder
// as GitHub would (releases/download/v1.4.2/... and the releases API), and
// runs install.sh against it as the actions do: download and checksum,
// the tool cache on a second run, a major tag resolved through the API, a
// checksum that does not match refused.
func TestInstallFromRelease(t *testing.T) {
	goreleaser := toolPath(t, "goreleaser")
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = root, append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %v:\n%s", name, args, out)
		return string(out)
	}
	run(nil, goreleaser, "check")
	start := time.Now()
	// The before-hook (make serverbins) already ran in make test; skipping it
	// keeps other packages' tests from seeing those files rewritten.
	run([]string{"MLSHIP_SNAPSHOT_VERSION=1.4.2"}, goreleaser, "release", "--snapshot", "--clean", "--skip=before")
	t.Logf("goreleaser release --snapshot: %.0f s", time.Since(start).Seconds())
	dist := filepath.Join(root, "dist")
	for _, a := range []string{"mlship_1.4.2_linux_amd64.tar.gz", "mlship_1.4.2_darwin_arm64.tar.gz", "mlship_1.4.2_windows_amd64.zip",
		"mlship-serve_1.4.2_linux_arm64.tar.gz", "checksums.txt"} {
		assert.FileExists(t, filepath.Join(dist, a))
	}

	// The release host: GitHub's download paths and releases API.
	rel := t.TempDir()
	dl := filepath.Join(rel, "acme", "mlship", "releases", "download", "v1.4.2")
	require.NoError(t, os.MkdirAll(dl, 0o755))
	for _, a := range []string{"mlship_1.4.2_linux_amd64.tar.gz", "checksums.txt"} {
		b, err := os.ReadFile(filepath.Join(dist, a))
		require.NoError(t, err)
		write(t, filepath.Join(dl, a), string(b))
	}
	var served atomic.Int64
	files := http.FileServer(http.Dir(rel))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/repos/acme/mlship/releases" {
			fmt.Fprint(w, `[{"tag_name": "v2.0.0"}, {"tag_name": "v1.4.2"}, {"tag_name": "v1.10.0-rc.1"}, {"tag_name": "v1.3.9"}]`)
			return
		}
		cw := &countingWriter{ResponseWriter: w, n: &served}
		files.ServeHTTP(cw, r)
	}))
	defer srv.Close()

	install := func(env ...string) (string, map[string]string, int) {
		t.Helper()
		dir := t.TempDir()
		ghPath, ghOut := filepath.Join(dir, "path"), filepath.Join(dir, "output")
		cmd := exec.Command("bash", filepath.Join(root, "actions", "install.sh"))
		cmd.Env = append(cleanEnv(), "PATH=/usr/bin:/bin", "HOME="+os.Getenv("HOME"),
			"RUNNER_OS=Linux", "RUNNER_ARCH=X64", "RUNNER_TOOL_CACHE="+toolCache, "RUNNER_TEMP="+dir,
			"GITHUB_PATH="+ghPath, "GITHUB_OUTPUT="+ghOut, "GITHUB_SERVER_URL="+srv.URL, "GITHUB_API_URL="+srv.URL+"/api",
			"MLSHIP_ACTION_REPOSITORY=acme/mlship")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		outs := map[string]string{}
		b, _ := os.ReadFile(ghOut)
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				outs[k] = v
			}
		}
		return string(out), outs, code
	}
	toolCache = t.TempDir()

	served.Store(0)
	start = time.Now()
	log, outs, code := install("MLSHIP_ACTION_REF=v1.4.2")
	secs := time.Since(start).Seconds()
	require.Equal(t, 0, code, log)
	assert.Equal(t, "release", outs["source"], log)
	assert.Equal(t, "1.4.2", outs["version"], "the binary is the release's")
	t.Logf("setup from the release: %.2f s, %d bytes downloaded", secs, served.Load())
	assert.Greater(t, served.Load(), int64(1_000_000))

	// Again on the same runner: the tool cache, nothing downloaded.
	served.Store(0)
	log, outs, code = install("MLSHIP_INSTALL_VERSION=v1.4.2")
	require.Equal(t, 0, code, log)
	assert.Equal(t, "tool-cache", outs["source"])
	assert.Zero(t, served.Load())

	// A major tag is the newest release of that major version.
	toolCache = t.TempDir()
	log, outs, code = install("MLSHIP_ACTION_REF=v1")
	require.Equal(t, 0, code, log)
	assert.Contains(t, log, "v1 is release v1.4.2")
	assert.Equal(t, "release", outs["source"])

	// A tampered checksum list: refused, nothing installed.
	toolCache = t.TempDir()
	sums, err := os.ReadFile(filepath.Join(dl, "checksums.txt"))
	require.NoError(t, err)
	write(t, filepath.Join(dl, "checksums.txt"), regexp.MustCompile(`(?m)^[0-9a-f]{64}(  mlship_1.4.2_linux_amd64.tar.gz)$`).
		ReplaceAllString(string(sums), strings.Repeat("0", 64)+"$1"))
	log, _, code = install("MLSHIP_INSTALL_VERSION=1.4.2")
	assert.Equal(t, 2, code, log)
	assert.Contains(t, log, "refusing it")
	assert.NoFileExists(t, filepath.Join(toolCache, "mlship", "1.4.2", "amd64", "mlship"))

	// A version that was never released: the download fails, exit 3.
	log, _, code = install("MLSHIP_INSTALL_VERSION=9.9.9")
	assert.Equal(t, 3, code, log)
	assert.Contains(t, log, "cannot download")
}

var toolCache string

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// toolPath installs a pinned Go tool with hack/tools.sh and returns it.
func toolPath(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(root, "hack", "tools.sh"), name)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	return filepath.Join(strings.TrimSpace(string(out)), name)
}
