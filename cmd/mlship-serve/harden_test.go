package main

import (
	"bufio"
	"bytes"
	"context"
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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/train"
)

// The binary and the models are built once for the package's tests.
var shared struct {
	once                       sync.Once
	dir                        string
	bin, classifier, regressor string
	err                        error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// binaryAndModels builds mlship-serve and trains two models on the heart data
// with mlship's own trainer: a classifier (target > 0) and a regression of
// thalach.
func binaryAndModels(t *testing.T) (bin, classifier, regressor string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and trains models")
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "mlship-serve-test-")
		if shared.err != nil {
			return
		}
		shared.bin = filepath.Join(shared.dir, "mlship-serve")
		if out, err := exec.Command("go", "build", "-o", shared.bin, ".").CombinedOutput(); err != nil {
			shared.err = fmt.Errorf("go build: %v: %s", err, out)
			return
		}
		cfg := train.DefaultConfig()
		cfg.DataPath, cfg.Target, cfg.Binarize = "../../examples/heart-disease/heart.csv", "target", ">0"
		cfg.Name, cfg.OutDir = "classifier", filepath.Join(shared.dir, "classifier")
		if _, shared.err = train.Run(context.Background(), cfg); shared.err != nil {
			return
		}
		shared.classifier = cfg.OutDir
		cfg = train.DefaultConfig()
		cfg.DataPath, cfg.Target, cfg.Task, cfg.Epochs = "../../examples/heart-disease/heart.csv", "thalach", "regression", 20
		cfg.Name, cfg.OutDir = "regressor", filepath.Join(shared.dir, "regressor")
		if _, shared.err = train.Run(context.Background(), cfg); shared.err != nil {
			return
		}
		shared.regressor = cfg.OutDir
	})
	require.NoError(t, shared.err)
	return shared.bin, shared.classifier, shared.regressor
}

// startServer runs the binary on a free port until the test ends and returns its
// base URL once it is ready.
func startServer(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, append([]string{"--addr", addr, "--drain-delay", "0s"}, args...)...)
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			assert.NoError(t, err, logs.String())
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("mlship-serve did not stop on SIGTERM")
		}
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)
	return base
}

func metricsOf(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	parser := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return fams
}

func gauge(fams map[string]*dto.MetricFamily, name string) float64 {
	for _, m := range fams[name].GetMetric() {
		return m.GetGauge().GetValue()
	}
	return math.NaN()
}

const heartRow = `{"input":{"age":63,"sex":1,"cp":1,"trestbps":145,"chol":233,"fbs":1,"restecg":2,"thalach":150,"exang":0,"oldpeak":2.3,"slope":3,"ca":0,"thal":null}}`

// TestBinarySlowBodyAttack: 300 clients (more than the 256 in-flight slots) send
// their bodies a byte every half second and reconnect when cut off. Ordinary
// clients must still be answered, none with 429, within their usual latency:
// their p99 under the attack is compared with their p99 without it.
func TestBinarySlowBodyAttack(t *testing.T) {
	bin, classifier, _ := binaryAndModels(t)
	const attackers = 300
	base := startServer(t, bin, "--model", classifier, "--body-timeout", "3s")
	addr := strings.TrimPrefix(base, "http://")

	// measure sends ordinary requests from 4 clients for d and returns their
	// latencies and the status codes seen.
	measure := func(d time.Duration) ([]time.Duration, map[int]int) {
		var mu sync.Mutex
		var lat []time.Duration
		codes := map[int]int{}
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
				defer client.CloseIdleConnections()
				for time.Now().Before(end) {
					start := time.Now()
					res, err := client.Post(base+"/predict", "application/json", strings.NewReader(heartRow))
					code := -1
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						code = res.StatusCode
					}
					el := time.Since(start)
					mu.Lock()
					lat = append(lat, el)
					codes[code]++
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		slices.Sort(lat)
		return lat, codes
	}
	p := func(lat []time.Duration, q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }

	baseLat, baseCodes := measure(2 * time.Second)
	require.Equal(t, map[int]int{200: len(baseLat)}, baseCodes)

	// The attack.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var cut, connects atomic.Int64
	body := `{"input":[` + strings.Repeat("1,", 40) + `1]}`
	for range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				connects.Add(1)
				got := make(chan int, 1)
				go func() {
					res, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						got <- -1
						return
					}
					res.Body.Close()
					got <- res.StatusCode
				}()
				fmt.Fprintf(c, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
				tick := time.NewTicker(500 * time.Millisecond)
			trickle:
				for i := 0; ; i++ {
					select {
					case code := <-got:
						if code == http.StatusRequestTimeout {
							cut.Add(1)
						}
						break trickle
					case <-ctx.Done():
						break trickle
					case <-tick.C:
						c.Write([]byte{body[i%len(body)]})
					}
				}
				tick.Stop()
				c.Close()
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	require.Eventually(t, func() bool { return gauge(metricsOf(t, base), "mlship_http_request_bodies_reading") >= attackers*0.9 },
		20*time.Second, 50*time.Millisecond, "the attackers never got their bodies going")

	attackLat, attackCodes := measure(5 * time.Second)
	reading := gauge(metricsOf(t, base), "mlship_http_request_bodies_reading")
	cancel()
	wg.Wait()

	t.Logf("without the attack: %d requests, p50 %v, p99 %v", len(baseLat), p(baseLat, 0.5), p(baseLat, 0.99))
	t.Logf("with %d clients trickling bodies (%d connections, %d cut off with 408, %v bodies being read at the end): %d requests, p50 %v, p99 %v, codes %v",
		attackers, connects.Load(), cut.Load(), reading, len(attackLat), p(attackLat, 0.5), p(attackLat, 0.99), attackCodes)
	assert.Equal(t, map[int]int{200: len(attackLat)}, attackCodes, "every ordinary request answered 200 (no 429)")
	assert.GreaterOrEqual(t, reading, attackers*0.5, "the attack was still going while measuring")
	assert.GreaterOrEqual(t, cut.Load(), int64(attackers), "every attacker is cut off by the 3 s body deadline")
	bound := max(10*p(baseLat, 0.99), time.Second)
	assert.LessOrEqual(t, p(attackLat, 0.99), bound, "p99 under the attack is more than max(10 x p99 without it, 1 s)")
}

// TestBinaryHardening meets, through the real binary, what a hostile or
// careless client sends: extreme inputs, huge keys, OIP datatypes and shapes,
// the binary tensor extension.
func TestBinaryHardening(t *testing.T) {
	bin, classifier, regressor := binaryAndModels(t)

	t.Run("non-finite prediction", func(t *testing.T) {
		base := startServer(t, bin, "--model", regressor)
		codes := map[int]int{}
		for _, v := range []string{"1e300", "1e305", "1e307", "-1e307", "1.7e308", "-1.7e308"} {
			row := strings.TrimSuffix(strings.Repeat(v+",", 13), ",") // 13 features: the target column is one
			for _, req := range []struct{ path, body string }{
				{"/predict", `{"inputs":[[` + row + `]]}`},
				{"/v2/models/regressor/infer", `{"inputs":[{"name":"input-0","shape":[1,13],"datatype":"FP64","data":[` + row + `]}]}`},
			} {
				res, err := http.Post(base+req.path, "application/json", strings.NewReader(req.body))
				require.NoError(t, err)
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				codes[res.StatusCode]++
				var v map[string]any
				require.NoError(t, json.Unmarshal(b, &v), "not JSON: %s", b)
				switch res.StatusCode {
				case 200:
				case 400:
					assert.Contains(t, v["error"], "the prediction is not finite for this input", string(b))
				default:
					t.Errorf("%s %s: %d %s", req.path, req.body, res.StatusCode, b)
				}
			}
		}
		t.Logf("answers: %v", codes)
		assert.Positive(t, codes[400], "no input overflowed the regression: the test proves nothing")
		res, err := http.Post(base+"/predict", "application/json", strings.NewReader(`{"input":[63,1,1,145,233,1,2,0,2.3,3,0,null,1]}`))
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 200, res.StatusCode, "still serving")
		for name, f := range metricsOf(t, base) {
			for _, m := range f.Metric {
				var v float64
				switch {
				case m.Counter != nil:
					v = m.Counter.GetValue()
				case m.Gauge != nil:
					v = m.Gauge.GetValue()
				case m.Histogram != nil:
					v = m.Histogram.GetSampleSum()
				case m.Summary != nil:
					v = m.Summary.GetSampleSum()
				}
				assert.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s is %v", name, v)
			}
		}
	})

	base := startServer(t, bin, "--model", classifier)
	infer := base + "/v2/models/classifier/infer"
	huge := strings.Repeat("k", 900_000)
	tensor := func(shape, datatype, data string) string {
		return `{"inputs":[{"name":"input-0","shape":` + shape + `,"datatype":"` + datatype + `","data":` + data + `}]}`
	}
	row := "63,1,1,145,233,1,2,150,0,2.3,3,0,6"
	tests := []struct {
		name, method, url, body string
		header                  map[string]string
		code                    int
		want                    string
	}{
		{"server metadata trailing slash", "GET", base + "/v2/", "", nil, 200, `"name":"mlship-serve"`},
		{"int32 fraction", "POST", infer, tensor("[1,13]", "INT32", "["+strings.Replace(row, "2.3", "2", 1)+"]"), nil, 200, `"output-0"`},
		{"int32 2.3", "POST", infer, tensor("[1,13]", "INT32", "["+row+"]"), nil, 400, `data[9]: 2.3 is not a whole number, as datatype INT32 takes`},
		{"uint8 630", "POST", infer, tensor("[1,13]", "UINT8", "["+strings.Replace(row, "145", "630", 1)+"]"), nil, 400, `data[3]: 630 is out of the range of UINT8 (0 to 255)`},
		{"ragged", "POST", infer, tensor("[2,13]", "FP64", "[["+row+",1],["+strings.Join(strings.Split(row, ",")[1:], ",")+"]]"), nil, 400, `data[0] has 14 elements; the shape [2 13] wants 13 at dimension 1`},
		{"binary extension", "POST", infer, "{}\x00\x00\x00\x01", map[string]string{"Inference-Header-Content-Length": "2"}, 400, `the binary tensor data extension (header Inference-Header-Content-Length) is not supported: send the request as JSON`},
		{"huge key", "POST", base + "/predict", `{"input":{"` + huge + `":1}}`, nil, 400, `unknown feature "kkkk`},
		{"huge number", "POST", base + "/predict", `{"input":[1` + strings.Repeat("0", 900_000) + `,1,1,1,1,1,1,1,1,1,1,1,1]}`, nil, 400, `... (900001 bytes) is not a finite number`},
		{"model metadata", "GET", base + "/v2/models/classifier", "", nil, 200, `"features":"age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			assert.Equal(t, tc.code, res.StatusCode, string(b))
			got := string(b)
			if res.StatusCode >= 400 {
				var e struct {
					Error string `json:"error"`
				}
				require.NoError(t, json.Unmarshal(b, &e), got)
				got = e.Error
			}
			assert.Contains(t, got, tc.want)
			assert.Less(t, len(b), 1000)
			assert.True(t, json.Valid(b), string(b))
			if tc.name == "model metadata" {
				var meta struct {
					Parameters map[string]any `json:"parameters"`
				}
				require.NoError(t, json.Unmarshal(b, &meta))
				for k, v := range meta.Parameters {
					switch v.(type) {
					case string, float64, bool:
					default:
						t.Errorf("parameter %s is a %T, not a string, number or boolean", k, v)
					}
				}
			}
		})
	}
}
