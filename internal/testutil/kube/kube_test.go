package kube_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mlship/mlship/internal/testutil/kube"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

func clientset(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func deployment(name, image string, podAnnotations map[string]string, deadline int32) *appsv1.Deployment {
	replicas := int32(2)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: kube.Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			ProgressDeadlineSeconds: &deadline,
			Selector:                &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: image,
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				}}},
			},
		},
	}
}

// waitFor polls cond every 100 ms until it returns true or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func condition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == typ {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func describe(d *appsv1.Deployment) string {
	s := fmt.Sprintf("generation %d observed %d replicas %d updated %d ready %d available %d unavailable %d",
		d.Generation, d.Status.ObservedGeneration, d.Status.Replicas, d.Status.UpdatedReplicas,
		d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
	for _, c := range d.Status.Conditions {
		s += fmt.Sprintf("; %s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message)
	}
	return s
}

func TestServerVersion(t *testing.T) {
	c := kube.Shared(t)
	v, err := clientset(t, c.Kubeconfig).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" || v.Major != "1" || v.Minor != "37" {
		t.Fatalf("server version %+v, want v1.37.2 (1, 37)", v)
	}
	if !strings.HasPrefix(c.Server, "https://127.0.0.1:") {
		t.Fatalf("server %q, want https://127.0.0.1:PORT", c.Server)
	}
}

func TestDeploymentRollsOut(t *testing.T) {
	c := kube.Shared(t)
	cs := clientset(t, c.Kubeconfig)
	ctx := context.Background()
	start := time.Now()
	d, err := cs.AppsV1().Deployments(kube.Namespace).Create(ctx, deployment("rolls-out", "registry.example/app:v1", nil, 15), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rollout", 30*time.Second, func() (bool, string) {
		d, err = cs.AppsV1().Deployments(kube.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		p := condition(d, appsv1.DeploymentProgressing)
		done := d.Status.ObservedGeneration >= d.Generation &&
			d.Status.UpdatedReplicas == 2 && d.Status.AvailableReplicas == 2 && d.Status.Replicas == 2 &&
			p != nil && p.Reason == "NewReplicaSetAvailable"
		return done, describe(d)
	})
	t.Logf("rolled out in %s", time.Since(start).Round(time.Millisecond))

	pods, err := cs.CoreV1().Pods(kube.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=rolls-out"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != kube.NodeName || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q phase %s, want %s Running", p.Name, p.Spec.NodeName, p.Status.Phase, kube.NodeName)
		}
	}

	// kubectl, where the machine has one, parses the server's version and
	// agrees that the rollout is complete.
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "rollout", "status",
			"deployment/rolls-out", "--timeout=20s").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "successfully rolled out") {
			t.Errorf("kubectl rollout status: %v\n%s", err, out)
		}
	}
}

func TestUnreadyImageFailsAtProgressDeadline(t *testing.T) {
	c := kube.Shared(t)
	cs := clientset(t, c.Kubeconfig)
	ctx := context.Background()
	start := time.Now()
	d, err := cs.AppsV1().Deployments(kube.Namespace).Create(ctx,
		deployment("never-ready", "registry.example/app:"+kube.UnreadyImageMarker, nil, 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ProgressDeadlineExceeded", 30*time.Second, func() (bool, string) {
		d, err = cs.AppsV1().Deployments(kube.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		p := condition(d, appsv1.DeploymentProgressing)
		return p != nil && p.Status == corev1.ConditionFalse && p.Reason == "ProgressDeadlineExceeded", describe(d)
	})
	t.Logf("failed at its deadline after %s: %s", time.Since(start).Round(time.Millisecond), describe(d))
	if d.Status.AvailableReplicas != 0 {
		t.Errorf("available replicas %d, want 0", d.Status.AvailableReplicas)
	}
	checkImagePullBackOff(t, cs, "app=never-ready")
}

func TestUnreadyAnnotation(t *testing.T) {
	c := kube.Shared(t)
	cs := clientset(t, c.Kubeconfig)
	ctx := context.Background()
	_, err := cs.AppsV1().Deployments(kube.Namespace).Create(ctx,
		deployment("annotated", "registry.example/app:v1", map[string]string{kube.UnreadyAnnotation: "true"}, 60),
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkImagePullBackOff(t, cs, "app=annotated")
}

// checkImagePullBackOff waits until the selected pods (2) all wait on
// ImagePullBackOff, then checks that they stay Pending and not ready.
func checkImagePullBackOff(t *testing.T, cs *kubernetes.Clientset, selector string) {
	t.Helper()
	ctx := context.Background()
	var pods *corev1.PodList
	waitFor(t, "pods waiting on ImagePullBackOff", 20*time.Second, func() (bool, string) {
		var err error
		pods, err = cs.CoreV1().Pods(kube.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, p := range pods.Items {
			for _, s := range p.Status.ContainerStatuses {
				if s.State.Waiting != nil && s.State.Waiting.Reason == "ImagePullBackOff" {
					n++
				}
			}
		}
		return n == 2 && len(pods.Items) == 2, fmt.Sprintf("%d pods, %d waiting on ImagePullBackOff", len(pods.Items), n)
	})
	time.Sleep(500 * time.Millisecond) // kwok must not move them on
	pods, err := cs.CoreV1().Pods(kube.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("pod %s phase %s, want Pending", p.Name, p.Status.Phase)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionFalse {
				t.Errorf("pod %s Ready=%s, want False", p.Name, cond.Status)
			}
		}
	}
}

func TestLimitedUser(t *testing.T) {
	c := kube.Shared(t)
	cs := clientset(t, c.LimitedKubeconfig)
	ctx := context.Background()
	if _, err := cs.CoreV1().Pods(kube.Namespace).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("limited user listing pods in %s: %v", kube.Namespace, err)
	}
	_, err := cs.AppsV1().Deployments(kube.Namespace).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("limited user listing deployments: err %v, want Forbidden", err)
	}
	_, err = cs.AppsV1().Deployments(kube.Namespace).Create(ctx, deployment("forbidden", "registry.example/app:v1", nil, 15), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("limited user creating a deployment: err %v, want Forbidden", err)
	}
	if _, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("limited user listing pods in kube-system: err %v, want Forbidden", err)
	}
}

// TestStartPrivate starts a second, private plane with Start and checks it is
// separate from the shared one and that its Stop is idempotent.
func TestStartPrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second control plane (about 5 s)")
	}
	shared := kube.Shared(t)
	c := kube.Start(t)
	if c.Server == shared.Server || c.Dir == shared.Dir {
		t.Fatalf("private plane shares %s / %s with the shared one", c.Server, c.Dir)
	}
	cs := clientset(t, c.Kubeconfig)
	ctx := context.Background()
	if _, err := cs.AppsV1().Deployments(kube.Namespace).Get(ctx, "rolls-out", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("deployment rolls-out in the private plane: err %v, want NotFound", err)
	}
	for name, path := range c.LogPaths() {
		if _, err := os.Stat(path); err != nil || filepath.Base(path) != name+".log" {
			t.Errorf("log %s: %s: %v", name, path, err)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("apiserver still answers after Stop")
	}
}
