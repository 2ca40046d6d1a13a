package crossarch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/model"
)

// trainCase is one training run of the comparison: the flags of mlship train and
// the CSV its rows for the server come from.
type trainCase struct {
	name string
	data string
	args []string
}

// The cases cover every path of training and prediction: an MLP with relu and a
// sigmoid output (the heart example as it ships, with early stopping), with tanh
// and a softmax output, with tanh and a linear output (regression, target
// scaling, a missing value), the digits CNN (im2col, max pool), and a model of
// text: labels yes/no, a categorical column (one-hot, a rare city in (other)),
// booleans and a missing number (testdata/people.csv); and three of them in
// float32 (--dtype float32: the sigmoid, softmax and linear outputs). Epochs are
// few: the emulator is 5 to 20 times slower.
var trainCases = []trainCase{
	{"heart", root + "/examples/heart-disease/heart.csv", []string{"--config", root + "/examples/heart-disease"}},
	{"multiclass-tanh", "testdata/synthetic.csv", []string{"--data", "testdata/synthetic.csv", "--target", "class", "--drop", "y",
		"--task", "multiclass", "--activation", "tanh", "--hidden", "16,8", "--epochs", "12", "--name", "synthetic-class"}},
	{"regression-tanh", "testdata/synthetic.csv", []string{"--data", "testdata/synthetic.csv", "--target", "y", "--drop", "class",
		"--activation", "tanh", "--hidden", "16", "--epochs", "12", "--batch-size", "16", "--name", "synthetic-y"}},
	{"digits-cnn", root + "/examples/digits/digits.csv", []string{"--config", root + "/examples/digits", "--epochs", "2"}},
	{"categorical", "testdata/people.csv", []string{"--data", "testdata/people.csv", "--target", "bought",
		"--hidden", "16", "--epochs", "12", "--max-categories", "4", "--name", "people"}},
	// float32 arithmetic (--dtype float32): each output layer
	{"heart-float32", root + "/examples/heart-disease/heart.csv", []string{"--config", root + "/examples/heart-disease", "--dtype", "float32"}},
	{"multiclass-tanh-float32", "testdata/synthetic.csv", []string{"--data", "testdata/synthetic.csv", "--target", "class", "--drop", "y",
		"--task", "multiclass", "--activation", "tanh", "--hidden", "16,8", "--epochs", "12", "--name", "synthetic-class", "--dtype", "float32"}},
	{"regression-float32", "testdata/synthetic.csv", []string{"--data", "testdata/synthetic.csv", "--target", "y", "--drop", "class",
		"--hidden", "16", "--epochs", "12", "--batch-size", "16", "--name", "synthetic-y", "--dtype", "float32"}},
}

// TestSameModelEverywhere trains each case with the native build and with the
// foreign one under qemu and requires every file of the two model directories to
// be the same bytes; then serves each pair with mlship-serve of either
// architecture and requires the same answers to the same requests; then builds
// the heart image from each with mlship of either architecture and requires the
// same digest. The native run has several cores, the emulated one GOMAXPROCS=1,
// so the result is also shown not to depend on the core count.
func TestSameModelEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mlship for two architectures and trains under an emulator")
	}
	native, other, qemu := emulator(t)
	dir := t.TempDir()
	type pair struct{ native, other string }
	dirs := make([]pair, len(trainCases))

	t.Run("train", func(t *testing.T) {
		for i, tc := range trainCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				p := pair{filepath.Join(dir, tc.name+"-"+native.arch), filepath.Join(dir, tc.name+"-"+other.arch)}
				var wg sync.WaitGroup
				var errNative, errOther error
				wg.Add(2)
				go func() {
					defer wg.Done()
					errNative = runMlship(nil, native.mlship, "GOMAXPROCS=3", append([]string{"train"}, append(slices.Clone(tc.args), "--out", p.native, "-q")...)...)
				}()
				go func() {
					defer wg.Done()
					errOther = runMlship([]string{qemu}, other.mlship, "GOMAXPROCS=1", append([]string{"train"}, append(slices.Clone(tc.args), "--out", p.other, "-q")...)...)
				}()
				wg.Wait()
				require.NoError(t, errNative, "mlship train on linux/%s", native.arch)
				require.NoError(t, errOther, "mlship train on linux/%s under %s", other.arch, qemu)
				sameDirs(t, p.native, p.other)
				dirs[i] = p
			})
		}
	})
	if t.Failed() {
		return
	}

	t.Run("serve", func(t *testing.T) {
		for i, tc := range trainCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				card, err := model.ReadCard(dirs[i].native)
				require.NoError(t, err)
				reqs := requests(t, card, tc.data)
				a := startServe(t, nil, native.serve, dirs[i].native)
				b := startServe(t, []string{qemu}, other.serve, dirs[i].other)
				for _, r := range reqs {
					codeA, bodyA := post(t, a+r.path, r.body)
					codeB, bodyB := post(t, b+r.path, r.body)
					assert.Equal(t, http.StatusOK, codeA, "%s %s: %s", r.path, r.body, bodyA)
					assert.Equal(t, codeA, codeB, "%s: status on linux/%s and linux/%s", r.path, native.arch, other.arch)
					assert.Equal(t, string(bodyA), string(bodyB), "%s %s: the answers of linux/%s and linux/%s differ", r.path, r.body, native.arch, other.arch)
				}
			})
		}
	})

	t.Run("image", func(t *testing.T) {
		layouts := filepath.Join(dir, "layouts")
		digest := func(emu []string, bin, modelDir, layout string) string {
			var out bytes.Buffer
			cmd := command(emu, []string{"GOMAXPROCS=2"}, bin, "build-push-image", "--model", modelDir, "--image", "example.com/mlship/heart:crossarch",
				"--platform", "linux/amd64,linux/arm64",
				"--server-bin", "linux/amd64="+build(t)["amd64"].serve, "--server-bin", "linux/arm64="+build(t)["arm64"].serve,
				"--oci-layout", filepath.Join(layouts, layout), "--smoke-test", "false", "--json")
			cmd.Stdout = &out
			var errb bytes.Buffer
			cmd.Stderr = &errb
			require.NoError(t, cmd.Run(), "build-push-image: %s", errb.String())
			var res struct{ Digest string }
			require.NoError(t, json.Unmarshal(out.Bytes(), &res), out.String())
			require.True(t, strings.HasPrefix(res.Digest, "sha256:"), out.String())
			return res.Digest
		}
		var a, b string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			b = digest([]string{qemu}, other.mlship, dirs[0].other, other.arch)
		}()
		a = digest(nil, native.mlship, dirs[0].native, native.arch)
		wg.Wait()
		if !t.Failed() {
			assert.Equal(t, a, b, "the image of the model trained on linux/%s (built by mlship for linux/%s) and that of the model trained on linux/%s (mlship for linux/%s) differ",
				native.arch, native.arch, other.arch, other.arch)
		}
	})
}

// command runs bin with args, under the emulator when emu is set, with the
// environment of this test minus CI variables (so that both runs see the same)
// plus env.
func command(emu []string, env []string, bin string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if len(emu) > 0 {
		cmd = exec.Command(emu[0], append(append(slices.Clone(emu[1:]), bin), args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "GITLAB_") || strings.HasPrefix(k, "CI_") ||
			strings.HasPrefix(k, "MLSHIP_") || k == "GOMAXPROCS" || k == "SOURCE_DATE_EPOCH" {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runMlship runs one mlship command and returns its failure with its output.
func runMlship(emu []string, bin, env string, args ...string) error {
	cmd := command(emu, []string{env}, bin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return nil
}

// sameDirs requires the same file names and the same bytes in a and b, and on a
// difference says where.
func sameDirs(t *testing.T, a, b string) {
	t.Helper()
	names := func(d string) []string {
		ents, err := os.ReadDir(d)
		require.NoError(t, err)
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		return n
	}
	na := names(a)
	require.Equal(t, na, names(b), "files of %s and %s", a, b)
	require.NotEmpty(t, na)
	for _, name := range na {
		ba, err := os.ReadFile(filepath.Join(a, name))
		require.NoError(t, err)
		bb, err := os.ReadFile(filepath.Join(b, name))
		require.NoError(t, err)
		if bytes.Equal(ba, bb) {
			continue
		}
		sa, sb := sha256.Sum256(ba), sha256.Sum256(bb)
		t.Errorf("%s differs: sha256 %s in %s, %s in %s; %s", name, hex.EncodeToString(sa[:]), a, hex.EncodeToString(sb[:]), b, firstDifference(name, ba, bb))
	}
}

// firstDifference describes where two versions of a model file part.
func firstDifference(name string, a, b []byte) string {
	if strings.HasSuffix(name, ".safetensors") {
		ta, _, errA := model.DecodeSafetensors(a)
		tb, _, errB := model.DecodeSafetensors(b)
		if errA != nil || errB != nil {
			return fmt.Sprintf("decoding: %v, %v", errA, errB)
		}
		keys := make([]string, 0, len(ta))
		for k := range ta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			x, y := ta[k].Data, tb[k].Data
			for i := range min(len(x), len(y)) {
				if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
					return fmt.Sprintf("first at %s[%d]: %v and %v", k, i, x[i], y[i])
				}
			}
		}
		return "same tensors, different encoding"
	}
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("first at line %d: %q and %q", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d and %d lines", len(la), len(lb))
}

type request struct{ path, body string }

// requests builds the requests both servers get: a /predict batch of the first
// rows of the CSV (with one value missing), a /predict of one row as an object,
// and an Open Inference Protocol v2 infer of the same rows as one tensor.
func requests(t *testing.T, card *model.Card, data string) []request {
	t.Helper()
	f, err := os.Open(data)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	header, err := r.Read()
	require.NoError(t, err)
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	var rows [][]string
	for len(rows) < 6 {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		row := make([]string, len(card.Features))
		for j, feat := range card.Features {
			i, ok := col[feat]
			require.True(t, ok, "feature %q not in %s", feat, data)
			row[j] = rec[i]
			switch _, err := strconv.ParseFloat(rec[i], 64); {
			case card.Categories[feat] != nil || rec[i] == "true" || rec[i] == "false":
				q, _ := json.Marshal(rec[i])
				row[j] = string(q)
				if rec[i] == "true" || rec[i] == "false" {
					row[j] = rec[i]
				}
			case err != nil:
				row[j] = "null"
			}
		}
		rows = append(rows, row)
	}
	require.NotEmpty(t, rows)
	rows[len(rows)-1][0] = "null" // a missing value, imputed by the server
	// A model with categorical features takes a BYTES tensor: every value as
	// text.
	datatype := "FP64"
	if len(card.Categories) > 0 {
		datatype = "BYTES"
	}
	var batch, flat []string
	for _, row := range rows {
		batch = append(batch, "["+strings.Join(row, ",")+"]")
		for _, v := range row {
			switch {
			case v == "null":
				v = "0"
			case v == "true":
				v = "1"
			case v == "false":
				v = "0"
			}
			if datatype == "BYTES" && !strings.HasPrefix(v, `"`) {
				v = `"` + v + `"`
			}
			flat = append(flat, v)
		}
	}
	var obj []string
	for j, feat := range card.Features {
		k, _ := json.Marshal(feat)
		obj = append(obj, string(k)+":"+rows[0][j])
	}
	infer := fmt.Sprintf(`{"inputs":[{"name":"input-0","shape":[%d,%d],"datatype":%q,"data":[%s]}]}`, len(rows), len(card.Features), datatype, strings.Join(flat, ","))
	return []request{
		{"/predict", `{"inputs":[` + strings.Join(batch, ",") + `]}`},
		{"/predict", `{"input":{` + strings.Join(obj, ",") + `}}`},
		{"/v2/models/" + card.Name + "/infer", infer},
	}
}

// startServe runs mlship-serve on a free port until the test ends and returns its
// base URL once it is ready.
func startServe(t *testing.T, emu []string, bin, modelDir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	var logs bytes.Buffer
	cmd := command(emu, []string{"GOMAXPROCS=2"}, bin, "--model", modelDir, "--addr", addr, "--drain-delay", "0s", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case err := <-done:
			t.Fatalf("mlship-serve %s exited before it was ready: %v\n%s", bin, err, logs.String())
		case <-ctx.Done():
			t.Fatalf("mlship-serve %s was not ready within a minute\n%s", bin, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b
}
