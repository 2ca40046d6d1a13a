package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/mlship/mlship/internal/fault"
)

// serves says whether the cluster serves the kind (discovery).
func (cl *clients) serves(ctx context.Context, gvk schema.GroupVersionKind) (bool, error) {
	_, err := cl.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return false, cl.unreachable(ctx, fmt.Errorf("discovering kind %s: %w", gvk.String(), err))
	}
	return true, nil
}

// served leaves out the generated objects of the Prometheus Operator's kinds
// when the cluster does not serve them (monitoring auto: said in the log and
// the result), or refuses the deploy before anything is applied (monitoring on).
func (cl *clients) served(ctx context.Context, cfg Config, objs []*unstructured.Unstructured, res *Result, logw io.Writer) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	var kinds []string
	for _, o := range objs {
		if !needsOperator(o) {
			out = append(out, o)
			continue
		}
		ok, err := cl.serves(ctx, o.GroupVersionKind())
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
			continue
		}
		if cfg.Monitoring == MonitoringOn {
			return nil, fault.Field("monitoring", "is on, and the cluster at %s does not serve kind %s: install the Prometheus Operator's CRDs, or set it to auto or off", cl.host, o.GroupVersionKind().String())
		}
		res.Skipped = append(res.Skipped, objectName(o))
		kinds = append(kinds, o.GetKind())
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(logw, "skipped %s: the cluster does not serve %s (monitoring.coreos.com/v1, the Prometheus Operator's CRDs); Prometheus can still find the pods by their prometheus.io annotations\n",
			strings.Join(res.Skipped, " and "), strings.Join(kinds, " and "))
	}
	return out, nil
}

// prune deletes the objects of the generated kinds that an earlier deploy of
// the same name made and this one does not (an autoscaler after
// --max-replicas 0, which would otherwise keep scaling the Deployment; a
// disruption budget after --replicas 1; the monitoring objects after
// --monitoring off). Only objects with mlship's labels for this name go;
// a kind the cluster does not serve, or that the credentials may not read,
// is left alone. With dryRun nothing is deleted and the diffs say what would.
func (cl *clients) prune(ctx context.Context, cfg Config, objs []*unstructured.Unstructured, res *Result, logw io.Writer) ([]string, error) {
	wanted := map[schema.GroupKind]bool{}
	for _, o := range objs {
		wanted[o.GroupVersionKind().GroupKind()] = true
	}
	type candidate struct {
		gvk  schema.GroupVersionKind
		name string
	}
	cands := []candidate{{hpaGVK, cfg.Name}, {pdbGVK, cfg.Name}, {serviceMonitorGVK, cfg.Name}}
	if name, err := promRuleName(cfg); err == nil {
		cands = append(cands, candidate{promRuleGVK, name})
	}
	var diffs []string
	for _, c := range cands {
		if wanted[c.gvk.GroupKind()] {
			continue
		}
		if ok, err := cl.serves(ctx, c.gvk); err != nil {
			return diffs, err
		} else if !ok {
			continue
		}
		mapping, err := cl.mapper.RESTMapping(c.gvk.GroupKind(), c.gvk.Version)
		if err != nil {
			return diffs, cl.unreachable(ctx, fmt.Errorf("discovering kind %s: %w", c.gvk.String(), err))
		}
		ri := cl.dyn.Resource(mapping.Resource).Namespace(cfg.Namespace)
		obj := c.gvk.Kind + "/" + cfg.Namespace + "/" + c.name
		rctx, cancel := cl.request(ctx)
		live, err := ri.Get(rctx, c.name, metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			continue
		case apierrors.IsForbidden(err):
			fmt.Fprintf(logw, "not checking for a %s left from an earlier deploy: the credentials may not get %s\n", obj, mapping.Resource.Resource)
			continue
		case err != nil:
			return diffs, explain("get", mapping.Resource.Resource, obj, cl.user, err)
		}
		if l := live.GetLabels(); l["app.kubernetes.io/managed-by"] != "mlship" || l["app.kubernetes.io/instance"] != cfg.Name {
			fmt.Fprintf(logw, "left %s alone: mlship does not generate it now, and its labels say it is not mlship's\n", obj)
			continue
		}
		opts := metav1.DeleteOptions{}
		if cfg.DryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		rctx, cancel = cl.request(ctx)
		err = ri.Delete(rctx, c.name, opts)
		cancel()
		if err != nil && !apierrors.IsNotFound(err) {
			if apierrors.IsForbidden(err) {
				return diffs, fmt.Errorf("deleting %s, which mlship no longer generates: forbidden: the credentials may not delete %s (grant delete on it with RBAC, or delete it yourself): %w", obj, mapping.Resource.Resource, err)
			}
			return diffs, fmt.Errorf("deleting %s, which mlship no longer generates: %w", obj, err)
		}
		res.Deleted = append(res.Deleted, obj)
		if cfg.DryRun {
			diffs = append(diffs, unified(strings.SplitAfter(clean(live), "\n"), nil, "live/"+obj, "deleted/"+obj))
			continue
		}
		fmt.Fprintf(logw, "deleted %s: mlship no longer generates it\n", obj)
	}
	return diffs, nil
}

// promRuleName is the name of the generated PrometheusRule.
func promRuleName(cfg Config) (string, error) {
	b, err := prometheusRuleYAML(cfg.Name, cfg.Namespace)
	if err != nil {
		return "", err
	}
	var m struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return "", err
	}
	return m.Metadata.Name, nil
}

// setReplicas decides spec.replicas of the generated Deployment that an
// autoscaler scales. Left out, it would be the autoscaler's alone; but when
// mlship's apply holds the field and leaves it out, server-side apply resets
// it to the default, 1. So it is: the initial count when the Deployment is
// created; the live count while mlship still holds the field (the autoscaler
// has not scaled yet, or an earlier deploy set it before there was an
// autoscaler); and nothing once the autoscaler (or anyone else) took it over.
func (cl *clients) setReplicas(ctx context.Context, o *unstructured.Unstructured, initial int32) error {
	rctx, cancel := cl.request(ctx)
	defer cancel()
	live, err := cl.kube.AppsV1().Deployments(o.GetNamespace()).Get(rctx, o.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return unstructured.SetNestedField(o.Object, int64(initial), "spec", "replicas")
	case err != nil:
		return explain("get", "deployments", objectName(o), cl.user, err)
	}
	if live.Spec.Replicas != nil && holdsReplicas(live.ManagedFields) {
		return unstructured.SetNestedField(o.Object, int64(*live.Spec.Replicas), "spec", "replicas")
	}
	return nil
}

// holdsReplicas says whether mlship's server-side apply owns spec.replicas.
func holdsReplicas(entries []metav1.ManagedFieldsEntry) bool {
	for _, e := range entries {
		if e.Manager != FieldManager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		var f struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(e.FieldsV1.GetRawBytes(), &f) == nil {
			if _, ok := f.Spec["f:replicas"]; ok {
				return true
			}
		}
	}
	return false
}
