package main

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/mlship/mlship/dagger/internal/dagger"
)

// The hand-written part of each function: the outputs set in the container and
// what is returned. The functions themselves, with their arguments, are
// generated (steps_generated.go).

func (m *Mlship) train(ctx context.Context, cmd *command) (*dagger.Directory, error) {
	model := path.Join(outDir, "model")
	cmd.flag("out", model)
	cmd.args = append(cmd.args, "--quiet")
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return r.ctr.Directory(model), nil
}

func (m *Mlship) evaluateGate(ctx context.Context, cmd *command) (string, error) {
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	return r.stdout, nil
}

func (m *Mlship) evaluateGateJunit(ctx context.Context, cmd *command) (*dagger.File, error) {
	junit := path.Join(outDir, "junit.xml")
	cmd.flag("junit", junit)
	r, err := m.exec(ctx, cmd, 1) // a failed gate has its report too
	if err != nil {
		return nil, err
	}
	return r.ctr.File(junit), nil
}

func (m *Mlship) buildPushImage(ctx context.Context, cmd *command) (string, error) {
	cmd.args = append(cmd.args, "--quiet")
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	return r.output(ctx, "IMAGE")
}

func (m *Mlship) buildImageLayout(ctx context.Context, cmd *command) (*dagger.Directory, error) {
	layout := path.Join(outDir, "oci")
	cmd.flag("oci-layout", layout)
	cmd.args = append(cmd.args, "--quiet")
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return r.ctr.Directory(layout), nil
}

func (m *Mlship) kubectlDeploy(ctx context.Context, cmd *command) (string, error) {
	printed := cmd.set["render"] || cmd.set["dry-run"]
	if !printed {
		cmd.args = append(cmd.args, "--quiet")
	}
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	if printed {
		return r.stdout, nil
	}
	return r.output(ctx, "REVISION")
}

func (m *Mlship) report(ctx context.Context, cmd *command) (string, error) {
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	return r.stdout, nil
}

func (m *Mlship) comment(ctx context.Context, cmd *command) (string, error) {
	if cmd.set["$MLSHIP_GITHUB_TOKEN"] && !cmd.set["$GITLAB_CI"] && !cmd.set["$GITHUB_ACTIONS"] {
		// mlship comments on GitHub when it runs in GitHub Actions.
		cmd.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithEnvVariable("GITHUB_ACTIONS", "true") })
	}
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	out, err := r.outputs(ctx)
	if err != nil {
		return "", err
	}
	if u := out["COMMENT_URL"]; u != "" {
		return u, nil
	}
	return withoutWorkflowCommands(r.stdout), nil
}

func (m *Mlship) monitor(ctx context.Context, cmd *command) (string, error) {
	cmd.args = append(cmd.args, "--quiet")
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	return r.stdout, nil
}

func (m *Mlship) run(ctx context.Context, cmd *command) (*dagger.Directory, error) {
	cmd.flag("out", outDir)
	cmd.args = append(cmd.args, "--quiet")
	r, err := m.exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return r.ctr.Directory(outDir), nil
}

// withoutWorkflowCommands drops the lines mlship writes for GitHub Actions
// (::add-mask::, annotations), which mean nothing to a caller.
func withoutWorkflowCommands(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(line, "::") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// output is one output of the step, which must be there.
func (r *result) output(ctx context.Context, name string) (string, error) {
	out, err := r.outputs(ctx)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(out[name])
	if v == "" {
		return "", fmt.Errorf("mlship wrote no %s output", name)
	}
	return v, nil
}
