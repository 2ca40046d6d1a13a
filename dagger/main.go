// mlship's steps as Dagger functions: train, evaluate-gate, build-push-image,
// kubectl-deploy, report, comment and run
//
// Each function runs the mlship binary in a container, built from this
// repository's source or downloaded from a release pinned by its sha256
// (the version argument of the constructor chooses). The arguments are
// mlship's inputs, generated from its spec (steps_generated.go): files and
// directories for data, models and manifests, secrets for the registry
// password, the kubeconfig and the tokens, and values for the rest. A failed
// gate, a bad input and a failed environment are errors that say which
// (mlship's exit codes 1, 2 and 3).
package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/mlship/mlship/dagger/internal/dagger"
)

const (
	// goImage builds mlship from source (go.mod: go 1.26.1).
	goImage = "golang:1.26"
	// runtimeImage runs mlship: a shell, tar and CA certificates.
	runtimeImage = "alpine:3.22"
	// DefaultReleaseURL is where releases are downloaded from.
	defaultReleaseURL = "https://github.com/mlship/mlship/releases/download"
)

// releases pins the sha256 of each release's linux archives
// (mlship_VERSION_linux_ARCH.tar.gz, from its checksums.txt), by "VERSION
// ARCH". A release not listed here needs the checksum argument.
var releases = map[string]string{}

// Mlship runs mlship's steps.
type Mlship struct {
	// +private
	Version string
	// +private
	Checksum string
	// +private
	ReleaseURL string
	// +private
	Source *dagger.Directory
}

func New(
	// mlship release to run, e.g. 1.2.3: its linux archive is downloaded and checked against a pinned
	// sha256 (default: mlship built from source)
	// +optional
	version string,
	// sha256 of mlship_VERSION_linux_ARCH.tar.gz, as the release's checksums.txt lists it (default: the
	// one this module pins for version)
	// +optional
	checksum string,
	// where releases are downloaded from (a mirror)
	// +optional
	// +default="https://github.com/mlship/mlship/releases/download"
	releaseUrl string,
	// mlship's source, to build it from when no version is given (default: the repository holding
	// this module)
	// +defaultPath="/"
	// +ignore=[".git", "bin", "dist", "mlship-out", "**/mlship-out", ".cache", "**/node_modules", "internal/image/serverbin/bin"]
	sourceDir *dagger.Directory,
) *Mlship {
	if releaseUrl == "" {
		releaseUrl = defaultReleaseURL
	}
	return &Mlship{Version: version, Checksum: checksum, ReleaseURL: releaseUrl, Source: sourceDir}
}

var (
	versionRe  = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	checksumRe = regexp.MustCompile(`^(sha256:)?[0-9a-f]{64}$`)
)

// container is where mlship runs: built from source, or a release.
func (m *Mlship) container(ctx context.Context) (*dagger.Container, error) {
	if m.Version == "" {
		return m.fromSource(), nil
	}
	return m.fromRelease(ctx)
}

// fromSource builds mlship with `make build` (with mlship-serve embedded for
// every image platform) on the Go image, with caches for the modules and
// the builds, and puts the binary on the runtime image.
func (m *Mlship) fromSource() *dagger.Container {
	if m.Source == nil {
		m.Source = dag.Directory()
	}
	bin := dag.Container().From(goImage).
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("mlship-go-mod")).
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("mlship-go-build")).
		WithMountedDirectory("/src", m.Source).
		WithWorkdir("/src").
		WithExec([]string{"make", "build", "BIN=/out", "VERSION=source"}).
		File("/out/mlship")
	return dag.Container().From(runtimeImage).WithFile("/usr/local/bin/mlship", bin)
}

// fromRelease downloads the release's archive for the engine's architecture,
// checked against its pinned sha256, and unpacks mlship onto the runtime
// image.
func (m *Mlship) fromRelease(ctx context.Context) (*dagger.Container, error) {
	if !versionRe.MatchString(m.Version) {
		return nil, inputErrorf("version %q is not a release version like 1.2.3", m.Version)
	}
	v := strings.TrimPrefix(m.Version, "v")
	platform, err := dag.DefaultPlatform(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the engine's platform: %w", err)
	}
	arch := string(platform)
	if i := strings.LastIndex(arch, "/"); i >= 0 {
		arch = arch[i+1:]
	}
	archive := fmt.Sprintf("mlship_%s_linux_%s.tar.gz", v, arch)
	sum := strings.TrimPrefix(strings.ToLower(m.Checksum), "sha256:")
	if m.Checksum == "" {
		sum = releases[v+" "+arch]
		if sum == "" {
			return nil, inputErrorf("mlship %s has no sha256 pinned in this module: give --checksum (the line of %s in the release's checksums.txt)", v, archive)
		}
	} else if !checksumRe.MatchString(strings.ToLower(m.Checksum)) {
		return nil, inputErrorf("checksum %q is not a sha256 (64 hex digits)", m.Checksum)
	}
	file := dag.HTTP(strings.TrimRight(m.ReleaseURL, "/")+"/v"+v+"/"+archive, dagger.HTTPOpts{Checksum: "sha256:" + sum})
	return dag.Container().From(runtimeImage).
		WithMountedFile("/tmp/"+archive, file).
		WithExec([]string{"tar", "-xzf", "/tmp/" + archive, "-C", "/usr/local/bin", "mlship"}), nil
}
