package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/deploy"
)

type deployFlags struct {
	configPath string
	cfg        deploy.Config
	kubeconfig string
	context    string
	jsonOut    bool
	quiet      bool
}

func addDeployFlags(fs *pflag.FlagSet, f *deployFlags) {
	c := &f.cfg
	fs.StringVar(&c.Image, "image", "", "image to run, best by digest: REPO@sha256:... (what build-push-image prints)")
	fs.StringVar(&c.Name, "name", "", "name of the generated Deployment and Service (default: the config's name)")
	fs.StringVar(&c.Namespace, "namespace", "default", "namespace of the objects that name none")
	fs.Int32Var(&c.Replicas, "replicas", deploy.DefaultReplicas, "replicas of the generated Deployment")
	fs.StringSliceVar(&c.Manifests, "manifests", nil, "apply these files or directories (YAML/JSON) instead of the generated Deployment and Service")
	fs.StringVar(&c.Container, "container", "", "with --manifests: the container whose image is replaced (default: those whose image repository matches --image)")
	fs.StringVar(&c.ModelDir, "model", "", "model directory: its metrics, data hash and git sha become annotations")
	fs.DurationVar(&c.Timeout, "timeout", deploy.DefaultTimeout, "how long to wait for the rollout")
	fs.Int32Var(&c.ProgressDeadline, "progress-deadline", deploy.DefaultProgressDeadline, "progressDeadlineSeconds of the generated Deployment")
	fs.StringVar(&c.CPURequest, "cpu-request", "100m", "CPU request of the generated container")
	fs.StringVar(&c.CPULimit, "cpu-limit", "1", "CPU limit of the generated container")
	fs.StringVar(&c.MemoryRequest, "memory-request", "128Mi", "memory request of the generated container")
	fs.StringVar(&c.MemoryLimit, "memory-limit", "512Mi", "memory limit of the generated container")
	fs.BoolVar(&c.DryRun, "dry-run", false, "server-side dry run: print the diff against the live objects, change nothing")
	fs.BoolVar(&c.Render, "render", false, "print the manifests and stop; no cluster needed")
	fs.BoolVar(&c.NoRollback, "no-rollback", false, "leave a failed rollout as it is instead of rolling back")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $MLSHIP_KUBECONFIG_DATA (base64), $KUBECONFIG, in-cluster, ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context (default: its current context)")
}

func newDeployCmd(stdout, stderr io.Writer) *cobra.Command {
	f := &deployFlags{}
	cmd := &cobra.Command{
		Use:   "kubectl-deploy",
		Short: "Apply the model server to Kubernetes, wait for the rollout, roll back when it fails",
		Long: `kubectl-deploy applies a Deployment and a Service for mlship-serve (or your manifests with the image
replaced) with server-side apply (field manager mlship), waits for the rollout with the rules of
kubectl rollout status, and when it fails says why from the pods and events, rolls back to the
previous revision (what kubectl rollout undo does) and exits 1. --dry-run prints the diff against
the live objects; --render prints the manifests without a cluster.`,
		Example: `  mlship kubectl-deploy --image ghcr.io/acme/heart@sha256:... --name heart --namespace models
  mlship kubectl-deploy --image ghcr.io/acme/heart@sha256:... --manifests k8s/ --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := loadConfig(f.configPath)
			if err != nil {
				return err
			}
			cfg, err := f.resolve(cmd.Flags(), file, os.Getenv)
			if err != nil {
				return err
			}
			cfg.Out = stdout
			if !f.quiet {
				cfg.Log = stderr
			}
			res, err := deploy.Run(cmd.Context(), cfg)
			if res != nil && !cfg.Render && !cfg.DryRun {
				var re *deploy.RolloutError
				rev := res.Revision
				if errors.As(err, &re) {
					rev = re.Revision
				}
				if perr := publish(cmd, map[string]string{"namespace": res.Namespace, "deployment": res.Deployment,
					"service": res.Service, "image": res.Image, "revision": rev}); perr != nil && err == nil {
					err = perr
				}
			}
			if res != nil && f.jsonOut && !cfg.Render {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(res); jerr != nil {
					return jerr
				}
			} else if res != nil && !cfg.Render && !cfg.DryRun && err == nil {
				writeDeployResult(stdout, res)
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.configPath, "config", "", "mlship.yaml (or a directory holding one); flags override it")
	addDeployFlags(fs, f)
	fs.BoolVar(&f.jsonOut, "json", false, "print the result (namespace, deployment, service, image, revision, objects) as JSON")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

// resolve merges the config file's deploy section, the flags and the environment.
func (f *deployFlags) resolve(fs *pflag.FlagSet, file *config.File, getenv func(string) string) (deploy.Config, error) {
	cfg := f.cfg
	kubeconfig := f.kubeconfig
	if file != nil {
		d := file.Deploy
		set := func(flag string, apply func()) {
			if !changed(fs, flag) {
				apply()
			}
		}
		if d.Name != "" {
			set("name", func() { cfg.Name = d.Name })
		} else if file.Name != "" {
			set("name", func() { cfg.Name = imageName(file.Name) })
		}
		if d.Namespace != "" {
			set("namespace", func() { cfg.Namespace = d.Namespace })
		}
		if d.Replicas != nil {
			set("replicas", func() { cfg.Replicas = *d.Replicas })
		}
		if len(d.Manifests) > 0 {
			set("manifests", func() {
				cfg.Manifests = nil
				for _, m := range d.Manifests {
					cfg.Manifests = append(cfg.Manifests, file.Resolve(m))
				}
			})
		}
		if d.Container != "" {
			set("container", func() { cfg.Container = d.Container })
		}
		if d.Timeout != "" {
			dur, err := time.ParseDuration(d.Timeout)
			if err != nil {
				return cfg, usageError{fmt.Errorf("config %s: deploy.timeout %q is not a duration", file.Path, d.Timeout)}
			}
			set("timeout", func() { cfg.Timeout = dur })
		}
		if d.ProgressDeadline != nil {
			set("progress-deadline", func() { cfg.ProgressDeadline = *d.ProgressDeadline })
		}
		if d.NoRollback {
			set("no-rollback", func() { cfg.NoRollback = true })
		}
		if d.Kubeconfig != "" && kubeconfig == "" {
			kubeconfig = file.Resolve(d.Kubeconfig)
		}
		if !changed(fs, "model") && file.Train.Out != "" {
			if _, err := os.Stat(file.Resolve(file.Train.Out)); err == nil {
				cfg.ModelDir = file.Resolve(file.Train.Out)
			}
		}
	}
	src, err := kubeSource(kubeconfig, f.context, getenv)
	if err != nil {
		return cfg, usageError{err}
	}
	cfg.Kube = src
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// kubeSource picks the cluster credentials: --kubeconfig, $MLSHIP_KUBECONFIG_DATA
// (a base64 kubeconfig, for CI secrets), $KUBECONFIG, in-cluster, ~/.kube/config.
func kubeSource(path, context string, getenv func(string) string) (deploy.KubeconfigSource, error) {
	src := deploy.KubeconfigSource{Path: path, Context: context}
	if path != "" {
		return src, nil
	}
	if data := strings.TrimSpace(getenv("MLSHIP_KUBECONFIG_DATA")); data != "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return src, errors.New("$MLSHIP_KUBECONFIG_DATA is not base64 (encode the kubeconfig with `base64 -w0`)")
		}
		src.Data = b
		return src, nil
	}
	if kc := getenv("KUBECONFIG"); kc != "" {
		src.Path = kc
		return src, nil
	}
	if getenv("KUBERNETES_SERVICE_HOST") != "" {
		src.InCluster = true
	}
	return src, nil
}

func writeDeployResult(w io.Writer, res *deploy.Result) {
	fmt.Fprintf(w, "deployment %s/%s at revision %s, image %s, service %s\n", res.Namespace, res.Deployment, res.Revision, res.Image, res.Service)
}
