// Package pipeline turns the inputs of mlship's spec (internal/spec) into each
// step's typed Config, and chains the steps for `mlship run`. Every front end
// (the command line, and through it the GitHub actions, the GitLab templates
// and the Dagger module) goes through it, so an input means the same thing
// everywhere.
package pipeline

import (
	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/monitor"
	"github.com/mlship/mlship/internal/train"
)

// The inputs of each step: its Config, plus the inputs an adapter turns into a
// Config field (credentials, loaders). Every field tagged `mlship:"NAME"` is
// bound to input NAME of the spec (a test checks they match one to one).

// GateInputs are evaluate-gate's inputs.
type GateInputs struct {
	gate.Config
	// Insecure allows plain HTTP to the baseline image's registry.
	Insecure bool `mlship:"insecure"`
}

// ImageInputs are build-push-image's inputs.
type ImageInputs struct {
	image.Config
	// SourceDateEpoch is the image's creation time in Unix seconds.
	SourceDateEpoch  int64  `mlship:"source-date-epoch"`
	RegistryUsername string `mlship:"registry-username"`
	RegistryPassword string `mlship:"registry-password"`
}

// DeployInputs are kubectl-deploy's inputs.
type DeployInputs struct {
	deploy.Config
	// KubeconfigData is a base64 kubeconfig (a CI secret).
	KubeconfigData string `mlship:"kubeconfig-data"`
}

// ReportSource is what a report is made of (report's and comment's inputs).
type ReportSource struct {
	ModelDir   string `mlship:"model"`
	GateJSON   string `mlship:"gate-json"`
	ImageJSON  string `mlship:"image-json"`
	DeployJSON string `mlship:"deploy-json"`
	RunURL     string `mlship:"run-url"`
	NoGate     bool   `mlship:"no-gate"`
}

// ReportInputs are report's inputs.
type ReportInputs struct {
	ReportSource
	Out string `mlship:"out"`
}

// CommentInputs are comment's inputs.
type CommentInputs struct {
	ReportSource
	ID          string `mlship:"id"`
	FromFile    string `mlship:"from-file"`
	Artifact    string `mlship:"artifact"`
	MetricsFile string `mlship:"metrics-file"`
	Repo        string `mlship:"repo"`
	PR          int    `mlship:"pr"`
	GitHubToken string `mlship:"github-token"`
	GitLabToken string `mlship:"gitlab-token"`
}

// MonitorInputs are monitor's inputs.
type MonitorInputs struct {
	monitor.Config
	Trigger            string `mlship:"trigger"`
	Repo               string `mlship:"repo"`
	Ref                string `mlship:"ref"`
	RunURL             string `mlship:"run-url"`
	GitHubToken        string `mlship:"github-token"`
	GitLabTriggerToken string `mlship:"gitlab-trigger-token"`
}

// RunInputs are run's own inputs; the steps' come from mlship.yaml.
type RunInputs struct {
	Project string `mlship:"project"`
	Out     string `mlship:"out"`
	Deploy  bool   `mlship:"deploy"`
}

// Inputs returns a new inputs struct of the step holding its defaults (the
// step package's DefaultConfig), or nil for an unknown step.
func Inputs(step string) any {
	switch step {
	case "train":
		c := train.DefaultConfig()
		return &c
	case "evaluate-gate":
		return &GateInputs{Config: gate.DefaultConfig()}
	case "build-push-image":
		return &ImageInputs{Config: image.DefaultConfig()}
	case "kubectl-deploy":
		return &DeployInputs{Config: deploy.DefaultConfig()}
	case "report":
		return &ReportInputs{}
	case "comment":
		return &CommentInputs{Artifact: "mlship-report.md"}
	case "monitor":
		return &MonitorInputs{Config: monitor.DefaultConfig()}
	case "run":
		return &RunInputs{Project: ".", Out: "mlship-out"}
	}
	return nil
}
