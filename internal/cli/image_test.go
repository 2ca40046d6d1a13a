package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/testutil/registry"
)

var (
	serveOnce sync.Once
	serveBin  string
	serveErr  error
)

// serverBin builds mlship-serve for linux/amd64 once for the package's tests.
func serverBin(t *testing.T) string {
	t.Helper()
	serveOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mlship-cli-serve-*")
		if err != nil {
			serveErr = err
			return
		}
		serveBin = filepath.Join(dir, "mlship-serve")
		cmd := exec.Command("go", "build", "-o", serveBin, "../../cmd/mlship-serve")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			serveErr = err
			t.Logf("%s", out)
		}
	})
	require.NoError(t, serveErr)
	return serveBin
}

// TestBuildPushImageAndBaselineGate pushes a model's image, then gates a second
// model against the pushed one as the baseline, read from the registry.
func TestBuildPushImageAndBaselineGate(t *testing.T) {
	bin := serverBin(t)
	reg := registry.StartInProcess(t, registry.Options{})
	dir := t.TempDir()
	prod := trainHeart(t, filepath.Join(dir, "prod"))
	cand := trainHeart(t, filepath.Join(dir, "cand"), "--seed", "7")
	ref := reg.Ref("acme/heart:main")

	r := mlship(t, "build-push-image", "-q", "--model", prod, "--image", ref, "--push", "--smoke-test=false",
		"--server-bin", "linux/amd64="+bin, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var res struct {
		Digest    string   `json:"digest"`
		Image     string   `json:"image"`
		Tags      []string `json:"tags"`
		Pushed    bool     `json:"pushed"`
		Platforms []string `json:"platforms"`
		Size      int64    `json:"size_compressed"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.True(t, res.Pushed)
	assert.Equal(t, reg.Host+"/acme/heart@"+res.Digest, res.Image)
	assert.Equal(t, []string{"linux/amd64"}, res.Platforms)

	prodAcc := readMetrics(t, prod)["accuracy"]
	candAcc := readMetrics(t, cand)["accuracy"]
	// A drop allowance that the candidate meets, then one it does not (unless equal).
	r = mlship(t, "evaluate-gate", "--model", cand, "--baseline-image", ref, "--max-drop", "accuracy=1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "pass")
	if candAcc < prodAcc {
		r = mlship(t, "evaluate-gate", "--model", cand, "--baseline-image", ref, "--max-drop", "accuracy=0")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, errLine(t, r.stderr), "gate failed: accuracy dropped")
	}

	missing := reg.Ref("acme/heart:nope")
	r = mlship(t, "evaluate-gate", "--model", cand, "--baseline-image", missing, "--max-drop", "accuracy=0.02")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, errLine(t, r.stderr), "not in the registry")
	r = mlship(t, "evaluate-gate", "--model", cand, "--baseline-image", missing, "--max-drop", "accuracy=0.02", "--allow-missing-baseline")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "skip")
}

func TestBuildPushImageErrors(t *testing.T) {
	dir := t.TempDir()
	model := trainHeart(t, filepath.Join(dir, "m"))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no image", []string{"--model", model, "--push"}, "--image is required (REPO[:TAG])"},
		{"nothing to do", []string{"--model", model, "--image", "r.example.com/x:v1"}, "--push is not set and neither is --oci-layout or --tarball: nothing to do"},
		{"bad server-bin", []string{"--model", model, "--image", "x:v1", "--push", "--server-bin", "linux/amd64"}, "--server-bin: \"linux/amd64\" is not KEY=VALUE"},
		{"no model", []string{"--model", filepath.Join(dir, "none"), "--image", "x:v1", "--oci-layout", filepath.Join(dir, "l")}, "no such directory"},
		{"no embedded server", []string{"--model", model, "--image", "x:v1", "--oci-layout", filepath.Join(dir, "l"), "--platform", "linux/s390x"}, "no embedded mlship-serve for linux/s390x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mlship(t, append([]string{"build-push-image", "-q"}, tc.args...)...)
			assert.Equal(t, 2, r.code)
			assert.Contains(t, errLine(t, r.stderr), tc.want)
			assert.NoDirExists(t, filepath.Join(dir, "l"))
		})
	}
}
