package pipeline

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mlship/mlship/internal/comment"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/monitor"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/spec"
)

// MonitorConfig is monitor's Config from resolved inputs: the model's name from
// mlship.yaml when not given, and the retraining trigger built from the
// trigger input and the CI's variables.
func MonitorConfig(r *spec.Resolved, file *spec.File, getenv Getenv) (monitor.Config, *MonitorInputs, error) {
	in := Inputs("monitor").(*MonitorInputs)
	if err := r.Bind(in); err != nil {
		return in.Config, in, err
	}
	cfg := in.Config
	if cfg.Model == "" && file != nil {
		cfg.Model = file.String("name")
	}
	if in.RunURL == "" {
		in.RunURL = platform.Detect(getenv, io.Discard).RunURL()
	}
	if err := cfg.Validate(); err != nil {
		return cfg, in, r.Explain(err)
	}
	switch in.Trigger {
	case "":
	case "github":
		repo := in.Repo
		if repo == "" {
			repo = getenv("GITHUB_REPOSITORY")
		}
		if repo == "" {
			return cfg, in, r.Explain(fault.Field("repo", "is required with {trigger} github: the repository `OWNER/NAME` (GITHUB_REPOSITORY is not set)"))
		}
		if in.GitHubToken == "" {
			return cfg, in, r.Explain(fault.Field("github-token", "is required with {trigger} github (a token with `contents: write`; in a workflow pass GITHUB_TOKEN)"))
		}
		api := strings.TrimRight(getenv("GITHUB_API_URL"), "/")
		d := &comment.GitHubDispatch{APIURL: api, Repo: repo, Token: in.GitHubToken}
		runURL := in.RunURL
		cfg.Trigger = func(ctx context.Context, res *monitor.Result) (string, error) {
			t, err := d.Send(ctx, comment.DispatchEventType, DispatchPayload(res, runURL))
			if err != nil {
				return "", err
			}
			return t.Where, nil
		}
	case "gitlab":
		ref := in.Ref
		if ref == "" {
			ref = getenv("CI_DEFAULT_BRANCH")
		}
		if ref == "" {
			return cfg, in, r.Explain(fault.Field("ref", "is required with {trigger} gitlab: the branch to run the pipeline on (CI_DEFAULT_BRANCH is not set)"))
		}
		project := getenv("CI_PROJECT_ID")
		if project == "" {
			return cfg, in, fault.Inputf("trigger gitlab: CI_PROJECT_ID is not set (run in GitLab CI, or set it to the project's id or path)")
		}
		if in.GitLabTriggerToken == "" {
			return cfg, in, r.Explain(fault.Field("gitlab-trigger-token", "is required with {trigger} gitlab (a pipeline trigger token)"))
		}
		api := strings.TrimRight(getenv("CI_API_V4_URL"), "/")
		if api == "" && getenv("CI_SERVER_URL") != "" {
			api = strings.TrimRight(getenv("CI_SERVER_URL"), "/") + "/api/v4"
		}
		g := &comment.GitLabTrigger{APIURL: api, ProjectID: project, Token: in.GitLabTriggerToken, Ref: ref}
		runURL := in.RunURL
		cfg.Trigger = func(ctx context.Context, res *monitor.Result) (string, error) {
			t, err := g.Send(ctx, TriggerVariables(res, runURL))
			if err != nil {
				return "", err
			}
			if t.URL != "" {
				return t.Where + " " + t.URL, nil
			}
			return t.Where, nil
		}
	}
	return cfg, in, nil
}

// DispatchPayload is the client_payload of the repository_dispatch event
// monitor sends (at most 10 top-level properties): the workflow reads
// github.event.client_payload.model, .reason, .drifted, ...
func DispatchPayload(res *monitor.Result, runURL string) map[string]any {
	p := map[string]any{
		"model":   res.Model,
		"reason":  res.Reason,
		"drifted": strings.Join(res.Drifted, ","),
		"window":  res.Window,
		"time":    res.Time.Format(time.RFC3339),
		"source":  "mlship monitor",
	}
	if res.ErrorRate != nil {
		p["error_rate"] = *res.ErrorRate
	}
	if res.P99 != nil {
		p["p99_seconds"] = *res.P99
	}
	if runURL != "" {
		p["run_url"] = runURL
	}
	return p
}

// TriggerVariables are the variables of the GitLab pipeline monitor starts:
// MLSHIP_RETRAIN=true for `rules: - if: $MLSHIP_RETRAIN == "true"`, and why.
func TriggerVariables(res *monitor.Result, runURL string) map[string]string {
	v := map[string]string{
		"MLSHIP_RETRAIN":         "true",
		"MLSHIP_RETRAIN_MODEL":   res.Model,
		"MLSHIP_RETRAIN_REASON":  res.Reason,
		"MLSHIP_RETRAIN_DRIFTED": strings.Join(res.Drifted, ","),
	}
	if runURL != "" {
		v["MLSHIP_RETRAIN_RUN_URL"] = runURL
	}
	return v
}

// MonitorOutputs are monitor's outputs.
func MonitorOutputs(r *monitor.Result) map[string]string {
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'g', 6, 64)
	}
	return map[string]string{
		"passed": strconv.FormatBool(r.Passed), "reason": r.Reason, "drifted": strings.Join(r.Drifted, ","),
		"error-rate": f(r.ErrorRate), "p99": f(r.P99), "triggered": r.Triggered,
	}
}

// MonitorText is monitor's terminal output: one line per check, then the
// verdict.
func MonitorText(w io.Writer, r *monitor.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model     %s (%s), window %s, %.0f requests, %.0f rows\n", r.Model, r.Prometheus, r.Window, r.Requests, r.Rows)
	for _, c := range r.Checks {
		mark := "ok  "
		switch {
		case c.Skipped != "":
			mark = "skip"
		case !c.Passed:
			mark = "FAIL"
		}
		line := fmt.Sprintf("  %s  %-28s %10s  bound %s", mark, c.Name, strconv.FormatFloat(c.Value, 'g', 4, 64), strconv.FormatFloat(c.Bound, 'g', 4, 64))
		if c.Skipped != "" {
			line += "  (not judged: " + c.Skipped + ")"
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	for _, f := range r.Features {
		if !f.Drifted {
			continue
		}
		when := ""
		switch {
		case f.SinceWindowStart:
			when = ", for the whole window"
		case f.Since != nil:
			when = ", since " + f.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "drifted   %s: PSI %.3f%s\n", f.Name, f.PSI, when)
	}
	if r.Triggered != "" {
		fmt.Fprintf(&b, "retrain   %s\n", r.Triggered)
	}
	if r.Passed {
		fmt.Fprintf(&b, "PASSED: %s\n", r.Reason)
	} else {
		fmt.Fprintf(&b, "BREACHED: %s\n", r.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
