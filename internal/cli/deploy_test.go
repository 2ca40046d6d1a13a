package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/testutil/kube"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

const (
	imgGood    = "registry.example.com/acme/heart@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	imgUnready = "registry.example.com/acme/heart-unready@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestKubectlDeployRender(t *testing.T) {
	dir := t.TempDir()
	model := trainHeart(t, filepath.Join(dir, "m"))
	r := mlship(t, "kubectl-deploy", "--image", imgGood, "--name", "heart", "--render", "--model", model, "--replicas", "3")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "kind: Deployment")
	assert.Contains(t, r.stdout, "replicas: 3")
	assert.Contains(t, r.stdout, "mlship.dev/metrics: '{\"accuracy\":")
	assert.Contains(t, r.stdout, "image: "+imgGood)

	r = mlship(t, "kubectl-deploy", "--image", imgGood, "--render")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, errLine(t, r.stderr), "--name is required for the generated Deployment and Service")
}

// TestKubectlDeployCluster deploys through the command line to the real control
// plane: a rollout, a dry run with its diff, a failed rollout (exit 1, rolled back),
// credentials from MLSHIP_KUBECONFIG_DATA, and an RBAC refusal (exit 2).
func TestKubectlDeployCluster(t *testing.T) {
	c := kube.Shared(t)
	base := []string{"kubectl-deploy", "-q", "--kubeconfig", c.Kubeconfig, "--name", "cli-heart", "--progress-deadline", "8", "--timeout", "1m"}
	r := mlship(t, append(base, "--image", imgGood, "--json")...)
	require.Equal(t, 0, r.code, r.stderr)
	var res struct {
		Deployment, Service, Revision, Image, Namespace string
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, "cli-heart", res.Deployment)
	assert.Equal(t, "1", res.Revision)

	r = mlship(t, append(base, "--image", imgUnready, "--dry-run")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "+        image: "+imgUnready)

	r = mlship(t, append(base, "--image", imgUnready)...)
	assert.Equal(t, 1, r.code)
	msg := errLine(t, r.stderr)
	assert.Contains(t, msg, "rollout of deployment default/cli-heart failed")
	assert.Contains(t, msg, "rolled back to the previous revision (image "+imgGood+")")

	kc, err := os.ReadFile(c.Kubeconfig)
	require.NoError(t, err)
	t.Setenv("MLSHIP_KUBECONFIG_DATA", base64.StdEncoding.EncodeToString(kc))
	r = mlship(t, "kubectl-deploy", "-q", "--name", "cli-heart", "--image", imgGood, "--progress-deadline", "8")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "deployment default/cli-heart at revision")

	t.Setenv("MLSHIP_KUBECONFIG_DATA", "%%%")
	r = mlship(t, "kubectl-deploy", "-q", "--name", "cli-heart", "--image", imgGood)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, errLine(t, r.stderr), "$MLSHIP_KUBECONFIG_DATA is not base64")

	r = mlship(t, "kubectl-deploy", "-q", "--kubeconfig", c.LimitedKubeconfig, "--name", "cli-heart", "--image", imgGood)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, errLine(t, r.stderr), "forbidden: the credentials may not patch deployments")
}
