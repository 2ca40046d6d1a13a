package image

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/testutil/registry"
)

// TestDistributionRegistry pushes to Debian's docker-registry (CNCF distribution
// 2.8) with htpasswd auth, through the counting proxy, pulls the index back the
// way crane does, checks the platforms and the annotations, then pushes a
// retrained model and counts what went up again.
func TestDistributionRegistry(t *testing.T) {
	reg := registry.StartDistribution(t, registry.Options{Username: "ci", Password: "pw-1234"})
	proxy := registry.NewProxy(t, reg.Host)
	cfg := testConfig(proxy.Ref("acme/heart:v1"))
	cfg.Push = true
	cfg.Platforms = []string{"linux/amd64", "linux/arm64"}
	cfg.Keychain = staticKeychain{proxy.Host: reg.Auth()}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	ref, err := name.ParseReference(reg.Ref("acme/heart:v1"))
	require.NoError(t, err)
	_, err = remote.Index(ref, remote.WithAuth(authn.Anonymous))
	require.Error(t, err, "the registry requires credentials")
	idx, err := remote.Index(ref, remote.WithAuth(reg.Auth()))
	require.NoError(t, err)
	d, err := idx.Digest()
	require.NoError(t, err)
	assert.Equal(t, res.Digest, d.String())
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 2)
	var archs []string
	for _, m := range im.Manifests {
		archs = append(archs, m.Platform.OS+"/"+m.Platform.Architecture)
		img, err := idx.Image(m.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, m.Platform.Architecture, cf.Architecture)
		assert.Equal(t, "65532:65532", cf.Config.User)
	}
	assert.Equal(t, []string{"linux/amd64", "linux/arm64"}, archs)
	assert.Contains(t, im.Annotations, AnnMetrics)

	// The baseline lookup against the real registry, then a model-only change.
	got, _, err := BaselineMetrics(context.Background(), cfg.Image, cfg)
	require.NoError(t, err)
	assert.NotEmpty(t, got["accuracy"])
	first := proxy.Counts()
	proxy.Reset()
	cfg.ModelDir, cfg.Image = modelB, proxy.Ref("acme/heart:v2")
	second, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	c := proxy.Counts()
	assert.Equal(t, 5, first.BlobUploads, "two server layers, the model layer (shared by both platforms) and two configs")
	assert.Equal(t, 3, c.BlobUploads, "the new model layer and the two configs")
	assert.Less(t, c.BytesUp, first.BytesUp/5)
	t.Logf("distribution: first push %d bytes up (%d blobs), model-only change %d bytes (%d blobs), model layer %d bytes",
		first.BytesUp, first.BlobUploads, c.BytesUp, c.BlobUploads, second.Layers["linux/amd64"][1].Size)
}
