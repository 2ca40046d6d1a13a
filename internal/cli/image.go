package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/image"
)

type imageFlags struct {
	configPath string
	cfg        image.Config
	platforms  []string
	serverBins []string
	smoke      string
	jsonOut    bool
	quiet      bool
}

func addImageFlags(fs *pflag.FlagSet, f *imageFlags) {
	c := &f.cfg
	fs.StringVar(&c.ModelDir, "model", "", "model directory written by mlship train (default: the config's train.out)")
	fs.StringVar(&c.Image, "image", "", "repository and tag to build, REPO[:TAG], e.g. ghcr.io/acme/heart:pr-12")
	fs.StringArrayVar(&c.Tags, "tag", nil, "another tag for the same image (repeatable)")
	fs.StringSliceVar(&f.platforms, "platform", []string{"linux/amd64"}, "platforms, comma separated; several give an image index (e.g. linux/amd64,linux/arm64)")
	fs.StringVar(&c.Base, "base", "", "base image (default: none, an empty image; nothing is pulled)")
	fs.BoolVar(&c.Push, "push", false, "push to the registry")
	fs.StringVar(&c.OCILayout, "oci-layout", "", "write the image to this directory as an OCI layout")
	fs.StringVar(&c.Tarball, "tarball", "", "write the image to this file (docker save format, one platform)")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow plain HTTP and unverified TLS (loopback registries get plain HTTP without it)")
	fs.StringVar(&f.smoke, "smoke-test", "auto", "run the image before pushing and POST one row to /predict: auto (when this machine can), true, false")
	fs.StringArrayVar(&f.serverBins, "server-bin", nil, "use this mlship-serve binary for a platform, PLATFORM=PATH (default: the ones embedded in mlship)")
	fs.StringVar(&c.CACerts, "ca-certs", "", "CA bundle for the image (default: the host's /etc/ssl/certs/ca-certificates.crt)")
	fs.StringVar(&c.Revision, "revision", "", "org.opencontainers.image.revision (default: the model card's git sha)")
	fs.StringVar(&c.Source, "source", "", "org.opencontainers.image.source (default: the repository URL from GitHub or GitLab variables)")
	fs.StringVar(&c.Version, "image-version", "", "org.opencontainers.image.version (default: the tag)")
	fs.StringVar(&c.Baseline, "baseline-ref", "", "record the baseline image this model was compared with")
}

func newImageCmd(stdout, stderr io.Writer) *cobra.Command {
	f := &imageFlags{}
	cmd := &cobra.Command{
		Use:   "build-push-image",
		Short: "Pack the model and mlship-serve into an OCI image and push it (no Docker daemon)",
		Long: `build-push-image packs the model directory and the mlship-serve server into an OCI image with
go-containerregistry: one layer for the server (static binary, CA certificates, a non-root user),
one for the model at /model; entrypoint mlship-serve on port 8080 as user 65532; OCI annotations
and labels with the model's metrics and lineage. The same inputs give the same digest
(SOURCE_DATE_EPOCH sets the creation time, default the Unix epoch). Before pushing it runs the
image for this machine's platform from its own filesystem (unshare + chroot, as root) and POSTs one
row to /predict (--smoke-test). Credentials come from the docker config ($DOCKER_CONFIG), GitHub's
GITHUB_TOKEN for ghcr.io, or GitLab's CI_REGISTRY_USER and CI_REGISTRY_PASSWORD.`,
		Example: `  mlship build-push-image --model model --image ghcr.io/acme/heart:pr-12 --push
  mlship build-push-image --model model --image heart:dev --oci-layout image/ --platform linux/amd64,linux/arm64`,
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
			if !f.quiet {
				cfg.Log = stderr
			}
			res, err := image.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := publish(cmd, map[string]string{"digest": res.Digest, "image": res.Ref, "tags": strings.Join(res.Tags, ",")}); err != nil {
				return err
			}
			return writeImageResult(stdout, res, f.jsonOut)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.configPath, "config", "", "mlship.yaml (or a directory holding one); flags override it")
	addImageFlags(fs, f)
	fs.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

// resolve merges the config file's image section, the flags and the CI
// environment into an image.Config.
func (f *imageFlags) resolve(fs *pflag.FlagSet, file *config.File, getenv func(string) string) (image.Config, error) {
	cfg := f.cfg
	cfg.Platforms = f.platforms
	smoke := f.smoke
	if file != nil {
		im := file.Image
		if !changed(fs, "model") && file.Train.Out != "" {
			cfg.ModelDir = file.Resolve(file.Train.Out)
		}
		if !changed(fs, "image") && im.Repository != "" {
			cfg.Image = im.Repository
		}
		if !changed(fs, "tag") && len(im.Tags) > 0 {
			cfg.Tags = im.Tags
		}
		if !changed(fs, "platform") && len(im.Platforms) > 0 {
			cfg.Platforms = im.Platforms
		}
		if !changed(fs, "base") && im.Base != "" {
			cfg.Base = im.Base
		}
		if !changed(fs, "push") && im.Push {
			cfg.Push = true
		}
		if !changed(fs, "oci-layout") && im.OCILayout != "" {
			cfg.OCILayout = file.Resolve(im.OCILayout)
		}
		if !changed(fs, "tarball") && im.Tarball != "" {
			cfg.Tarball = file.Resolve(im.Tarball)
		}
		if !changed(fs, "insecure") && im.Insecure {
			cfg.Insecure = true
		}
		if !changed(fs, "smoke-test") && im.SmokeTest != "" {
			smoke = im.SmokeTest
		}
	}
	cfg.Smoke = image.SmokeMode(strings.ToLower(smoke))
	cfg.ServerBinaries = map[string]string{}
	for _, s := range f.serverBins {
		p, path, ok := strings.Cut(s, "=")
		if !ok || p == "" || path == "" {
			return cfg, usageError{fmt.Errorf("--server-bin %q: want PLATFORM=PATH, e.g. linux/amd64=./mlship-serve", s)}
		}
		cfg.ServerBinaries[p] = path
	}
	if cfg.Source == "" {
		cfg.Source = sourceURL(getenv)
	}
	if sde := getenv("SOURCE_DATE_EPOCH"); sde != "" {
		secs, err := strconv.ParseInt(strings.TrimSpace(sde), 10, 64)
		if err != nil {
			return cfg, usageError{fmt.Errorf("$SOURCE_DATE_EPOCH %q is not a Unix time in seconds", sde)}
		}
		cfg.Created = time.Unix(secs, 0).UTC()
	}
	if cfg.ModelDir == "" {
		return cfg, usageError{errors.New("no model directory (--model)")}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// sourceURL is the repository's web address from GitHub Actions or GitLab CI variables.
func sourceURL(getenv func(string) string) string {
	if repo := getenv("GITHUB_REPOSITORY"); repo != "" {
		server := getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		return strings.TrimSuffix(server, "/") + "/" + repo
	}
	return getenv("CI_PROJECT_URL")
}

func writeImageResult(w io.Writer, r *image.Result, jsonOut bool) error {
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "image      %s\n", r.Ref)
	fmt.Fprintf(w, "digest     %s\n", r.Digest)
	fmt.Fprintf(w, "tags       %s\n", strings.Join(r.Tags, ", "))
	fmt.Fprintf(w, "platforms  %s\n", strings.Join(r.Platforms, ", "))
	fmt.Fprintf(w, "size       %.1f MB compressed (one platform)\n", float64(r.SizeCompressed)/1e6)
	fmt.Fprintf(w, "smoke test %s\n", r.Smoke)
	where := []string{}
	if r.Pushed {
		where = append(where, "pushed")
	}
	if r.OCILayout != "" {
		where = append(where, "OCI layout "+r.OCILayout)
	}
	if r.Tarball != "" {
		where = append(where, "tarball "+r.Tarball)
	}
	_, err := fmt.Fprintf(w, "written    %s\n", strings.Join(where, ", "))
	return err
}
