// Package deploy is the kubectl-deploy step: it applies the model server's
// Deployment and Service (or the user's manifests with the image replaced) with
// server-side apply, waits for the rollout with the rules of `kubectl rollout
// status`, and when it fails says why from the pods and events and rolls back to
// the previous revision.
package deploy

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager.
const FieldManager = "mlship"

// Config is what kubectl-deploy needs.
type Config struct {
	// Image is the image to run, best by digest (REPO@sha256:...).
	Image string
	// Name of the Deployment and Service (generated manifests) and of the
	// app.kubernetes.io/name label.
	Name string
	// Namespace for namespaced objects that name none (default "default").
	Namespace string
	// Replicas of the generated Deployment (default 2).
	Replicas int32
	// Manifests are files or directories of YAML (or JSON) objects to apply
	// instead of the generated ones; the image of Container is replaced.
	Manifests []string
	// Container whose image is replaced in the manifests (default: every
	// container whose image has the same repository as Image).
	Container string
	// ModelDir, when set, adds the model's metrics, data hash and git sha to the
	// generated objects' annotations.
	ModelDir string
	// Timeout bounds the rollout wait (default 5m).
	Timeout time.Duration
	// ProgressDeadline is the generated Deployment's progressDeadlineSeconds (default 600).
	ProgressDeadline int32
	// CPU and memory requests and limits of the generated container.
	CPURequest, CPULimit, MemoryRequest, MemoryLimit string
	// DryRun applies with server-side dry run and reports the diff against the
	// live objects; nothing changes.
	DryRun bool
	// Render only prints the manifests; no cluster is contacted.
	Render bool
	// NoRollback leaves a failed rollout as it is.
	NoRollback bool
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
	Path      string
	Context   string
	InCluster bool
}

// Defaults.
const (
	DefaultReplicas         = 2
	DefaultTimeout          = 5 * time.Minute
	DefaultProgressDeadline = 600
)

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.Replicas == 0 && len(c.Manifests) == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProgressDeadline == 0 {
		c.ProgressDeadline = DefaultProgressDeadline
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.CPURequest, "100m")
	def(&c.CPULimit, "1")
	def(&c.MemoryRequest, "128Mi")
	def(&c.MemoryLimit, "512Mi")
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if c.Image == "" {
		add("no image (--image REPO@sha256:...)")
	} else if _, err := name.ParseReference(c.Image); err != nil {
		add("image %q is not an image reference: %v", c.Image, err)
	}
	if len(c.Manifests) == 0 {
		if c.Name == "" {
			add("no name (--name) for the generated Deployment and Service")
		} else if msgs := validation.IsDNS1035Label(c.Name); len(msgs) > 0 {
			add("name %q: %s", c.Name, strings.Join(msgs, "; "))
		}
	}
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		add("namespace %q: %s", c.Namespace, strings.Join(msgs, "; "))
	}
	if c.Replicas < 0 {
		add("replicas must not be negative, got %d", c.Replicas)
	}
	if c.Timeout < 0 {
		add("timeout must not be negative")
	}
	for flag, v := range map[string]string{"cpu request": c.CPURequest, "cpu limit": c.CPULimit, "memory request": c.MemoryRequest, "memory limit": c.MemoryLimit} {
		if _, err := resource.ParseQuantity(v); err != nil {
			add("%s %q is not a quantity", flag, v)
		}
	}
	if c.DryRun && c.Render {
		add("give --dry-run or --render, not both")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// RESTConfig resolves the source into a client configuration.
func (k KubeconfigSource) RESTConfig() (*rest.Config, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.Context}
	switch {
	case len(k.Data) > 0:
		cc, err := clientcmd.Load(k.Data)
		if err != nil {
			return nil, fmt.Errorf("reading the kubeconfig data: %w", err)
		}
		return clientcmd.NewDefaultClientConfig(*cc, overrides).ClientConfig()
	case k.Path != "":
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: strings.Split(k.Path, string(listSep))}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("reading kubeconfig %q: %w", k.Path, err)
		}
		return cfg, nil
	case k.InCluster:
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: []string{clientcmd.RecommendedHomeFile}}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster credentials: give --kubeconfig, $KUBECONFIG or $MLSHIP_KUBECONFIG_DATA, or run in a cluster (%v)", err)
	}
	return cfg, nil
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
}
