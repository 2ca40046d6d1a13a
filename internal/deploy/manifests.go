package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/monitoring"
)

// Annotation keys on generated objects.
const (
	AnnMetrics = "mlship.dev/metrics"
	AnnGitSHA  = "mlship.dev/git-sha"
	AnnDataSHA = "mlship.dev/data-sha256"
	AnnImage   = "mlship.dev/image"
	AnnModel   = "mlship.dev/model"
)

// Port is mlship-serve's port in the image.
const Port = 8080

// How the generated Deployment stops a pod: mlship-serve, on SIGTERM, keeps
// serving while not ready for DrainDelay (so that endpoints stop sending it
// traffic), then waits up to ShutdownTimeout for requests in flight. Both are
// set in its environment (MLSHIP_DRAIN_DELAY, MLSHIP_SHUTDOWN_TIMEOUT; the
// values are mlship-serve's defaults), and the pod's
// terminationGracePeriodSeconds is their sum plus GraceMargin, so that the
// kubelet's SIGKILL never cuts a drain short.
const (
	DrainDelay      = 5 * time.Second
	ShutdownTimeout = 30 * time.Second
	GraceMargin     = 5 * time.Second
)

// gracePeriod is the pod's terminationGracePeriodSeconds.
func gracePeriod() int64 {
	return int64((DrainDelay + ShutdownTimeout + GraceMargin + time.Second - 1) / time.Second)
}

// Kinds generated besides the Deployment and Service.
var (
	hpaGVK            = schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}
	pdbGVK            = schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}
	serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}
	promRuleGVK       = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}
)

// prometheusRuleYAML is the PrometheusRule with the model's alerts (a
// variable for the golden tests).
var prometheusRuleYAML = monitoring.PrometheusRule

// needsOperator says whether o is of a Prometheus Operator kind, which a
// cluster serves only with the operator's CRDs installed.
func needsOperator(o *unstructured.Unstructured) bool {
	return o.GroupVersionKind().Group == serviceMonitorGVK.Group
}

// generate builds the objects for mlship-serve: the Deployment and Service;
// a HorizontalPodAutoscaler when the replicas have a range; a
// PodDisruptionBudget when more than one pod may run; and, unless monitoring
// is off, a ServiceMonitor and a PrometheusRule. With an autoscaler the
// Deployment has no spec.replicas (Run sets it when it creates it).
func generate(c Config) ([]*unstructured.Unstructured, error) {
	labels := map[string]string{
		"app.kubernetes.io/name":       c.Name,
		"app.kubernetes.io/instance":   c.Name,
		"app.kubernetes.io/component":  "model-server",
		"app.kubernetes.io/part-of":    "mlship",
		"app.kubernetes.io/managed-by": "mlship",
	}
	selector := map[string]string{"app.kubernetes.io/name": c.Name, "app.kubernetes.io/instance": c.Name}
	anns := map[string]string{AnnImage: c.Image}
	if c.ModelDir != "" {
		card, err := model.ReadCard(c.ModelDir)
		if err != nil {
			return nil, err
		}
		mj, _ := json.Marshal(card.Metrics)
		anns[AnnMetrics] = string(mj)
		anns[AnnDataSHA] = card.Data.SHA256
		anns[AnnModel] = card.Name
		if card.GitSHA != "" {
			anns[AnnGitSHA] = card.GitSHA
		}
	}
	if v := imageVersion(c.Image); v != "" {
		labels["app.kubernetes.io/version"] = v
	}
	podLabels := map[string]string{}
	for k, v := range labels {
		podLabels[k] = v
	}
	podAnns := map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   fmt.Sprint(Port),
		"prometheus.io/path":   "/metrics",
	}
	for k, v := range anns {
		podAnns[k] = v
	}
	_, hi, initial, autoscaled := c.replicaRange()
	zero := intstr.FromInt32(0)
	one := intstr.FromInt32(1)
	no, yes := false, true
	uid := int64(65532)
	grace := gracePeriod()
	replicas := initial
	deadline := c.ProgressDeadline
	history := int32(10)
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
			TimeoutSeconds:   2,
		}
	}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: labels, Annotations: anns},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			RevisionHistoryLimit:    &history,
			ProgressDeadlineSeconds: &deadline,
			Selector:                &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnns},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					AutomountServiceAccountToken:  &no,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "server",
						Image: c.Image,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: Port, Protocol: corev1.ProtocolTCP}},
						Env: []corev1.EnvVar{
							{Name: "MLSHIP_MODEL_NAME", Value: c.Name},
							{Name: "MLSHIP_DRAIN_DELAY", Value: DrainDelay.String()},
							{Name: "MLSHIP_SHUTDOWN_TIMEOUT", Value: ShutdownTimeout.String()},
						},
						ReadinessProbe: probe("/readyz", 5, 2),
						LivenessProbe:  probe("/healthz", 10, 3),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(c.CPURequest), corev1.ResourceMemory: resource.MustParse(c.MemoryRequest)},
							Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(c.CPULimit), corev1.ResourceMemory: resource.MustParse(c.MemoryLimit)},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &no,
							ReadOnlyRootFilesystem:   &yes,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		// No prometheus.io annotations here: the pods have them, and Prometheus's
		// usual kubernetes-service-endpoints job would scrape them a second time.
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
	objs := []runtime.Object{dep, svc}
	if autoscaled {
		objs = append(objs, autoscaler(c, labels))
	}
	if hi > 1 {
		objs = append(objs, disruptionBudget(c, labels, selector))
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		out = append(out, u)
	}
	if autoscaled {
		// Left out, as the HorizontalPodAutoscaler's documentation asks: each
		// apply would otherwise reset the count the autoscaler chose.
		unstructured.RemoveNestedField(out[0].Object, "spec", "replicas")
	}
	if c.Monitoring != MonitoringOff {
		mon, err := monitoringObjects(c, labels, selector)
		if err != nil {
			return nil, err
		}
		out = append(out, mon...)
	}
	return out, nil
}

// autoscaler is the HorizontalPodAutoscaler of the generated Deployment: CPU
// utilisation against the container's request, the autoscaler's default
// behavior (scale down after a 5-minute window).
func autoscaler(c Config, labels map[string]string) *autoscalingv2.HorizontalPodAutoscaler {
	lo, hi, _, _ := c.replicaRange()
	target := c.CPUTarget
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: hpaGVK.GroupVersion().String(), Kind: hpaGVK.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: labels},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: c.Name},
			MinReplicas:    &lo,
			MaxReplicas:    hi,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
				},
			}},
		},
	}
}

// disruptionBudget lets voluntary disruptions (node drains, cluster upgrades)
// take one pod at a time. maxUnavailable rather than minAvailable: with one
// pod left (an autoscaler's minimum of 1) a drain still proceeds; and unhealthy
// pods may always be evicted, so a crash-looping pod never blocks a drain.
func disruptionBudget(c Config, labels, selector map[string]string) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	always := policyv1.AlwaysAllow
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: pdbGVK.GroupVersion().String(), Kind: pdbGVK.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: labels},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             &one,
			Selector:                   &metav1.LabelSelector{MatchLabels: selector},
			UnhealthyPodEvictionPolicy: &always,
		},
	}
}

// monitoringObjects are the ServiceMonitor, which has the Prometheus Operator
// scrape the Service's endpoints (port http, /metrics; the job label is the
// Service's name), and the PrometheusRule with the model's alerts (package
// monitoring).
func monitoringObjects(c Config, labels, selector map[string]string) ([]*unstructured.Unstructured, error) {
	sm := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": toAny(selector)},
			"endpoints": []any{map[string]any{"port": "http", "path": "/metrics"}},
		},
	}}
	sm.SetGroupVersionKind(serviceMonitorGVK)
	sm.SetName(c.Name)
	sm.SetNamespace(c.Namespace)
	sm.SetLabels(labels)

	b, err := prometheusRuleYAML(c.Name, c.Namespace)
	if err != nil {
		return nil, fmt.Errorf("alert rules of %s: %w", c.Name, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("alert rules of %s: %w", c.Name, err)
	}
	pr := &unstructured.Unstructured{Object: m}
	if gvk := pr.GroupVersionKind(); gvk != promRuleGVK || pr.GetName() == "" {
		return nil, fmt.Errorf("alert rules of %s: got %s %q, want a named %s", c.Name, gvk.String(), pr.GetName(), promRuleGVK.String())
	}
	pr.SetNamespace(c.Namespace)
	prLabels := pr.GetLabels()
	if prLabels == nil {
		prLabels = map[string]string{}
	}
	for k, v := range labels {
		if _, ok := prLabels[k]; !ok {
			prLabels[k] = v
		}
	}
	pr.SetLabels(prLabels)
	return []*unstructured.Unstructured{sm, pr}, nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// imageVersion is a label-safe version from the image: the tag, or the digest's
// first 12 hex digits.
func imageVersion(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ""
	}
	if d, ok := r.(name.Digest); ok {
		h := strings.TrimPrefix(d.DigestStr(), "sha256:")
		if len(h) > 12 {
			h = h[:12]
		}
		return h
	}
	if t, ok := r.(name.Tag); ok && len(t.TagStr()) <= 63 {
		return t.TagStr()
	}
	return ""
}

// load reads objects from files and directories (*.yaml, *.yml, *.json, sorted),
// with several documents per file.
func load(paths []string) ([]*unstructured.Unstructured, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading manifests %q: %w", p, unwrapPathErr(err))
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("reading manifests %q: %w", p, err)
		}
		var names []string
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					names = append(names, filepath.Join(p, e.Name()))
				}
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("reading manifests %q: no .yaml, .yml or .json files in it", p)
		}
		files = append(files, names...)
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading manifests %q: %w", f, unwrapPathErr(err))
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for doc := 1; ; doc++ {
			raw, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading manifests %q: document %d: %w", f, doc, err)
			}
			if len(bytes.TrimSpace(raw)) == 0 || isOnlyComments(raw) {
				continue
			}
			var m map[string]any
			if err := yaml.Unmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("reading manifests %q: document %d: %w", f, doc, err)
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetKind() == "List" {
				items, _ := u.Object["items"].([]any)
				for _, it := range items {
					if im, ok := it.(map[string]any); ok {
						out = append(out, &unstructured.Unstructured{Object: im})
					}
				}
				continue
			}
			if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
				return nil, fmt.Errorf("reading manifests %q: document %d: an object needs apiVersion, kind and metadata.name", f, doc)
			}
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("reading manifests %s: no objects", strings.Join(paths, ", "))
	}
	return out, nil
}

func isOnlyComments(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// podSpecPath is where each workload kind keeps its pod spec.
var podSpecPath = map[string][]string{
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
	"Pod":                   {"spec"},
	"ReplicationController": {"spec", "template", "spec"},
}

// setImage replaces the image of the chosen containers (by name, or those whose
// image has the same repository as image) and returns how many it replaced.
func setImage(objs []*unstructured.Unstructured, container, image string) (int, error) {
	want, err := name.ParseReference(image)
	if err != nil {
		return 0, err
	}
	repo := want.Context().Name()
	n := 0
	for _, o := range objs {
		path, ok := podSpecPath[o.GetKind()]
		if !ok {
			continue
		}
		for _, field := range []string{"initContainers", "containers"} {
			cs, found, err := unstructured.NestedSlice(o.Object, append(path, field)...)
			if err != nil || !found {
				continue
			}
			for i, c := range cs {
				cm, ok := c.(map[string]any)
				if !ok {
					continue
				}
				cname, _ := cm["name"].(string)
				cimg, _ := cm["image"].(string)
				match := container != "" && cname == container
				if container == "" {
					if r, err := name.ParseReference(cimg); err == nil && r.Context().Name() == repo {
						match = true
					}
				}
				if match {
					cm["image"] = image
					cs[i] = cm
					n++
				}
			}
			if err := unstructured.SetNestedSlice(o.Object, cs, append(path, field)...); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// operatorNote heads a rendered ServiceMonitor or PrometheusRule.
const operatorNote = "# needs the Prometheus Operator's CRDs (monitoring.coreos.com/v1); --monitoring off leaves it out\n"

// render writes objects as a YAML stream.
func render(w io.Writer, objs []*unstructured.Unstructured) error {
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if needsOperator(o) {
			if _, err := io.WriteString(w, operatorNote); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
