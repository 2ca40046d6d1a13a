package gen

import (
	"fmt"
	"strings"

	"github.com/mlship/mlship/internal/pipeline"
	"github.com/mlship/mlship/internal/spec"
)

// The GitLab front end: ci-templates/STEP.yml, one job each, and
// ci-templates/pipeline.yml with all of them, each with a `spec: inputs`
// header generated from the spec. Every step input is a string input whose
// default '' means "not set" (mlship.yaml or the step's default decides, as
// with the flags); GitLab's typed inputs cannot say "not set", so a type is
// given in the description. Inputs reach the binary as $MLSHIP_NAME variables.

// gitlabStep is how a step runs as a GitLab job.
type gitlabStep struct {
	step  string
	stage string
	needs []string // earlier steps' jobs (optional needs: they may not be in the pipeline)
	// defaults from earlier jobs' dotenv reports, when the input is not set
	fromDotenv map[string]string
	paths      []string // artifact paths
	reports    map[string]string
	when       string // artifacts:when and job when
	env        bool   // a GitLab environment (deploy)
	// scheduled jobs run in scheduled (and manually started) pipelines, not
	// in merge request and branch ones, and stay out of pipeline.yml.
	scheduled bool
}

var gitlabSteps = []gitlabStep{
	{step: "train", stage: "build", paths: []string{"mlship-out/"}},
	{step: "evaluate-gate", stage: "test", needs: []string{"train"},
		fromDotenv: map[string]string{"model": "MODEL_DIR"},
		paths:      []string{"mlship-out/"}, reports: map[string]string{"junit": "mlship-out/junit.xml"}},
	{step: "build-push-image", stage: "deploy", needs: []string{"train", "evaluate-gate"},
		fromDotenv: map[string]string{"model": "MODEL_DIR"}, paths: []string{"mlship-out/results/"}},
	{step: "kubectl-deploy", stage: "deploy", needs: []string{"train", "build-push-image"},
		fromDotenv: map[string]string{"model": "MODEL_DIR", "image": "IMAGE"}, paths: []string{"mlship-out/results/"}, env: true},
	// The note comes last whatever happened (when: always): in the .post stage,
	// which follows every other, with the artifacts of all earlier jobs.
	{step: "comment", stage: ".post",
		fromDotenv: map[string]string{"model": "MODEL_DIR"}, paths: []string{"mlship-out/metrics.txt", "mlship-report.md", "mlship-report.md.json"},
		reports: map[string]string{"metrics": "mlship-out/metrics.txt"}, when: "always"},
	// The monitoring loop: a scheduled pipeline checks the live model and, on
	// a breach, triggers the retraining pipeline (trigger: gitlab).
	{step: "monitor", stage: "test", paths: []string{"mlship-out/monitor.md"}, scheduled: true},
}

// templateInputs are every template's own inputs besides the step's.
func templateInputs(g gitlabStep) []struct{ name, def, desc, typ string } {
	in := []struct{ name, def, desc, typ string }{
		{"job-prefix", "mlship", "jobs are named PREFIX-STEP; include a template twice with two prefixes for two models", ""},
		{"stage", g.stage, "the stage of the job", ""},
		{"job-image", "ghcr.io/mlship/mlship:v1", "the job's image: one holding mlship and a shell (shell runners ignore it)", ""},
		{"tags", "[]", "runner tags, e.g. [gpu] for a GPU runner", "array"},
		{"mlship-version", "", "install this mlship release (e.g. 1.2.3, checked against its checksums.txt) instead of the one in the image or on PATH", ""},
		{"mlship-release-url", "https://github.com/mlship/mlship/releases/download", "where releases are downloaded from (a mirror)", ""},
		{"config", "", "mlship.yaml, or a directory holding one; the inputs given here override it", ""},
	}
	if g.env {
		in = append(in,
			struct{ name, def, desc, typ string }{"environment", "production", "the GitLab environment of the deployment", ""},
			struct{ name, def, desc, typ string }{"environment-url", "$URL", "the environment's URL (default: the Service's address, the url output)", ""})
	}
	return in
}

// GitLabTemplates returns every generated template, by path from the root.
func GitLabTemplates() map[string][]byte {
	out := map[string][]byte{}
	var all strings.Builder
	all.WriteString(header("the whole pipeline: train -> evaluate-gate -> build-push-image -> kubectl-deploy -> comment, one job each"))
	all.WriteString("spec:\n  inputs:\n")
	seen := map[string]bool{}
	var jobs strings.Builder
	for _, g := range gitlabSteps {
		var one strings.Builder
		one.WriteString(header(spec.Lookup(g.step).Short))
		one.WriteString("spec:\n  inputs:\n")
		for _, line := range gitlabInputs(g, "") {
			one.WriteString(line)
		}
		one.WriteString("---\n")
		one.WriteString(gitlabJob(g, ""))
		out["ci-templates/"+g.step+".yml"] = []byte(one.String())
		if g.scheduled {
			continue
		}

		// The pipeline's inputs: the steps' inputs once each, and per-step
		// prefixed where steps disagree (stage).
		for _, line := range gitlabInputs(g, g.step) {
			name := strings.TrimSuffix(strings.TrimSpace(strings.SplitN(line, "\n", 2)[0]), ":")
			if seen[name] {
				continue
			}
			seen[name] = true
			all.WriteString(line)
		}
		jobs.WriteString(gitlabJob(g, g.step))
	}
	all.WriteString("---\n")
	all.WriteString(jobs.String())
	out["ci-templates/pipeline.yml"] = []byte(all.String())
	return out
}

func header(what string) string {
	return "# Generated by `mlship gen files` from internal/spec: do not edit.\n# mlship GitLab CI template: " + what + ".\n"
}

// pipelineName is an input's name in pipeline.yml (step is "" in a step's own
// template). A step input keeps its name when every step that has it means
// the same (reads the same mlship.yaml key: model, baseline-image); otherwise
// it is STEP-NAME (build-push-image-image, kubectl-deploy-image). The
// templates' own inputs are shared, but for stage.
func pipelineName(step, name string, templateOwn bool) string {
	if step == "" {
		return name
	}
	if templateOwn {
		if name == "stage" {
			return step + "-" + name
		}
		return name
	}
	keys := map[string]bool{}
	for _, g := range gitlabSteps {
		if in, ok := spec.Lookup(g.step).Input(name); ok {
			keys[in.Key] = true
		}
	}
	for _, x := range templateInputs(gitlabSteps[len(gitlabSteps)-2]) { // the deploy step has them all
		if x.name == name {
			return step + "-" + name
		}
	}
	if len(keys) > 1 {
		return step + "-" + name
	}
	return name
}

// gitlabInputs are the spec: inputs lines of a step; prefix is "" for the
// step's own template, else the step (pipeline.yml).
func gitlabInputs(g gitlabStep, prefix string) []string {
	var out []string
	for _, x := range templateInputs(g) {
		name := pipelineName(prefix, x.name, true)
		var b strings.Builder
		fmt.Fprintf(&b, "    %s:\n", name)
		if x.typ == "array" {
			fmt.Fprintf(&b, "      type: array\n      default: %s\n", x.def)
		} else {
			fmt.Fprintf(&b, "      default: %s\n", yamlString(x.def))
		}
		desc := x.desc
		if prefix != "" && name != x.name {
			desc = g.step + ": " + desc
		}
		fmt.Fprintf(&b, "      description: %s\n", yamlString(desc))
		out = append(out, b.String())
	}
	defaults := spec.Defaults(pipeline.Inputs(g.step))
	for _, in := range spec.Lookup(g.step).Inputs {
		if in.Secret {
			continue // a CI/CD variable ($MLSHIP_NAME, masked), never an input in the file
		}
		name := pipelineName(prefix, in.Name, false)
		var b strings.Builder
		fmt.Fprintf(&b, "    %s:\n      default: ''\n", name)
		if len(in.Options) > 0 {
			opts := []string{"''"}
			for _, o := range in.Options {
				opts = append(opts, yamlString(o))
			}
			fmt.Fprintf(&b, "      options: [%s]\n", strings.Join(opts, ", "))
		}
		desc := in.Desc
		if prefix != "" && name != in.Name {
			desc = g.step + ": " + desc
		}
		desc += " (" + in.Type.Format()
		if d := defaults[in.Name]; in.DefaultDoc != "" || d != "" {
			if in.DefaultDoc != "" {
				d = in.DefaultDoc
			}
			desc += "; default " + d
		} else if env, ok := g.fromDotenv[in.Name]; ok {
			desc += "; default $" + env + " from the earlier job"
		}
		if in.Key != "" {
			desc += "; mlship.yaml " + in.Key
		}
		desc += ")"
		fmt.Fprintf(&b, "      description: %s\n", yamlString(strings.ReplaceAll(desc, "`", "")))
		out = append(out, b.String())
	}
	return out
}

// gitlabJob is the job of a step; prefix as for gitlabInputs.
func gitlabJob(g gitlabStep, prefix string) string {
	s := spec.Lookup(g.step)
	in := func(name string, template bool) string {
		if template {
			return "$[[ inputs." + pipelineName(prefix, name, true) + " ]]"
		}
		return "$[[ inputs." + pipelineName(prefix, name, false) + " ]]"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "'%s-%s':\n", in("job-prefix", true), g.step)
	fmt.Fprintf(&b, "  stage: %s\n", in("stage", true))
	fmt.Fprintf(&b, "  image: %s\n", in("job-image", true))
	fmt.Fprintf(&b, "  tags: %s\n", in("tags", true))
	if len(g.needs) > 0 {
		b.WriteString("  needs:\n")
		for _, n := range g.needs {
			fmt.Fprintf(&b, "    - {job: '%s-%s', optional: true}\n", in("job-prefix", true), n)
		}
	}
	// Scheduled pipelines run the monitor; the model's jobs run in them only
	// when the schedule (or the monitor's trigger) sets MLSHIP_RETRAIN=true.
	if g.scheduled {
		b.WriteString("  rules:\n    - if: $CI_PIPELINE_SOURCE == \"schedule\" && $MLSHIP_RETRAIN != \"true\"\n    - if: $CI_PIPELINE_SOURCE == \"web\" && $MLSHIP_MONITOR == \"true\"\n")
	} else {
		b.WriteString("  rules:\n    - if: $CI_PIPELINE_SOURCE == \"schedule\" && $MLSHIP_RETRAIN != \"true\"\n      when: never\n    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH\n")
	}
	if g.when == "always" {
		b.WriteString("      when: always\n")
		// the first rule too
		s := b.String()
		s = strings.Replace(s, "    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n", "    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n      when: always\n", 1)
		b.Reset()
		b.WriteString(s)
	}
	if g.env {
		fmt.Fprintf(&b, "  environment:\n    name: %s\n    url: '%s'\n", in("environment", true), in("environment-url", true))
	}
	b.WriteString("  variables:\n    MLSHIP_FRONTEND: gitlab-template\n")
	for _, x := range templateInputs(g) {
		switch x.name {
		case "mlship-version", "mlship-release-url", "config":
			fmt.Fprintf(&b, "    MLSHIP_TEMPLATE_%s: '%s'\n", strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(x.name, "mlship-"), "-", "_")), in(x.name, true))
		}
	}
	for _, i := range s.Inputs {
		if i.Secret {
			continue
		}
		fmt.Fprintf(&b, "    %s: '%s'\n", spec.EnvName(i.Name), in(i.Name, false))
	}
	b.WriteString("  script:\n")
	b.WriteString("    - |\n")
	for _, l := range strings.Split(strings.TrimRight(installScript, "\n"), "\n") {
		b.WriteString("      " + l + "\n")
	}
	for _, name := range sortedMapKeys(g.fromDotenv) {
		env := spec.EnvName(name)
		fmt.Fprintf(&b, "    - export %s=\"${%s:-${%s:-}}\"\n", env, env, g.fromDotenv[name])
	}
	args := ""
	switch g.step {
	case "evaluate-gate":
		b.WriteString("    - export MLSHIP_JUNIT=\"${MLSHIP_JUNIT:-mlship-out/junit.xml}\"\n")
	case "comment":
		b.WriteString("    - export MLSHIP_METRICS_FILE=\"${MLSHIP_METRICS_FILE:-mlship-out/metrics.txt}\"\n")
		for _, r := range []struct{ env, step string }{{"MLSHIP_GATE_JSON", "evaluate-gate"}, {"MLSHIP_IMAGE_JSON", "build-push-image"}, {"MLSHIP_DEPLOY_JSON", "kubectl-deploy"}} {
			fmt.Fprintf(&b, "    - if [ -z \"$%s\" ] && [ -f mlship-out/results/%s.json ]; then export %s=mlship-out/results/%s.json; fi\n", r.env, r.step, r.env, r.step)
		}
	case "train":
		b.WriteString("    - export MLSHIP_OUT=\"${MLSHIP_OUT:-mlship-out/model}\"\n")
	case "monitor":
		b.WriteString("    - export MLSHIP_OUT=\"${MLSHIP_OUT:-mlship-out/monitor.md}\"\n")
	}
	fmt.Fprintf(&b, "    - set -- ; if [ -n \"$MLSHIP_TEMPLATE_CONFIG\" ]; then set -- --config \"$MLSHIP_TEMPLATE_CONFIG\"; fi\n")
	if g.step == "comment" {
		fmt.Fprintf(&b, "    - mlship --dotenv mlship-%s.env %s \"$@\"%s\n", g.step, g.step, args)
	} else {
		fmt.Fprintf(&b, "    - mlship --dotenv mlship-%s.env --json-file mlship-out/results/%s.json %s \"$@\"%s\n", g.step, g.step, g.step, args)
	}
	b.WriteString("  artifacts:\n    when: always\n    paths:\n")
	for _, p := range g.paths {
		fmt.Fprintf(&b, "      - %s\n", p)
	}
	b.WriteString("    reports:\n")
	fmt.Fprintf(&b, "      dotenv: mlship-%s.env\n", g.step)
	for _, k := range sortedMapKeys(g.reports) {
		fmt.Fprintf(&b, "      %s: %s\n", k, g.reports[k])
	}
	// Exit 3 is the environment (a registry, a cluster, an API): worth a retry.
	// 1 (a failed check) and 2 (bad input) never are.
	b.WriteString("  retry:\n    max: 2\n    when: script_failure\n    exit_codes: [3]\n")
	b.WriteString("\n")
	return b.String()
}

func sortedMapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// installScript puts mlship on PATH when mlship-version asks for a release:
// downloaded, checked against the release's checksums.txt (exit 2 when it
// does not match, 3 when the download fails), kept in the project folder.
// Otherwise the image's (or the shell runner's) mlship is used.
const installScript = `if [ -n "$MLSHIP_TEMPLATE_VERSION" ]; then
  v=${MLSHIP_TEMPLATE_VERSION#v}
  case "$(uname -m)" in x86_64|amd64) a=amd64 ;; aarch64|arm64) a=arm64 ;; *) echo "mlship: no release for $(uname -m)" >&2; exit 2 ;; esac
  d="$CI_PROJECT_DIR/.mlship/$v-$a"; f="mlship_${v}_linux_${a}.tar.gz"
  if [ ! -x "$d/mlship" ]; then
    mkdir -p "$d.tmp"
    curl -fsSL --retry 3 -o "$d.tmp/$f" "$MLSHIP_TEMPLATE_RELEASE_URL/v$v/$f" &&
      curl -fsSL --retry 3 -o "$d.tmp/checksums.txt" "$MLSHIP_TEMPLATE_RELEASE_URL/v$v/checksums.txt" ||
      { echo "mlship: cannot download mlship $v from $MLSHIP_TEMPLATE_RELEASE_URL" >&2; exit 3; }
    (cd "$d.tmp" && grep "  $f\$" checksums.txt | sha256sum -c -) >&2 ||
      { echo "mlship: $f does not match the release's checksums.txt: refusing it" >&2; exit 2; }
    tar -xzf "$d.tmp/$f" -C "$d.tmp" mlship && mv "$d.tmp" "$d"
  fi
  export PATH="$d:$PATH"
fi
echo "mlship $(mlship version) at $(command -v mlship)"`

// GitLabTable is the README's table of the templates and their inputs.
func GitLabTable() string {
	var b strings.Builder
	b.WriteString("| template | job | inputs |\n|---|---|---|\n")
	names := func(g gitlabStep, prefix string) []string {
		var out []string
		for _, line := range gitlabInputs(g, prefix) {
			out = append(out, "`"+strings.TrimSuffix(strings.TrimSpace(strings.SplitN(line, "\n", 2)[0]), ":")+"`")
		}
		return out
	}
	var all []string
	seen := map[string]bool{}
	for _, g := range gitlabSteps {
		fmt.Fprintf(&b, "| `ci-templates/%s.yml` | `PREFIX-%s` (stage `%s`) | %s |\n", g.step, g.step, g.stage, strings.Join(names(g, ""), ", "))
		for _, n := range names(g, g.step) {
			if !seen[n] {
				seen[n] = true
				all = append(all, n)
			}
		}
	}
	fmt.Fprintf(&b, "| `ci-templates/pipeline.yml` | all five | %s |\n", strings.Join(all, ", "))
	return b.String()
}
