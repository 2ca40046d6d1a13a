package image

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
)

// snapshot is every file under dir with its contents (directories as "/").
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[rel] = string(b)
		return nil
	}))
	return out
}

// refNames lists the layout's index entries as ref.name -> digest.
func refNames(t *testing.T, dir string) map[string]string {
	t.Helper()
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	out := map[string]string{}
	for _, d := range im.Manifests {
		out[d.Annotations[annRefName]] = d.Digest.String()
	}
	return out
}

// otherLayout is a layout written by another tool (go-containerregistry, as
// crane writes them) holding one image tagged "base" and a user's file.
func otherLayout(t *testing.T, dir string) v1.Image {
	img, err := random.Image(512, 2)
	require.NoError(t, err)
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	p, err := layout.Write(dir, empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendImage(img, layout.WithAnnotations(map[string]string{annRefName: "base"})))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("images for the air-gapped cluster\n"), 0o644))
	return img
}

// TestLayoutAddsAndReplaces: writing into an existing layout adds the image
// under its tags and replaces only the entries of the same tags; other images,
// their blobs and other files stay.
func TestLayoutAddsAndReplaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	base := otherLayout(t, dir)
	baseDigest, err := base.Digest()
	require.NoError(t, err)

	cfg := testConfig("mlship.local/heart:v1")
	cfg.OCILayout, cfg.Tags = dir, []string{"latest"}
	first, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"base": baseDigest.String(), "v1": first.Digest, "latest": first.Digest}, refNames(t, dir))

	cfg.ModelDir, cfg.Tags = modelB, []string{"v1"} // the first tag again: one entry
	second, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.NotEqual(t, first.Digest, second.Digest)
	assert.Equal(t, map[string]string{"base": baseDigest.String(), "v1": second.Digest, "latest": first.Digest}, refNames(t, dir))

	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "images for the air-gapped cluster\n", string(b), "the user's file stays")
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	for ref, digest := range refNames(t, dir) {
		h, err := v1.NewHash(digest)
		require.NoError(t, err)
		img, err := p.Image(h)
		require.NoError(t, err, ref)
		layers, err := img.Layers()
		require.NoError(t, err)
		for _, l := range layers {
			rc, err := l.Compressed()
			require.NoError(t, err, "%s: every blob is there", ref)
			_, err = io.Copy(io.Discard, rc)
			require.NoError(t, err)
			rc.Close()
		}
	}
	// The index.json is the OCI index another tool reads.
	var idx struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []struct {
			MediaType   string            `json:"mediaType"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &idx))
	assert.Equal(t, 2, idx.SchemaVersion)
	assert.Equal(t, string(types.OCIImageIndex), idx.MediaType)
	require.Len(t, idx.Manifests, 3)
	assert.Equal(t, "mlship.local/heart:v1", idx.Manifests[2].Annotations[annContainerd])
	assert.Equal(t, string(types.OCIManifestSchema1), idx.Manifests[2].MediaType)
	assertNoTemporaries(t, dir)
}

func assertNoTemporaries(t *testing.T, dir string) {
	t.Helper()
	for f := range snapshot(t, filepath.Dir(dir)) {
		assert.NotContains(t, f, ".mlship-", "no temporary file or directory is left")
	}
}

// TestLayoutRefuses: a directory that is neither a layout nor empty, a file,
// and a broken layout are refused before anything is built (exit 2), and
// nothing in them changes.
func TestLayoutRefuses(t *testing.T) {
	dir := t.TempDir()
	notLayout := filepath.Join(dir, "project")
	require.NoError(t, os.MkdirAll(filepath.Join(notLayout, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(notLayout, "src", "train.py"), []byte("print(1)\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(notLayout, "index.json"), []byte(`{"a": 1}`), 0o644))
	file := filepath.Join(dir, "heart.csv")
	require.NoError(t, os.WriteFile(file, []byte("age,target\n1,0\n"), 0o644))
	broken := filepath.Join(dir, "broken")
	require.NoError(t, os.MkdirAll(broken, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(broken, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(broken, "index.json"), []byte(`{"manifests": [`), 0o644))
	for _, tc := range []struct{ path, want string }{
		{notLayout, "the directory is not empty and is not an OCI layout (it has no oci-layout file); refusing to write into it"},
		{file, "it exists and is not a directory"},
		{broken, filepath.Join(broken, "index.json") + ": unexpected end of JSON input"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			before := snapshot(t, dir)
			cfg := testConfig("mlship.local/heart:v1")
			cfg.OCILayout = tc.path
			_, err := Run(context.Background(), cfg)
			require.Error(t, err)
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
			assert.Equal(t, `writing OCI layout "`+tc.path+`": `+tc.want, err.Error())
			assert.Equal(t, before, snapshot(t, dir), "nothing touched")
		})
	}
}

// TestLayoutEmptyDirAndModes: an empty directory is written in place; what
// mlship writes is 0644 (files) and 0755 (directories), whatever the umask
// lets through to a temporary file, so another user can copy the layout.
func TestLayoutEmptyDirAndModes(t *testing.T) {
	for _, existing := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "out", "layout")
		if existing {
			require.NoError(t, os.MkdirAll(dir, 0o755))
		}
		cfg := testConfig("mlship.local/heart:v1")
		cfg.OCILayout = dir
		cfg.Platforms = []string{"linux/amd64", "linux/arm64"}
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"v1": res.Digest}, refNames(t, dir))
		n := 0
		require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			require.NoError(t, err)
			st, err := os.Stat(p)
			require.NoError(t, err)
			want := os.FileMode(0o644)
			if d.IsDir() {
				want = 0o755
			}
			assert.Equal(t, want, st.Mode().Perm(), p)
			n++
			return nil
		}))
		assert.Greater(t, n, 10)
		assertNoTemporaries(t, dir)
	}
}

// TestLayoutSkopeo copies the layout with skopeo, as another user (nobody)
// would in a later CI step, when skopeo is installed (and, for the other user,
// when the test runs as root): go-containerregistry wrote blobs 0600, which
// made that copy fail with "permission denied". The copy also checks the
// layout and the other images kept in it.
func TestLayoutSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (apt-get install skopeo)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "layout")
	otherLayout(t, src)
	// go-containerregistry writes its layers 0600: the other image is made
	// readable as skopeo would have written it.
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chmod(p, 0o644)
		}
		return err
	}))
	cfg := testConfig("mlship.local/heart:v1")
	cfg.OCILayout, cfg.Platforms = src, []string{"linux/amd64", "linux/arm64"}
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir's are 0700
		require.NoError(t, os.Chmod(d, 0o755))
	}
	dst := filepath.Join(dir, "copies")
	require.NoError(t, os.Mkdir(dst, 0o777))
	require.NoError(t, os.Chmod(dst, 0o777))
	for _, ref := range []string{"v1", "base"} {
		args := []string{"--insecure-policy", "copy", "--all", "oci:" + src + ":" + ref, "oci:" + filepath.Join(dst, ref) + ":" + ref}
		cmd := exec.Command(skopeo, args...)
		if os.Geteuid() == 0 {
			if setpriv, err := exec.LookPath("setpriv"); err == nil {
				cmd = exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", skopeo}, args...)...)
			}
		}
		cmd.Env = append(os.Environ(), "HOME="+dst)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, refNames(t, filepath.Join(dst, ref)), ref)
	}
}

// failingLayer is a layer whose bytes cannot be read.
type failingLayer struct{ v1.Layer }

func (failingLayer) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("disk went away")
}

// TestLayoutCutShort: a write that fails half way leaves an existing layout's
// index.json as it was, and no directory where there was none.
func TestLayoutCutShort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	otherLayout(t, dir)
	index, err := os.ReadFile(filepath.Join(dir, "index.json"))
	require.NoError(t, err)

	good, err := random.Image(256, 1)
	require.NoError(t, err)
	layers, err := good.Layers()
	require.NoError(t, err)
	img, err := mutate.AppendLayers(empty.Image, layers[0], failingLayer{layers[0]})
	require.NoError(t, err)
	b := &built{images: map[string]v1.Image{"linux/amd64": img}, platforms: []string{"linux/amd64"}}
	tag, err := name.NewTag("mlship.local/heart:v1")
	require.NoError(t, err)

	err = writeLayout(dir, []name.Tag{tag}, b)
	require.ErrorContains(t, err, "disk went away")
	after, err := os.ReadFile(filepath.Join(dir, "index.json"))
	require.NoError(t, err)
	assert.Equal(t, string(index), string(after))
	assertNoTemporaries(t, dir)

	fresh := filepath.Join(t.TempDir(), "new")
	require.Error(t, writeLayout(fresh, []name.Tag{tag}, b))
	assert.NoDirExists(t, fresh)
	assertNoTemporaries(t, fresh)
}

// TestTarballOverwrite: --tarball replaces only a tarball mlship wrote; the
// training data, another tool's image tarball and a directory are refused
// before anything is built (exit 2), unchanged.
func TestTarballOverwrite(t *testing.T) {
	dir := t.TempDir()
	ours := filepath.Join(dir, "heart.tar")
	cfg := testConfig("mlship.local/heart:v1")
	cfg.Tarball, cfg.Tags = ours, []string{"latest"}
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	st, err := os.Stat(ours)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(ours) })
	require.NoError(t, err)
	require.Len(t, m, 1)
	assert.ElementsMatch(t, []string{"mlship.local/heart:v1", "mlship.local/heart:latest"}, m[0].RepoTags)

	cfg.ModelDir, cfg.Tags = modelB, nil
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err, "a tarball mlship wrote is replaced")
	tag, _ := name.NewTag("mlship.local/heart:v1")
	img, err := tarball.ImageFromPath(ours, &tag)
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	d, err := layers[1].Digest()
	require.NoError(t, err)
	assert.Equal(t, res.Layers["linux/amd64"][1].Digest, d.String())

	csv := filepath.Join(dir, "heart.csv")
	require.NoError(t, os.WriteFile(csv, []byte("age,target\n63,1\n"), 0o644))
	foreign := filepath.Join(dir, "busybox.tar")
	rnd, err := random.Image(256, 1)
	require.NoError(t, err)
	require.NoError(t, tarball.WriteToFile(foreign, tag, rnd))
	empty := filepath.Join(dir, "empty.tar")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	for _, tc := range []struct{ path, want string }{
		{csv, "the file exists and is not an image tarball written by mlship; refusing to overwrite it"},
		{foreign, "the file exists and is not an image tarball written by mlship"},
		{empty, "the file exists and is not an image tarball written by mlship"},
		{sub, "it exists and is not a regular file"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			before := snapshot(t, dir)
			cfg := testConfig("mlship.local/heart:v1")
			cfg.Tarball = tc.path
			_, err := Run(context.Background(), cfg)
			require.Error(t, err)
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
			assert.True(t, strings.HasPrefix(err.Error(), `writing tarball "`+tc.path+`": `+tc.want), err.Error())
			assert.Equal(t, before, snapshot(t, dir), "nothing touched")
		})
	}
	for f := range snapshot(t, dir) {
		assert.False(t, strings.Contains(f, ".mlship-tmp"), "no temporary file left: %s", f)
	}
}

// TestRevisionFallback: the revision annotation comes from --revision, else
// the model card's commit, else the CI's commit (RevisionFallback).
func TestRevisionFallback(t *testing.T) {
	tag, _ := name.NewTag("mlship.local/heart:v1")
	for _, tc := range []struct {
		name, revision, card, fallback, want string
	}{
		{"revision wins", "r1", "c1", "f1", "r1"},
		{"then the card", "", "c1", "f1", "c1"},
		{"then the CI", "", "", "f1", "f1"},
		{"none", "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Revision: tc.revision, RevisionFallback: tc.fallback}
			card := cardWithSHA(t, tc.card)
			a := annotations(cfg, tag, card, []byte("{}"), time.Unix(0, 0))
			got, ok := a[annRevision]
			assert.Equal(t, tc.want != "", ok)
			assert.Equal(t, tc.want, got)
		})
	}
	// Through Run, with the model trained without a commit.
	cfg := testConfig("mlship.local/heart:v1")
	cfg.OCILayout = filepath.Join(t.TempDir(), "layout")
	cfg.RevisionFallback = "f00dfeed"
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "f00dfeed", res.Annotations[annRevision])
	p, err := layout.FromPath(cfg.OCILayout)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	imgs, err := partialImages(idx)
	require.NoError(t, err)
	m, err := imgs[0].Manifest()
	require.NoError(t, err)
	assert.Equal(t, "f00dfeed", m.Annotations[annRevision])
}

func partialImages(idx v1.ImageIndex) ([]v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []v1.Image
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// cardWithSHA is modelA's card with the commit sha.
func cardWithSHA(t *testing.T, sha string) *model.Card {
	b, err := os.ReadFile(filepath.Join(modelA, model.CardFile))
	require.NoError(t, err)
	var c model.Card
	require.NoError(t, json.Unmarshal(b, &c))
	c.GitSHA = sha
	return &c
}
