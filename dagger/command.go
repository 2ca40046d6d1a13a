package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mlship/mlship/dagger/internal/dagger"
)

// Where things are in the container.
const (
	workDir     = "/mlship/work"         // the working directory, empty
	inDir       = "/mlship/in"           // files and directories given, one folder per input
	secretDir   = "/mlship/secrets"      // secret files (the kubeconfig)
	configDir   = "/mlship/config"       // config: the directory holding mlship.yaml
	projectDir  = "/mlship/project"      // run's project directory
	outDir      = "/mlship/out"          // what the functions return
	outputsFile = "/mlship/outputs.env"  // the step's outputs (--dotenv)
	nonceEnv    = "MLSHIP_DAGGER_CALLED" // set to the time of the call, so that the command runs again
)

// command is one mlship command line and what its container needs: the
// generated functions fill it from their arguments (steps_generated.go), one method
// call per argument.
type command struct {
	step       string
	args       []string
	positional []string
	mounts     []func(*dagger.Container) *dagger.Container
	set        map[string]bool
	gpus       bool
	fresh      bool
	err        error
}

func (m *Mlship) command(step string) *command {
	return &command{step: step, set: map[string]bool{}}
}

func (c *command) flag(name, value string) {
	c.args = append(c.args, "--"+name+"="+value)
	c.set[name] = true
}

func (c *command) mount(f func(*dagger.Container) *dagger.Container) {
	c.mounts = append(c.mounts, f)
}

// str passes a string (also a duration, a shape) when it is given and is not
// the step's default: mlship.yaml decides what the call leaves out.
func (c *command) str(name, v, def string) {
	if v != "" && v != def {
		c.flag(name, v)
	}
}

func (c *command) boolean(name string, v, def bool) {
	if v != def {
		c.flag(name, strconv.FormatBool(v))
	}
}

func (c *command) integer(name string, v, def int) {
	if v != def {
		c.flag(name, strconv.Itoa(v))
	}
}

func (c *command) float(name string, v, def float64) {
	if v != def {
		c.flag(name, strconv.FormatFloat(v, 'g', -1, 64))
	}
}

// list passes each item as its own flag (lists, metric=value and KEY=VALUE
// pairs, conv blocks).
func (c *command) list(name string, vs, def []string) {
	if len(vs) == 0 || slices.Equal(vs, def) {
		return
	}
	for _, v := range vs {
		c.flag(name, v)
	}
}

func (c *command) ints(name string, vs, def []int) {
	if len(vs) == 0 || slices.Equal(vs, def) {
		return
	}
	for _, v := range vs {
		c.flag(name, strconv.Itoa(v))
	}
}

// file mounts a file under its own name (the model's default name is the
// data file's) and names it with the flag.
func (c *command) file(ctx context.Context, name string, f *dagger.File) {
	if f == nil {
		return
	}
	base, err := f.Name(ctx)
	if err != nil {
		c.fail(fmt.Errorf("reading the name of --%s: %w", name, err))
		return
	}
	if base == "" || base == "." || base == "/" {
		base = name
	}
	p := path.Join(inDir, name, path.Base(base))
	c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithMountedFile(p, f) })
	c.flag(name, p)
}

func (c *command) dir(name string, d *dagger.Directory) {
	if d == nil {
		return
	}
	p := path.Join(inDir, name)
	c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithMountedDirectory(p, d) })
	c.flag(name, p)
}

func (c *command) dirs(name string, ds []*dagger.Directory) {
	for i, d := range ds {
		if d == nil {
			continue
		}
		p := path.Join(inDir, name, strconv.Itoa(i))
		c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithMountedDirectory(p, d) })
		c.flag(name, p)
	}
}

// positionalDir mounts run's project directory, given as the argument.
func (c *command) positionalDir(name string, d *dagger.Directory) {
	if d == nil {
		return
	}
	c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithMountedDirectory(projectDir, d) })
	c.positional = append(c.positional, projectDir)
	c.set[name] = true
}

// secret passes a secret as the variable mlship reads it from ($MLSHIP_NAME):
// by reference to the engine's secret, never as a plain value.
func (c *command) secret(env string, s *dagger.Secret) {
	if s == nil {
		return
	}
	c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithSecretVariable(env, s) })
	c.set["$"+env] = true
}

// secretFile mounts a secret as a file (the kubeconfig) and names it with the
// flag.
func (c *command) secretFile(name string, s *dagger.Secret) {
	if s == nil {
		return
	}
	p := path.Join(secretDir, name)
	c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithMountedSecret(p, s) })
	c.flag(name, p)
}

// config mounts the directory holding mlship.yaml.
func (c *command) config(d *dagger.Directory) {
	if d == nil {
		return
	}
	c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithMountedDirectory(configDir, d) })
	c.args = append(c.args, "--config="+configDir)
}

func (c *command) gpu(on bool) { c.gpus = on }

// uncached makes the command run on every call (a push, a deployment, a
// comment), not from the engine's cache.
func (c *command) uncached() { c.fresh = true }

// secretish are names of variables that hold credentials: env refuses them,
// since they belong in secret arguments.
var secretish = []string{"TOKEN", "PASSWORD", "SECRET", "KUBECONFIG", "KEY"}

// env sets CI variables (KEY=VALUE) in the container.
func (c *command) env(kvs []string) {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
			c.fail(inputErrorf("--env %q is not KEY=VALUE", kv))
			return
		}
		for _, s := range secretish {
			if strings.Contains(strings.ToUpper(k), s) {
				c.fail(inputErrorf("--env %s: credentials go in secret arguments (--github-token, --gitlab-token), not in variables", k))
				return
			}
		}
		c.mount(func(ctr *dagger.Container) *dagger.Container { return ctr.WithEnvVariable(k, v) })
		c.set["$"+k] = true
	}
}

func (c *command) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// argv is the command line run in the container.
func (c *command) argv() []string {
	a := []string{"mlship", "--dotenv=" + outputsFile, c.step}
	a = append(a, c.args...)
	return append(a, c.positional...)
}

// result is a command that ran, whatever its exit code.
type result struct {
	ctr            *dagger.Container
	code           int
	stdout, stderr string
}

// exec runs the command; an exit code other than 0 and those in allow is an
// *ExitError.
func (m *Mlship) exec(ctx context.Context, c *command, allow ...int) (*result, error) {
	if c.err != nil {
		return nil, c.err
	}
	ctr, err := m.container(ctx)
	if err != nil {
		return nil, err
	}
	if c.gpus {
		ctr = ctr.ExperimentalWithAllGPUs()
	}
	ctr = ctr.WithWorkdir(workDir)
	for _, f := range c.mounts {
		ctr = f(ctr)
	}
	if c.fresh {
		ctr = ctr.WithEnvVariable(nonceEnv, time.Now().UTC().Format(time.RFC3339Nano))
	}
	ctr = ctr.WithExec(c.argv(), dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny})
	r := &result{ctr: ctr}
	if r.code, err = ctr.ExitCode(ctx); err != nil {
		// Codes that Expect ANY does not take (128 to 191: killed by a
		// signal, or 130 after mlship's own interrupt) fail the exec.
		var xe *dagger.ExecError
		if errors.As(err, &xe) && len(xe.Cmd) > 0 && xe.Cmd[0] == "mlship" {
			return nil, &ExitError{Step: c.step, Code: xe.ExitCode, Stdout: xe.Stdout, Stderr: xe.Stderr}
		}
		return nil, fmt.Errorf("mlship %s: %w", c.step, err)
	}
	if r.stdout, err = ctr.Stdout(ctx); err != nil {
		return nil, fmt.Errorf("mlship %s: reading its output: %w", c.step, err)
	}
	if r.stderr, err = ctr.Stderr(ctx); err != nil {
		return nil, fmt.Errorf("mlship %s: reading its errors: %w", c.step, err)
	}
	if r.code != 0 && !slices.Contains(allow, r.code) {
		return r, &ExitError{Step: c.step, Code: r.code, Stdout: r.stdout, Stderr: r.stderr}
	}
	return r, nil
}

// outputs reads the step's outputs (the --dotenv file), by dotenv name.
func (r *result) outputs(ctx context.Context) (map[string]string, error) {
	s, err := r.ctr.File(outputsFile).Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the outputs: %w", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out, nil
}
