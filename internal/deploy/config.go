// Package deploy is the kubectl-deploy step: it applies the model server's
// Deployment and Service, with a HorizontalPodAutoscaler, a
// PodDisruptionBudget, a ServiceMonitor and a PrometheusRule as configured and
// served (or the user's manifests with the image replaced), with server-side
// apply, waits for the rollout with the rules of `kubectl rollout
// status`, and when it fails says why from the pods and events and rolls back to
// the previous revision.
package deploy

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/mlship/mlship/internal/fault"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// FieldManager is the server-side apply field manager.
const FieldManager = "mlship"

// Config is what kubectl-deploy needs.
type Config struct {
	// Image is the image to run, best by digest (REPO@sha256:...).
	Image string `mlship:"image"`
	// Name of the Deployment and Service (generated manifests) and of the
	// app.kubernetes.io/name label.
	Name string `mlship:"name"`
	// Namespace for namespaced objects that name none (default "default").
	Namespace string `mlship:"namespace"`
	// Replicas of the generated Deployment (default 2). With an autoscaler it
	// is the count the Deployment is created with (within MinReplicas and
	// MaxReplicas); from then on the autoscaler sets it.
	Replicas int32 `mlship:"replicas"`
	// MaxReplicas, when above the minimum (MinReplicas, else Replicas), adds a
	// HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation between the
	// two; equal to it, the Deployment runs that many. 0: no autoscaler.
	MaxReplicas int32 `mlship:"max-replicas"`
	// MinReplicas is the autoscaler's lower bound (default: Replicas).
	MinReplicas int32 `mlship:"min-replicas"`
	// CPUTarget is the autoscaler's target average CPU utilisation, percent of
	// CPURequest (default 80, the Kubernetes and KServe default).
	CPUTarget int32 `mlship:"cpu-target"`
	// Monitoring says whether a ServiceMonitor and a PrometheusRule
	// (monitoring.coreos.com/v1, the Prometheus Operator's) go with the
	// generated objects: MonitoringAuto (when the cluster serves those kinds;
	// rendered always), MonitoringOn (the cluster must serve them) or
	// MonitoringOff.
	Monitoring string `mlship:"monitoring"`
	// Manifests are files or directories of YAML (or JSON) objects to apply
	// instead of the generated ones; the image of Container is replaced.
	Manifests []string `mlship:"manifests"`
	// Container whose image is replaced in the manifests (default: every
	// container whose image has the same repository as Image).
	Container string `mlship:"container"`
	// ModelDir, when set, adds the model's metrics, data hash and git sha to the
	// generated objects' annotations.
	ModelDir string `mlship:"model"`
	// Timeout bounds the rollout wait (default 5m).
	Timeout time.Duration `mlship:"timeout"`
	// ProgressDeadline is the generated Deployment's progressDeadlineSeconds (default 600).
	ProgressDeadline int32 `mlship:"progress-deadline"`
	// CPU and memory requests and limits of the generated container.
	CPURequest    string `mlship:"cpu-request"`
	CPULimit      string `mlship:"cpu-limit"`
	MemoryRequest string `mlship:"memory-request"`
	MemoryLimit   string `mlship:"memory-limit"`
	// DryRun applies with server-side dry run and reports the diff against the
	// live objects; nothing changes.
	DryRun bool `mlship:"dry-run"`
	// Render only prints the manifests; no cluster is contacted.
	Render bool `mlship:"render"`
	// NoRollback leaves a failed rollout as it is.
	NoRollback bool `mlship:"no-rollback"`
	// Kube says how to reach the cluster.
	Kube KubeconfigSource
	// Out receives the rendered manifests (Render) and the diff (DryRun).
	Out io.Writer
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// PollInterval of the rollout wait between watch events (default 1s).
	PollInterval time.Duration
}

// KubeconfigSource is where the cluster credentials come from, in this order:
// Data (a kubeconfig's bytes, from a CI secret), Path (a kubeconfig file, or
// several joined by the OS list separator like $KUBECONFIG), in-cluster
// (a service account), else ~/.kube/config.
type KubeconfigSource struct {
	Data      []byte
	Path      string `mlship:"kubeconfig"`
	Context   string `mlship:"context"`
	InCluster bool
}

// Values of Config.Monitoring.
const (
	MonitoringAuto = "auto"
	MonitoringOn   = "on"
	MonitoringOff  = "off"
)

// DefaultCPUTarget is the autoscaler's default CPU utilisation target, in
// percent of the request: what the HorizontalPodAutoscaler itself uses when
// no metric is given (kubectl autoscale without --cpu) and KServe's default.
const DefaultCPUTarget = 80

// DefaultConfig is what the generated objects get when nothing else is said.
func DefaultConfig() Config {
	return Config{
		Namespace: "default", Replicas: 2, Timeout: 5 * time.Minute, ProgressDeadline: 600,
		CPURequest: "100m", CPULimit: "1", MemoryRequest: "128Mi", MemoryLimit: "512Mi",
		CPUTarget: DefaultCPUTarget, Monitoring: MonitoringAuto,
	}
}

// replicaRange is the generated Deployment's range of replicas: min and max
// equal without an autoscaler. initial is the count the Deployment is created
// with (Replicas brought within the range); autoscaled says whether a
// HorizontalPodAutoscaler owns spec.replicas.
func (c Config) replicaRange() (lo, hi, initial int32, autoscaled bool) {
	if c.MaxReplicas <= 0 || len(c.Manifests) > 0 {
		return c.Replicas, c.Replicas, c.Replicas, false
	}
	lo, hi = c.MinReplicas, c.MaxReplicas
	if lo <= 0 {
		lo = c.Replicas
	}
	if lo < 1 || hi < lo {
		return c.Replicas, c.Replicas, c.Replicas, false // refused by Validate
	}
	return lo, hi, min(max(c.Replicas, lo), hi), hi > lo
}

// setDefaults fills what a caller that did not start from DefaultConfig left
// empty. Replicas and ProgressDeadline are taken as given: zero replicas is a
// Deployment scaled to zero, and a zero deadline is refused by Validate; so is
// CPUTarget, refused when zero with an autoscaler.
func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.Namespace == "" {
		c.Namespace = d.Namespace
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	for _, p := range []struct {
		dst *string
		v   string
	}{
		{&c.CPURequest, d.CPURequest}, {&c.CPULimit, d.CPULimit}, {&c.MemoryRequest, d.MemoryRequest}, {&c.MemoryLimit, d.MemoryLimit},
	} {
		if *p.dst == "" {
			*p.dst = p.v
		}
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.Monitoring == "" {
		c.Monitoring = d.Monitoring
	}
}

// Validate checks the configuration. Its errors are *fault.FieldError keyed by
// input name (internal/spec), joined.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fault.Field(field, format, a...)) }
	if c.Image == "" {
		add("image", "is required (REPO@sha256:...)")
	} else if _, err := name.ParseReference(c.Image); err != nil {
		add("image", "%q is not an image reference: %v", c.Image, err)
	}
	if len(c.Manifests) == 0 {
		if c.Name == "" {
			add("name", "is required for the generated Deployment and Service")
		} else if msgs := validation.IsDNS1035Label(c.Name); len(msgs) > 0 {
			add("name", "%q is not a valid name: %s", c.Name, strings.Join(msgs, "; "))
		}
	}
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		add("namespace", "%q is not a valid namespace: %s", c.Namespace, strings.Join(msgs, "; "))
	}
	if c.Replicas < 0 {
		add("replicas", "must not be negative, got %d", c.Replicas)
	}
	errs = append(errs, c.validateScaling()...)
	if c.Timeout < 0 {
		add("timeout", "must not be negative, got %s", c.Timeout)
	}
	if c.ProgressDeadline < 1 {
		add("progress-deadline", "must be at least 1 (seconds), got %d", c.ProgressDeadline)
	}
	quantity := func(field, v string) *resource.Quantity {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			add(field, "%q is not a quantity (like 100m, 1, 128Mi)", v)
			return nil
		}
		if q.Sign() < 0 {
			add(field, "must not be negative, got %s", v)
			return nil
		}
		return &q
	}
	for _, r := range []struct{ request, limit, reqValue, limValue string }{
		{"cpu-request", "cpu-limit", c.CPURequest, c.CPULimit},
		{"memory-request", "memory-limit", c.MemoryRequest, c.MemoryLimit},
	} {
		req, lim := quantity(r.request, r.reqValue), quantity(r.limit, r.limValue)
		if req != nil && lim != nil && req.Cmp(*lim) > 0 {
			add(r.request, "must not be above {%s} (%s), got %s", r.limit, r.limValue, r.reqValue)
		}
	}
	if c.DryRun && c.Render {
		add("dry-run", "and {render} cannot both be given")
	}
	switch c.Monitoring {
	case MonitoringAuto, MonitoringOff:
	case MonitoringOn:
		if len(c.Manifests) > 0 {
			add("monitoring", "is about the generated objects; with {manifests}, add your own ServiceMonitor and PrometheusRule to them")
		}
	default:
		add("monitoring", "must be auto, on or off, got %q", c.Monitoring)
	}
	return errors.Join(errs...)
}

// validateScaling checks the autoscaler's inputs (Validate's part).
func (c Config) validateScaling() []error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fault.Field(field, format, a...)) }
	if c.MaxReplicas < 0 {
		add("max-replicas", "must not be negative (0: no autoscaler), got %d", c.MaxReplicas)
	}
	if c.MinReplicas < 0 {
		add("min-replicas", "must not be negative, got %d", c.MinReplicas)
	}
	if c.MaxReplicas <= 0 {
		if c.MinReplicas > 0 {
			add("min-replicas", "needs {max-replicas}: without it there is no autoscaler")
		}
		if c.CPUTarget < 0 || c.CPUTarget > 100 {
			add("cpu-target", "must be between 1 and 100 (percent of {cpu-request}), got %d", c.CPUTarget)
		}
		return errs
	}
	if len(c.Manifests) > 0 {
		add("max-replicas", "is about the generated Deployment; with {manifests}, add your own HorizontalPodAutoscaler to them")
		return errs
	}
	lo := c.MinReplicas
	switch {
	case lo == 0 && c.Replicas < 1:
		add("replicas", "must be at least 1 with {max-replicas} (the autoscaler's minimum when {min-replicas} is not given), got %d", c.Replicas)
		return errs
	case lo == 0:
		lo = c.Replicas
		if c.MaxReplicas < lo {
			add("max-replicas", "must be at least {replicas} (%d), the minimum when {min-replicas} is not given, got %d", lo, c.MaxReplicas)
		}
	case c.MaxReplicas < lo:
		add("max-replicas", "must be at least {min-replicas} (%d), got %d", lo, c.MaxReplicas)
	}
	if _, _, _, autoscaled := c.replicaRange(); !autoscaled {
		return errs
	}
	if c.CPUTarget < 1 || c.CPUTarget > 100 {
		add("cpu-target", "must be between 1 and 100 (percent of {cpu-request}), got %d", c.CPUTarget)
	}
	if q, err := resource.ParseQuantity(c.CPURequest); err == nil && q.Sign() == 0 {
		add("cpu-request", "must be above 0 with an autoscaler ({max-replicas}): its {cpu-target} is a share of the request, got %s", c.CPURequest)
	}
	return errs
}

// RESTConfig resolves the source into a client configuration. A kubeconfig
// that is missing, unreadable or invalid is an input error (exit 2) naming it.
func (k KubeconfigSource) RESTConfig() (*rest.Config, error) {
	quietKlog()
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.Context}
	switch {
	case len(k.Data) > 0:
		cc, err := clientcmd.Load(k.Data)
		if err != nil {
			return nil, fault.Inputf("cannot read the kubeconfig data (kubeconfig-data): %w", err)
		}
		cfg, err := clientcmd.NewDefaultClientConfig(*cc, overrides).ClientConfig()
		if err != nil {
			return nil, fault.Inputf("cannot read the kubeconfig data (kubeconfig-data): %w", kubeconfigProblem(err))
		}
		return cfg, nil
	case k.Path != "":
		return loadKubeconfig(k.Path, overrides)
	case k.InCluster:
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fault.Inputf("in-cluster config: %w", err)
		}
		return cfg, nil
	}
	home := clientcmd.RecommendedHomeFile
	if _, err := os.Stat(home); errors.Is(err, fs.ErrNotExist) {
		return nil, fault.Inputf("no cluster credentials: give --kubeconfig, $KUBECONFIG or $MLSHIP_KUBECONFIG_DATA, or run in a cluster (there is no %s)", home)
	}
	return loadKubeconfig(home, overrides)
}

// loadKubeconfig reads one kubeconfig file, or several joined like
// $KUBECONFIG (missing ones are skipped, as kubectl does, unless all are).
func loadKubeconfig(path string, overrides *clientcmd.ConfigOverrides) (*rest.Config, error) {
	var files []string
	for _, f := range strings.Split(path, string(listSep)) {
		if f != "" {
			files = append(files, f)
		}
	}
	var found []string
	for _, f := range files {
		_, err := clientcmd.LoadFromFile(f)
		if errors.Is(err, fs.ErrNotExist) && len(files) > 1 {
			continue
		}
		if err != nil {
			return nil, fault.Inputf("cannot read kubeconfig %s: %w", f, unwrapPathErr(err))
		}
		found = append(found, f)
	}
	if len(found) == 0 {
		return nil, fault.Inputf("cannot read kubeconfig %s: none of these files exists", path)
	}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: found}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fault.Inputf("cannot read kubeconfig %s: %w", path, kubeconfigProblem(err))
	}
	return cfg, nil
}

// kubeconfigProblem says what client-go's "no configuration has been provided,
// try setting KUBERNETES_MASTER environment variable" means.
func kubeconfigProblem(err error) error {
	if clientcmd.IsEmptyConfig(err) {
		return errors.New("it names no cluster to use (no current-context, and no --context given)")
	}
	return err
}

var klogOnce sync.Once

// quietKlog keeps client-go's klog lines (such as memcache.go's "Couldn't get
// current server API group list") off stderr and out of files: mlship reports
// each failure in its own error line. Warnings from the API server go to the
// progress log instead (rest.Config.WarningHandler).
func quietKlog() {
	klogOnce.Do(func() {
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "one_output": "true", "v": "0"} {
			_ = fs.Set(k, v)
		}
		klog.SetOutput(io.Discard)
		klog.LogToStderr(false)
	})
}

// Result is what a deploy did.
type Result struct {
	Namespace  string   `json:"namespace"`
	Deployment string   `json:"deployment,omitempty"`
	Service    string   `json:"service,omitempty"`
	Image      string   `json:"image"`
	Revision   string   `json:"revision,omitempty"`
	Objects    []string `json:"objects"` // Kind/namespace/name applied
	DryRun     bool     `json:"dry_run,omitempty"`
	Diff       string   `json:"diff,omitempty"`
	Rendered   bool     `json:"rendered,omitempty"`
	// Skipped are generated objects left out because the cluster does not
	// serve their kind (ServiceMonitor and PrometheusRule with monitoring auto).
	Skipped []string `json:"skipped,omitempty"`
	// Deleted are objects an earlier deploy generated that this one no longer
	// does (an autoscaler after --max-replicas 0, say).
	Deleted []string `json:"deleted,omitempty"`
}
