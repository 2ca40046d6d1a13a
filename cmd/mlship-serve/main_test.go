package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/train"
)

// TestDependencies keeps the server small: it must not reach gorgonia, client-go,
// go-containerregistry's remote package or cobra (go-containerregistry's depcheck
// test is the model).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	forbidden := []string{
		"gorgonia.org/",
		"k8s.io/client-go",
		"github.com/google/go-containerregistry/pkg/v1/remote",
		"github.com/spf13/cobra",
	}
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/mlship/mlship/internal/serve", "go list output looks wrong")
	for _, d := range deps {
		for _, f := range forbidden {
			assert.False(t, strings.HasPrefix(d, f), "mlship-serve depends on %s", d)
		}
	}
}

func TestParse(t *testing.T) {
	t.Setenv("PORT", "9999")
	t.Setenv("MLSHIP_MODEL_DIR", "/m")
	o, err := parse(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":9999", o.addr)
	assert.Equal(t, "/m", o.modelDir)
	assert.Equal(t, 5*time.Second, o.drainDelay)

	o, err = parse([]string{"--addr", "127.0.0.1:1", "--model", "x", "--max-inflight", "3", "--drain-delay", "1s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1", o.addr, "a flag wins over the environment")
	assert.Equal(t, "x", o.modelDir)
	assert.Equal(t, 3, o.maxInFlight)

	assert.Equal(t, 10*time.Second, o.bodyTimeout, "the default")
	assert.Equal(t, 1024, o.maxBodyReaders, "the default")
	t.Setenv("MLSHIP_BODY_TIMEOUT", "3s")
	t.Setenv("MLSHIP_MAX_BODY_READERS", "7")
	o, err = parse(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, o.bodyTimeout)
	assert.Equal(t, 7, o.maxBodyReaders)

	t.Setenv("MLSHIP_MAX_INFLIGHT", "many")
	_, err = parse(nil, io.Discard)
	require.EqualError(t, err, `$MLSHIP_MAX_INFLIGHT: "many" is not an integer`)
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--model", "/nonexistent"}, `mlship-serve: reading model "/nonexistent": no such directory`},
		{[]string{"--bogus"}, "mlship-serve: flag provided but not defined: -bogus"},
		{[]string{"--log-format", "xml", "--model", "."}, `mlship-serve: log format "xml": want json or text`},
		{[]string{"extra"}, `mlship-serve: unexpected arguments ["extra"]`},
		{[]string{"--body-timeout", "0s"}, `mlship-serve: --body-timeout must be positive, got 0s`},
		{[]string{"--max-body-readers", "0"}, `mlship-serve: --max-body-readers must be at least 1, got 0`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			assert.Equal(t, 2, code)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			assert.Equal(t, tc.want, lines[len(lines)-1])
		})
	}
}

// TestBinarySIGTERM builds the real binary, serves a model trained by mlship train
// on the heart data, sends traffic, then SIGTERM: the process must drain, answer
// every request and exit 0.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mlship-serve")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	cfg := train.DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Binarize = "../../examples/heart-disease/heart.csv", "target", ">0"
	cfg.OutDir = filepath.Join(dir, "model")
	_, err = train.Run(context.Background(), cfg)
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--model", cfg.OutDir, "--addr", addr, "--drain-delay", "300ms")
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	base := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)

	var routing atomic.Bool
	routing.Store(true)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for routing.Load() {
			if res, err := http.Get(base + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == 503 {
					routing.Store(false)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	row := `{"input":{"age":63,"sex":1,"cp":1,"trestbps":145,"chol":233,"fbs":1,"restecg":2,"thalach":150,"exang":0,"oldpeak":2.3,"slope":3,"ca":0,"thal":null}}`
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for routing.Load() {
				res, err := http.Post(base+"/predict", "application/json", strings.NewReader(row))
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == 200 && bytes.Contains(b, []byte(`"probabilities"`)) {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	wg.Wait()
	require.NoError(t, cmd.Wait(), logs.String())
	assert.Zero(t, failed.Load())
	assert.Greater(t, ok.Load(), int64(20))
	assert.Contains(t, logs.String(), `"msg":"draining"`)
	assert.Contains(t, logs.String(), `"msg":"stopped"`)
	fmt.Fprintf(os.Stderr, "binary answered %d requests through SIGTERM\n", ok.Load())
}

// TestReadmeDocumentsEveryFlag keeps the README's mlship-serve table complete.
func TestReadmeDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	// parse registers the flags on its own set; list them through -h's output.
	var usage bytes.Buffer
	_, err = parse([]string{"-h"}, &usage)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, line := range strings.Split(usage.String(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-") {
			continue
		}
		name := strings.Fields(line)[0][1:]
		assert.Contains(t, string(b), "`--"+name+"`", "flag --%s is not in README.md", name)
	}
	assert.Contains(t, usage.String(), "-drain-delay")
}
