package deploy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testImage = "registry.example.com/acme/heart@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestRenderGolden renders the generated Deployment and Service.
func TestRenderGolden(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(t.Context(), Config{Image: testImage, Name: "heart", Namespace: "models", Render: true, Out: &out, ProgressDeadline: 120})
	require.NoError(t, err)
	assert.True(t, res.Rendered)
	assert.Equal(t, []string{"Deployment/models/heart", "Service/models/heart"}, res.Objects)
	golden := filepath.Join("testdata", "render.golden.yaml")
	if *update {
		require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), out.String(), "run go test ./internal/deploy -run TestRenderGolden -update to accept")
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{Image: testImage, Name: "heart"}, ""},
		{"no image", Config{Name: "heart"}, "image is required"},
		{"bad image", Config{Image: "Not An Image", Name: "heart"}, `image "Not An Image" is not an image reference`},
		{"no name", Config{Image: testImage}, "name is required"},
		{"bad name", Config{Image: testImage, Name: "Heart_Model"}, `name "Heart_Model"`},
		{"manifests need no name", Config{Image: testImage, Manifests: []string{"x.yaml"}}, ""},
		{"bad namespace", Config{Image: testImage, Name: "heart", Namespace: "NS"}, `namespace "NS"`},
		{"bad quantity", Config{Image: testImage, Name: "heart", CPULimit: "lots"}, `cpu-limit "lots" is not a quantity`},
		{"dry run and render", Config{Image: testImage, Name: "heart", DryRun: true, Render: true}, "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestManifests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	write("app/10-deploy.yaml", `# the app
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: busybox:1.36}]
      containers:
      - {name: server, image: "registry.example.com/acme/heart:old"}
      - {name: sidecar, image: "envoyproxy/envoy:v1.30"}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: other}
spec: {ports: [{port: 80}]}
`)
	write("app/20-cron.yml", `apiVersion: batch/v1
kind: CronJob
metadata: {name: retrain}
spec:
  schedule: "@daily"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: job, image: "registry.example.com/acme/heart:old"}]}}}}
`)
	write("app/README.md", "not a manifest")
	objs, err := Objects(Config{Image: testImage, Manifests: []string{filepath.Join(dir, "app")}, Namespace: "models"})
	require.NoError(t, err)
	require.Len(t, objs, 3)
	assert.Equal(t, "models", objs[0].GetNamespace(), "namespace filled in")
	assert.Equal(t, "other", objs[1].GetNamespace(), "namespace kept")
	var out bytes.Buffer
	require.NoError(t, render(&out, objs))
	assert.Contains(t, out.String(), "image: "+testImage)
	assert.Contains(t, out.String(), "image: envoyproxy/envoy:v1.30", "other repositories untouched")
	assert.Contains(t, out.String(), "image: busybox:1.36")
	assert.NotContains(t, out.String(), "heart:old", "both the Deployment's and the CronJob's containers replaced")

	// By container name.
	objs, err = Objects(Config{Image: testImage, Manifests: []string{filepath.Join(dir, "app", "10-deploy.yaml")}, Container: "sidecar"})
	require.NoError(t, err)
	out.Reset()
	require.NoError(t, render(&out, objs))
	assert.Contains(t, out.String(), "registry.example.com/acme/heart:old")
	assert.NotContains(t, out.String(), "envoy:v1.30")

	errs := map[string]Config{
		`no container named "nope" to set the image of`:   {Image: testImage, Manifests: []string{filepath.Join(dir, "app")}, Container: "nope"},
		"no such file or directory":                       {Image: testImage, Manifests: []string{filepath.Join(dir, "missing.yaml")}},
		"document 1: an object needs apiVersion, kind":    {Image: testImage, Manifests: []string{write("bad.yaml", "kind: Service\n")}},
		"document 2: error converting YAML to JSON":       {Image: testImage, Manifests: []string{write("bad2.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n: [\n")}},
		"no .yaml, .yml or .json files in it":             {Image: testImage, Manifests: []string{filepath.Join(dir, "empty")}},
		"whose image repository matches " + testImage[:9]: {Image: testImage, Manifests: []string{write("other.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: x, image: nginx}]}\n")}},
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty"), 0o755))
	for want, cfg := range errs {
		_, err := Objects(cfg)
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
	}
}

// TestStatus follows kubectl rollout status's rules.
func TestStatus(t *testing.T) {
	three := int32(3)
	dep := func(gen, observed int64, updated, replicas, available int32, reason string) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: &three}}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, Replicas: replicas, AvailableReplicas: available}
		if reason != "" {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Reason: reason}}
		}
		return d
	}
	tests := []struct {
		name    string
		d       *appsv1.Deployment
		done    bool
		msg     string
		wantErr bool
	}{
		{"not observed", dep(2, 1, 3, 3, 3, ""), false, "waiting for the deployment spec update to be observed", false},
		{"updating", dep(2, 2, 1, 4, 3, "ReplicaSetUpdated"), false, "1 out of 3 new replicas have been updated", false},
		{"old pending", dep(2, 2, 3, 4, 3, ""), false, "1 old replicas are pending termination", false},
		{"unavailable", dep(2, 2, 3, 3, 2, ""), false, "2 of 3 updated replicas are available", false},
		{"done", dep(2, 2, 3, 3, 3, "NewReplicaSetAvailable"), true, "successfully rolled out (3/3 available)", false},
		{"deadline", dep(2, 2, 1, 4, 3, "ProgressDeadlineExceeded"), false, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done, msg, err := status(tc.d)
			assert.Equal(t, tc.done, done)
			assert.Equal(t, tc.msg, msg)
			assert.Equal(t, tc.wantErr, err != nil)
		})
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := []string{"a\n", "b\n", "c\n", "d\n", "e\n", "f\n", "g\n", "h\n", "i\n", "j\n"}
	b := []string{"a\n", "b\n", "C\n", "d\n", "e\n", "f\n", "g\n", "h\n", "i\n", "j\n", "k\n"}
	got := unified(a, b, "live", "applied")
	want := "--- live\n+++ applied\n@@ -1,6 +1,6 @@\n a\n b\n-c\n+C\n d\n e\n f\n@@ -8,3 +8,4 @@\n h\n i\n j\n+k\n"
	assert.Equal(t, want, got)
	assert.Equal(t, "--- x\n+++ y\n@@ -1,0 +1,1 @@\n+new\n", unified(nil, []string{"new\n"}, "x", "y"))
}
