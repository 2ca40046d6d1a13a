// Package image is the build-push-image step: it packs a model directory and the
// mlship-serve server into an OCI image (one layer each, no Docker daemon, with
// go-containerregistry), labels it with the model's metrics and lineage, and
// pushes it to a registry, writes an OCI layout directory or a tarball.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/image/serverbin"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/version"
)

// Annotation keys of mlship's own, beside org.opencontainers.image.*.
const (
	AnnTask        = "dev.mlship.task"
	AnnMetrics     = "dev.mlship.metrics" // JSON object of the test-split metrics
	AnnDataSHA     = "dev.mlship.data.sha256"
	AnnCardSHA     = "dev.mlship.model.card.sha256"
	AnnWeightsSHA  = "dev.mlship.model.weights.sha256"
	AnnBaseline    = "dev.mlship.baseline"
	AnnVersion     = "dev.mlship.version"
	AnnModelName   = "dev.mlship.model.name"
	annCreated     = "org.opencontainers.image.created"
	annRevision    = "org.opencontainers.image.revision"
	annSource      = "org.opencontainers.image.source"
	annVersion     = "org.opencontainers.image.version"
	annTitle       = "org.opencontainers.image.title"
	annDescription = "org.opencontainers.image.description"
	annRefName     = "org.opencontainers.image.ref.name"
)

// SmokeMode says whether to run the built image before pushing.
type SmokeMode string

// Smoke test modes.
const (
	SmokeAuto SmokeMode = "auto" // run it when this machine can (root, unshare, matching platform)
	SmokeOn   SmokeMode = "true" // run it; fail when it cannot run
	SmokeOff  SmokeMode = "false"
)

// Config is what build-push-image needs.
type Config struct {
	// ModelDir is the model directory written by mlship train.
	ModelDir string `mlship:"model"`
	// Image is the repository and tag, REPO[:TAG] (default tag: latest).
	Image string `mlship:"image"`
	// Tags are more tags for the same image.
	Tags []string `mlship:"tag"`
	// Platforms to build, e.g. ["linux/amd64", "linux/arm64"]. With more than
	// one, the result is an image index.
	Platforms []string `mlship:"platform"`
	// Base is the base image reference; "" or "scratch" means none (nothing to pull).
	Base string `mlship:"base"`
	// Push sends the image to the registry.
	Push bool `mlship:"push"`
	// OCILayout, when set, is a directory to write the image to as an OCI layout.
	OCILayout string `mlship:"oci-layout"`
	// Tarball, when set, is a file to write the image to (docker save format; one platform).
	Tarball string `mlship:"tarball"`
	// ServerBinaries maps a platform to a mlship-serve binary to use instead of the
	// one embedded in mlship.
	ServerBinaries map[string]string `mlship:"server-bin"`
	// CACerts is the CA bundle put at /etc/ssl/certs/ca-certificates.crt (default:
	// the host's, when it has one).
	CACerts string `mlship:"ca-certs"`
	// Created is the image's creation time (SOURCE_DATE_EPOCH in the adapters);
	// zero means the Unix epoch, so the same inputs give the same digest.
	Created time.Time
	// Revision, Source and Version fill the OCI annotations of those names
	// (Revision defaults to the model card's git sha, Version to the tag).
	Revision string `mlship:"revision"`
	Source   string `mlship:"source"`
	Version  string `mlship:"image-version"`
	// RevisionFallback is the revision when neither Revision nor the model
	// card's git sha is set: the CI's commit (GITHUB_SHA, CI_COMMIT_SHA), set
	// by the adapters.
	RevisionFallback string
	// Baseline is recorded in the annotations (the image the gate compared with).
	Baseline string `mlship:"baseline-image"`
	// Insecure allows plain HTTP and unverified TLS to any registry (loopback
	// registries get plain HTTP without it).
	Insecure bool `mlship:"insecure"`
	// Smoke says whether to run the image before pushing.
	Smoke SmokeMode `mlship:"smoke-test"`
	// Timeout bounds the registry work, retries included: the push, and the
	// base image's pull and use (10m when 0). Each request is bounded by the
	// Transport's timeouts too.
	Timeout time.Duration `mlship:"timeout"`
	// Keychain finds registry credentials (default: docker config, then CI tokens).
	Keychain authn.Keychain
	// Transport is the HTTP transport (default: DefaultTransport(), whose
	// requests are bounded).
	Transport http.RoundTripper
	// Retry is the backoff between tries of a registry operation (default:
	// DefaultRetry, 5 tries from 500ms, x3).
	Retry *remote.Backoff
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DefaultConfig is one platform (linux/amd64) and a smoke test when this
// machine can run it.
func DefaultConfig() Config {
	return Config{Platforms: []string{"linux/amd64"}, Smoke: SmokeAuto, Timeout: 10 * time.Minute}
}

// Validate checks the configuration. Its errors are *fault.FieldError keyed by
// input name (internal/spec), joined.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fault.Field(field, format, a...)) }
	if c.ModelDir == "" {
		add("model", "is required (the model directory)")
	}
	if c.Image == "" {
		add("image", "is required (REPO[:TAG])")
	} else if _, err := c.ref(c.Image); err != nil {
		add("image", "%s", err)
	}
	for _, t := range c.Tags {
		if _, err := name.NewTag("example.com/x:"+t, name.StrictValidation); err != nil {
			add("tag", "%q is not a valid tag", t)
		}
	}
	if !c.Push && c.OCILayout == "" && c.Tarball == "" {
		add("push", "is not set and neither is {oci-layout} or {tarball}: nothing to do")
	}
	for _, p := range c.platforms() {
		if _, err := v1.ParsePlatform(p); err != nil || !strings.Contains(p, "/") {
			add("platform", "%q is not OS/ARCH[/VARIANT], e.g. linux/amd64", p)
		}
	}
	if c.Tarball != "" && len(c.platforms()) > 1 {
		add("tarball", "holds one platform; use {oci-layout} or {push} for several")
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative, got %s", c.Timeout)
	}
	switch c.Smoke {
	case "", SmokeAuto, SmokeOn, SmokeOff:
	default:
		add("smoke-test", "must be auto, true or false, got %q", c.Smoke)
	}
	return errors.Join(errs...)
}

func (c Config) platforms() []string {
	if len(c.Platforms) == 0 {
		return []string{"linux/amd64"}
	}
	return c.Platforms
}

// ref parses an image reference: a tag (digests cannot be pushed to).
func (c Config) ref(s string) (name.Tag, error) {
	var opts []name.Option
	if c.Insecure {
		opts = append(opts, name.Insecure)
	}
	t, err := name.NewTag(s, opts...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("%q is not REPO[:TAG], e.g. ghcr.io/acme/model:v1 (%v)", s, err)
	}
	return t, nil
}

// Result is what build-push-image produced.
type Result struct {
	// Digest of the pushed or written manifest: the image, or the index when
	// there are several platforms.
	Digest string `json:"digest"`
	// Ref is REPO@DIGEST.
	Ref       string   `json:"image"`
	Tags      []string `json:"tags"`
	Platforms []string `json:"platforms"`
	Pushed    bool     `json:"pushed"`
	OCILayout string   `json:"oci_layout,omitempty"`
	Tarball   string   `json:"tarball,omitempty"`
	// SizeCompressed is the bytes a registry stores for one platform's image:
	// compressed layers, config and manifest.
	SizeCompressed int64 `json:"size_compressed"`
	// Layers lists each platform's layer digests and sizes.
	Layers map[string][]LayerInfo `json:"layers"`
	// Smoke says what the smoke test did: "passed", or "skipped: why".
	Smoke       string            `json:"smoke_test"`
	Annotations map[string]string `json:"annotations"`
}

// LayerInfo describes one layer.
type LayerInfo struct {
	Name   string `json:"name"` // "server" or "model"
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// built is the image before it leaves the process.
type built struct {
	images    map[string]v1.Image // by platform
	index     v1.ImageIndex       // nil for one platform
	anns      map[string]string
	platforms []string
	card      *model.Card
}

func (b *built) top() (v1.Image, v1.ImageIndex) {
	if b.index != nil {
		return nil, b.index
	}
	return b.images[b.platforms[0]], nil
}

// Run builds the image, smoke-tests it, and pushes or writes it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	tag, _ := cfg.ref(cfg.Image)
	if err := checkOutputs(cfg); err != nil {
		return nil, err
	}
	// The base image is pulled, and its layers read, within cfg.Timeout.
	bctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	b, err := build(bctx, cfg, tag, logw)
	if err != nil {
		return nil, err
	}
	res := &Result{Platforms: b.platforms, Annotations: b.anns, Layers: map[string][]LayerInfo{}}
	for _, p := range b.platforms {
		img := b.images[p]
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		var size int64
		for i, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, err
			}
			sz, err := l.Size()
			if err != nil {
				return nil, err
			}
			n := "server"
			if i == len(layers)-1 {
				n = "model"
			} else if i < len(layers)-2 {
				n = "base"
			}
			res.Layers[p] = append(res.Layers[p], LayerInfo{Name: n, Digest: d.String(), Size: sz})
			size += sz
		}
		cb, _ := img.RawConfigFile()
		mb, _ := img.RawManifest()
		if p == b.platforms[0] {
			res.SizeCompressed = size + int64(len(cb)) + int64(len(mb))
		}
	}
	img, idx := b.top()
	var digest v1.Hash
	if idx != nil {
		digest, err = idx.Digest()
	} else {
		digest, err = img.Digest()
	}
	if err != nil {
		return nil, err
	}
	res.Digest = digest.String()
	res.Ref = tag.Context().Digest(digest.String()).String()
	res.Tags = append([]string{tag.TagStr()}, cfg.Tags...)
	fmt.Fprintf(logw, "built %s (%s), %s, %d bytes compressed\n", res.Ref, strings.Join(b.platforms, ", "), b.card.Name, res.SizeCompressed)

	res.Smoke, err = smokeTest(ctx, cfg, b, logw)
	if err != nil {
		return nil, err
	}
	tags := []name.Tag{tag}
	for _, t := range cfg.Tags {
		tags = append(tags, tag.Context().Tag(t))
	}
	if cfg.Tarball != "" {
		if err := writeTarball(cfg.Tarball, tags, b.images[b.platforms[0]]); err != nil {
			return nil, err
		}
		res.Tarball = cfg.Tarball
		fmt.Fprintf(logw, "wrote %s\n", cfg.Tarball)
	}
	if cfg.OCILayout != "" {
		if err := writeLayout(cfg.OCILayout, tags, b); err != nil {
			return nil, err
		}
		res.OCILayout = cfg.OCILayout
		fmt.Fprintf(logw, "wrote OCI layout %s\n", cfg.OCILayout)
	}
	if cfg.Push {
		if err := push(ctx, cfg, tag, b, logw); err != nil {
			return nil, err
		}
		res.Pushed = true
	}
	return res, nil
}

// build assembles one image per platform and, for several, the index.
func build(ctx context.Context, cfg Config, tag name.Tag, logw io.Writer) (*built, error) {
	m, err := model.Load(cfg.ModelDir) // the card, and weights that load
	if err != nil {
		return nil, err
	}
	card := m.Card
	for _, p := range cfg.platforms() {
		if _, ok := cfg.ServerBinaries[p]; !ok && !slices.Contains(serverbin.Platforms(), p) {
			return nil, fault.Inputf("no embedded mlship-serve for %s in this mlship, %s; give --server-bin %s=PATH to build for it", p, serverbin.Have(), p)
		}
	}
	cardBytes, err := os.ReadFile(filepath.Join(cfg.ModelDir, model.CardFile))
	if err != nil {
		return nil, err
	}
	created := cfg.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	mlayer, err := modelLayer(cfg.ModelDir, created)
	if err != nil {
		return nil, err
	}
	var ca []byte
	caPath := cfg.CACerts
	if caPath == "" {
		caPath = "/etc/ssl/certs/ca-certificates.crt"
	}
	if b, err := os.ReadFile(caPath); err == nil {
		ca = b
	} else if cfg.CACerts != "" {
		return nil, fmt.Errorf("reading CA certificates %q: %w", cfg.CACerts, err)
	}

	anns := annotations(cfg, tag, card, cardBytes, created)
	b := &built{images: map[string]v1.Image{}, anns: anns, platforms: cfg.platforms(), card: card}
	for _, p := range b.platforms {
		plat, _ := v1.ParsePlatform(p)
		bin, err := serverBinary(cfg, p)
		if err != nil {
			return nil, err
		}
		slayer, err := serverLayer(bin, ca, created)
		if err != nil {
			return nil, err
		}
		base, err := baseImage(ctx, cfg, *plat, logw)
		if err != nil {
			return nil, err
		}
		img, err := mutate.Append(base,
			mutate.Addendum{Layer: slayer, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "mlship build-push-image: mlship-serve " + version.Version}},
			mutate.Addendum{Layer: mlayer, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "mlship build-push-image: model " + card.Name}},
		)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.Architecture, cf.OS, cf.Variant, cf.OSVersion = plat.Architecture, plat.OS, plat.Variant, plat.OSVersion
		cf.Created = v1.Time{Time: created}
		cf.Author = "mlship " + version.Version
		c := &cf.Config
		c.Entrypoint = []string{ServerPath}
		c.Cmd = nil
		c.User = fmt.Sprintf("%d:%d", UID, UID)
		c.WorkingDir = "/"
		c.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}}
		c.Env = mergeEnv(c.Env, []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"MLSHIP_MODEL_DIR=" + ModelPath,
			fmt.Sprintf("MLSHIP_ADDR=:%d", Port),
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		})
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for k, v := range anns {
			c.Labels[k] = v
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, err
		}
		img = mutate.Annotations(img, anns).(v1.Image)
		b.images[p] = img
	}
	if len(b.platforms) > 1 {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, p := range b.platforms {
			plat, _ := v1.ParsePlatform(p)
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        b.images[p],
				Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: plat},
			})
		}
		b.index = mutate.Annotations(idx, anns).(v1.ImageIndex)
	}
	return b, nil
}

// baseImage is the empty OCI image or the --base image for a platform.
func baseImage(ctx context.Context, cfg Config, p v1.Platform, logw io.Writer) (v1.Image, error) {
	if cfg.Base == "" || cfg.Base == "scratch" {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
	}
	var opts []name.Option
	if cfg.Insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(cfg.Base, opts...)
	if err != nil {
		return nil, fault.Inputf("base image %q: %w", cfg.Base, err)
	}
	// The image reads its layers later (smoke test, layout, push) with this
	// ctx: Run bounds it by cfg.Timeout from the pull on.
	var img v1.Image
	var cf *v1.ConfigFile
	err = retry(ctx, cfg, logw, fmt.Sprintf("pulling base image %q for %s", cfg.Base, p), func(ctx context.Context) error {
		var err error
		if img, err = remote.Image(ref, append(remoteOptions(ctx, cfg), remote.WithPlatform(p))...); err != nil {
			return err
		}
		cf, err = img.ConfigFile()
		return err
	})
	if err != nil {
		return nil, err
	}
	// A single-platform base is returned whatever platform is asked for.
	if (cf.OS != "" && cf.OS != p.OS) || (cf.Architecture != "" && cf.Architecture != p.Architecture) {
		return nil, fmt.Errorf("base image %q is %s/%s, not %s (use a multi-platform base or fewer --platform)", cfg.Base, cf.OS, cf.Architecture, p)
	}
	return img, nil
}

func serverBinary(cfg Config, platform string) ([]byte, error) {
	if p, ok := cfg.ServerBinaries[platform]; ok {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading mlship-serve for %s: %w", platform, err)
		}
		return b, nil
	}
	return serverbin.Get(platform)
}

func mergeEnv(base, add []string) []string {
	keys := map[string]int{}
	out := append([]string(nil), base...)
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = i
	}
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := keys[k]; ok {
			out[i] = kv
		} else {
			keys[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// annotations are the image's OCI and mlship annotations (also its labels).
func annotations(cfg Config, tag name.Tag, card *model.Card, cardBytes []byte, created time.Time) map[string]string {
	sum := sha256.Sum256(cardBytes)
	mj, _ := json.Marshal(card.Metrics) // map keys sorted
	rev := cfg.Revision
	if rev == "" {
		rev = card.GitSHA
	}
	if rev == "" {
		rev = cfg.RevisionFallback
	}
	ver := cfg.Version
	if ver == "" {
		ver = tag.TagStr()
	}
	a := map[string]string{
		annCreated:     created.Format(time.RFC3339),
		annTitle:       card.Name,
		annDescription: fmt.Sprintf("mlship model %s: %s, %s", card.Name, card.Task, card.Network.String()),
		annVersion:     ver,
		AnnTask:        string(card.Task),
		AnnMetrics:     string(mj),
		AnnDataSHA:     card.Data.SHA256,
		AnnCardSHA:     hex.EncodeToString(sum[:]),
		AnnWeightsSHA:  card.Weights.SHA256,
		AnnVersion:     version.Version,
		AnnModelName:   card.Name,
	}
	if rev != "" {
		a[annRevision] = rev
	}
	if cfg.Source != "" {
		a[annSource] = cfg.Source
	}
	if cfg.Baseline != "" {
		a[AnnBaseline] = cfg.Baseline
	}
	return a
}

// hostPlatform is this machine's platform, for the smoke test.
func hostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }
