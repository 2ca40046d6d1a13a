package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/mlship/mlship/internal/fault"
)

// BaselineMetrics reads the metrics an mlship image carries (the dev.mlship.metrics
// annotation) from the registry, by fetching only its manifest: no layers, no
// config. For an image index it reads the index's annotations. This is how the gate
// of a pull request compares against the image deployed from main. An image that
// is not in the registry gives an error wrapping fs.ErrNotExist. The lookup is
// bounded and retried like a push: each request by the transport's timeouts, the
// whole by cfg.Timeout (10m when 0), with one line per retry to cfg.Log; the
// environment's failures are fault.Env (exit 3), refused credentials exit 2.
func BaselineMetrics(ctx context.Context, ref string, cfg Config) (map[string]float64, string, error) {
	var opts []name.Option
	if cfg.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, "", fault.Inputf("baseline image %q: %w", ref, err)
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	var desc *remote.Descriptor
	err = retry(ctx, cfg, logw, fmt.Sprintf("reading baseline image %q", ref), func(ctx context.Context) error {
		var err error
		desc, err = remote.Get(r, remoteOptions(ctx, cfg)...)
		return err
	})
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, "", fmt.Errorf("reading baseline image %q: not in the registry: %w", ref, fs.ErrNotExist)
	}
	if err != nil {
		return nil, "", err
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, "", fmt.Errorf("reading baseline image %q: manifest: %w", ref, err)
	}
	raw, ok := m.Annotations[AnnMetrics]
	if !ok {
		return nil, "", fmt.Errorf("baseline image %q has no %s annotation (was it built by mlship build-push-image?)", ref, AnnMetrics)
	}
	var vals map[string]float64
	if err := json.Unmarshal([]byte(raw), &vals); err != nil {
		return nil, "", fmt.Errorf("baseline image %q: annotation %s: %w", ref, AnnMetrics, err)
	}
	return vals, r.Context().Digest(desc.Digest.String()).String(), nil
}
