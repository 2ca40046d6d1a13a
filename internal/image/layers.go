package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and ids inside the image.
const (
	ServerPath = "/mlship-serve"
	ModelPath  = "/model"
	UID        = 65532 // the "nonroot" user, as in distroless images
	Port       = 8080
)

// entry is one file or directory of a layer.
type entry struct {
	name string // absolute path in the image
	mode int64
	data []byte
	dir  bool
}

// tarLayer writes entries as a reproducible tar (sorted, root-owned, fixed mode
// and modification time, no user names) and wraps it as an OCI layer. Parent
// directories are added when missing.
func tarLayer(entries []entry, mtime time.Time) (v1.Layer, []byte, error) {
	seen := map[string]bool{}
	var all []entry
	add := func(e entry) {
		if !seen[e.name] {
			seen[e.name] = true
			all = append(all, e)
		}
	}
	for _, e := range entries {
		for d := path.Dir(e.name); d != "/" && d != "."; d = path.Dir(d) {
			add(entry{name: d, mode: 0o755, dir: true})
		}
		add(e)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range all {
		h := &tar.Header{
			Name: e.name[1:], Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX,
			Uid: 0, Gid: 0, Typeflag: tar.TypeReg, Size: int64(len(e.data)),
		}
		if e.dir {
			h.Name += "/"
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, nil, err
	}
	return l, raw, nil
}

// modelLayer packs the model directory's regular files at /model.
func modelLayer(dir string, mtime time.Time) (v1.Layer, error) {
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(ModelPath, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			entries = append(entries, entry{name: name, mode: 0o755, dir: true})
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entries = append(entries, entry{name: name, mode: 0o644, data: b})
		default:
			return fmt.Errorf("%s: only regular files and directories can go into the image", p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packing model %q: %w", dir, err)
	}
	l, _, err := tarLayer(entries, mtime)
	return l, err
}

// passwd and group give the server a non-root user (distroless's nonroot).
var (
	passwd = []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
	group  = []byte("root:x:0:\nnonroot:x:65532:\n")
)

// serverLayer packs the server binary, CA certificates (when the host has them)
// and the passwd and group files.
func serverLayer(server, caCerts []byte, mtime time.Time) (v1.Layer, error) {
	entries := []entry{
		{name: ServerPath, mode: 0o755, data: server},
		{name: "/etc/passwd", mode: 0o644, data: passwd},
		{name: "/etc/group", mode: 0o644, data: group},
		{name: "/home/nonroot", mode: 0o755, dir: true},
		{name: "/tmp", mode: 0o1777, dir: true},
	}
	if len(caCerts) > 0 {
		entries = append(entries, entry{name: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caCerts})
	}
	l, _, err := tarLayer(entries, mtime)
	return l, err
}
