package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mlship/mlship/internal/comment"
	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/report"
	"github.com/mlship/mlship/internal/spec"
	"github.com/mlship/mlship/internal/train"
)

// command makes a cobra command for a step of the spec.
func command(name, long, example string) (*cobra.Command, *spec.Step) {
	step := spec.Lookup(name)
	return &cobra.Command{Use: name, Short: step.Short, Long: long, Example: example, Args: cobra.NoArgs}, step
}

func newTrainCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd, step := command("train", `Train reads a CSV, imputes missing values with the training means, standardises the features,
splits the rows (seeded, stratified for classes: test 20%, validation 20% of the rest), trains an
MLP or CNN with gorgonia (Adam, early stopping on validation loss, best weights restored) and writes
a model directory: model.json (the model card), model.safetensors (weights) and metrics.json
(test-split metrics). Same data, config and seed give a byte-identical directory.`,
		`  mlship train --data heart.csv --target target --binarize '>0' --out model
  mlship train --config examples/digits/mlship.yaml`)
	f := addStepFlags(cmd, step)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r, _, err := f.resolve(stderr, nil)
		if err != nil {
			return err
		}
		cfg, err := pipeline.TrainConfig(r)
		if err != nil {
			return err
		}
		if !f.quiet {
			cfg.Log = stderr
		}
		res, err := train.Run(cmd.Context(), cfg)
		if err != nil {
			return r.Explain(err)
		}
		tj := trainJSON{
			ModelDir: res.ModelDir, Name: res.Card.Name, Task: string(res.Card.Task),
			EpochsRun: res.Card.Training.EpochsRun, BestEpoch: res.Card.Training.BestEpoch,
			TrainRows: res.TrainRows, TrainSeconds: res.TrainSeconds, SamplesPerSecond: res.SamplesPerSecond,
			MissingFilled: res.Card.Data.Missing, DataSHA256: res.Card.Data.SHA256, Metrics: res.Metrics,
		}
		if err := publish(cmd, pipeline.TrainOutputs(res), tj); err != nil {
			return err
		}
		if f.json {
			return writeJSON(stdout, tj)
		}
		return pipeline.TrainText(stdout, res)
	}
	return cmd
}

type trainJSON struct {
	ModelDir         string             `json:"model_dir"`
	Name             string             `json:"name"`
	Task             string             `json:"task"`
	EpochsRun        int                `json:"epochs_run"`
	BestEpoch        int                `json:"best_epoch"`
	TrainRows        int                `json:"train_rows"`
	TrainSeconds     float64            `json:"train_seconds"`
	SamplesPerSecond float64            `json:"samples_per_second"`
	MissingFilled    int                `json:"missing_filled"`
	DataSHA256       string             `json:"data_sha256"`
	Metrics          map[string]float64 `json:"metrics"`
}

func newGateCmd(stdout io.Writer) *cobra.Command {
	cmd, step := command("evaluate-gate", `evaluate-gate reads the model's test-split metrics (or evaluates it on --data), checks each bound
and each allowed drop against the baseline, prints a table of every check and exits 0 when all pass,
1 when any fails (the last line says why) and 2 on usage or input errors. A check on a metric that
is not measured, or a baseline check without a baseline, fails unless allowed.`,
		`  mlship evaluate-gate --model model --min accuracy=0.8 --max log_loss=0.6
  mlship evaluate-gate --model model --baseline prod-model --max-drop accuracy=0.02 --junit gate.xml`)
	f := addStepFlags(cmd, step)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r, _, err := f.resolve(cmd.ErrOrStderr(), nil)
		if err != nil {
			return err
		}
		cfg, err := pipeline.GateConfig(r, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		res, err := gate.Run(cmd.Context(), cfg)
		if res == nil {
			return err
		}
		annotateGate(workflowCommands(cmd, stdout, cmd.ErrOrStderr()), res)
		if perr := publish(cmd, pipeline.GateOutputs(res), res); perr != nil && err == nil {
			err = perr
		}
		var werr error
		if f.json {
			werr = writeJSON(stdout, res)
		} else {
			werr = pipeline.GateText(stdout, cfg.ModelDir, res)
		}
		if werr != nil && err == nil {
			err = werr
		}
		return err
	}
	return cmd
}

func newImageCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd, step := command("build-push-image", `build-push-image packs the model directory and the mlship-serve server into an OCI image with
go-containerregistry: one layer for the server (static binary, CA certificates, a non-root user),
one for the model at /model; entrypoint mlship-serve on port 8080 as user 65532; OCI annotations
and labels with the model's metrics and lineage. The same inputs give the same digest
(SOURCE_DATE_EPOCH sets the creation time, default the Unix epoch). Before pushing it runs the
image for this machine's platform from its own filesystem (unshare + chroot, as root) and POSTs one
row to /predict (--smoke-test). Credentials come from registry-username and $MLSHIP_REGISTRY_PASSWORD,
the docker config ($DOCKER_CONFIG), GitHub's GITHUB_TOKEN for ghcr.io, or GitLab's CI_REGISTRY_USER
and CI_REGISTRY_PASSWORD.`,
		`  mlship build-push-image --model model --image ghcr.io/acme/heart:pr-12 --push
  mlship build-push-image --model model --image heart:dev --oci-layout image/ --platform linux/amd64,linux/arm64`)
	f := addStepFlags(cmd, step)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r, _, err := f.resolve(stderr, nil)
		if err != nil {
			return err
		}
		cfg, err := pipeline.ImageConfig(r, os.Getenv)
		if err != nil {
			return err
		}
		if !f.quiet {
			cfg.Log = stderr
		}
		res, err := image.Run(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		if err := publish(cmd, pipeline.ImageOutputs(res), res); err != nil {
			return err
		}
		if f.json {
			return writeJSON(stdout, res)
		}
		return pipeline.ImageText(stdout, res)
	}
	return cmd
}

func newDeployCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd, step := command("kubectl-deploy", `kubectl-deploy applies a Deployment and a Service for mlship-serve (or your manifests with the image
replaced) with server-side apply (field manager mlship), waits for the rollout with the rules of
kubectl rollout status, and when it fails says why from the pods and events, rolls back to the
previous revision (what kubectl rollout undo does) and exits 1. --dry-run prints the diff against
the live objects; --render prints the manifests without a cluster.`,
		`  mlship kubectl-deploy --image ghcr.io/acme/heart@sha256:... --name heart --namespace models
  mlship kubectl-deploy --image ghcr.io/acme/heart@sha256:... --manifests k8s/ --dry-run`)
	f := addStepFlags(cmd, step)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r, file, err := f.resolve(stderr, nil)
		if err != nil {
			return err
		}
		cfg, err := pipeline.DeployConfig(r, file, os.Getenv)
		if err != nil {
			return err
		}
		cfg.Out = stdout
		if !f.quiet {
			cfg.Log = stderr
		}
		res, err := deploy.Run(cmd.Context(), cfg)
		if res != nil && !cfg.Render && !cfg.DryRun {
			rev := res.Revision
			var re *deploy.RolloutError
			if errors.As(err, &re) {
				rev = re.Revision
			}
			if perr := publish(cmd, pipeline.DeployOutputs(res, rev), res); perr != nil && err == nil {
				err = perr
			}
		}
		switch {
		case res != nil && f.json && !cfg.Render:
			if jerr := writeJSON(stdout, res); jerr != nil && err == nil {
				err = jerr
			}
		case res != nil && !cfg.Render && !cfg.DryRun && err == nil:
			err = pipeline.DeployText(stdout, res)
		}
		return err
	}
	return cmd
}

func newReportCmd(stdout io.Writer) *cobra.Command {
	cmd, step := command("report", `report renders what the pipeline produced as Markdown: a verdict line, the metrics with the
baseline, the change and a direction mark, the gate's checks, the confusion matrix, the training
curve as a Mermaid xychart, the lineage, and the image and deployment when given. It stays under
GitHub's 65536-character comment limit. mlship comment publishes it.`,
		`  mlship report --config examples/heart-disease --image-json image.json > report.md`)
	f := addStepFlags(cmd, step)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r, file, err := f.resolve(cmd.ErrOrStderr(), nil)
		if err != nil {
			return err
		}
		in := pipeline.Inputs("report").(*pipeline.ReportInputs)
		if err := r.Bind(in); err != nil {
			return err
		}
		if err := checkWritable(r, "out", in.Out); err != nil {
			return err
		}
		rin, err := pipeline.ReportInput(cmd.Context(), in.ReportSource, file, os.Getenv)
		if err != nil {
			return r.Explain(err)
		}
		md := report.Markdown(rin)
		if in.Out == "" {
			_, err := io.WriteString(stdout, md)
			return err
		}
		if err := fsutil.WriteFileAtomic(in.Out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("writing %q: %w", in.Out, err)
		}
		return nil
	}
	return cmd
}

// checkWritable refuses an output path that is a directory, before any work.
func checkWritable(r *spec.Resolved, input, path string) error {
	if path == "" {
		return nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return r.Explain(fault.Field(input, "%q is a directory: give a file name", path))
	}
	return nil
}

func newCommentCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd, step := command("comment", `comment renders the report (or takes one with --from-file) and publishes it where the job runs:
- GitHub Actions: one sticky comment per --id on the pull request (found by a hidden marker,
  created then updated), and always the job's step summary. A token that may not comment (pull
  requests from forks) does not fail the job: the report goes to the step summary and to --artifact
  (with a .json beside it naming the pull request), for a workflow_run workflow to post with
  mlship comment --from-file.
- GitLab CI: one sticky note per --id on the merge request (token: MLSHIP_GITLAB_TOKEN or
  GITLAB_TOKEN; CI_JOB_TOKEN cannot post notes), and --metrics-file for artifacts:reports:metrics.
- A terminal: the report on stdout.`,
		`  mlship comment --config . --image-json image.json --id heart
  mlship comment --from-file mlship-report.md   # in a workflow_run workflow`)
	f := addStepFlags(cmd, step)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		getenv := os.Getenv
		r, file, err := f.resolve(stderr, nil)
		if err != nil {
			return err
		}
		in := pipeline.Inputs("comment").(*pipeline.CommentInputs)
		if err := r.Bind(in); err != nil {
			return err
		}
		var md string
		id, repo, pr := in.ID, in.Repo, in.PR
		if in.FromFile != "" {
			var saved comment.Saved
			if md, saved, err = comment.LoadSaved(in.FromFile); err != nil {
				return err
			}
			id, repo = first(id, saved.ID), first(repo, saved.Repo)
			if pr == 0 {
				pr = saved.Number
			}
		} else {
			rin, err := pipeline.ReportInput(cmd.Context(), in.ReportSource, file, getenv)
			if err != nil {
				return r.Explain(err)
			}
			md = report.Markdown(rin)
			id = first(id, rin.Card.Name)
			if in.MetricsFile != "" {
				if err := fsutil.WriteFileAtomic(in.MetricsFile, []byte(pipeline.OpenMetrics(rin)), 0o644); err != nil {
					return fmt.Errorf("writing metrics %q: %w", in.MetricsFile, err)
				}
			}
		}
		id = first(id, "mlship")
		if err := comment.ValidID(id); err != nil {
			return r.Explain(fault.Field("id", "%v", err))
		}
		p := platform.Detect(getenv, stdout)
		if ok, err := p.StepSummary(md); err != nil {
			return err
		} else if ok {
			fmt.Fprintln(stderr, "report written to the step summary")
		}
		target := comment.ToTerminal
		switch p.Kind {
		case platform.GitHub:
			target = comment.ToGitHub
		case platform.GitLab:
			target = comment.ToGitLab
		default:
			_, err := io.WriteString(stdout, md)
			return err
		}
		res, err := comment.Publish(cmd.Context(), comment.PublishConfig{
			Markdown: md, ID: id, Target: target, Repo: repo, Number: pr,
			GitHubToken: in.GitHubToken, GitLabToken: in.GitLabToken, Artifact: in.Artifact,
			Getenv: getenv, Options: comment.Options{UserAgent: "mlship"},
		})
		if err != nil {
			return err
		}
		switch {
		case res.NotPullRequest != "":
			fmt.Fprintf(stderr, "no pull or merge request to comment on (%s); the report is in the step summary or job log\n", res.NotPullRequest)
			if p.Kind != platform.GitHub {
				fmt.Fprint(stdout, md)
			}
			return nil
		case res.Forbidden != nil:
			p.Warning(fmt.Sprintf("could not comment on %s (%s): the report is in the step summary and in %s; "+
				"upload it as an artifact and post it from a workflow_run workflow with `mlship comment --from-file %s`",
				res.Where, res.Forbidden.Message, res.Saved, filepath.Base(res.Saved)))
			return nil
		}
		fmt.Fprintf(stdout, "%s comment %d on %s: %s\n", res.Action, res.ID, res.Where, res.URL)
		return publish(cmd, map[string]string{"comment-url": res.URL}, nil)
	}
	return cmd
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [DIR]",
		Short: spec.Lookup("run").Short,
		Long: `run is the main job: it reads DIR/mlship.yaml (default DIR: .) and runs the pipeline:
train -> evaluate-gate -> build-push-image -> kubectl-deploy, then writes the Markdown report.
Every step's settings come from mlship.yaml (and $MLSHIP_* variables); they are all checked
before anything is written. Outputs go under --out (default mlship-out/NAME): the model directory
(model/), the gate's JUnit report (junit.xml), when the gate passed the image (pushed when the
image section says push: true, else an OCI layout in image/) and the deployment (applied with
--deploy or deploy.enabled, else rendered to manifests.yaml), and report.md. No registry or
cluster is needed. --json prints one result: every step's status and outputs, and the report's
path.`,
		Example: `  mlship run examples/heart-disease
  mlship run --json . > result.json`,
		Args: cobra.MaximumNArgs(1),
	}
	f := addStepFlags(cmd, spec.Lookup("run"))
	cmd.RunE = func(cmd *cobra.Command, args []string) (err error) {
		var res *pipeline.Result
		defer func() {
			jf, _ := cmd.Flags().GetString("json-file")
			if !f.json && jf == "" {
				return
			}
			if res == nil {
				res = &pipeline.Result{Steps: []pipeline.StepResult{}, Outputs: map[string]string{}, Files: []pipeline.File{}}
			}
			res.ExitCode = fault.Code(cmd.Context(), err)
			if err != nil {
				res.Error = flatten(err.Error())
			}
			if f.json {
				if jerr := writeJSON(stdout, res); jerr != nil && err == nil {
					err = jerr
				}
			}
			if jerr := publish(cmd, nil, res); jerr != nil && err == nil {
				err = jerr
			}
		}()
		dir := "."
		if len(args) == 1 {
			dir = args[0]
		}
		file, err := spec.LoadFile(dir)
		if err != nil {
			return err
		}
		// run's own inputs: flags, $MLSHIP_* and mlship.yaml (run.out, deploy.enabled).
		r, err := spec.Resolve(spec.Lookup("run"), spec.Sources{Flags: changedFlags(f), File: file, Getenv: os.Getenv,
			Spell: flagSpelling(file), EnvAreInputs: inAction()})
		if err != nil {
			return err
		}
		in := pipeline.Inputs("run").(*pipeline.RunInputs)
		if err := r.Bind(in); err != nil {
			return err
		}
		rc := pipeline.RunConfig{File: file, Out: in.Out, AppendName: !r.Has("out"), Deploy: in.Deploy, Getenv: os.Getenv, Text: stdout}
		if f.json {
			rc.Text = nil
		}
		if !f.quiet {
			rc.Log = stderr
		}
		gh := workflowCommands(cmd, stdout, stderr)
		inGroup := false
		rc.OnStep = func(step string) {
			if inGroup {
				gh.EndGroup()
			}
			if inGroup = step != ""; inGroup {
				gh.Group("mlship " + step)
			}
		}
		rc.OnGate = func(g *gate.Result) { annotateGate(gh, g) }
		res, err = pipeline.Run(cmd.Context(), rc)
		if res == nil {
			return err
		}
		if perr := publish(cmd, res.Outputs, nil); perr != nil && err == nil {
			err = perr
		}
		if res.Markdown != "" {
			if _, serr := platform.Detect(os.Getenv, stdout).StepSummary(res.Markdown); serr != nil && err == nil {
				err = serr
			}
		}
		return err
	}
	return cmd
}

// changedFlags are the raw values of the flags given.
func changedFlags(f *stepFlags) map[string][]string {
	out := map[string][]string{}
	for name, rf := range f.raw {
		if fl := f.fs.Lookup(name); fl != nil && fl.Changed {
			out[name] = rf.vals
		}
	}
	return out
}

// annotateGate puts one error annotation per failed check on GitHub's run page.
func annotateGate(p *platform.Platform, res *gate.Result) {
	for _, c := range res.Checks {
		if c.Verdict != gate.Fail {
			continue
		}
		value := "not measured"
		if c.Measured {
			value = strconv.FormatFloat(c.Value, 'g', 6, 64)
		}
		p.ErrorTitled(fmt.Sprintf("Gate check failed: %s %s", c.Metric, c.Kind),
			fmt.Sprintf("%s (metric %s, value %s, %s bound %s)", c.Reason, c.Metric, value, c.Kind, strconv.FormatFloat(c.Bound, 'g', 6, 64)))
	}
}
