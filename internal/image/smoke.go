package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// smokeTest runs the built image for this machine's platform from its own
// filesystem (unshare + chroot, as root, like a container without a runtime),
// sends one row to /predict and requires a 200 with an output.
func smokeTest(ctx context.Context, cfg Config, b *built, logw io.Writer) (string, error) {
	mode := cfg.Smoke
	if mode == "" {
		mode = SmokeAuto
	}
	if mode == SmokeOff {
		return "off", nil
	}
	if why := smokeUnavailable(b.platforms); why != "" {
		if mode == SmokeOn {
			return "", fmt.Errorf("smoke test: cannot run here: %s", why)
		}
		fmt.Fprintf(logw, "smoke test skipped: %s\n", why)
		return "skipped: " + why, nil
	}
	if err := runSmoke(ctx, b.images[hostPlatform()], b, logw); err != nil {
		return "", fmt.Errorf("smoke test of the %s image: %w", hostPlatform(), err)
	}
	return "passed", nil
}

// smokeUnavailable says why the smoke test cannot run on this machine, or "".
func smokeUnavailable(platforms []string) string {
	switch {
	case runtime.GOOS != "linux":
		return "it needs Linux namespaces (this is " + runtime.GOOS + ")"
	case !slices.Contains(platforms, hostPlatform()):
		return fmt.Sprintf("no image for this machine's platform %s", hostPlatform())
	case os.Geteuid() != 0:
		return "it needs root to unshare and chroot (no container runtime is used)"
	}
	for _, tool := range []string{"unshare", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed"
		}
	}
	return ""
}

func runSmoke(ctx context.Context, img v1.Image, b *built, logw io.Writer) error {
	root, err := os.MkdirTemp("", "mlship-smoke-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil { // the image's / (MkdirTemp makes it 0700)
		return err
	}
	if err := extract(img, root); err != nil {
		return fmt.Errorf("unpacking: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o555); err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--mount", "--pid", "--uts", "--ipc", "--fork", "--kill-child", "--mount-proc=" + filepath.Join(root, "proc"),
		"chroot", "--userspec=" + cf.Config.User, root}
	args = append(args, cf.Config.Entrypoint...)
	args = append(args, cf.Config.Cmd...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = mergeEnv(cf.Config.Env, []string{"MLSHIP_ADDR=" + addr, "MLSHIP_DRAIN_DELAY=0s", "MLSHIP_LOG_FORMAT=text"})
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	inProcessGroup(cmd)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting unshare: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		killProcessGroup(cmd)
		<-exited
	}()
	tail := func() string {
		s := strings.TrimSpace(logs.String())
		if len(s) > 600 {
			s = "..." + s[len(s)-600:]
		}
		return strings.ReplaceAll(s, "\n", " | ")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("the server exited (%v): %s", err, tail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		res, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server was not ready after 15s: %s", tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ready := time.Since(start)
	row, _ := json.Marshal(map[string]any{"input": b.card.Preprocess.Mean})
	res, err := client.Post("http://"+addr+"/predict", "application/json", bytes.NewReader(row))
	if err != nil {
		return fmt.Errorf("POST /predict: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(body, []byte(`"output"`)) {
		return fmt.Errorf("POST /predict answered %d %s", res.StatusCode, bytes.TrimSpace(body))
	}
	fmt.Fprintf(logw, "smoke test passed: %s ready in %dms as user %s, POST /predict -> %s\n", b.card.Name, ready.Milliseconds(), cf.Config.User, bytes.TrimSpace(body))
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// extract unpacks the image's flattened filesystem into root; entries that would
// leave root are refused.
func extract(img v1.Image, root string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		dst := filepath.Join(root, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, os.FileMode(h.Mode)&os.ModePerm|0o700); err != nil {
				return err
			}
			os.Chmod(dst, os.FileMode(h.Mode)&os.ModePerm|modeBits(h.Mode))
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&os.ModePerm)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			os.Remove(dst)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
		case tar.TypeLink:
			target := filepath.Join(root, filepath.Clean("/"+h.Linkname))
			os.Remove(dst)
			if err := os.Link(target, dst); err != nil {
				return err
			}
		}
	}
}

func modeBits(m int64) os.FileMode {
	var out os.FileMode
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}
