package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

const revisionAnn = "deployment.kubernetes.io/revision"

// RolloutError is a rollout that did not complete: the step ran and the model is
// not serving the new image. Adapters exit 1 on it.
type RolloutError struct {
	Deployment string
	Reason     string // why, from the deployment status, pods and events
	RolledBack bool
	Revision   string // the revision running now
	Image      string // the image running now
	Note       string // what happened about the rollback
}

// ExitCode is 1: the rollout is a check that failed.
func (e *RolloutError) ExitCode() int { return 1 }

func (e *RolloutError) Error() string {
	msg := fmt.Sprintf("rollout of deployment %s failed: %s", e.Deployment, e.Reason)
	if e.Note != "" {
		msg += "; " + e.Note
	}
	return msg
}

// status applies the rules of `kubectl rollout status` to a Deployment: done, or
// a message saying what it waits for; an error when the progress deadline passed.
func status(d *appsv1.Deployment) (done bool, msg string, err error) {
	if d.Generation > d.Status.ObservedGeneration {
		return false, "waiting for the deployment spec update to be observed", nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, "", fmt.Errorf("it exceeded its progress deadline")
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d out of %d new replicas have been updated", s.UpdatedReplicas, want), nil
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas are pending termination", s.Replicas-s.UpdatedReplicas), nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas are available", s.AvailableReplicas, s.UpdatedReplicas), nil
	}
	// As kubectl: a scale-down does not wait for the pods that go.
	if want == 0 {
		return true, "successfully rolled out (scaled to zero)", nil
	}
	return true, fmt.Sprintf("successfully rolled out (%d/%d available)", min(s.AvailableReplicas, want), want), nil
}

// wait watches the Deployment until it rolled out, failed or the timeout passed,
// printing each new status line.
func (cl *clients) wait(ctx context.Context, cfg Config, ns, name string, logw io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	deps := cl.kube.AppsV1().Deployments(ns)
	last := ""
	for {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("timed out after %s (%s)", cfg.Timeout, last)
			}
			return explain("get", "deployments", "Deployment/"+ns+"/"+name, cl.user, err)
		}
		done, msg, err := status(d)
		if err != nil {
			return err
		}
		if msg != last {
			fmt.Fprintf(logw, "deployment %s/%s: %s\n", ns, name, msg)
			last = msg
		}
		if done {
			return nil
		}
		w, err := deps.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: d.ResourceVersion})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("timed out after %s (%s)", cfg.Timeout, last)
			}
			return explain("watch", "deployments", "Deployment/"+ns+"/"+name, cl.user, err)
		}
		timer := time.NewTimer(cfg.PollInterval * 10)
	events:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				timer.Stop()
				return fmt.Errorf("timed out after %s (%s)", cfg.Timeout, last)
			case <-timer.C:
				break events // re-read in case a watch event was missed
			case ev, ok := <-w.ResultChan():
				if !ok {
					break events
				}
				if ev.Type == watch.Error {
					break events
				}
				nd, ok := ev.Object.(*appsv1.Deployment)
				if !ok {
					continue
				}
				if ev.Type == watch.Deleted {
					w.Stop()
					return fmt.Errorf("the deployment was deleted while waiting")
				}
				done, msg, err := status(nd)
				if err != nil {
					w.Stop()
					timer.Stop()
					return err
				}
				if msg != last {
					fmt.Fprintf(logw, "deployment %s/%s: %s\n", ns, name, msg)
					last = msg
				}
				if done {
					w.Stop()
					timer.Stop()
					return nil
				}
			}
		}
		w.Stop()
		timer.Stop()
	}
}

// waitOrRollBack waits for the rollout; when it fails it finds out why and rolls
// back to the previous revision (unless NoRollback).
func (cl *clients) waitOrRollBack(ctx context.Context, cfg Config, ns, name string, logw io.Writer) (string, error) {
	werr := cl.wait(ctx, cfg, ns, name, logw)
	d, err := cl.getDeployment(ctx, ns, name)
	if err != nil {
		return "", explain("get", "deployments", "Deployment/"+ns+"/"+name, cl.user, err)
	}
	rev := d.Annotations[revisionAnn]
	if werr == nil {
		return rev, nil
	}
	if errors.Is(werr, context.Canceled) || ctx.Err() != nil {
		return rev, werr
	}
	why := werr.Error()
	if diag := cl.diagnose(ctx, d); diag != "" {
		why += ": " + diag
	}
	rerr := &RolloutError{Deployment: ns + "/" + name, Reason: why, Revision: rev, Image: firstImage(d.Spec.Template.Spec)}
	if cfg.NoRollback {
		rerr.Note = "not rolled back (--no-rollback)"
		return rev, rerr
	}
	prev, err := cl.rollback(ctx, d, logw)
	if err != nil {
		rerr.Note = "could not roll back: " + err.Error()
		return rev, rerr
	}
	rcfg := cfg
	if err := cl.wait(ctx, rcfg, ns, name, logw); err != nil {
		rerr.Note = fmt.Sprintf("rolled back to revision %s (image %s) but that rollout did not finish either: %v", prev.rev, prev.image, err)
		return rev, rerr
	}
	d, err = cl.getDeployment(ctx, ns, name)
	if err == nil {
		rev = d.Annotations[revisionAnn]
	}
	rerr.RolledBack, rerr.Revision, rerr.Image = true, rev, prev.image
	rerr.Note = fmt.Sprintf("rolled back to the previous revision (image %s), now revision %s", prev.image, rev)
	return rev, rerr
}

// getDeployment reads a Deployment within one request's time.
func (cl *clients) getDeployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	ctx, cancel := cl.request(ctx)
	defer cancel()
	return cl.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
}

type revision struct {
	rev   string
	image string
}

// rollback does what `kubectl rollout undo` does: it puts the pod template of the
// previous revision's ReplicaSet back into the Deployment.
func (cl *clients) rollback(ctx context.Context, d *appsv1.Deployment, logw io.Writer) (*revision, error) {
	rss, err := cl.replicaSets(ctx, d)
	if err != nil {
		return nil, err
	}
	cur, _ := strconv.ParseInt(d.Annotations[revisionAnn], 10, 64)
	var prev *appsv1.ReplicaSet
	var prevRev int64
	for i := range rss {
		r, _ := strconv.ParseInt(rss[i].Annotations[revisionAnn], 10, 64)
		if r < cur && r > prevRev {
			prev, prevRev = &rss[i], r
		}
	}
	if prev == nil {
		return nil, errors.New("there is no previous revision (this was the first rollout)")
	}
	tmpl := prev.Spec.Template.DeepCopy()
	delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	patch, err := json.Marshal([]map[string]any{{"op": "replace", "path": "/spec/template", "value": tmpl}})
	if err != nil {
		return nil, err
	}
	pctx, cancel := cl.request(ctx)
	defer cancel()
	if _, err := cl.kube.AppsV1().Deployments(d.Namespace).Patch(pctx, d.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager + "-rollback"}); err != nil {
		return nil, explain("patch", "deployments", "Deployment/"+d.Namespace+"/"+d.Name, cl.user, err)
	}
	p := &revision{rev: strconv.FormatInt(prevRev, 10), image: firstImage(tmpl.Spec)}
	fmt.Fprintf(logw, "deployment %s/%s: rolling back to revision %s (image %s)\n", d.Namespace, d.Name, p.rev, p.image)
	return p, nil
}

// replicaSets lists the ReplicaSets the Deployment owns.
func (cl *clients) replicaSets(ctx context.Context, d *appsv1.Deployment) ([]appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	ctx, cancel := cl.request(ctx)
	defer cancel()
	list, err := cl.kube.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, explain("list", "replicasets", "Deployment/"+d.Namespace+"/"+d.Name, cl.user, err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		for _, ref := range rs.OwnerReferences {
			if ref.UID == d.UID {
				out = append(out, rs)
			}
		}
	}
	return out, nil
}

func firstImage(s corev1.PodSpec) string {
	if len(s.Containers) == 0 {
		return ""
	}
	return s.Containers[0].Image
}

// diagnose says why the newest ReplicaSet's pods are not ready, from their status
// and their Warning events, in one line.
func (cl *clients) diagnose(ctx context.Context, d *appsv1.Deployment) string {
	rss, err := cl.replicaSets(ctx, d)
	if err != nil || len(rss) == 0 {
		return ""
	}
	sort.Slice(rss, func(i, j int) bool {
		a, _ := strconv.ParseInt(rss[i].Annotations[revisionAnn], 10, 64)
		b, _ := strconv.ParseInt(rss[j].Annotations[revisionAnn], 10, 64)
		return a > b
	})
	newest := rss[0]
	sel := labels.SelectorFromSet(newest.Spec.Selector.MatchLabels)
	lctx, cancel := cl.request(ctx)
	defer cancel()
	pods, err := cl.kube.CoreV1().Pods(d.Namespace).List(lctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return ""
	}
	counts := map[string]int{}
	var order []string
	note := func(s string) {
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	for _, p := range pods.Items {
		found := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				note(fmt.Sprintf("unschedulable (%s)", strings.TrimSpace(c.Message)))
				found = true
			}
		}
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "ContainerCreating" && cs.State.Waiting.Reason != "PodInitializing":
				m := cs.State.Waiting.Reason
				if cs.State.Waiting.Message != "" {
					m += " (" + oneLine(cs.State.Waiting.Message) + ")"
				}
				note(fmt.Sprintf("container %s: %s", cs.Name, m))
				found = true
			case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
				note(fmt.Sprintf("container %s exited %d (%s)", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason))
				found = true
			case cs.LastTerminationState.Terminated != nil && cs.RestartCount > 0:
				note(fmt.Sprintf("container %s restarted %d times, last exit %d (%s)", cs.Name, cs.RestartCount, cs.LastTerminationState.Terminated.ExitCode, cs.LastTerminationState.Terminated.Reason))
				found = true
			}
		}
		if !found {
			if ev := cl.lastWarning(ctx, &p); ev != "" {
				note(ev)
			} else if !podReady(&p) {
				note("not ready")
			}
		}
	}
	if len(order) == 0 {
		if len(pods.Items) == 0 {
			return "no pods were created for the new revision"
		}
		return ""
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%d of %d new pods: %s", counts[s], len(pods.Items), s)
	}
	return strings.Join(parts, "; ")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// lastWarning returns the newest Warning event of a pod, or "".
func (cl *clients) lastWarning(ctx context.Context, p *corev1.Pod) string {
	ctx, cancel := cl.request(ctx)
	defer cancel()
	evs, err := cl.kube.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector("involvedObject.name", p.Name),
			fields.OneTermEqualSelector("type", corev1.EventTypeWarning)).String(),
	})
	if err != nil || len(evs.Items) == 0 {
		return ""
	}
	sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
	e := evs.Items[len(evs.Items)-1]
	return fmt.Sprintf("%s (%s)", e.Reason, oneLine(e.Message))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
