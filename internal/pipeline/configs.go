package pipeline

import (
	"context"
	"encoding/base64"
	"io"
	"strings"
	"time"

	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/evaluate"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/spec"
	"github.com/mlship/mlship/internal/train"
	"github.com/mlship/mlship/internal/version"
)

// Getenv reads the environment; the adapters take it so that tests and other
// front ends can give their own.
type Getenv func(string) string

// TrainConfig makes train's Config from resolved inputs and checks it.
func TrainConfig(r *spec.Resolved) (train.Config, error) {
	cfg := *Inputs("train").(*train.Config)
	if err := r.Bind(&cfg); err != nil {
		return cfg, err
	}
	cfg.Version = version.Version
	return cfg, r.Explain(cfg.Validate())
}

// GateConfig makes evaluate-gate's Config: the evaluator for data, the loader
// for a baseline image (its retries logged to log, which may be nil).
func GateConfig(r *spec.Resolved, log io.Writer) (gate.Config, error) {
	in := Inputs("evaluate-gate").(*GateInputs)
	if err := r.Bind(in); err != nil {
		return in.Config, err
	}
	cfg := in.Config
	if cfg.DataPath != "" {
		cfg.Evaluate = evaluate.File
	}
	if ref := cfg.BaselineImage; ref != "" {
		insecure := in.Insecure
		cfg.LoadBaseline = func(ctx context.Context) (metrics.Values, error) {
			v, _, err := image.BaselineMetrics(ctx, ref, image.Config{Insecure: insecure, Log: log})
			return v, err
		}
	}
	return cfg, r.Explain(cfg.Validate())
}

// ImageConfig makes build-push-image's Config: the source from the CI's
// variables, the creation time, explicit registry credentials.
func ImageConfig(r *spec.Resolved, getenv Getenv) (image.Config, error) {
	in := Inputs("build-push-image").(*ImageInputs)
	if err := r.Bind(in); err != nil {
		return in.Config, err
	}
	cfg := in.Config
	if cfg.Source == "" {
		cfg.Source = SourceURL(getenv)
	}
	// The commit, when neither the input nor the model card names one.
	cfg.RevisionFallback = getenv("GITHUB_SHA")
	if cfg.RevisionFallback == "" {
		cfg.RevisionFallback = getenv("CI_COMMIT_SHA")
	}
	if in.SourceDateEpoch < 0 {
		return cfg, r.Explain(fault.Field("source-date-epoch", "must be 0 or more (Unix seconds), got %d", in.SourceDateEpoch))
	}
	if in.SourceDateEpoch > 0 {
		cfg.Created = time.Unix(in.SourceDateEpoch, 0).UTC()
	}
	if err := r.Explain(cfg.Validate()); err != nil {
		return cfg, err
	}
	if in.RegistryUsername != "" || in.RegistryPassword != "" {
		if in.RegistryPassword == "" {
			return cfg, r.Explain(fault.Field("registry-username", "is given without {registry-password}"))
		}
		user := in.RegistryUsername
		if user == "" {
			user = "mlship" // registries that take a token ignore the user name
		}
		kc, err := image.WithCredentials(cfg.Image, user, in.RegistryPassword, image.DefaultKeychain(getenv))
		if err != nil {
			return cfg, r.Explain(fault.Field("image", "%v", err))
		}
		cfg.Keychain = kc
	}
	return cfg, nil
}

// SourceURL is the repository's web address from GitHub Actions or GitLab CI variables.
func SourceURL(getenv Getenv) string {
	if repo := getenv("GITHUB_REPOSITORY"); repo != "" {
		server := getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		return strings.TrimSuffix(server, "/") + "/" + repo
	}
	return getenv("CI_PROJECT_URL")
}

// DeployConfig makes kubectl-deploy's Config: the name from the model's name
// when none is given, the cluster credentials.
func DeployConfig(r *spec.Resolved, file *spec.File, getenv Getenv) (deploy.Config, error) {
	in := Inputs("kubectl-deploy").(*DeployInputs)
	if err := r.Bind(in); err != nil {
		return in.Config, err
	}
	cfg := in.Config
	if cfg.Name == "" && file != nil {
		if n := file.String("name"); n != "" {
			cfg.Name = ImageName(n)
		}
	}
	kube, err := kubeSource(in, getenv)
	if err != nil {
		return cfg, r.Explain(err)
	}
	cfg.Kube = kube
	return cfg, r.Explain(cfg.Validate())
}

// kubeSource picks the cluster credentials: kubeconfig, kubeconfig-data (base64),
// $KUBECONFIG, in-cluster, ~/.kube/config.
func kubeSource(in *DeployInputs, getenv Getenv) (deploy.KubeconfigSource, error) {
	src := in.Kube
	if src.Path != "" {
		return src, nil
	}
	if data := strings.TrimSpace(in.KubeconfigData); data != "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return src, fault.Field("kubeconfig-data", "is not base64 (encode the kubeconfig with `base64 -w0`)")
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

// ImageName makes a repository path component (and a Kubernetes name) from a
// model name: lower case, other characters as dashes.
func ImageName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-_.")
	if out == "" {
		return "model"
	}
	return out
}
