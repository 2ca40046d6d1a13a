package deploy

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/monitoring"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testImage = "registry.example.com/acme/heart@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeRules stands in for monitoring.PrometheusRule in the golden files, so
// that they change with the manifests rather than with the alert rules
// (TestPrometheusRuleFromMonitoring checks the real ones are used).
func fakeRules(t *testing.T) {
	real := prometheusRuleYAML
	t.Cleanup(func() { prometheusRuleYAML = real })
	prometheusRuleYAML = func(name, namespace string) ([]byte, error) {
		return fmt.Appendf(nil, "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: %s-alerts, namespace: %s, labels: {role: alert-rules}}\nspec: {groups: [{name: %s, rules: [{alert: Down, expr: up == 0}]}]}\n", name, namespace, name), nil
	}
}

// TestRenderGolden renders the generated objects: by default the Deployment,
// the Service, a disruption budget (2 replicas) and the monitoring objects;
// with an autoscaler, the Deployment without spec.replicas and the
// HorizontalPodAutoscaler.
func TestRenderGolden(t *testing.T) {
	fakeRules(t)
	for _, tc := range []struct {
		golden string
		mod    func(*Config)
		want   []string
	}{
		{"render.golden.yaml", func(*Config) {}, []string{"Deployment/models/heart", "Service/models/heart", "PodDisruptionBudget/models/heart", "ServiceMonitor/models/heart", "PrometheusRule/models/heart-alerts"}},
		{"render-autoscaled.golden.yaml", func(c *Config) {
			c.Replicas, c.MinReplicas, c.MaxReplicas, c.CPUTarget, c.Monitoring = 3, 2, 5, 70, MonitoringOff
		},
			[]string{"Deployment/models/heart", "Service/models/heart", "HorizontalPodAutoscaler/models/heart", "PodDisruptionBudget/models/heart"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var out, logs bytes.Buffer
			cfg := DefaultConfig()
			cfg.Image, cfg.Name, cfg.Namespace, cfg.Render, cfg.Out, cfg.Log, cfg.ProgressDeadline = testImage, "heart", "models", true, &out, &logs, 120
			tc.mod(&cfg)
			res, err := Run(t.Context(), cfg)
			require.NoError(t, err)
			assert.True(t, res.Rendered)
			assert.Equal(t, tc.want, res.Objects)
			golden := filepath.Join("testdata", tc.golden)
			if *update {
				require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), out.String(), "run go test ./internal/deploy -run TestRenderGolden -update to accept")
			if cfg.Monitoring == MonitoringOff {
				assert.Empty(t, logs.String())
			} else {
				assert.Equal(t, "rendered ServiceMonitor/models/heart and PrometheusRule/models/heart-alerts: they need the Prometheus Operator's CRDs (monitoring.coreos.com/v1); --monitoring off leaves them out\n", logs.String())
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no image", func(c *Config) { c.Image = "" }, "image is required"},
		{"bad image", func(c *Config) { c.Image = "Not An Image" }, `image "Not An Image" is not an image reference`},
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"bad name", func(c *Config) { c.Name = "Heart_Model" }, `name "Heart_Model"`},
		{"manifests need no name", func(c *Config) { c.Name, c.Manifests = "", []string{"x.yaml"} }, ""},
		{"bad namespace", func(c *Config) { c.Namespace = "NS" }, `namespace "NS"`},
		{"bad quantity", func(c *Config) { c.CPULimit = "lots" }, `cpu-limit "lots" is not a quantity`},
		{"dry run and render", func(c *Config) { c.DryRun, c.Render = true, true }, "dry-run and {render} cannot both be given"},
		{"zero replicas", func(c *Config) { c.Replicas = 0 }, ""},
		{"negative replicas", func(c *Config) { c.Replicas = -1 }, "replicas must not be negative, got -1"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout must not be negative, got -1s"},
		{"negative progress deadline", func(c *Config) { c.ProgressDeadline = -5 }, "progress-deadline must be at least 1 (seconds), got -5"},
		{"zero progress deadline", func(c *Config) { c.ProgressDeadline = 0 }, "progress-deadline must be at least 1 (seconds), got 0"},
		{"memory request above limit", func(c *Config) { c.MemoryRequest, c.MemoryLimit = "2Gi", "1Gi" }, "memory-request must not be above memory-limit (1Gi), got 2Gi"},
		{"memory request above default limit", func(c *Config) { c.MemoryRequest = "1Gi" }, "memory-request must not be above memory-limit (512Mi), got 1Gi"},
		{"cpu request above limit", func(c *Config) { c.CPURequest, c.CPULimit = "1500m", "1" }, "cpu-request must not be above cpu-limit (1), got 1500m"},
		{"request equal to limit", func(c *Config) { c.MemoryRequest, c.MemoryLimit, c.CPURequest = "1Gi", "1024Mi", "1000m" }, ""},
		{"negative quantity", func(c *Config) { c.CPURequest = "-100m" }, "cpu-request must not be negative, got -100m"},
		{"autoscaler", func(c *Config) { c.Replicas, c.MinReplicas, c.MaxReplicas = 3, 2, 5 }, ""},
		{"autoscaler from replicas", func(c *Config) { c.MaxReplicas = 5 }, ""},
		{"max equal to min", func(c *Config) { c.MinReplicas, c.MaxReplicas = 3, 3 }, ""},
		{"min above max", func(c *Config) { c.MinReplicas, c.MaxReplicas = 6, 5 }, "max-replicas must be at least {min-replicas} (6), got 5"},
		{"replicas above max", func(c *Config) { c.Replicas, c.MaxReplicas = 4, 3 }, "max-replicas must be at least {replicas} (4), the minimum when {min-replicas} is not given, got 3"},
		{"replicas outside the range", func(c *Config) { c.Replicas, c.MinReplicas, c.MaxReplicas = 9, 2, 5 }, ""},
		{"negative max", func(c *Config) { c.MaxReplicas = -1 }, "max-replicas must not be negative (0: no autoscaler), got -1"},
		{"negative min", func(c *Config) { c.MinReplicas, c.MaxReplicas = -1, 5 }, "min-replicas must not be negative, got -1"},
		{"min without max", func(c *Config) { c.MinReplicas = 2 }, "min-replicas needs {max-replicas}: without it there is no autoscaler"},
		{"autoscaler from zero replicas", func(c *Config) { c.Replicas, c.MaxReplicas = 0, 5 }, "replicas must be at least 1 with {max-replicas} (the autoscaler's minimum when {min-replicas} is not given), got 0"},
		{"zero replicas with a minimum", func(c *Config) { c.Replicas, c.MinReplicas, c.MaxReplicas = 0, 1, 5 }, ""},
		{"cpu target above 100", func(c *Config) { c.MaxReplicas, c.CPUTarget = 5, 150 }, "cpu-target must be between 1 and 100 (percent of {cpu-request}), got 150"},
		{"cpu target zero", func(c *Config) { c.MaxReplicas, c.CPUTarget = 5, 0 }, "cpu-target must be between 1 and 100 (percent of {cpu-request}), got 0"},
		{"cpu target negative without autoscaler", func(c *Config) { c.CPUTarget = -5 }, "cpu-target must be between 1 and 100 (percent of {cpu-request}), got -5"},
		{"cpu target unused", func(c *Config) { c.CPUTarget = 0 }, ""},
		{"no cpu request", func(c *Config) { c.MaxReplicas, c.CPURequest = 5, "0" }, "cpu-request must be above 0 with an autoscaler ({max-replicas}): its {cpu-target} is a share of the request, got 0"},
		{"no cpu request, no autoscaler", func(c *Config) { c.CPURequest = "0" }, ""},
		{"autoscaler with manifests", func(c *Config) { c.Manifests, c.MaxReplicas = []string{"x.yaml"}, 5 }, "max-replicas is about the generated Deployment; with {manifests}, add your own HorizontalPodAutoscaler to them"},
		{"monitoring on with manifests", func(c *Config) { c.Manifests, c.Monitoring = []string{"x.yaml"}, MonitoringOn }, "monitoring is about the generated objects"},
		{"monitoring auto with manifests", func(c *Config) { c.Manifests = []string{"x.yaml"} }, ""},
		{"bad monitoring", func(c *Config) { c.Monitoring = "yes" }, `monitoring must be auto, on or off, got "yes"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Image, cfg.Name = testImage, "heart"
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, fault.PlainNames(err.Error()), fault.PlainNames(tc.want))
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
			fields := fault.Fields(err)
			require.Len(t, fields, 1, "one field error: %v", err)
			assert.Equal(t, strings.Fields(tc.want)[0], fields[0].Field)
		})
	}
}

// rendered renders the generated Deployment of cfg.
func rendered(t *testing.T, cfg Config) *appsv1.Deployment {
	t.Helper()
	objs, err := Objects(cfg)
	require.NoError(t, err)
	var d appsv1.Deployment
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, &d))
	require.Equal(t, "Deployment", d.Kind)
	return &d
}

// TestReplicas: zero replicas is a Deployment scaled to zero, not the default.
func TestReplicas(t *testing.T) {
	for _, n := range []int32{0, 1, 5} {
		cfg := DefaultConfig()
		cfg.Image, cfg.Name, cfg.Replicas = testImage, "heart", n
		d := rendered(t, cfg)
		require.NotNil(t, d.Spec.Replicas)
		assert.Equal(t, n, *d.Spec.Replicas)
	}
	zero := int32(0)
	done, msg, err := status(&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &zero}})
	require.NoError(t, err)
	assert.True(t, done, "a Deployment scaled to zero has rolled out once observed")
	assert.Equal(t, "successfully rolled out (scaled to zero)", msg)
}

// TestGracePeriod: the pod's grace period covers mlship-serve's drain delay
// and shutdown timeout, which the Deployment sets.
func TestGracePeriod(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Image, cfg.Name = testImage, "heart"
	d := rendered(t, cfg)
	env := map[string]time.Duration{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if v, err := time.ParseDuration(e.Value); err == nil {
			env[e.Name] = v
		}
	}
	require.Contains(t, env, "MLSHIP_DRAIN_DELAY")
	require.Contains(t, env, "MLSHIP_SHUTDOWN_TIMEOUT")
	need := env["MLSHIP_DRAIN_DELAY"] + env["MLSHIP_SHUTDOWN_TIMEOUT"]
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	assert.Greater(t, grace, need, "SIGKILL must not cut the drain and shutdown short")
	assert.Equal(t, 40*time.Second, grace)
	// mlship-serve reads them with these defaults: the values set are its own.
	src, err := os.ReadFile(filepath.Join("..", "..", "cmd", "mlship-serve", "main.go"))
	require.NoError(t, err)
	assert.Contains(t, string(src), `envDur("MLSHIP_DRAIN_DELAY", 5*time.Second)`)
	assert.Contains(t, string(src), `envDur("MLSHIP_SHUTDOWN_TIMEOUT", 30*time.Second)`)
}

// TestKubeconfigErrors: a kubeconfig that is missing or invalid is named, exit 2.
func TestKubeconfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	good := write("good", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`)
	missing := filepath.Join(dir, "missing")
	bad := write("bad", "garbage: [\n")
	empty := write("empty", "")
	list := func(ps ...string) string { return strings.Join(ps, string(os.PathListSeparator)) }
	for _, tc := range []struct {
		name string
		src  KubeconfigSource
		want string
	}{
		{"missing", KubeconfigSource{Path: missing}, "cannot read kubeconfig " + missing + ": no such file or directory"},
		{"invalid", KubeconfigSource{Path: bad}, "cannot read kubeconfig " + bad + ": yaml: "},
		{"empty", KubeconfigSource{Path: empty}, "cannot read kubeconfig " + empty + ": it names no cluster to use (no current-context, and no --context given)"},
		{"no such context", KubeconfigSource{Path: good, Context: "prod"}, "cannot read kubeconfig " + good + `: context "prod" does not exist`},
		{"all of a list missing", KubeconfigSource{Path: list(missing, missing+"2")}, "cannot read kubeconfig " + list(missing, missing+"2") + ": none of these files exists"},
		{"an invalid one in a list", KubeconfigSource{Path: list(good, bad)}, "cannot read kubeconfig " + bad + ": yaml: "},
		{"invalid data", KubeconfigSource{Data: []byte("garbage: [\n")}, "cannot read the kubeconfig data (kubeconfig-data): yaml: "},
		{"a missing one in a list is skipped", KubeconfigSource{Path: list(missing, good)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := tc.src.RESTConfig()
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, "https://127.0.0.1:6443", rc.Host)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "KUBERNETES_MASTER")
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
		})
	}
}

// TestClusterUnreachable: a refused connection and a cluster that never
// answers are the environment's failures (exit 3), said as such, within the
// timeout.
func TestClusterUnreachable(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	require.NoError(t, closed.Close())
	stalled, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer stalled.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := stalled.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	for _, tc := range []struct{ name, addr, want string }{
		{"refused", closedAddr, "connection refused"},
		{"stalled", stalled.Addr().String(), "no answer within 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Image, cfg.Name, cfg.Timeout = testImage, "heart", 2*time.Second
			cfg.Kube.Data = []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, tc.addr))
			start := time.Now()
			_, err := Run(context.Background(), cfg)
			require.Error(t, err)
			assert.Less(t, time.Since(start), 3*time.Second)
			assert.Equal(t, fault.Environment, fault.CodeOf(err), "%v", err)
			assert.True(t, strings.HasPrefix(err.Error(), "cluster at https://"+tc.addr+" unreachable: "), err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "does not serve kind")
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
		{"scaled down", dep(2, 2, 5, 5, 5, "NewReplicaSetAvailable"), true, "successfully rolled out (3/3 available)", false},
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

// kinds lists the kinds of objs in order.
func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind())
	}
	return out
}

// TestGeneratedObjects: which objects go with which replicas, and their specs.
func TestGeneratedObjects(t *testing.T) {
	const (
		dep, svc, hpa, pdb, sm, pr = "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule"
	)
	for _, tc := range []struct {
		name          string
		mod           func(*Config)
		want          []string
		replicas      int32 // of the Deployment; -1: left out
		minR, maxR    int32 // of the autoscaler
		wantCPUTarget int32
	}{
		{"defaults", func(*Config) {}, []string{dep, svc, pdb, sm, pr}, 2, 0, 0, 0},
		{"one replica", func(c *Config) { c.Replicas = 1 }, []string{dep, svc, sm, pr}, 1, 0, 0, 0},
		{"scaled to zero", func(c *Config) { c.Replicas = 0 }, []string{dep, svc, sm, pr}, 0, 0, 0, 0},
		{"monitoring off", func(c *Config) { c.Monitoring = MonitoringOff }, []string{dep, svc, pdb}, 2, 0, 0, 0},
		{"monitoring on", func(c *Config) { c.Monitoring = MonitoringOn }, []string{dep, svc, pdb, sm, pr}, 2, 0, 0, 0},
		{"autoscaler", func(c *Config) { c.Replicas, c.MinReplicas, c.MaxReplicas = 3, 2, 5 }, []string{dep, svc, hpa, pdb, sm, pr}, -1, 2, 5, 80},
		{"autoscaler from replicas", func(c *Config) { c.Replicas, c.MaxReplicas, c.CPUTarget = 3, 10, 60 }, []string{dep, svc, hpa, pdb, sm, pr}, -1, 3, 10, 60},
		{"autoscaler from one", func(c *Config) { c.Replicas, c.MinReplicas, c.MaxReplicas = 1, 1, 4 }, []string{dep, svc, hpa, pdb, sm, pr}, -1, 1, 4, 80},
		{"max equal to min", func(c *Config) { c.Replicas, c.MinReplicas, c.MaxReplicas = 5, 3, 3 }, []string{dep, svc, pdb, sm, pr}, 3, 0, 0, 0},
		{"max equal to min of one", func(c *Config) { c.Replicas, c.MinReplicas, c.MaxReplicas = 5, 1, 1 }, []string{dep, svc, sm, pr}, 1, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Image, cfg.Name, cfg.Namespace = testImage, "heart", "models"
			tc.mod(&cfg)
			require.NoError(t, cfg.Validate())
			objs, err := Objects(cfg)
			require.NoError(t, err)
			require.Equal(t, tc.want, kinds(objs))
			for _, o := range objs {
				assert.Equal(t, "models", o.GetNamespace(), objectName(o))
				assert.Equal(t, "mlship", o.GetLabels()["app.kubernetes.io/managed-by"], objectName(o))
				assert.Equal(t, "heart", o.GetLabels()["app.kubernetes.io/instance"], objectName(o))
			}

			var d appsv1.Deployment
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, &d))
			if tc.replicas < 0 {
				_, found, _ := unstructured.NestedFieldNoCopy(objs[0].Object, "spec", "replicas")
				assert.False(t, found, "an autoscaler owns spec.replicas: left out of the applied object")
			} else {
				require.NotNil(t, d.Spec.Replicas)
				assert.Equal(t, tc.replicas, *d.Spec.Replicas)
			}
			anns := d.Spec.Template.Annotations
			assert.Equal(t, "true", anns["prometheus.io/scrape"])
			assert.Equal(t, "8080", anns["prometheus.io/port"])
			assert.Equal(t, "/metrics", anns["prometheus.io/path"])
			var s corev1.Service
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(objs[1].Object, &s))
			for k := range s.Annotations {
				assert.NotContains(t, k, "prometheus.io", "scraped through the pods only")
			}

			for _, o := range objs {
				switch o.GetKind() {
				case hpa:
					var h autoscalingv2.HorizontalPodAutoscaler
					require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &h))
					assert.Equal(t, "autoscaling/v2", h.APIVersion)
					assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "heart"}, h.Spec.ScaleTargetRef)
					require.NotNil(t, h.Spec.MinReplicas)
					assert.Equal(t, tc.minR, *h.Spec.MinReplicas)
					assert.Equal(t, tc.maxR, h.Spec.MaxReplicas)
					require.Len(t, h.Spec.Metrics, 1)
					m := h.Spec.Metrics[0]
					require.NotNil(t, m.Resource)
					assert.Equal(t, corev1.ResourceCPU, m.Resource.Name)
					assert.Equal(t, autoscalingv2.UtilizationMetricType, m.Resource.Target.Type)
					require.NotNil(t, m.Resource.Target.AverageUtilization)
					assert.Equal(t, tc.wantCPUTarget, *m.Resource.Target.AverageUtilization)
					cpu := d.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]
					assert.False(t, cpu.IsZero(), "utilisation is a share of the CPU request")
				case pdb:
					var p policyv1.PodDisruptionBudget
					require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &p))
					require.NotNil(t, p.Spec.MaxUnavailable)
					assert.Equal(t, intstr.FromInt32(1), *p.Spec.MaxUnavailable)
					assert.Nil(t, p.Spec.MinAvailable)
					assert.Equal(t, d.Spec.Selector, p.Spec.Selector)
					require.NotNil(t, p.Spec.UnhealthyPodEvictionPolicy)
					assert.Equal(t, policyv1.AlwaysAllow, *p.Spec.UnhealthyPodEvictionPolicy)
				case sm:
					assert.Equal(t, "monitoring.coreos.com/v1", o.GetAPIVersion())
					sel, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
					assert.Equal(t, d.Spec.Selector.MatchLabels, sel)
					assert.Subset(t, s.Labels, sel, "selects the Service")
					eps, _, _ := unstructured.NestedSlice(o.Object, "spec", "endpoints")
					assert.Equal(t, []any{map[string]any{"port": "http", "path": "/metrics"}}, eps)
					assert.Equal(t, "http", s.Spec.Ports[0].Name, "the Service's port that serves /metrics")
				}
			}
		})
	}
}

// TestPrometheusRuleFromMonitoring: the PrometheusRule is the one package
// monitoring makes for the model, with mlship's labels added.
func TestPrometheusRuleFromMonitoring(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Image, cfg.Name, cfg.Namespace = testImage, "heart", "models"
	objs, err := Objects(cfg)
	require.NoError(t, err)
	got := objs[len(objs)-1]
	require.Equal(t, "PrometheusRule", got.GetKind())
	b, err := monitoring.PrometheusRule("heart", "models")
	require.NoError(t, err)
	var want map[string]any
	require.NoError(t, yaml.Unmarshal(b, &want))
	assert.Equal(t, want["spec"], got.Object["spec"])
	wantMeta := want["metadata"].(map[string]any)
	assert.Equal(t, wantMeta["name"], got.GetName())
	assert.Equal(t, "models", got.GetNamespace())
	if l, ok := wantMeta["labels"].(map[string]any); ok {
		for k, v := range l {
			assert.Equal(t, v, got.GetLabels()[k], "the rule's own label %s is kept", k)
		}
	}
	assert.Equal(t, "mlship", got.GetLabels()["app.kubernetes.io/managed-by"])

	// A rule that is not a PrometheusRule is refused.
	fakeRules(t)
	prometheusRuleYAML = func(string, string) ([]byte, error) {
		return []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), nil
	}
	_, err = Objects(cfg)
	assert.ErrorContains(t, err, `alert rules of heart: got /v1, Kind=ConfigMap "x", want a named monitoring.coreos.com/v1, Kind=PrometheusRule`)
	cfg.Monitoring = MonitoringOff
	_, err = Objects(cfg)
	assert.NoError(t, err, "not asked for with monitoring off")
}
