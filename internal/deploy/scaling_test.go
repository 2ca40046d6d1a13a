package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/testutil/kube"
	"github.com/mlship/mlship/monitoring"
)

// promRule is the name of the generated PrometheusRule of name.
func promRule(t *testing.T, name string) string {
	t.Helper()
	n, err := promRuleName(Config{Name: name, Namespace: "default"})
	require.NoError(t, err)
	return n
}

var (
	crdGVR            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	serviceMonitorGVR = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}
	promRuleGVR       = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"}
)

// installOperatorCRDs creates the Prometheus Operator's ServiceMonitor and
// PrometheusRule CRDs (testdata, from the operator's release) and waits until
// discovery serves both kinds.
func installOperatorCRDs(t *testing.T, dyn dynamic.Interface, kc kubernetes.Interface) {
	ctx := context.Background()
	for _, f := range []string{"crd-servicemonitors.yaml", "crd-prometheusrules.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, yaml.Unmarshal(b, &m))
		crd := &unstructured.Unstructured{Object: m}
		_, err = dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{})
		require.NoError(t, err, f)
		require.Eventually(t, func() bool {
			got, err := dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
					return true
				}
			}
			return false
		}, 30*time.Second, 100*time.Millisecond, "CRD %s established", crd.GetName())
	}
	var last error
	require.Eventually(t, func() bool {
		rl, err := kc.Discovery().ServerResourcesForGroupVersion("monitoring.coreos.com/v1")
		if last = err; err != nil {
			return false
		}
		served := map[string]bool{}
		for _, r := range rl.APIResources {
			served[r.Name] = true
		}
		return served["servicemonitors"] && served["prometheusrules"]
	}, 30*time.Second, 100*time.Millisecond, "discovery serves monitoring.coreos.com/v1 (%v)", last)
}

// TestAutoscalerAndMonitoring deploys with an autoscaler (3 replicas, 2 to 5)
// on a control plane of its own: without the Prometheus Operator's CRDs the
// ServiceMonitor and PrometheusRule are skipped and said so (and refused with
// monitoring on); with them installed every object is there with its spec; a
// server-side dry run of the same deploy changes nothing; the Service loses
// the scrape annotations an earlier mlship set, the pods keep theirs.
func TestAutoscalerAndMonitoring(t *testing.T) {
	c := kube.Start(t)
	ctx := context.Background()
	cfg := Config{
		Image: goodA, Name: "scaled", Replicas: 3, MinReplicas: 2, MaxReplicas: 5, CPUTarget: DefaultCPUTarget, ProgressDeadline: 8, Timeout: time.Minute,
		Kube: KubeconfigSource{Path: c.Kubeconfig}, PollInterval: 200 * time.Millisecond,
	}
	rc, err := cfg.Kube.RESTConfig()
	require.NoError(t, err)
	kc, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(rc)
	require.NoError(t, err)

	// What an earlier mlship applied: the Service with scrape annotations.
	oldSvc := []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"scaled","annotations":{"prometheus.io/scrape":"true","prometheus.io/port":"8080"}},"spec":{"ports":[{"name":"http","port":80,"targetPort":"http"}],"selector":{"app.kubernetes.io/name":"scaled","app.kubernetes.io/instance":"scaled"}}}`)
	_, err = kc.CoreV1().Services("default").Patch(ctx, "scaled", types.ApplyPatchType, oldSvc, metav1.PatchOptions{FieldManager: FieldManager})
	require.NoError(t, err)

	t.Run("monitoring on without the CRDs", func(t *testing.T) {
		on := cfg
		on.Name, on.Monitoring = "refused", MonitoringOn
		_, err := Run(ctx, on)
		require.Error(t, err)
		assert.Equal(t, fault.Usage, fault.CodeOf(err))
		assert.Contains(t, err.Error(), "monitoring is on, and the cluster at "+c.Server+" does not serve kind monitoring.coreos.com/v1, Kind=ServiceMonitor: install the Prometheus Operator's CRDs, or set it to auto or off")
		_, err = kc.AppsV1().Deployments("default").Get(ctx, "refused", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "nothing applied: %v", err)
	})

	t.Run("without the CRDs", func(t *testing.T) {
		var logs bytes.Buffer
		cfg := cfg
		cfg.Log = &logs
		res, err := Run(ctx, cfg)
		require.NoError(t, err, logs.String())
		assert.Equal(t, []string{"Deployment/default/scaled", "Service/default/scaled", "HorizontalPodAutoscaler/default/scaled", "PodDisruptionBudget/default/scaled"}, res.Objects)
		assert.Equal(t, []string{"ServiceMonitor/default/scaled", "PrometheusRule/default/" + promRule(t, "scaled")}, res.Skipped)
		assert.Contains(t, logs.String(), "skipped ServiceMonitor/default/scaled and PrometheusRule/default/"+promRule(t, "scaled")+": the cluster does not serve ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1, the Prometheus Operator's CRDs)")
		assert.Contains(t, logs.String(), "deployment default/scaled: successfully rolled out (3/3 available)")
	})

	installOperatorCRDs(t, dyn, kc)

	t.Run("with the CRDs", func(t *testing.T) {
		var logs bytes.Buffer
		cfg := cfg
		cfg.Log = &logs
		res, err := Run(ctx, cfg)
		require.NoError(t, err, logs.String())
		assert.Equal(t, []string{"Deployment/default/scaled", "Service/default/scaled", "HorizontalPodAutoscaler/default/scaled", "PodDisruptionBudget/default/scaled",
			"ServiceMonitor/default/scaled", "PrometheusRule/default/" + promRule(t, "scaled")}, res.Objects)
		assert.Empty(t, res.Skipped)
		assert.NotContains(t, logs.String(), "skipped")

		d, err := kc.AppsV1().Deployments("default").Get(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, int32(3), *d.Spec.Replicas, "created with --replicas, within the autoscaler's range")
		assert.Equal(t, "true", d.Spec.Template.Annotations["prometheus.io/scrape"])
		assert.Equal(t, "8080", d.Spec.Template.Annotations["prometheus.io/port"])
		svc, err := kc.CoreV1().Services("default").Get(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, svc.Annotations, "the scrape annotations an earlier deploy set on the Service are gone")

		h, err := kc.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "scaled"}, h.Spec.ScaleTargetRef)
		assert.Equal(t, int32(2), *h.Spec.MinReplicas)
		assert.Equal(t, int32(5), h.Spec.MaxReplicas)
		require.Len(t, h.Spec.Metrics, 1)
		assert.Equal(t, corev1.ResourceCPU, h.Spec.Metrics[0].Resource.Name)
		assert.Equal(t, int32(DefaultCPUTarget), *h.Spec.Metrics[0].Resource.Target.AverageUtilization)

		p, err := kc.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, intstr.FromInt32(1), *p.Spec.MaxUnavailable)
		assert.Equal(t, d.Spec.Selector, p.Spec.Selector)
		assert.Equal(t, policyv1.AlwaysAllow, *p.Spec.UnhealthyPodEvictionPolicy)
		require.Eventually(t, func() bool { // the disruption controller counts the pods
			p, err := kc.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "scaled", metav1.GetOptions{})
			return err == nil && p.Status.ExpectedPods == 3 && p.Status.DisruptionsAllowed == 1
		}, 30*time.Second, 200*time.Millisecond, "the budget covers the 3 pods and allows 1 disruption")

		sm, err := dyn.Resource(serviceMonitorGVR).Namespace("default").Get(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err)
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		assert.Equal(t, map[string]string{"app.kubernetes.io/name": "scaled", "app.kubernetes.io/instance": "scaled"}, sel)
		assert.Subset(t, svc.Labels, sel, "it selects the Service")
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		assert.Equal(t, []any{map[string]any{"port": "http", "path": "/metrics"}}, eps, "kept by the CRD's schema")

		pr, err := dyn.Resource(promRuleGVR).Namespace("default").Get(ctx, promRule(t, "scaled"), metav1.GetOptions{})
		require.NoError(t, err)
		b, err := monitoring.PrometheusRule("scaled", "default")
		require.NoError(t, err)
		var want map[string]any
		require.NoError(t, yaml.Unmarshal(b, &want))
		assert.Equal(t, want["spec"], pr.Object["spec"], "the rules survive the CRD's schema as written")
		assert.Equal(t, "mlship", pr.GetLabels()["app.kubernetes.io/managed-by"])
	})

	t.Run("dry run of the same deploy", func(t *testing.T) {
		cfg := cfg
		cfg.DryRun = true
		res, err := Run(ctx, cfg)
		require.NoError(t, err)
		assert.Equal(t, "no changes\n", res.Diff)
		assert.Len(t, res.Objects, 6)
	})

	t.Run("the autoscaler owns the replicas", func(t *testing.T) {
		// The autoscaler scales through the scale subresource, as the
		// controller does (here it has no metrics to act on).
		scale, err := kc.AppsV1().Deployments("default").GetScale(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err)
		scale.Spec.Replicas = 4
		_, err = kc.AppsV1().Deployments("default").UpdateScale(ctx, "scaled", scale, metav1.UpdateOptions{FieldManager: "horizontal-pod-autoscaler"})
		require.NoError(t, err)
		for _, dry := range []bool{true, false} {
			cfg := cfg
			cfg.DryRun = dry
			res, err := Run(ctx, cfg)
			require.NoError(t, err)
			if dry {
				assert.Equal(t, "no changes\n", res.Diff)
			}
			d, err := kc.AppsV1().Deployments("default").Get(ctx, "scaled", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, int32(4), *d.Spec.Replicas, "a deploy leaves the autoscaler's count alone (dry run %v)", dry)
			assert.False(t, holdsReplicas(d.ManagedFields), "mlship does not hold spec.replicas")
		}
	})

	t.Run("autoscaler and monitoring turned off", func(t *testing.T) {
		cfg := cfg
		cfg.Replicas, cfg.MinReplicas, cfg.MaxReplicas, cfg.Monitoring = 1, 0, 0, MonitoringOff
		gone := []string{"HorizontalPodAutoscaler/default/scaled", "PodDisruptionBudget/default/scaled", "ServiceMonitor/default/scaled", "PrometheusRule/default/" + promRule(t, "scaled")}

		dry := cfg
		dry.DryRun = true
		res, err := Run(ctx, dry)
		require.NoError(t, err)
		assert.Equal(t, gone, res.Deleted)
		assert.Contains(t, res.Diff, "--- live/HorizontalPodAutoscaler/default/scaled\n+++ deleted/HorizontalPodAutoscaler/default/scaled\n")
		assert.Contains(t, res.Diff, "-  replicas: 4\n+  replicas: 1\n")
		_, err = kc.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err, "a dry run deletes nothing")

		var logs bytes.Buffer
		cfg.Log = &logs
		res, err = Run(ctx, cfg)
		require.NoError(t, err, logs.String())
		assert.Equal(t, gone, res.Deleted)
		assert.Equal(t, []string{"Deployment/default/scaled", "Service/default/scaled"}, res.Objects)
		assert.Contains(t, logs.String(), "deleted HorizontalPodAutoscaler/default/scaled: mlship no longer generates it\n")
		_, err = kc.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "scaled", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
		_, err = dyn.Resource(serviceMonitorGVR).Namespace("default").Get(ctx, "scaled", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
		d, err := kc.AppsV1().Deployments("default").Get(ctx, "scaled", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, int32(1), *d.Spec.Replicas, "mlship sets the replicas again")
	})
}

// TestAutoscalerTakesOver: a Deployment an earlier deploy made without an
// autoscaler (mlship holds spec.replicas) keeps its count when one is added
// (leaving the field out would reset it to 1), the real autoscaler then raises
// it to its minimum, and later deploys leave that alone.
func TestAutoscalerTakesOver(t *testing.T) {
	cfg, kc := clusterConfig(t, "takeover", goodA)
	cfg.Replicas, cfg.Monitoring = 1, MonitoringOff
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	cfg.MinReplicas, cfg.MaxReplicas = 2, 4
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Contains(t, res.Objects, "HorizontalPodAutoscaler/default/takeover")
	get := func() int32 {
		d, err := kc.AppsV1().Deployments("default").Get(context.Background(), "takeover", metav1.GetOptions{})
		require.NoError(t, err)
		return *d.Spec.Replicas
	}
	require.Eventually(t, func() bool { return get() == 2 }, 60*time.Second, 250*time.Millisecond,
		"the autoscaler raises the Deployment to its minimum (replicas %d)", get())
	for _, dry := range []bool{true, false} {
		cfg := cfg
		cfg.DryRun = dry
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		if dry {
			assert.Equal(t, "no changes\n", res.Diff)
		}
		assert.Equal(t, int32(2), get())
	}
}

// TestUnaskedRefused: credentials that may deploy but not make disruption
// budgets get the deploy without one, said so; an autoscaler they may not
// make, being asked for, fails the deploy (exit 2).
func TestUnaskedRefused(t *testing.T) {
	c := kube.Shared(t)
	cfg, kc := clusterConfig(t, "nopdb", goodA)
	ctx := context.Background()
	_, err := kc.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "mlship-deployer"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"services", "pods", "events"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kc.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "mlship-deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "mlship-deployer"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "deployer"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(c.Kubeconfig)
	require.NoError(t, err)
	token := "    token: " + c.AdminToken + "\n"
	require.Contains(t, string(b), token)
	cfg.Kube = KubeconfigSource{Data: bytes.Replace(b, []byte(token), []byte(token+"    as: deployer\n"), 1)} // the admin impersonates "deployer"

	var logs bytes.Buffer
	cfg.Log = &logs
	require.Eventually(t, func() bool { // RBAC's informers see the binding
		_, err = Run(ctx, cfg)
		return err == nil
	}, 10*time.Second, 200*time.Millisecond, "%v", err)
	res, err := Run(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"Deployment/default/nopdb", "Service/default/nopdb"}, res.Objects)
	assert.Contains(t, res.Skipped, "PodDisruptionBudget/default/nopdb")
	assert.Contains(t, logs.String(), "skipped PodDisruptionBudget/default/nopdb, which mlship adds unasked: applying PodDisruptionBudget/default/nopdb: forbidden: the credentials may not patch poddisruptionbudgets")
	assert.Contains(t, logs.String(), "not checking for a HorizontalPodAutoscaler/default/nopdb left from an earlier deploy: the credentials may not get horizontalpodautoscalers")

	cfg.MaxReplicas = 4
	_, err = Run(ctx, cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "applying HorizontalPodAutoscaler/default/nopdb: forbidden: the credentials may not patch horizontalpodautoscalers")
	assert.Equal(t, fault.Usage, fault.CodeOf(err))
}
