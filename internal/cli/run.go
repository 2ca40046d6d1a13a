package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/deploy"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/image"
	"github.com/mlship/mlship/internal/image/serverbin"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/report"
	"github.com/mlship/mlship/internal/train"
)

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	var out string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "run [DIR]",
		Short: "Run the whole pipeline on a project directory holding mlship.yaml",
		Long: `run is the main job: it reads DIR/mlship.yaml (default DIR: .) and runs the pipeline as far as
it exists: train -> evaluate-gate -> build-push-image -> kubectl-deploy, with a report on the
terminal. Outputs go under --out (default mlship-out/NAME): the model directory (model/), the
gate's JUnit report (junit.xml) and, when the gate passed, the image (pushed when mlship.yaml's
image section says so, else an OCI layout in image/) and the deployment (applied when its deploy
section is enabled, else rendered to manifests.yaml). No registry or cluster is needed.`,
		Example: `  mlship run examples/heart-disease`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			file, err := config.Load(dir)
			if err != nil {
				return err
			}
			// The same resolution as "mlship train --config DIR" and
			// "mlship evaluate-gate --config DIR", with the outputs placed under --out.
			tf := &trainFlags{configPath: file.Path}
			tfs := pflag.NewFlagSet("train", pflag.ContinueOnError)
			addTrainFlags(tfs, tf)
			cfg, err := tf.resolve(tfs)
			if err != nil {
				return err
			}
			if cfg.Name == "" {
				cfg.Name = filepath.Base(filepath.Clean(file.Dir))
				if cfg.Name == "." || cfg.Name == string(filepath.Separator) {
					cfg.Name = "model"
				}
			}
			base := out
			if !changed(cmd.Flags(), "out") {
				base = filepath.Join(out, cfg.Name)
			}
			cfg.OutDir = filepath.Join(base, "model")
			if !quiet {
				cfg.Log = stderr
			}

			gf := &gateFlags{}
			gfs := pflag.NewFlagSet("evaluate-gate", pflag.ContinueOnError)
			addGateFlags(gfs, gf)
			if err := gfs.Set("model", cfg.OutDir); err != nil {
				return err
			}
			if file.Gate.JUnit == "" {
				if err := gfs.Set("junit", filepath.Join(base, "junit.xml")); err != nil {
					return err
				}
			}
			gcfg, err := gf.resolve(gfs, file)
			if err != nil {
				return err
			}

			fmt.Fprintf(stdout, "== train (%s)\n", file.Path)
			res, err := train.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := writeTrainText(stdout, res); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "\n== evaluate-gate\n")
			gres, err := runGate(cmd, stdout, gcfg, false)
			var failed *gate.FailedError
			if err != nil && !errors.As(err, &failed) {
				return err
			}
			outputs := []string{cfg.OutDir + " (model card, weights, metrics)", gcfg.JUnitPath}
			rin := report.Input{Card: res.Card, Gate: gres, RunURL: platform.Detect(os.Getenv, io.Discard).RunURL()}
			if err == nil {
				fmt.Fprintf(stdout, "\n== build-push-image\n")
				icfg, ierr := runImageConfig(file, cfg, base, quiet, stderr)
				if ierr != nil {
					return ierr
				}
				if why := imageUnavailable(icfg); why != "" {
					fmt.Fprintf(stdout, "skipped: %s\n", why)
				} else {
					ires, ierr := image.Run(cmd.Context(), icfg)
					if ierr != nil {
						return ierr
					}
					if ierr := writeImageResult(stdout, ires, false); ierr != nil {
						return ierr
					}
					if ires.OCILayout != "" {
						outputs = append(outputs, ires.OCILayout+" (OCI image layout)")
					}
					rin.Image = &report.Image{Ref: ires.Ref, Digest: ires.Digest, Tags: ires.Tags, Platforms: ires.Platforms,
						Size: ires.SizeCompressed, Smoke: ires.Smoke, Pushed: ires.Pushed}
					fmt.Fprintf(stdout, "\n== kubectl-deploy\n")
					out, dres, derr := runDeploy(cmd, file, cfg, ires, base, quiet, stdout, stderr)
					if out != "" {
						outputs = append(outputs, out)
					}
					if dres != nil && !dres.Rendered {
						rin.Deploy = &report.Deploy{Namespace: dres.Namespace, Deployment: dres.Deployment, Service: dres.Service,
							Image: dres.Image, Revision: dres.Revision}
					}
					if derr != nil {
						return derr
					}
				}
			}
			md := report.Markdown(rin)
			rpath := filepath.Join(base, "report.md")
			if werr := fsutil.WriteFileAtomic(rpath, []byte(md), 0o644); werr != nil {
				return fmt.Errorf("writing %s: %w", rpath, werr)
			}
			outputs = append(outputs, rpath+" (Markdown report)")
			if _, werr := platform.Detect(os.Getenv, stdout).StepSummary(md); werr != nil {
				return werr
			}
			fmt.Fprintf(stdout, "\noutputs: %s\n", strings.Join(outputs, ", "))
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "mlship-out", "output directory (default: mlship-out/NAME)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

// runImageConfig is the image step of `mlship run`: the config file's image
// section, with the embedded default when it names no registry: an OCI layout
// under the run's output directory, tagged mlship.local/NAME:latest.
func runImageConfig(file *config.File, tc train.Config, base string, quiet bool, stderr io.Writer) (image.Config, error) {
	f := &imageFlags{}
	fs := pflag.NewFlagSet("build-push-image", pflag.ContinueOnError)
	addImageFlags(fs, f)
	if err := fs.Set("model", tc.OutDir); err != nil {
		return image.Config{}, err
	}
	im := file.Image
	if im.Repository == "" {
		if err := fs.Set("image", "mlship.local/"+imageName(tc.Name)+":latest"); err != nil {
			return image.Config{}, err
		}
	}
	if !im.Push && im.OCILayout == "" && im.Tarball == "" {
		if err := fs.Set("oci-layout", filepath.Join(base, "image")); err != nil {
			return image.Config{}, err
		}
	}
	cfg, err := f.resolve(fs, file, os.Getenv)
	if err != nil {
		return cfg, err
	}
	if !quiet {
		cfg.Log = stderr
	}
	return cfg, nil
}

// imageName makes a repository path component from a model name.
func imageName(s string) string {
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

// imageUnavailable says why the image step cannot run with this mlship, or "".
func imageUnavailable(cfg image.Config) string {
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

// runDeploy is the deploy step of `mlship run`: to the cluster when the config's
// deploy section is enabled (the image must have been pushed), else the embedded
// default: the manifests rendered to OUT/manifests.yaml, no cluster needed.
func runDeploy(cmd *cobra.Command, file *config.File, tc train.Config, img *image.Result, base string, quiet bool, stdout, stderr io.Writer) (string, *deploy.Result, error) {
	f := &deployFlags{}
	fs := pflag.NewFlagSet("kubectl-deploy", pflag.ContinueOnError)
	addDeployFlags(fs, f)
	for k, v := range map[string]string{"image": img.Ref, "model": tc.OutDir} {
		if err := fs.Set(k, v); err != nil {
			return "", nil, err
		}
	}
	if file.Deploy.Name == "" {
		if err := fs.Set("name", imageName(tc.Name)); err != nil {
			return "", nil, err
		}
	}
	if file.Deploy.Enabled && !img.Pushed {
		return "", nil, usageError{fmt.Errorf("config %s: deploy.enabled needs the image in a registry (image.push: true)", file.Path)}
	}
	if !file.Deploy.Enabled {
		if err := fs.Set("render", "true"); err != nil {
			return "", nil, err
		}
	}
	cfg, err := f.resolve(fs, file, os.Getenv)
	if err != nil {
		return "", nil, err
	}
	if !quiet {
		cfg.Log = stderr
	}
	if cfg.Render {
		path := filepath.Join(base, "manifests.yaml")
		var buf strings.Builder
		cfg.Out = &buf
		res, err := deploy.Run(cmd.Context(), cfg)
		if err != nil {
			return "", nil, err
		}
		if err := fsutil.WriteFileAtomic(path, []byte(buf.String()), 0o644); err != nil {
			return "", nil, fmt.Errorf("writing %s: %w", path, err)
		}
		fmt.Fprintf(stdout, "rendered %s to %s (deploy.enabled: true in mlship.yaml applies them to a cluster)\n", strings.Join(res.Objects, ", "), path)
		return path + " (Kubernetes manifests)", res, nil
	}
	res, err := deploy.Run(cmd.Context(), cfg)
	if res != nil && err == nil {
		writeDeployResult(stdout, res)
	}
	return "", res, err
}
