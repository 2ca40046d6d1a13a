package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/image/serverbin"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/report"
	"github.com/mlship/mlship/internal/spec"
	"github.com/mlship/mlship/internal/train"
)

// RunConfig is what `mlship run` needs.
type RunConfig struct {
	// File is the project's mlship.yaml; every step reads its inputs from it
	// (and from $MLSHIP_* variables).
	File *spec.File
	// Out is the output directory; with AppendName the model's name is added
	// to it (mlship-out/NAME).
	Out        string
	AppendName bool
	// Deploy applies the deployment to the cluster instead of rendering it.
	Deploy bool
	Getenv Getenv
	// Text receives each step's result as text; Log the progress lines. Nil
	// discards them.
	Text, Log io.Writer
	// OnStep, when set, is called as each step starts ("" after the last);
	// OnGate with the gate's result. The command line uses them for GitHub's
	// log groups and annotations.
	OnStep func(step string)
	OnGate func(*gate.Result)
}

// Step statuses in a Result.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed" // a check failed: the gate, a rollout, a smoke test
	StatusError   = "error"  // the step could not run to the end
	StatusSkipped = "skipped"
)

// Result is what `mlship run` did: the contract the front ends read
// (`mlship run --json`). Its shape is tested; fields are only ever added.
type Result struct {
	// Name is the model's name; Config the mlship.yaml read; Out the output directory.
	Name   string `json:"name"`
	Config string `json:"config"`
	Out    string `json:"out"`
	// Passed is true when every step that ran succeeded.
	Passed bool `json:"passed"`
	// ExitCode is the process's exit code (0, 1, 2, 3 or 130), Error its
	// one-line error; set by the command line.
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	// Steps are train, evaluate-gate, build-push-image and kubectl-deploy, in
	// order, each with its status and outputs (the same names as the step's
	// GitHub outputs).
	Steps []StepResult `json:"steps"`
	// Report is the Markdown report's path ("" when train did not finish).
	Report string `json:"report,omitempty"`
	// Outputs are run's own outputs: every step's, and report.
	Outputs map[string]string `json:"outputs"`
	// Files are the paths written, with what each is.
	Files []File `json:"files"`

	// Markdown is the report's text (for the step summary).
	Markdown string `json:"-"`
}

// StepResult is one step of a run.
type StepResult struct {
	Step    string            `json:"step"`
	Status  string            `json:"status"`
	Reason  string            `json:"reason,omitempty"` // why it failed, errored or was skipped
	Outputs map[string]string `json:"outputs,omitempty"`
}

// File is one path a run wrote.
type File struct {
	Path string `json:"path"`
	What string `json:"what"`
}

// Run runs train -> evaluate-gate -> build-push-image -> kubectl-deploy and
// writes the report. Every step's configuration is checked before anything is
// written. A failed gate skips the image and the deployment; the report is
// written whenever train finished, naming the step that failed. The error is
// the first step's that failed; the Result is returned with it.
func Run(ctx context.Context, rc RunConfig) (*Result, error) {
	file := rc.File
	text := rc.Text
	if text == nil {
		text = io.Discard
	}
	getenv := rc.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	resolve := func(step string) (*spec.Resolved, error) {
		return spec.Resolve(spec.Lookup(step), spec.Sources{File: file, Getenv: getenv, Spell: FileSpelling(file)})
	}
	res := &Result{Config: file.Path, Outputs: map[string]string{}}

	// Every configuration first: a mistake anywhere in mlship.yaml costs no training.
	tr, err := resolve("train")
	if err != nil {
		return nil, err
	}
	name := tr.String("name")
	if name == "" {
		name = filepath.Base(filepath.Clean(file.Dir))
		if name == "." || name == string(filepath.Separator) {
			name = "model"
		}
		tr.Override("name", name)
	}
	base := rc.Out
	if rc.AppendName {
		base = filepath.Join(rc.Out, name)
	}
	res.Name, res.Out = name, base
	modelDir := filepath.Join(base, "model")
	tr.Override("out", modelDir)
	tcfg, err := TrainConfig(tr)
	if err != nil {
		return nil, err
	}
	tcfg.Log = rc.Log

	gr, err := resolve("evaluate-gate")
	if err != nil {
		return nil, err
	}
	gr.Override("model", modelDir)
	gr.Default("junit", filepath.Join(base, "junit.xml"))
	gcfg, err := GateConfig(gr, rc.Log)
	if err != nil {
		return nil, err
	}

	ir, err := resolve("build-push-image")
	if err != nil {
		return nil, err
	}
	ir.Override("model", modelDir)
	ir.Default("image", "mlship.local/"+ImageName(name)+":latest")
	if !ir.Bool("push") && !ir.Has("oci-layout") && !ir.Has("tarball") {
		ir.Override("oci-layout", filepath.Join(base, "image"))
	}
	icfg, err := ImageConfig(ir, getenv)
	if err != nil {
		return nil, err
	}
	icfg.Log = rc.Log

	dr, err := resolve("kubectl-deploy")
	if err != nil {
		return nil, err
	}
	dr.Override("model", modelDir)
	dr.Default("name", ImageName(name))
	dr.Override("image", "mlship.local/placeholder@sha256:"+strings.Repeat("0", 64))
	if !rc.Deploy {
		dr.Override("render", true)
		dr.Override("dry-run", false)
	}
	dcfg, err := DeployConfig(dr, file, getenv)
	if err != nil {
		return nil, err
	}
	if rc.Deploy && !icfg.Push {
		return nil, fault.Inputf("%s: deploy.enabled needs the image in a registry (image.push: true)", file.Path)
	}
	dcfg.Log = rc.Log

	onStep := rc.OnStep
	if onStep == nil {
		onStep = func(string) {}
	}
	defer onStep("")

	// train
	onStep("train")
	fmt.Fprintf(text, "== train (%s)\n", file.Path)
	tres, err := train.Run(ctx, tcfg)
	if err != nil {
		err = tr.Explain(err)
		res.step("train", StatusError, err.Error(), nil)
		return res, err
	}
	res.step("train", StatusOK, "", TrainOutputs(tres))
	res.file(modelDir, "model card, weights, metrics")
	if err := TrainText(text, tres); err != nil {
		return res, err
	}
	rin := report.Input{Card: tres.Card, RunURL: platform.Detect(getenv, io.Discard).RunURL()}
	finish := func(stepErr error) (*Result, error) {
		res.Markdown = report.Markdown(rin)
		rpath := filepath.Join(base, "report.md")
		if werr := fsutil.WriteFileAtomic(rpath, []byte(res.Markdown), 0o644); werr != nil {
			werr = fmt.Errorf("writing %s: %w", rpath, werr)
			if stepErr == nil {
				stepErr = werr
			}
			return res, stepErr
		}
		res.Report = rpath
		res.Outputs["report"] = rpath
		res.file(rpath, "Markdown report")
		paths := make([]string, len(res.Files))
		for i, f := range res.Files {
			paths[i] = f.Path + " (" + f.What + ")"
		}
		fmt.Fprintf(text, "\noutputs: %s\n", strings.Join(paths, ", "))
		res.Passed = stepErr == nil
		return res, stepErr
	}

	// evaluate-gate
	onStep("evaluate-gate")
	fmt.Fprintf(text, "\n== evaluate-gate\n")
	gres, err := gate.Run(ctx, gcfg)
	if gres != nil {
		rin.Gate = gres
		if rc.OnGate != nil {
			rc.OnGate(gres)
		}
		if gcfg.JUnitPath != "" {
			res.file(gcfg.JUnitPath, "JUnit XML")
		}
		if terr := GateText(text, gcfg.ModelDir, gres); terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		status := StatusError
		var failed *gate.FailedError
		if errors.As(err, &failed) {
			status = StatusFailed
		}
		var outs map[string]string
		if gres != nil {
			outs = GateOutputs(gres)
		}
		res.step("evaluate-gate", status, err.Error(), outs)
		res.step("build-push-image", StatusSkipped, "the gate did not pass", nil)
		res.step("kubectl-deploy", StatusSkipped, "the gate did not pass", nil)
		return finish(err)
	}
	res.step("evaluate-gate", StatusOK, "", GateOutputs(gres))

	// build-push-image
	onStep("build-push-image")
	fmt.Fprintf(text, "\n== build-push-image\n")
	if why := ImageUnavailable(icfg); why != "" {
		fmt.Fprintf(text, "skipped: %s\n", why)
		res.step("build-push-image", StatusSkipped, why, nil)
		res.step("kubectl-deploy", StatusSkipped, "no image", nil)
		return finish(nil)
	}
	ires, err := image.Run(ctx, icfg)
	if err != nil {
		res.step("build-push-image", statusOf(err), err.Error(), nil)
		res.step("kubectl-deploy", StatusSkipped, "no image", nil)
		rin.Failure = &report.Failure{Step: "build-push-image", Error: err.Error()}
		return finish(err)
	}
	res.step("build-push-image", StatusOK, "", ImageOutputs(ires))
	if ires.OCILayout != "" {
		res.file(ires.OCILayout, "OCI image layout")
	}
	if ires.Tarball != "" {
		res.file(ires.Tarball, "image tarball")
	}
	if err := ImageText(text, ires); err != nil {
		return res, err
	}
	rin.Image = ReportImage(ires)

	// kubectl-deploy
	onStep("kubectl-deploy")
	fmt.Fprintf(text, "\n== kubectl-deploy\n")
	dcfg.Image = ires.Ref
	if dcfg.Render {
		path := filepath.Join(base, "manifests.yaml")
		var buf strings.Builder
		dcfg.Out = &buf
		dres, err := deploy.Run(ctx, dcfg)
		if err == nil {
			if werr := fsutil.WriteFileAtomic(path, []byte(buf.String()), 0o644); werr != nil {
				err = fmt.Errorf("writing %s: %w", path, werr)
			}
		}
		if err != nil {
			res.step("kubectl-deploy", statusOf(err), err.Error(), nil)
			rin.Failure = &report.Failure{Step: "kubectl-deploy", Error: err.Error()}
			return finish(err)
		}
		res.step("kubectl-deploy", StatusSkipped, "rendered to "+path+" (deploy.enabled: true applies it)", nil)
		res.file(path, "Kubernetes manifests")
		fmt.Fprintf(text, "rendered %s to %s (deploy.enabled: true in mlship.yaml applies them to a cluster)\n", strings.Join(dres.Objects, ", "), path)
		return finish(nil)
	}
	dres, err := deploy.Run(ctx, dcfg)
	if dres != nil {
		rev := dres.Revision
		var re *deploy.RolloutError
		if errors.As(err, &re) {
			rev = re.Revision
		}
		rin.Deploy = &report.Deploy{Namespace: dres.Namespace, Deployment: dres.Deployment, Service: dres.Service, Image: dres.Image, Revision: rev}
		outs := DeployOutputs(dres, rev)
		if err != nil {
			res.step("kubectl-deploy", statusOf(err), err.Error(), outs)
		} else {
			res.step("kubectl-deploy", StatusOK, "", outs)
			if terr := DeployText(text, dres); terr != nil {
				return res, terr
			}
		}
	} else if err != nil {
		res.step("kubectl-deploy", statusOf(err), err.Error(), nil)
	}
	if err != nil {
		rin.Failure = &report.Failure{Step: "kubectl-deploy", Error: err.Error()}
	}
	return finish(err)
}

func (r *Result) step(name, status, reason string, outputs map[string]string) {
	r.Steps = append(r.Steps, StepResult{Step: name, Status: status, Reason: reason, Outputs: outputs})
	for k, v := range outputs {
		r.Outputs[k] = v
	}
}

func (r *Result) file(path, what string) {
	r.Files = append(r.Files, File{Path: path, What: what})
}

// statusOf is "failed" for a failed check, "error" otherwise.
func statusOf(err error) string {
	if fault.CodeOf(err) == fault.Failed {
		return StatusFailed
	}
	return StatusError
}

// ImageUnavailable says why the image step cannot run with this mlship, or "".
func ImageUnavailable(cfg image.Config) string {
	for _, p := range cfg.Platforms {
		if _, ok := cfg.ServerBinaries[p]; ok {
			continue
		}
		if !slices.Contains(serverbin.Platforms(), p) {
			return fmt.Sprintf("this mlship has no embedded mlship-serve for %s (build it with `make build`)", p)
		}
	}
	return ""
}

// ReportImage is the image as the report shows it.
func ReportImage(r *image.Result) *report.Image {
	return &report.Image{Ref: r.Ref, Digest: r.Digest, Tags: r.Tags, Platforms: r.Platforms,
		Size: r.SizeCompressed, Smoke: r.Smoke, Pushed: r.Pushed}
}

// TrainOutputs are train's outputs.
func TrainOutputs(r *train.Result) map[string]string {
	mj, _ := json.Marshal(r.Metrics)
	return map[string]string{"model-dir": r.ModelDir, "task": string(r.Card.Task), "metrics": string(mj)}
}

// GateOutputs are evaluate-gate's outputs.
func GateOutputs(r *gate.Result) map[string]string {
	return map[string]string{"passed": strconv.FormatBool(r.Passed), "reason": r.Reason}
}

// ImageOutputs are build-push-image's outputs.
func ImageOutputs(r *image.Result) map[string]string {
	return map[string]string{"digest": r.Digest, "image": r.Ref, "tags": strings.Join(r.Tags, ",")}
}

// DeployOutputs are kubectl-deploy's outputs; rev is the revision running.
func DeployOutputs(r *deploy.Result, rev string) map[string]string {
	url := ""
	if r.Service != "" {
		url = "http://" + r.Service + "." + r.Namespace + ".svc.cluster.local"
	}
	return map[string]string{"namespace": r.Namespace, "deployment": r.Deployment, "service": r.Service, "image": r.Image, "revision": rev, "url": url}
}
