package crossarch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// root is the repository root, from this package's directory.
const root = "../.."

// The architecture the tests compare with this machine's, and the qemu-user
// binary that runs it.
var foreign = map[string]struct{ arch, qemu, pkg string }{
	"amd64": {"arm64", "qemu-aarch64-static", "qemu-user-static"},
	"arm64": {"amd64", "qemu-x86_64-static", "qemu-user-static"},
}

// binaries are mlship and mlship-serve built for linux on one architecture, with
// their symbols (the fused-instruction scan reads them).
type binaries struct {
	arch, mlship, serve string
}

var (
	buildOnce sync.Once
	builds    map[string]binaries
	buildErr  error
	buildDir  string
)

// build returns the binaries for linux/amd64 and linux/arm64, built once per test
// process.
func build(t *testing.T) map[string]binaries {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "mlship-crossarch-")
		if buildErr != nil {
			return
		}
		builds = map[string]binaries{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		var errs []string
		for _, arch := range []string{"amd64", "arm64"} {
			b := binaries{arch: arch, mlship: filepath.Join(buildDir, "mlship-"+arch), serve: filepath.Join(buildDir, "mlship-serve-"+arch)}
			builds[arch] = b
			for out, pkg := range map[string]string{b.mlship: "./cmd/mlship", b.serve: "./cmd/mlship-serve"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
					cmd.Dir = root
					cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
					if b, err := cmd.CombinedOutput(); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Sprintf("go build %s for linux/%s: %v\n%s", pkg, arch, err, b))
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if len(errs) > 0 {
			buildErr = fmt.Errorf("%s", strings.Join(errs, "\n"))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builds
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// emulator returns this machine's binaries, the foreign architecture's and the
// emulator that runs them. Without the emulator the test is skipped, unless $CI
// is set: there it fails, since CI must run it.
func emulator(t *testing.T) (native, other binaries, qemu string) {
	t.Helper()
	arch, qemu := findEmulator(t)
	all := build(t)
	return all[runtime.GOARCH], all[arch], qemu
}

// findEmulator returns the foreign architecture and its emulator, or skips (fails
// under $CI) as emulator says.
func findEmulator(t *testing.T) (arch, qemu string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("runs linux binaries; this is %s", runtime.GOOS)
	}
	f, ok := foreign[runtime.GOARCH]
	if !ok {
		t.Skipf("compares amd64 with arm64; this machine is %s", runtime.GOARCH)
	}
	path, err := exec.LookPath(f.qemu)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (Debian package %s; hack/setup.sh installs it), so the linux/%s build cannot run here", f.qemu, f.pkg, f.arch)
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI is set, so this is a failure, not a skip", msg)
		}
		t.Skip(msg)
	}
	return f.arch, path
}

// TestFPMathUnderEmulator runs internal/fpmath's golden test built for the foreign
// architecture: its functions must give the same bits there.
func TestFPMathUnderEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a test binary for another architecture")
	}
	arch, qemu := findEmulator(t)
	bin := filepath.Join(t.TempDir(), "fpmath.test")
	cmd := exec.Command("go", "test", "-c", "-o", bin, "./internal/fpmath")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -c ./internal/fpmath for linux/%s: %v\n%s", arch, err, out)
	}
	cmd = exec.Command(qemu, bin, "-test.run", "^(TestSameBitsEverywhere|TestSpecialCases)$", "-test.count", "1", "-test.v")
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("internal/fpmath on linux/%s under %s: %v\n%s", arch, qemu, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestSameBitsEverywhere") {
		t.Fatalf("internal/fpmath on linux/%s did not run TestSameBitsEverywhere:\n%s", arch, out)
	}
}
