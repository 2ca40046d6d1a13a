package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/testutil/kube"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

const (
	goodA  = "registry.example.com/acme/heart@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	goodB  = "registry.example.com/acme/heart@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	broken = "registry.example.com/acme/heart-unready@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

// clusterConfig is a deploy of name on the shared control plane with short waits.
func clusterConfig(t *testing.T, name, image string) (Config, kubernetes.Interface) {
	c := kube.Shared(t)
	cfg := Config{
		Image: image, Name: name, Replicas: 2, CPUTarget: DefaultCPUTarget, ProgressDeadline: 8, Timeout: time.Minute,
		Kube: KubeconfigSource{Path: c.Kubeconfig}, PollInterval: 200 * time.Millisecond,
	}
	rc, err := cfg.Kube.RESTConfig()
	require.NoError(t, err)
	kc, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	return cfg, kc
}

func liveImage(t *testing.T, kc kubernetes.Interface, name string) string {
	d, err := kc.AppsV1().Deployments("default").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d.Spec.Template.Spec.Containers[0].Image
}

// TestDeployAndUpdate: a first deploy rolls out, a new image rolls out.
func TestDeployAndUpdate(t *testing.T) {
	cfg, kc := clusterConfig(t, "update", goodA)
	var logs bytes.Buffer
	cfg.Log = &logs
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err, logs.String())
	assert.Equal(t, "1", res.Revision)
	assert.Equal(t, "update", res.Deployment)
	assert.Equal(t, "update", res.Service)
	assert.Equal(t, []string{"Deployment/default/update", "Service/default/update", "PodDisruptionBudget/default/update"}, res.Objects)
	assert.Equal(t, []string{"ServiceMonitor/default/update", "PrometheusRule/default/" + promRule(t, "update")}, res.Skipped, "the shared plane has no Prometheus Operator CRDs")
	assert.Contains(t, logs.String(), "deployment default/update: successfully rolled out (2/2 available)")

	d, err := kc.AppsV1().Deployments("default").Get(context.Background(), "update", metav1.GetOptions{})
	require.NoError(t, err)
	managers := map[string]bool{}
	for _, f := range d.ManagedFields {
		managers[f.Manager] = true
	}
	assert.True(t, managers[FieldManager], "server-side applied by %q: %v", FieldManager, managers)
	svc, err := kc.CoreV1().Services("default").Get(context.Background(), "update", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "http", svc.Spec.Ports[0].TargetPort.StrVal)

	cfg.Image = goodB
	res, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "2", res.Revision)
	assert.Equal(t, goodB, liveImage(t, kc, "update"))
}

// TestFailedRolloutRollsBack: a rollout that never becomes ready is detected at
// its progress deadline, explained from the pods, rolled back; the previous image
// runs afterwards, and a later deploy (server-side apply after the rollback's
// patch) works.
func TestFailedRolloutRollsBack(t *testing.T) {
	cfg, kc := clusterConfig(t, "rollback", goodA)
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	cfg.Image = broken
	var logs bytes.Buffer
	cfg.Log = &logs
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	require.Error(t, err)
	var re *RolloutError
	require.True(t, errors.As(err, &re), "%T: %v", err, err)
	assert.True(t, re.RolledBack)
	assert.Contains(t, err.Error(), "rollout of deployment default/rollback failed: it exceeded its progress deadline")
	assert.Contains(t, err.Error(), "ImagePullBackOff")
	assert.Contains(t, err.Error(), "rolled back to the previous revision (image "+goodA+"), now revision 3")
	assert.NotContains(t, err.Error(), "\n")
	assert.Equal(t, goodA, liveImage(t, kc, "rollback"), "the previous image runs again")
	assert.Equal(t, "3", res.Revision)
	assert.Contains(t, logs.String(), "rolling back to revision 1")
	t.Logf("failure detected and rolled back in %s", time.Since(start).Round(100*time.Millisecond))

	cfg.Image = goodB
	cfg.Log = nil
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err, "applying after a rollback must not conflict")
	assert.Equal(t, goodB, liveImage(t, kc, "rollback"))
}

func TestNoRollbackAndFirstRollout(t *testing.T) {
	cfg, kc := clusterConfig(t, "norollback", goodA)
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	cfg.Image, cfg.NoRollback = broken, true
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "not rolled back (--no-rollback)")
	assert.Equal(t, broken, liveImage(t, kc, "norollback"))

	// The first rollout of a new Deployment has nothing to go back to.
	cfg, _ = clusterConfig(t, "firstfail", broken)
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "could not roll back: there is no previous revision (this was the first rollout)")
}

func TestDryRunDiff(t *testing.T) {
	cfg, kc := clusterConfig(t, "dryrun", goodA)
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	cfg.Image, cfg.DryRun = goodB, true
	var out bytes.Buffer
	cfg.Out = &out
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.True(t, res.DryRun)
	assert.Contains(t, res.Diff, "--- live/Deployment/default/dryrun\n+++ applied/Deployment/default/dryrun\n")
	assert.Contains(t, res.Diff, "-        image: "+goodA+"\n")
	assert.Contains(t, res.Diff, "+        image: "+goodB+"\n")
	assert.NotContains(t, res.Diff, "managedFields")
	assert.Equal(t, res.Diff, out.String())
	assert.Equal(t, goodA, liveImage(t, kc, "dryrun"), "a dry run changes nothing")

	cfg.Image = goodA
	res, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "no changes\n", res.Diff)
}

func TestForbidden(t *testing.T) {
	c := kube.Shared(t)
	cfg, _ := clusterConfig(t, "forbidden", goodA)
	cfg.Kube = KubeconfigSource{Path: c.LimitedKubeconfig}
	_, err := Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "applying Deployment/default/forbidden: forbidden: the credentials may not patch deployments")
	assert.Contains(t, err.Error(), `User "limited" cannot patch resource "deployments"`)
	assert.NotContains(t, err.Error(), "\n")
}

// TestUserManifests applies a directory of the user's objects with the image set
// and waits for its Deployment.
func TestUserManifests(t *testing.T) {
	cfg, kc := clusterConfig(t, "", goodB)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(`apiVersion: v1
kind: ConfigMap
metadata: {name: custom-settings}
data: {threshold: "0.5"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: custom}
spec:
  replicas: 1
  progressDeadlineSeconds: 8
  selector: {matchLabels: {app: custom}}
  template:
    metadata: {labels: {app: custom}}
    spec:
      containers: [{name: model, image: "registry.example.com/acme/heart:placeholder"}]
`), 0o644))
	cfg.Manifests = []string{dir}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/default/custom-settings", "Deployment/default/custom"}, res.Objects)
	assert.Equal(t, "custom", res.Deployment)
	assert.Equal(t, goodB, liveImage(t, kc, "custom"))
	cm, err := kc.CoreV1().ConfigMaps("default").Get(context.Background(), "custom-settings", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "0.5", cm.Data["threshold"])
}

func TestTimeout(t *testing.T) {
	cfg, _ := clusterConfig(t, "slow", goodA)
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	cfg.Image, cfg.Timeout, cfg.ProgressDeadline, cfg.NoRollback = broken, 2*time.Second, 600, true
	_, err = Run(context.Background(), cfg)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "timed out after 2s"), "%v", err)
}

// TestScaledToZero: --replicas 0 deploys a Deployment scaled to zero, and the
// rollout wait ends as soon as the controller has observed it, also when a
// running one is scaled to zero (as kubectl rollout status, it does not wait
// for the pods to go).
func TestScaledToZero(t *testing.T) {
	cfg, kc := clusterConfig(t, "zero", goodA)
	cfg.Replicas = 0
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Equal(t, "1", res.Revision)
	d, err := kc.AppsV1().Deployments("default").Get(context.Background(), "zero", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(0), *d.Spec.Replicas)

	cfg.Replicas = 2
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	cfg.Replicas = 0
	var logs bytes.Buffer
	cfg.Log = &logs
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "deployment default/zero: successfully rolled out (scaled to zero)")
	d, err = kc.AppsV1().Deployments("default").Get(context.Background(), "zero", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(0), *d.Spec.Replicas)
}

// TestWrongCredentials: a token the cluster does not know is an input error
// (exit 2) said before anything is applied.
func TestWrongCredentials(t *testing.T) {
	c := kube.Shared(t)
	cfg, _ := clusterConfig(t, "badtoken", goodA)
	b, err := os.ReadFile(c.Kubeconfig)
	require.NoError(t, err)
	require.Contains(t, string(b), c.AdminToken)
	cfg.Kube = KubeconfigSource{Data: []byte(strings.ReplaceAll(string(b), c.AdminToken, "not-a-token"))}
	_, err = Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Equal(t, fault.Usage, fault.CodeOf(err), "%v", err)
	assert.Contains(t, err.Error(), "cluster at "+c.Server+" refused the credentials (unauthorized)")
	assert.NotContains(t, err.Error(), "not-a-token")
}
