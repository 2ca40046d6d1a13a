// Package serverbin holds the mlship-serve binaries that build-push-image puts in
// images, embedded in the mlship binary at build time: `make build` cross-compiles
// cmd/mlship-serve for each platform into bin/mlship-serve-OS-ARCH.gz before it
// builds mlship. A plain `go build` of mlship embeds none; build-push-image then
// asks for --server-bin.
package serverbin

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
)

//go:embed bin
var files embed.FS

func fileName(platform string) string {
	return "bin/mlship-serve-" + strings.ReplaceAll(platform, "/", "-") + ".gz"
}

// Get returns the embedded server binary for a platform ("linux/amd64").
func Get(platform string) ([]byte, error) {
	f, err := files.Open(fileName(platform))
	if err != nil {
		return nil, fmt.Errorf("no embedded mlship-serve for %s in this mlship, %s", platform, Have())
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("embedded mlship-serve for %s: %w", platform, err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, zr); err != nil {
		return nil, fmt.Errorf("embedded mlship-serve for %s: %w", platform, err)
	}
	return buf.Bytes(), nil
}

// Have says which platforms this mlship has binaries for, for error
// messages: "which has them for linux/amd64, linux/arm64", or that it was
// built without them.
func Have() string {
	ps := Platforms()
	if len(ps) == 0 {
		return "which was built without them (build it with `make build`)"
	}
	return "which has them for " + strings.Join(ps, ", ")
}

// Platforms lists the platforms with an embedded binary.
func Platforms() []string {
	ents, _ := fs.ReadDir(files, "bin")
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "mlship-serve-") && strings.HasSuffix(n, ".gz") {
			p := strings.TrimSuffix(strings.TrimPrefix(n, "mlship-serve-"), ".gz")
			if i := strings.Index(p, "-"); i > 0 {
				out = append(out, p[:i]+"/"+p[i+1:])
			}
		}
	}
	sort.Strings(out)
	return out
}
