// Package templates_test runs mlship's GitLab CI templates with a real GitLab
// runner emulator, gitlab-ci-local (shell executor), against a real registry
// (Debian docker-registry), a real Kubernetes control plane and the GitLab
// REST API fake of internal/comment/commenttest. The pipeline files are the
// ones users include (ci-templates/*.yml, examples/gitlab/.gitlab-ci.yml).
package templates_test

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/mlship/mlship/internal/comment/commenttest"
	"github.com/mlship/mlship/internal/gate/junittest"
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

// gitlabArgs are gitlab-ci-local's flags in every run: jobs on the shell
// executor (a shell runner ignores image:, as here), artifacts passed the way
// GitLab does, and GitLab's acceptance of an empty tags array (the default
// of the tags input; gitlab-ci-local's schema wants one item, its issue #1503).
var gitlabArgs = []string{"--force-shell-executor", "--shell-isolation", "--ignore-schema-paths", "#/definitions/tags/minItems",
	"--ignore-predefined-vars", "GITLAB_CI,CI_PIPELINE_SOURCE,CI_REGISTRY_IMAGE,CI_REGISTRY,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD,CI_PROJECT_ID,CI_PROJECT_PATH,CI_SERVER_URL,CI_API_V4_URL,CI_JOB_TOKEN,CI_COMMIT_BRANCH,CI_DEFAULT_BRANCH,CI_COMMIT_REF_SLUG,CI_MERGE_REQUEST_IID,CI_MERGE_REQUEST_PROJECT_ID,CI_MERGE_REQUEST_PROJECT_PATH"}

var tools struct {
	mlshipDir, gcl string
	err            error
}

// setup builds mlship (with the embedded mlship-serve binaries of make
// serverbins) and installs gitlab-ci-local (hack/tools.sh), once.
func setup(t *testing.T) (string, string) {
	t.Helper()
	if tools.gcl == "" && tools.err == nil {
		tools.mlshipDir, tools.err = testutil.BuildMlship(root, "mlship-gitlab-bin-")
		if tools.err == nil {
			tools.gcl, tools.err = testutil.Tool(root, "gitlab-ci-local")
		}
	}
	require.NoError(t, tools.err)
	return tools.mlshipDir, tools.gcl
}

// workspace makes a git project (origin acme/models on gitlab.example.com)
// holding the templates, the heart example (its gate replaced when gate is
// set) and the given .gitlab-ci.yml.
func workspace(t *testing.T, ci, gate string) string {
	t.Helper()
	ws := t.TempDir()
	run(t, ws, "cp", "-a", filepath.Join(root, "ci-templates"), filepath.Join(ws, "ci-templates"))
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "examples", "heart-disease"), 0o755))
	run(t, ws, "cp", filepath.Join(root, "examples", "heart-disease", "heart.csv"), filepath.Join(ws, "examples", "heart-disease"))
	cfg, err := os.ReadFile(filepath.Join(root, "examples", "heart-disease", "mlship.yaml"))
	require.NoError(t, err)
	if gate != "" {
		i := strings.Index(string(cfg), "\ngate:")
		require.GreaterOrEqual(t, i, 0)
		cfg = append(cfg[:i+1], []byte(gate)...)
	}
	write(t, filepath.Join(ws, "examples", "heart-disease", "mlship.yaml"), string(cfg))
	write(t, filepath.Join(ws, ".gitlab-ci.yml"), ci)
	run(t, ws, "git", "init", "-q", "-b", "feature")
	run(t, ws, "git", "remote", "add", "origin", "git@gitlab.example.com:acme/models.git")
	run(t, ws, "git", "add", "-A")
	run(t, ws, "git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "test")
	return ws
}

func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
	return string(out)
}

func write(t *testing.T, path, s string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(s), 0o644))
}

// pipeline is one run of gitlab-ci-local.
type pipeline struct {
	code    int
	log     string
	results map[string]string // job -> PASS, FAIL or the exit code it failed with
	seconds float64
}

var resultRe = regexp.MustCompile(`(?m)^\s*(PASS|FAIL|WARN)\s+(\S+)`)
var exitRe = regexp.MustCompile(`(?m)^(\S+)\s+finished in .*FAIL (\d+)`)

// runPipeline runs the pipeline of ws, or the jobs named.
func runPipeline(t *testing.T, ws string, vars map[string]string, jobs ...string) pipeline {
	t.Helper()
	mlshipDir, gcl := setup(t)
	args := append(append([]string{}, gitlabArgs...), "--home", t.TempDir())
	for k, v := range vars {
		args = append(args, "--variable", k+"="+v)
	}
	args = append(args, jobs...)
	cmd := exec.Command(gcl, args...)
	cmd.Dir = ws
	cmd.Env = append(cleanEnv(), "PATH="+mlshipDir+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	p := pipeline{log: string(out), results: map[string]string{}, seconds: time.Since(start).Seconds()}
	if ee, ok := err.(*exec.ExitError); ok {
		p.code = ee.ExitCode()
	} else {
		require.NoError(t, err, "%s", out)
	}
	for _, m := range resultRe.FindAllStringSubmatch(p.log, -1) {
		p.results[m[2]] = m[1]
	}
	for _, m := range exitRe.FindAllStringSubmatch(p.log, -1) {
		p.results[m[1]] = "exit " + m[2]
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gitlab-ci-local log:\n%s", p.log)
		}
	})
	return p
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "GITLAB_") || strings.HasPrefix(k, "CI_") ||
			strings.HasPrefix(k, "MLSHIP_") || k == "KUBECONFIG" || k == "PATH" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// mrVars are the variables of a merge request pipeline, with the GitLab API
// fake, the registry's credentials and the cluster's kubeconfig.
func mrVars(t *testing.T, gl *commenttest.FakeGitLab, iid int, reg *registry.Server, kc []byte) map[string]string {
	v := gl.Env("acme/models", iid)
	v["GITLAB_CI"] = "true" // gitlab-ci-local says "false", to mark local runs
	v["CI_COMMIT_BRANCH"] = ""
	v["CI_DEFAULT_BRANCH"] = "main"
	v["CI_COMMIT_REF_SLUG"] = "feature"
	if reg != nil {
		v["CI_REGISTRY"] = reg.Host
		v["CI_REGISTRY_USER"] = reg.Username
		v["CI_REGISTRY_PASSWORD"] = reg.Password
		v["CI_REGISTRY_IMAGE"] = reg.Ref("acme/models")
	}
	if kc != nil {
		v["MLSHIP_KUBECONFIG_DATA"] = base64.StdEncoding.EncodeToString(kc)
	}
	return v
}

// artifact is a file a job left, as gitlab-ci-local keeps it (dotenv reports
// apart).
func artifact(t *testing.T, ws, job, path string) string {
	t.Helper()
	p := filepath.Join(ws, ".gitlab-ci-local", "artifacts", job, path)
	if strings.HasSuffix(path, ".env") {
		p = filepath.Join(ws, ".gitlab-ci-local", "artifacts", job, ".gitlab-ci-reports", "dotenv", path)
	}
	b, err := os.ReadFile(p)
	require.NoError(t, err, "artifact %s of %s", path, job)
	return string(b)
}

const localPipeline = `stages: [build, test, deploy]
include:
  - local: ci-templates/pipeline.yml
    inputs:
      config: examples/heart-disease
      build-push-image-image: $CI_REGISTRY_IMAGE/heart:mr-$CI_MERGE_REQUEST_IID
      push: 'true'
      smoke-test: 'false'
      kubectl-deploy-name: heart-mr
      environment: review/$CI_COMMIT_REF_SLUG
`

// TestMergeRequestPipeline: the whole pipeline on a merge request, included
// locally with inputs: train -> gate -> image (registry credentials from
// CI_REGISTRY*) -> deploy (the control plane) -> the note, created then
// edited on a second run.
func TestMergeRequestPipeline(t *testing.T) {
	reg := registry.StartDistribution(t, registry.Options{Username: "gitlab-ci-token", Password: "registry-pass-7d1e"})
	cluster := kube.Shared(t)
	kc, err := os.ReadFile(cluster.Kubeconfig)
	require.NoError(t, err)
	gl := commenttest.NewGitLab(t)
	ws := workspace(t, localPipeline, "")

	vars := mrVars(t, gl, 5, reg, kc)
	p := runPipeline(t, ws, vars)
	require.Equal(t, 0, p.code)
	for _, job := range []string{"mlship-train", "mlship-evaluate-gate", "mlship-build-push-image", "mlship-kubectl-deploy", "mlship-comment"} {
		assert.Equal(t, "PASS", p.results[job], job)
	}
	t.Logf("merge request pipeline under gitlab-ci-local: %.1f s", p.seconds)

	// Dotenv values reach later jobs: the digest the image job pushed runs in the cluster.
	imageEnv := artifact(t, ws, "mlship-build-push-image", "mlship-build-push-image.env")
	m := regexp.MustCompile(`(?m)^IMAGE=(\S+@sha256:[0-9a-f]{64})$`).FindStringSubmatch(imageEnv)
	require.NotNil(t, m, imageEnv)
	assert.True(t, strings.HasPrefix(m[1], reg.Ref("acme/models/heart")+"@"), m[1])
	out, err := exec.Command("kubectl", "--kubeconfig", cluster.Kubeconfig, "get", "deployment", "heart-mr",
		"-o", "jsonpath={.spec.template.spec.containers[0].image}").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, m[1], string(out))
	deployEnv := artifact(t, ws, "mlship-kubectl-deploy", "mlship-kubectl-deploy.env")
	assert.Contains(t, deployEnv, "URL=http://heart-mr.default.svc.cluster.local\n")
	assert.Contains(t, artifact(t, ws, "mlship-evaluate-gate", "mlship-evaluate-gate.env"), "PASSED=true\n")

	// The reports where GitLab reads them.
	junit := filepath.Join(ws, ".gitlab-ci-local", "artifacts", "mlship-evaluate-gate", "mlship-out", "junit.xml")
	assert.FileExists(t, junit)
	junittest.Validate(t, junit)
	assert.Contains(t, artifact(t, ws, "mlship-comment", "mlship-out/metrics.txt"), "# TYPE mlship_accuracy gauge")

	notes := gl.Notes("acme/models", 5)
	require.Len(t, notes, 1)
	assert.Contains(t, notes[0].Body, "<!-- mlship:heart-disease -->")
	assert.Contains(t, notes[0].Body, m[1][strings.Index(m[1], "@")+1:], "the note shows the image's digest")
	assert.Contains(t, notes[0].Body, "heart-mr")
	assert.Contains(t, artifact(t, ws, "mlship-comment", "mlship-comment.env"), "COMMENT_URL=")
	assert.NotContains(t, p.log, reg.Password)

	// A second run edits the note.
	p = runPipeline(t, ws, vars)
	require.Equal(t, 0, p.code)
	notes = gl.Notes("acme/models", 5)
	require.Len(t, notes, 1)
	assert.Equal(t, 1, notes[0].Edits)
	assert.Empty(t, gl.Violations())
}

// TestFailingGateAndRegistryDown: a failed gate fails its job with exit 1 and
// no image or deployment follows (the note still says why); a registry that
// refuses connections fails the image job with exit 3, the code retry: is
// configured for.
func TestFailingGateAndRegistryDown(t *testing.T) {
	gl := commenttest.NewGitLab(t)
	ws := workspace(t, localPipeline, "gate:\n  min: {accuracy: 0.99}\n")
	p := runPipeline(t, ws, mrVars(t, gl, 6, &registry.Server{Host: "127.0.0.1:1"}, nil))
	assert.NotEqual(t, 0, p.code)
	assert.Equal(t, "PASS", p.results["mlship-train"])
	assert.Equal(t, "exit 1", p.results["mlship-evaluate-gate"])
	assert.NotContains(t, p.log, "mlship-build-push-image starting")
	assert.NotContains(t, p.log, "mlship-kubectl-deploy starting")
	// GitLab runs the note's job (when: always) after the failure;
	// gitlab-ci-local stops a pipeline of needs at its first failure, so the
	// job is run by name, with the artifacts the failed pipeline left.
	p = runPipeline(t, ws, mrVars(t, gl, 6, nil, nil), "mlship-comment")
	require.Equal(t, 0, p.code)
	notes := gl.Notes("acme/models", 6)
	require.Len(t, notes, 1)
	assert.Contains(t, notes[0].Body, "failed the gate")

	ws = workspace(t, strings.Replace(localPipeline, "      push: 'true'\n", "      push: 'true'\n      build-push-image-timeout: 3s\n", 1), "")
	reg := &registry.Server{Host: closedPort(t)}
	p = runPipeline(t, ws, mrVars(t, gl, 7, reg, nil))
	assert.NotEqual(t, 0, p.code)
	assert.Equal(t, "exit 3", p.results["mlship-build-push-image"])
	assert.Contains(t, p.log, "mlship: pushing ")
}

// TestIncludeProjectTwice: the example .gitlab-ci.yml as users write it
// (include: project mlship/mlship, ref v1), served from a local bare
// repository, and one template included twice for two models.
func TestIncludeProjectTwice(t *testing.T) {
	// mlship/mlship at tag v1: a bare clone of this checkout's templates.
	remotes := t.TempDir()
	src := t.TempDir()
	run(t, src, "cp", "-a", filepath.Join(root, "ci-templates"), filepath.Join(src, "ci-templates"))
	run(t, src, "git", "init", "-q", "-b", "main")
	run(t, src, "git", "add", "-A")
	run(t, src, "git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "templates")
	run(t, src, "git", "tag", "v1")
	require.NoError(t, os.MkdirAll(filepath.Join(remotes, "mlship"), 0o755))
	run(t, src, "git", "clone", "-q", "--bare", src, filepath.Join(remotes, "mlship", "mlship.git"))
	gitconfig := filepath.Join(t.TempDir(), "gitconfig")
	write(t, gitconfig, fmt.Sprintf("[url \"file://%s/\"]\n\tinsteadOf = ssh://git@gitlab.example.com:22/\n[protocol \"file\"]\n\tallow = always\n", remotes))

	example, err := os.ReadFile(filepath.Join(root, "examples", "gitlab", ".gitlab-ci.yml"))
	require.NoError(t, err)
	// Two models: the example's pipeline for heart-disease, and the train
	// template again, prefixed, for a second model.
	ci := string(example) + `  - project: mlship/mlship
    ref: v1
    file: ci-templates/train.yml
    inputs:
      job-prefix: heart-small
      config: examples/heart-disease
      epochs: '2'
      out: mlship-out/small
`
	ws := workspace(t, ci, "")
	// No registry or cluster here: only the train jobs are run.
	mlshipDir, gcl := setup(t)
	cmd := exec.Command(gcl, append(append([]string{}, gitlabArgs...), "--home", t.TempDir(),
		"--variable", "CI_PIPELINE_SOURCE=merge_request_event", "--variable", "CI_MERGE_REQUEST_IID=8",
		"--variable", "CI_REGISTRY_IMAGE=127.0.0.1:1/acme/models", "mlship-train", "heart-small-train")...)
	cmd.Dir = ws
	cmd.Env = append(cleanEnv(), "PATH="+mlshipDir+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"),
		"GIT_CONFIG_GLOBAL="+gitconfig)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "heart-small-train")
	assert.Regexp(t, `(?m)^\s*PASS\s+mlship-train`, string(out))
	assert.Regexp(t, `(?m)^\s*PASS\s+heart-small-train`, string(out))
	assert.Contains(t, string(out), "epoch   2/2")
	// The inputs of the example reached the pipeline's jobs.
	expanded, err := os.ReadFile(filepath.Join(ws, ".gitlab-ci-local", "expanded-gitlab-ci.yml"))
	require.NoError(t, err)
	var jobs map[string]any
	require.NoError(t, yaml.Unmarshal(expanded, &jobs))
	for _, job := range []string{"mlship-train", "mlship-evaluate-gate", "mlship-build-push-image", "mlship-kubectl-deploy", "mlship-comment", "heart-small-train"} {
		assert.Contains(t, jobs, job)
	}
	imageJob := jobs["mlship-build-push-image"].(map[string]any)
	vs := imageJob["variables"].(map[string]any)
	assert.Equal(t, "$CI_REGISTRY_IMAGE/heart:$CI_COMMIT_REF_SLUG", vs["MLSHIP_IMAGE"])
	assert.Equal(t, "true", vs["MLSHIP_PUSH"])
	deployJob := jobs["mlship-kubectl-deploy"].(map[string]any)
	assert.Equal(t, "review/$CI_COMMIT_REF_SLUG", deployJob["environment"].(map[string]any)["name"])
	assert.Equal(t, map[string]any{"max": 2, "when": "script_failure", "exit_codes": []any{3}}, imageJob["retry"])
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
