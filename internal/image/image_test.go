package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/testutil/registry"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no model", func(c *Config) { c.ModelDir = "" }, "model is required"},
		{"bad ref", func(c *Config) { c.Image = "UPPER/case:x" }, `image "UPPER/case:x" is not REPO[:TAG]`},
		{"digest ref", func(c *Config) { c.Image = "r.io/x@sha256:" + strings.Repeat("a", 64) }, "is not REPO[:TAG]"},
		{"nothing to do", func(c *Config) { c.Push = false }, "nothing to do"},
		{"bad platform", func(c *Config) { c.Platforms = []string{"amd64"} }, `platform "amd64" is not OS/ARCH`},
		{"tarball multi", func(c *Config) { c.Tarball, c.Platforms = "x.tar", []string{"linux/amd64", "linux/arm64"} }, "tarball holds one platform"},
		{"bad tag", func(c *Config) { c.Tags = []string{"no spaces"} }, `tag "no spaces" is not a valid tag`},
		{"bad smoke", func(c *Config) { c.Smoke = "maybe" }, `smoke-test must be auto, true or false, got "maybe"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("registry.example.com/models/heart:v1")
			c.Push = true
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// files lists a layer's tar entries with their modes and contents.
func files(t *testing.T, l v1.Layer) map[string]*tar.Header {
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out[h.Name] = h
	}
}

// TestPushMultiArch pushes a two-platform image to a registry that requires basic
// auth and reads everything back.
func TestPushMultiArch(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{Username: "ci", Password: "s3cret"})
	cfg := testConfig(reg.Ref("models/heart:v1"))
	cfg.Push = true
	cfg.Tags = []string{"latest"}
	cfg.Platforms = []string{"linux/amd64", "linux/arm64"}
	cfg.Revision, cfg.Source = "0123abc", "https://github.com/acme/models"
	cfg.Keychain = staticKeychain{reg.Host: reg.Auth()}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.True(t, res.Pushed)
	assert.Equal(t, []string{"v1", "latest"}, res.Tags)
	assert.Equal(t, reg.Host+"/models/heart@"+res.Digest, res.Ref)
	assert.Less(t, res.SizeCompressed, int64(10<<20), "image must stay under 10 MB compressed")

	auth := remote.WithAuth(reg.Auth())
	for _, tag := range []string{"v1", "latest"} {
		ref, err := name.ParseReference(reg.Ref("models/heart:" + tag))
		require.NoError(t, err)
		idx, err := remote.Index(ref, auth)
		require.NoError(t, err)
		d, err := idx.Digest()
		require.NoError(t, err)
		assert.Equal(t, res.Digest, d.String(), tag)
	}
	ref, _ := name.ParseReference(reg.Ref("models/heart:v1"))
	idx, err := remote.Index(ref, auth)
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIImageIndex, im.MediaType)
	require.Len(t, im.Manifests, 2)
	card, err := model.ReadCard(modelA)
	require.NoError(t, err)
	var metrics map[string]float64
	require.NoError(t, json.Unmarshal([]byte(im.Annotations[AnnMetrics]), &metrics))
	assert.Equal(t, card.Metrics, metrics)
	assert.Equal(t, "0123abc", im.Annotations["org.opencontainers.image.revision"])
	assert.Equal(t, "https://github.com/acme/models", im.Annotations["org.opencontainers.image.source"])
	assert.Equal(t, "1970-01-01T00:00:00Z", im.Annotations["org.opencontainers.image.created"])
	assert.Equal(t, card.Data.SHA256, im.Annotations[AnnDataSHA])

	for i, want := range []string{"amd64", "arm64"} {
		desc := im.Manifests[i]
		require.NotNil(t, desc.Platform)
		assert.Equal(t, "linux", desc.Platform.OS)
		assert.Equal(t, want, desc.Platform.Architecture)
		img, err := idx.Image(desc.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, want, cf.Architecture)
		assert.Equal(t, []string{"/mlship-serve"}, cf.Config.Entrypoint)
		assert.Equal(t, "65532:65532", cf.Config.User)
		assert.Contains(t, cf.Config.ExposedPorts, "8080/tcp")
		assert.Contains(t, cf.Config.Env, "MLSHIP_MODEL_DIR=/model")
		assert.Equal(t, string(card.Task), cf.Config.Labels[AnnTask])
		m, err := img.Manifest()
		require.NoError(t, err)
		assert.Equal(t, types.OCIManifestSchema1, m.MediaType)
		assert.Equal(t, im.Annotations[AnnMetrics], m.Annotations[AnnMetrics])
		layers, err := img.Layers()
		require.NoError(t, err)
		require.Len(t, layers, 2)
		server := files(t, layers[0])
		require.Contains(t, server, "mlship-serve")
		assert.Equal(t, int64(0o755), server["mlship-serve"].Mode)
		assert.Contains(t, server, "etc/passwd")
		bin, err := os.ReadFile(serverBins["linux/"+want])
		require.NoError(t, err)
		assert.Equal(t, int64(len(bin)), server["mlship-serve"].Size, "the %s server binary", want)
		modelFiles := files(t, layers[1])
		for _, f := range []string{"model/model.json", "model/model.safetensors", "model/metrics.json"} {
			require.Contains(t, modelFiles, f)
			assert.Equal(t, time.Unix(0, 0).UTC(), modelFiles[f].ModTime.UTC())
			assert.Zero(t, modelFiles[f].Uid)
		}
	}
}

func TestAuthRequired(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{Username: "ci", Password: "topsecret"})
	cfg := testConfig(reg.Ref("models/heart:v1"))
	cfg.Push = true
	cfg.Keychain = staticKeychain{reg.Host: &authn.Basic{Username: "ci", Password: "wrong-password"}}
	_, err := Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pushing "`+reg.Host+`/models/heart:v1"`)
	assert.Contains(t, err.Error(), "401 Unauthorized")
	assert.Contains(t, err.Error(), "the registry refused the credentials")
	assert.NotContains(t, err.Error(), "wrong-password", "secrets must never be printed")
	assert.Equal(t, fault.Usage, fault.CodeOf(err), "refused credentials are not retried: exit 2")
	assert.NotContains(t, err.Error(), "\n")
}

// TestReproducible builds the same inputs twice, into two OCI layouts: same digest.
// Another creation time or another model changes it.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	digest := func(mod func(*Config)) string {
		cfg := testConfig("mlship.local/heart:v1")
		cfg.OCILayout = filepath.Join(dir, "layout")
		cfg.Platforms = []string{"linux/amd64", "linux/arm64"}
		if mod != nil {
			mod(&cfg)
		}
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		p, err := layout.FromPath(cfg.OCILayout)
		require.NoError(t, err)
		idx, err := p.ImageIndex()
		require.NoError(t, err)
		im, err := idx.IndexManifest()
		require.NoError(t, err)
		require.Len(t, im.Manifests, 1)
		assert.Equal(t, res.Digest, im.Manifests[0].Digest.String())
		assert.Equal(t, "v1", im.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
		return res.Digest
	}
	a, b := digest(nil), digest(nil)
	assert.Equal(t, a, b, "same inputs, same digest")
	assert.NotEqual(t, a, digest(func(c *Config) { c.Created = time.Unix(1700000000, 0) }))
	assert.NotEqual(t, a, digest(func(c *Config) { c.ModelDir = modelB }))
}

func TestTarball(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heart.tar")
	cfg := testConfig("mlship.local/heart:v1")
	cfg.Tarball = path
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	tag, err := name.NewTag("mlship.local/heart:v1")
	require.NoError(t, err)
	img, err := tarball.ImageFromPath(path, &tag)
	require.NoError(t, err)
	// docker's format keeps the config and the layers (not the OCI manifest).
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 2)
	for i, l := range layers {
		d, err := l.Digest()
		require.NoError(t, err)
		assert.Equal(t, res.Layers["linux/amd64"][i].Digest, d.String())
	}
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{"/mlship-serve"}, cf.Config.Entrypoint)
}

// TestModelOnlyChange pushes a model, then a retrained one to the same
// repository: only the model layer and the configs and manifests go up.
func TestModelOnlyChange(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{})
	proxy := registry.NewProxy(t, reg.Host)
	cfg := testConfig(proxy.Ref("models/heart:v1"))
	cfg.Push = true
	first, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	c1 := proxy.Counts()
	assert.Equal(t, 3, c1.BlobUploads, "server layer, model layer and config")

	proxy.Reset()
	cfg.ModelDir, cfg.Image = modelB, proxy.Ref("models/heart:v2")
	second, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	c2 := proxy.Counts()
	assert.Equal(t, first.Layers["linux/amd64"][0].Digest, second.Layers["linux/amd64"][0].Digest, "same server layer")
	assert.NotEqual(t, first.Layers["linux/amd64"][1].Digest, second.Layers["linux/amd64"][1].Digest)
	assert.Equal(t, 2, c2.BlobUploads, "only the model layer and the config")
	assert.Equal(t, 1, c2.ManifestPuts)
	modelLayer := second.Layers["linux/amd64"][1].Size
	assert.Less(t, c2.BytesUp, modelLayer+8<<10, "bytes sent: the model layer plus config and manifest")
	assert.Less(t, c2.BytesUp, c1.BytesUp/10, "a model-only change must send far less than the first push")
	t.Logf("first push %d bytes, model-only change %d bytes (model layer %d)", c1.BytesUp, c2.BytesUp, modelLayer)
}

// TestFaults pushes through a proxy that fails requests: transient faults are
// retried and the push succeeds; a registry that keeps failing the manifest makes
// the push fail with a clear message, and the tag is never created.
func TestFaults(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		mode    registry.FaultMode
		kinds   []registry.Kind
		wantErr string
	}{
		{"500 on blob uploads", 2, registry.Status500, []registry.Kind{registry.KindUploadPatch, registry.KindUploadPut}, ""},
		{"connection reset on the manifest", 1, registry.Reset, []registry.Kind{registry.KindManifestPut}, ""},
		{"stalled blob upload", 1, registry.Stall, []registry.Kind{registry.KindUploadPatch, registry.KindUploadPut}, ""},
		{"manifest keeps failing", 100, registry.Status500, []registry.Kind{registry.KindManifestPut}, "fault injected by the test proxy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := registry.StartInProcess(t, registry.Options{}) // empty: every blob is uploaded
			proxy := registry.NewProxy(t, reg.Host)
			proxy.StallFor = 5 * time.Second
			repo := "faults/" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-")
			cfg := testConfig(proxy.Ref(repo + ":v1"))
			cfg.Push = true
			tr := DefaultTransport().(*http.Transport)
			tr.ResponseHeaderTimeout = time.Second // so the stall is cut short and retried
			cfg.Transport = tr
			proxy.Fail(tc.n, tc.mode, registry.MatchKind(tc.kinds...))
			_, err := Run(context.Background(), cfg)
			c := proxy.Counts()
			assert.Positive(t, c.Faults, "the fault must have been hit")
			ref, _ := name.ParseReference(reg.Ref(repo + ":v1"))
			_, headErr := remote.Head(ref)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, headErr, "the tag exists after a successful push")
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), `pushing "`+proxy.Ref(repo+":v1")+`"`)
			assert.Contains(t, err.Error(), tc.wantErr)
			require.Error(t, headErr, "a failed push must not leave the tag")
			assert.Equal(t, fault.Environment, fault.CodeOf(err), "5xx after the retries: exit 3")
		})
	}
}

// TestBaselineMetrics reads the metrics of a pushed image from its manifest only.
func TestBaselineMetrics(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{})
	proxy := registry.NewProxy(t, reg.Host)
	for _, platforms := range [][]string{{"linux/amd64"}, {"linux/amd64", "linux/arm64"}} {
		cfg := testConfig(proxy.Ref("prod/heart:" + strings.ReplaceAll(platforms[len(platforms)-1], "/", "-")))
		cfg.Push, cfg.Platforms = true, platforms
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		proxy.Reset()
		got, ref, err := BaselineMetrics(context.Background(), cfg.Image, cfg)
		require.NoError(t, err)
		card, _ := model.ReadCard(modelA)
		assert.Equal(t, card.Metrics, got)
		assert.Equal(t, res.Ref, ref)
		c := proxy.Counts()
		assert.Zero(t, c.ByKind[registry.KindBlobGet], "no layer or config may be pulled")
	}
	cfg := testConfig("")
	_, _, err := BaselineMetrics(context.Background(), proxy.Ref("prod/heart:missing"), cfg)
	require.Error(t, err)
	assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
}

// TestPlainHTTPOnlyToLoopback: go-containerregistry would fall back to plain HTTP
// for private addresses; mlship refuses before any connection is made, unless
// --insecure.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	called := 0
	next := roundTripFunc(func(*http.Request) (*http.Response, error) {
		called++
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}}, nil
	})
	for _, tc := range []struct {
		url      string
		insecure bool
		allowed  bool
	}{
		{"http://10.1.2.3:5000/v2/", false, false},
		{"http://registry.local:5000/v2/", false, false},
		{"http://10.1.2.3:5000/v2/", true, true},
		{"http://127.0.0.1:5000/v2/", false, true},
		{"http://localhost:5000/v2/", false, true},
		{"http://[::1]:5000/v2/", false, true},
		{"https://10.1.2.3:5000/v2/", false, true},
	} {
		before := called
		req, err := http.NewRequest("GET", tc.url, nil)
		require.NoError(t, err)
		_, err = httpGuard{next: next, insecure: tc.insecure}.RoundTrip(req)
		if tc.allowed {
			assert.NoError(t, err, tc.url)
			assert.Equal(t, before+1, called, tc.url)
		} else {
			assert.ErrorContains(t, err, "refusing plain HTTP to", tc.url)
			assert.Equal(t, before, called, "no request may leave for %s", tc.url)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestBase builds on a base image pulled from a registry: its layers come first,
// its environment is kept, and a base for another platform is refused.
func TestBase(t *testing.T) {
	reg := registry.StartInProcess(t, registry.Options{})
	base, err := random.Image(1024, 1)
	require.NoError(t, err)
	cf, err := base.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"TZ=UTC", "PATH=/base/bin"}
	base, err = mutate.ConfigFile(base, cf)
	require.NoError(t, err)
	baseRef, err := name.ParseReference(reg.Ref("base/distroless:1"))
	require.NoError(t, err)
	require.NoError(t, remote.Write(baseRef, base))

	cfg := testConfig(reg.Ref("models/heart:onbase"))
	cfg.Push, cfg.Base = true, baseRef.String()
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Layers["linux/amd64"], 3)
	assert.Equal(t, "base", res.Layers["linux/amd64"][0].Name)
	img, err := remote.Image(mustRef(t, reg.Ref("models/heart:onbase")))
	require.NoError(t, err)
	got, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Contains(t, got.Config.Env, "TZ=UTC", "the base's environment is kept")
	assert.Contains(t, got.Config.Env, "MLSHIP_MODEL_DIR=/model")
	bl, _ := base.Layers()
	d0, _ := bl[0].Digest()
	assert.Equal(t, d0.String(), res.Layers["linux/amd64"][0].Digest)

	cfg.Platforms = []string{"linux/arm64"}
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "is linux/amd64, not linux/arm64")
}

func mustRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s)
	require.NoError(t, err)
	return r
}
