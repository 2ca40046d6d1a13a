package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mlship/mlship/internal/fault"
)

// Modes of what mlship writes in an OCI layout or as a tarball: readable by
// everyone, as skopeo, crane and umoci write layouts, so that another user or a
// later CI step can copy the image.
const (
	fileMode = 0o644
	dirMode  = 0o755
)

const (
	layoutMarker  = "oci-layout"
	layoutVersion = `{"imageLayoutVersion":"1.0.0"}`
	indexFile     = "index.json"
	annContainerd = "io.containerd.image.name"
)

// layoutKind is what is at an --oci-layout path.
type layoutKind int

const (
	layoutAbsent layoutKind = iota // nothing: written beside it and renamed into place
	layoutEmpty                    // an empty directory: written in place
	layoutExists                   // an OCI layout: this image is added to it
)

// ociIndex is a layout's index.json; the descriptors are kept as they are.
type ociIndex struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []json.RawMessage `json:"manifests"`
	Subject       json.RawMessage   `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// inspectLayout says what is at dir, and reads its index when it is a layout.
// A directory that is neither empty nor a layout is refused (exit 2).
func inspectLayout(dir string) (layoutKind, *ociIndex, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return layoutAbsent, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	if !st.IsDir() {
		return 0, nil, fault.Inputf("writing OCI layout %q: it exists and is not a directory", dir)
	}
	marker, err := os.ReadFile(filepath.Join(dir, layoutMarker))
	if errors.Is(err, fs.ErrNotExist) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return 0, nil, fmt.Errorf("writing OCI layout %q: %w", dir, err)
		}
		if len(ents) > 0 {
			return 0, nil, fault.Inputf("writing OCI layout %q: the directory is not empty and is not an OCI layout (it has no %s file); refusing to write into it", dir, layoutMarker)
		}
		return layoutEmpty, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	var m struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(marker, &m); err != nil || m.Version == "" {
		return 0, nil, fault.Inputf("writing OCI layout %q: %s is not an OCI layout file ({\"imageLayoutVersion\": ...})", dir, filepath.Join(dir, layoutMarker))
	}
	if m.Version != "1.0.0" {
		return 0, nil, fault.Inputf("writing OCI layout %q: image layout version %q, mlship writes 1.0.0", dir, m.Version)
	}
	idx := &ociIndex{SchemaVersion: 2, MediaType: string(types.OCIImageIndex)}
	raw, err := os.ReadFile(filepath.Join(dir, indexFile))
	switch {
	case errors.Is(err, fs.ErrNotExist): // a layout whose first write was cut short
	case err != nil:
		return 0, nil, fmt.Errorf("writing OCI layout %q: %w", dir, err)
	default:
		if err := json.Unmarshal(raw, idx); err != nil {
			return 0, nil, fault.Inputf("writing OCI layout %q: %s: %v", dir, filepath.Join(dir, indexFile), err)
		}
		for i, d := range idx.Manifests {
			if _, err := refName(d); err != nil {
				return 0, nil, fault.Inputf("writing OCI layout %q: %s: manifests[%d]: %v", dir, filepath.Join(dir, indexFile), i, err)
			}
		}
	}
	return layoutExists, idx, nil
}

// refName is the org.opencontainers.image.ref.name of a descriptor, or "".
func refName(desc json.RawMessage) (string, error) {
	var d struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(desc, &d); err != nil {
		return "", err
	}
	return d.Annotations[annRefName], nil
}

// checkOutputs refuses, before anything is built, an --oci-layout that is
// neither a layout nor empty and a --tarball that is not one mlship wrote.
func checkOutputs(cfg Config) error {
	if cfg.OCILayout != "" {
		if _, _, err := inspectLayout(cfg.OCILayout); err != nil {
			return err
		}
	}
	if cfg.Tarball != "" {
		if err := checkTarball(cfg.Tarball); err != nil {
			return err
		}
	}
	return nil
}

// blob is one blob of the image: its digest and its bytes.
type blob struct {
	digest v1.Hash
	size   int64 // -1 when not known before reading
	open   func() (io.ReadCloser, error)
}

func rawBlob(b []byte) blob {
	sum := sha256.Sum256(b)
	return blob{
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		size:   int64(len(b)),
		open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
	}
}

// imageBlobs lists an image's layers, config and manifest.
func imageBlobs(img v1.Image) ([]blob, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var out []blob
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			size = -1
		}
		out = append(out, blob{digest: d, size: size, open: l.Compressed})
	}
	cb, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	mb, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	return append(out, rawBlob(cb), rawBlob(mb)), nil
}

// topDescriptor is the descriptor of what build made: the image, or the index.
func (b *built) topDescriptor() (v1.Descriptor, []blob, error) {
	img, idx := b.top()
	var blobs []blob
	var raw []byte
	var mt types.MediaType
	var err error
	if idx != nil {
		for _, p := range b.platforms {
			bs, err := imageBlobs(b.images[p])
			if err != nil {
				return v1.Descriptor{}, nil, err
			}
			blobs = append(blobs, bs...)
		}
		if raw, err = idx.RawManifest(); err != nil {
			return v1.Descriptor{}, nil, err
		}
		if mt, err = idx.MediaType(); err != nil {
			return v1.Descriptor{}, nil, err
		}
		blobs = append(blobs, rawBlob(raw))
	} else {
		if blobs, err = imageBlobs(img); err != nil { // the manifest last
			return v1.Descriptor{}, nil, err
		}
		if mt, err = img.MediaType(); err != nil {
			return v1.Descriptor{}, nil, err
		}
	}
	last := blobs[len(blobs)-1]
	return v1.Descriptor{MediaType: mt, Digest: last.digest, Size: last.size}, blobs, nil
}

// writeLayout adds the image (or index) to the OCI layout at dir under each of
// tags (the org.opencontainers.image.ref.name annotation of its index.json
// entry, as skopeo and crane name images in a layout), replacing the entries
// with the same names and keeping everything else. A missing directory is
// written beside its path and renamed into place; an empty one is written in
// place; an existing layout gets the missing blobs first, each through a
// temporary file, and its index.json last, replaced atomically, so that a cut
// write leaves the layout as it was, with at most some unreferenced blobs.
// Files are 0644 and directories 0755.
func writeLayout(dir string, tags []name.Tag, b *built) error {
	kind, idx, err := inspectLayout(dir)
	if err != nil {
		return err
	}
	if err := writeLayoutTo(dir, kind, idx, tags, b); err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	return nil
}

func writeLayoutTo(dir string, kind layoutKind, idx *ociIndex, tags []name.Tag, b *built) (err error) {
	target := dir
	if kind == layoutAbsent {
		parent := filepath.Dir(filepath.Clean(dir))
		if err := os.MkdirAll(parent, dirMode); err != nil {
			return err
		}
		var tmp string
		if tmp, err = os.MkdirTemp(parent, ".mlship-layout-*"); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				os.RemoveAll(tmp)
			}
		}()
		if err := os.Chmod(tmp, dirMode); err != nil {
			return err
		}
		target = tmp
		idx = &ociIndex{SchemaVersion: 2, MediaType: string(types.OCIImageIndex)}
	} else if kind == layoutEmpty {
		idx = &ociIndex{SchemaVersion: 2, MediaType: string(types.OCIImageIndex)}
	}
	if kind != layoutExists {
		if err := writeFileAtomic(filepath.Join(target, layoutMarker), []byte(layoutVersion)); err != nil {
			return err
		}
	}

	desc, blobs, err := b.topDescriptor()
	if err != nil {
		return err
	}
	for _, bl := range blobs {
		if err := writeBlob(target, bl); err != nil {
			return err
		}
	}

	names := map[string]bool{}
	var add []json.RawMessage
	for _, t := range tags {
		if names[t.TagStr()] {
			continue // a tag given twice
		}
		names[t.TagStr()] = true
		d := desc
		d.Annotations = map[string]string{annRefName: t.TagStr(), annContainerd: t.String()}
		raw, err := json.Marshal(d)
		if err != nil {
			return err
		}
		add = append(add, raw)
	}
	var keep []json.RawMessage
	for _, d := range idx.Manifests {
		if n, _ := refName(d); n == "" || !names[n] {
			keep = append(keep, d)
		}
	}
	idx.Manifests = append(keep, add...)
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(target, indexFile), raw); err != nil {
		return err
	}
	if err := syncDir(target); err != nil {
		return err
	}
	if kind == layoutAbsent {
		// A directory created at dir meanwhile makes the rename fail: it is not replaced.
		if err := os.Rename(target, dir); err != nil {
			return err
		}
		return syncDir(filepath.Dir(filepath.Clean(dir)))
	}
	return nil
}

// writeBlob writes blobs/ALG/HEX unless a file of the right size is there,
// through a temporary file, checking the digest of what it wrote.
func writeBlob(root string, b blob) error {
	dir := filepath.Join(root, "blobs", b.digest.Algorithm)
	path := filepath.Join(dir, b.digest.Hex)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && (b.size < 0 || st.Size() == b.size) {
		return nil
	}
	if err := mkdirAll(root, filepath.Join("blobs", b.digest.Algorithm)); err != nil {
		return err
	}
	var h hash.Hash
	switch b.digest.Algorithm {
	case "sha256":
		h = sha256.New()
	default:
		return fmt.Errorf("blob %s: digest algorithm %q is not supported", b.digest, b.digest.Algorithm)
	}
	rc, err := b.open()
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.digest, err)
	}
	defer rc.Close()
	return writeAtomic(path, func(w io.Writer) error {
		if _, err := io.Copy(io.MultiWriter(w, h), rc); err != nil {
			return fmt.Errorf("blob %s: %w", b.digest, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != b.digest.Hex {
			return fmt.Errorf("blob %s: the bytes read have digest %s:%s", b.digest, b.digest.Algorithm, got)
		}
		return nil
	})
}

// mkdirAll creates rel under root, each new directory 0755 whatever the umask.
func mkdirAll(root, rel string) error {
	p := root
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		p = filepath.Join(p, part)
		err := os.Mkdir(p, dirMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Chmod(p, dirMode); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic writes a temporary file beside path with write, syncs it, makes
// it 0644 and renames it to path: readers see the old file or the whole new
// one, and a failed write leaves nothing.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".mlship-tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(fileMode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// checkTarball refuses a --tarball path that holds anything but an image
// tarball written by mlship: a directory, a device, the training data.
func checkTarball(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing tarball %q: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fault.Inputf("writing tarball %q: it exists and is not a regular file", path)
	}
	ok, err := isMlshipTarball(path)
	if err != nil {
		return fmt.Errorf("writing tarball %q: %w", path, err)
	}
	if !ok {
		return fault.Inputf("writing tarball %q: the file exists and is not an image tarball written by mlship; refusing to overwrite it (remove it or choose another path)", path)
	}
	return nil
}

// isMlshipTarball reports whether the file is a docker-save tarball whose
// manifest.json names an image config with mlship's dev.mlship.version label.
func isMlshipTarball(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	const maxJSON = 4 << 20 // manifest.json and image configs are small
	small := map[string][]byte{}
	var total int64
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, nil // not a tar (a CSV, a gzip file), or a broken one
		}
		if h.Typeflag != tar.TypeReg || h.Size > maxJSON || total+h.Size > 4*maxJSON {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return false, nil
		}
		small[strings.TrimPrefix(h.Name, "./")] = b
		total += h.Size
	}
	var manifest tarball.Manifest
	if err := json.Unmarshal(small["manifest.json"], &manifest); err != nil || len(manifest) == 0 {
		return false, nil
	}
	for _, d := range manifest {
		var cf v1.ConfigFile
		if err := json.Unmarshal(small[strings.TrimPrefix(d.Config, "./")], &cf); err != nil {
			return false, nil
		}
		if cf.Config.Labels[AnnVersion] == "" {
			return false, nil
		}
	}
	return true, nil
}

// writeTarball writes one image as a docker-save tarball (docker load, podman
// load, crane push FILE) under each of tags, through a temporary file beside
// path, 0644. It replaces only a tarball mlship wrote.
func writeTarball(path string, tags []name.Tag, img v1.Image) error {
	if err := checkTarball(path); err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		refs[t] = img
	}
	err := os.MkdirAll(filepath.Dir(path), dirMode)
	if err == nil {
		err = writeAtomic(path, func(w io.Writer) error { return tarball.MultiRefWrite(refs, w) })
	}
	if err != nil {
		return fmt.Errorf("writing tarball %q: %w", path, err)
	}
	return nil
}
