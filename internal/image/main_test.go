package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/mlship/mlship/internal/train"
)

// Built once for the package: mlship-serve for both image platforms and two heart
// models that differ only in their seed.
var (
	serverBins map[string]string
	modelA     string
	modelB     string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mlship-image-test-*")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		serverBins = map[string]string{}
		for _, p := range []string{"linux/amd64", "linux/arm64"} {
			out := filepath.Join(dir, "mlship-serve-"+filepath.Base(p))
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../../cmd/mlship-serve")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+filepath.Base(p))
			if b, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building mlship-serve for %s: %v\n%s", p, err, b)
				return 1
			}
			serverBins[p] = out
		}
		for i, seed := range []int64{42, 7} {
			cfg := train.DefaultConfig()
			cfg.DataPath, cfg.Target, cfg.Binarize, cfg.Seed = "../../examples/heart-disease/heart.csv", "target", ">0", seed
			cfg.OutDir = filepath.Join(dir, fmt.Sprintf("model%d", i))
			if _, err := train.Run(context.Background(), cfg); err != nil {
				fmt.Fprintf(os.Stderr, "training: %v\n", err)
				return 1
			}
		}
		modelA, modelB = filepath.Join(dir, "model0"), filepath.Join(dir, "model1")
		return m.Run()
	}()
	os.Exit(code)
}

// staticKeychain gives fixed credentials per registry host.
type staticKeychain map[string]authn.Authenticator

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

// fastRetry keeps fault tests short.
var fastRetry = DefaultRetry

func init() {
	fastRetry.Duration = 20 * time.Millisecond
}

// testConfig is a config for modelA with the test server binaries and no smoke test.
func testConfig(ref string) Config {
	return Config{
		ModelDir: modelA, Image: ref, ServerBinaries: serverBins, Smoke: SmokeOff, Retry: &fastRetry,
		Keychain: staticKeychain{},
	}
}
