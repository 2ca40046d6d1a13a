package image

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/testutil/registry"
)

// TestSmoke runs the built image for real (unshare + chroot as root) before
// pushing. A server that cannot start fails the step and nothing is pushed.
func TestSmoke(t *testing.T) {
	if why := smokeUnavailable([]string{hostPlatform()}); why != "" {
		// mlship's CI runs as root on linux/amd64, where it must run; elsewhere
		// (a hosted runner without root) it is skipped, saying why.
		if os.Getenv("CI") != "" && os.Geteuid() == 0 && hostPlatform() == "linux/amd64" {
			t.Fatalf("the smoke test must run in CI: %s", why)
		}
		t.Skipf("smoke test cannot run here: %s", why)
	}
	reg := registry.StartInProcess(t, registry.Options{})
	cfg := testConfig(reg.Ref("smoke/heart:v1"))
	cfg.Push, cfg.Smoke = true, SmokeOn
	cfg.Platforms = []string{"linux/amd64", "linux/arm64"}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "passed", res.Smoke)

	// A "server" that exits at once: the smoke test fails, nothing is pushed.
	broken := filepath.Join(t.TempDir(), "false")
	require.NoError(t, os.WriteFile(broken, []byte("#!/bin/false\n"), 0o755))
	cfg.ServerBinaries = map[string]string{"linux/amd64": broken, "linux/arm64": serverBins["linux/arm64"]}
	cfg.Image = reg.Ref("smoke/broken:v1")
	cfg.OCILayout = filepath.Join(t.TempDir(), "layout")
	_, err = Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "smoke test of the linux/amd64 image: the server exited")
	assert.NoDirExists(t, cfg.OCILayout)
	_, err = Run(context.Background(), func() Config { c := cfg; c.Smoke = SmokeOff; c.Push = false; return c }())
	require.NoError(t, err, "the same build without the smoke test is written")
}

func TestSmokeSkipped(t *testing.T) {
	cfg := testConfig("mlship.local/heart:v1")
	cfg.OCILayout = filepath.Join(t.TempDir(), "layout")
	cfg.Platforms = []string{"linux/arm64"} // not this machine's platform
	cfg.Smoke = SmokeAuto
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Contains(t, res.Smoke, "skipped: no image for this machine's platform")
	cfg.Smoke = SmokeOn
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "smoke test: cannot run here: no image for this machine's platform")
}

func TestDefaultKeychain(t *testing.T) {
	env := map[string]string{
		"DOCKER_CONFIG": t.TempDir(), "GITHUB_TOKEN": "ghs_x", "GITHUB_ACTOR": "octo",
		"CI_REGISTRY": "registry.gitlab.example.com", "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "glpw",
	}
	t.Setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"]) // an empty docker config: the CI variables decide
	kc := DefaultKeychain(func(k string) string { return env[k] })
	for host, want := range map[string][2]string{
		"ghcr.io":                     {"octo", "ghs_x"},
		"registry.gitlab.example.com": {"gitlab-ci-token", "glpw"},
		"docker.io":                   {"", ""},
	} {
		reg, err := name.NewRegistry(host)
		require.NoError(t, err)
		a, err := kc.Resolve(reg)
		require.NoError(t, err)
		c, err := a.Authorization()
		require.NoError(t, err)
		assert.Equal(t, want[0], c.Username, host)
		assert.Equal(t, want[1], c.Password, host)
	}
}

// TestDockerConfigFirst: credentials from `docker login` (the docker config) win
// over the CI variables for the same registry.
func TestDockerConfigFirst(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"auths":{"ghcr.io":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("login-user:login-pw")) + `"},` +
		`"registry.example.com:5000":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("u:p")) + `"}}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600))
	t.Setenv("DOCKER_CONFIG", dir)
	kc := DefaultKeychain(func(k string) string { return map[string]string{"GITHUB_TOKEN": "ghs_x"}[k] })
	for host, want := range map[string]string{"ghcr.io": "login-user:login-pw", "registry.example.com:5000": "u:p"} {
		reg, err := name.NewRegistry(host)
		require.NoError(t, err)
		a, err := kc.Resolve(reg)
		require.NoError(t, err)
		c, err := a.Authorization()
		require.NoError(t, err)
		assert.Equal(t, want, c.Username+":"+c.Password, host)
	}
}
