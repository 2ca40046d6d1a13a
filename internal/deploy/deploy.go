package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/mlship/mlship/internal/fault"
)

// Objects returns the objects a deploy would apply: the generated ones (the
// Deployment and Service, and as configured a HorizontalPodAutoscaler, a
// PodDisruptionBudget, a ServiceMonitor and a PrometheusRule, whether or not a
// cluster serves the last two), or the manifests with the image replaced.
func Objects(cfg Config) ([]*unstructured.Unstructured, error) {
	cfg.setDefaults()
	if len(cfg.Manifests) == 0 {
		return generate(cfg)
	}
	objs, err := load(cfg.Manifests)
	if err != nil {
		return nil, err
	}
	n, err := setImage(objs, cfg.Container, cfg.Image)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		which := "whose image repository matches " + cfg.Image
		if cfg.Container != "" {
			which = fmt.Sprintf("named %q", cfg.Container)
		}
		return nil, fmt.Errorf("manifests %s: no container %s to set the image of", strings.Join(cfg.Manifests, ", "), which)
	}
	for _, o := range objs {
		if o.GetNamespace() == "" && o.GetKind() != "Namespace" {
			o.SetNamespace(cfg.Namespace) // cleared again for cluster-scoped kinds once the mapper knows them
		}
	}
	return objs, nil
}

// RequestTimeout bounds each API request but the rollout's watch (which the
// Timeout bounds), so that a cluster that accepts connections and never
// answers fails the deploy instead of hanging it.
const RequestTimeout = 30 * time.Second

// clients holds what Run needs to talk to the cluster.
type clients struct {
	dyn     dynamic.Interface
	kube    kubernetes.Interface
	mapper  meta.RESTMapper
	user    string
	host    string
	timeout time.Duration // of each request
}

func connect(rc *rest.Config, logw io.Writer) (*clients, error) {
	quietKlog()
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "mlship"
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	rc.WarningHandler = rest.NewWarningWriter(logw, rest.WarningWriterOptions{Deduplicate: true})
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &clients{dyn: dyn, kube: kube, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		user: rc.Username, host: rc.Host, timeout: RequestTimeout}, nil
}

// request bounds one API request.
func (cl *clients) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cl.timeout)
}

// ping asks the API server for its version: a cluster that cannot be reached
// is the environment's failure (exit 3), refused credentials an input error.
func (cl *clients) ping(ctx context.Context) error {
	ctx, cancel := cl.request(ctx)
	defer cancel()
	err := cl.kube.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error()
	switch {
	case err == nil, apierrors.IsForbidden(err): // /version is public on most clusters, not on all
		return nil
	case apierrors.IsUnauthorized(err):
		return fault.Inputf("cluster at %s refused the credentials (unauthorized): %w", cl.host, err)
	}
	return cl.unreachable(ctx, err)
}

// unreachable marks a failure to talk to the cluster: the network's or a
// timeout's (exit 3), a TLS or protocol problem's (exit 2).
func (cl *clients) unreachable(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fault.Envf("cluster at %s unreachable: no answer within %s: %w", cl.host, cl.timeout, err)
	}
	if fault.IsEnvironment(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) {
		return fault.Envf("cluster at %s unreachable: %w", cl.host, err)
	}
	return fmt.Errorf("cluster at %s: %w", cl.host, err)
}

// Run applies the objects, waits for the rollout and rolls back on failure.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	objs, err := Objects(cfg)
	if err != nil {
		return nil, err
	}
	res := &Result{Namespace: cfg.Namespace, Image: cfg.Image, DryRun: cfg.DryRun}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			if res.Deployment == "" {
				res.Deployment = o.GetName()
				res.Namespace = o.GetNamespace()
			}
		case "Service":
			if res.Service == "" {
				res.Service = o.GetName()
			}
		}
	}
	if cfg.Render {
		out := cfg.Out
		if out == nil {
			out = io.Discard
		}
		var op []string
		for _, o := range objs {
			res.Objects = append(res.Objects, objectName(o))
			if needsOperator(o) {
				op = append(op, objectName(o))
			}
		}
		if len(op) > 0 {
			fmt.Fprintf(logw, "rendered %s: they need the Prometheus Operator's CRDs (monitoring.coreos.com/v1); --monitoring off leaves them out\n", strings.Join(op, " and "))
		}
		res.Rendered = true
		return res, render(out, objs)
	}
	rc, err := cfg.Kube.RESTConfig()
	if err != nil {
		return nil, err
	}
	cl, err := connect(rc, logw)
	if err != nil {
		return nil, err
	}
	cl.timeout = min(RequestTimeout, cfg.Timeout)
	if err := cl.ping(ctx); err != nil {
		return nil, err
	}
	var diffs []string
	if len(cfg.Manifests) == 0 {
		if objs, err = cl.served(ctx, cfg, objs, res, logw); err != nil {
			return nil, err
		}
		if diffs, err = cl.prune(ctx, cfg, objs, res, logw); err != nil {
			return nil, err
		}
	}
	_, _, initial, autoscaled := cfg.replicaRange()
	for _, o := range objs {
		if autoscaled && o.GetKind() == "Deployment" && len(cfg.Manifests) == 0 {
			if err := cl.setReplicas(ctx, o, initial); err != nil {
				return nil, err
			}
		}
		applied, live, err := cl.apply(ctx, o, cfg.DryRun)
		if err != nil && unasked(cfg, o) && apierrors.IsForbidden(err) {
			res.Skipped = append(res.Skipped, objectName(o))
			fmt.Fprintf(logw, "skipped %s, which mlship adds unasked: %v\n", objectName(o), err)
			continue
		}
		if err != nil {
			return nil, err
		}
		res.Objects = append(res.Objects, objectName(applied))
		if cfg.DryRun {
			if d := diffObjects(live, applied); d != "" {
				diffs = append(diffs, d)
			}
			continue
		}
		fmt.Fprintf(logw, "applied %s\n", objectName(applied))
	}
	if cfg.DryRun {
		res.Diff = strings.Join(diffs, "")
		if res.Diff == "" {
			res.Diff = "no changes\n"
		}
		if cfg.Out != nil {
			io.WriteString(cfg.Out, res.Diff)
		}
		return res, nil
	}
	// Wait for each Deployment (the generated one, or every one in the manifests).
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetAPIVersion() != "apps/v1" {
			continue
		}
		rev, err := cl.waitOrRollBack(ctx, cfg, o.GetNamespace(), o.GetName(), logw)
		if o.GetName() == res.Deployment {
			res.Revision = rev
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func objectName(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// apply server-side applies one object (forcing conflicts: mlship owns the fields
// it sets, also after a rollback changed them through another manager) and
// returns it with the live object as it was before (nil when new).
func (cl *clients) apply(ctx context.Context, o *unstructured.Unstructured, dryRun bool) (applied, live *unstructured.Unstructured, err error) {
	gvk := o.GroupVersionKind()
	mapping, err := cl.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return nil, nil, fault.Inputf("%s: the cluster does not serve kind %s: %w", objectName(o), gvk.String(), err)
	}
	if err != nil {
		return nil, nil, cl.unreachable(ctx, fmt.Errorf("discovering kind %s: %w", gvk.String(), err))
	}
	ctx, cancel := cl.request(ctx)
	defer cancel()
	var ri dynamic.ResourceInterface
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = cl.dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
	} else {
		o.SetNamespace("")
		ri = cl.dyn.Resource(mapping.Resource)
	}
	if dryRun {
		live, err = ri.Get(ctx, o.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			live, err = nil, nil
		}
		if err != nil {
			return nil, nil, explain("get", mapping.Resource.Resource, objectName(o), cl.user, err)
		}
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	applied, err = ri.Apply(ctx, o.GetName(), o, opts)
	if err != nil {
		return nil, nil, explain("patch", mapping.Resource.Resource, objectName(o), cl.user, err)
	}
	return applied, live, nil
}

// explain turns API errors into one line naming the verb and resource, with a
// hint for RBAC refusals.
func explain(verb, resource, obj, user string, err error) error {
	if apierrors.IsForbidden(err) {
		var st apierrors.APIStatus
		msg := err.Error()
		if errors.As(err, &st) {
			msg = st.Status().Message
		}
		return &forbiddenError{fmt.Sprintf("applying %s: forbidden: the credentials may not %s %s (grant get, list, watch, create and patch on it with RBAC): %s", obj, verb, resource, msg), err}
	}
	if apierrors.IsUnauthorized(err) {
		return fmt.Errorf("applying %s: the cluster refused the credentials (unauthorized): %w", obj, err)
	}
	return fmt.Errorf("applying %s: %w", obj, err)
}

// forbiddenError is an RBAC refusal said in one line; it wraps the API error.
type forbiddenError struct {
	msg string
	err error
}

func (e *forbiddenError) Error() string { return e.msg }
func (e *forbiddenError) Unwrap() error { return e.err }

// unasked says whether o is an object mlship generates without being asked
// (the disruption budget; the monitoring objects with monitoring auto): a
// cluster that refuses it gets the deploy without it rather than a failed one.
func unasked(cfg Config, o *unstructured.Unstructured) bool {
	if len(cfg.Manifests) > 0 {
		return false
	}
	return o.GroupVersionKind() == pdbGVK || (needsOperator(o) && cfg.Monitoring == MonitoringAuto)
}
