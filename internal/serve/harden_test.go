package serve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startBody opens a connection to addr and sends a POST to path whose body of
// len(body) bytes (declared in Content-Length) has only its first byte sent.
func startBody(t *testing.T, addr, path, body string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body[:1])
	require.NoError(t, err)
	return c
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e.Error
}

// TestSlowBodyHoldsNoSlot: a request whose body is still arriving holds no
// in-flight slot, so with a limit of 1 another request is served meanwhile.
func TestSlowBodyHoldsNoSlot(t *testing.T) {
	s, ts := newTestServer(t, "binary", func(c *Config) { c.MaxInFlight = 1 })
	body := `{"input":[1,2,3]}`
	c := startBody(t, ts.Listener.Addr().String(), "/predict", body)
	require.Eventually(t, func() bool { return s.readers.Load() == 1 }, 5*time.Second, time.Millisecond)
	assert.EqualValues(t, 0, s.inflight.Load())
	r := do(t, "POST", ts.URL+"/predict", body)
	assert.Equal(t, 200, r.code, r.body)
	// The slow body completes and is served too.
	_, err := io.WriteString(c, body[1:])
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
}

// TestBodyTimeout: a body that does not arrive within BodyTimeout gets 408, and
// the connection is closed; the bodies being read are bounded by MaxBodyReaders
// (past it, 429 at once).
func TestBodyTimeout(t *testing.T) {
	s, ts := newTestServer(t, "binary", func(c *Config) { c.BodyTimeout = 300 * time.Millisecond; c.MaxBodyReaders = 1 })
	for _, path := range []string{"/predict", "/v2/models/toy-binary/infer"} {
		t.Run(path, func(t *testing.T) {
			start := time.Now()
			c := startBody(t, ts.Listener.Addr().String(), path, `{"input":[1,2,3]}`)
			require.Eventually(t, func() bool { return s.readers.Load() == 1 }, 5*time.Second, time.Millisecond)

			r := do(t, "POST", ts.URL+path, `{"input":[1,2,3]}`)
			assert.Equal(t, http.StatusTooManyRequests, r.code)
			assert.Equal(t, "too many request bodies being received at once (limit 1); retry later", errorOf(t, r.body))
			assert.Equal(t, "1", r.header.Get("Retry-After"))

			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			assert.Equal(t, http.StatusRequestTimeout, res.StatusCode)
			assert.Equal(t, "request body not received within 300ms (1 bytes arrived); send the body at once", errorOf(t, string(b)))
			assert.True(t, res.Close, "the connection is closed after a 408")
			assert.Less(t, time.Since(start), 5*time.Second)
			_, err = br.ReadByte()
			assert.ErrorIs(t, err, io.EOF)
			require.Eventually(t, func() bool { return s.readers.Load() == 0 }, 5*time.Second, time.Millisecond)
			assert.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"input":[1,2,3]}`).code, "the reader was given back")
		})
	}
	fams := scrape(t, ts.URL)
	assert.Equal(t, 1.0, sample(t, fams, "mlship_http_requests_total", map[string]string{"route": "predict", "code": "408"}).Counter.GetValue())
	assert.Equal(t, 0.0, sample(t, fams, "mlship_http_request_bodies_reading", nil).Gauge.GetValue())
	assert.Equal(t, 0.0, sample(t, fams, "mlship_http_requests_in_flight", nil).Gauge.GetValue())
}

// assertFiniteMetrics checks that no sample of /metrics is NaN or infinite (the
// +Inf bucket's bound aside).
func assertFiniteMetrics(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	finite := func(name string, v float64) {
		assert.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s is %v", name, v)
	}
	for name, f := range fams {
		for _, m := range f.Metric {
			switch {
			case m.Counter != nil:
				finite(name, m.Counter.GetValue())
			case m.Gauge != nil:
				finite(name, m.Gauge.GetValue())
			case m.Untyped != nil:
				finite(name, m.Untyped.GetValue())
			case m.Histogram != nil:
				finite(name+"_sum", m.Histogram.GetSampleSum())
			case m.Summary != nil:
				finite(name+"_sum", m.Summary.GetSampleSum())
			}
		}
	}
}

// TestNonFinitePrediction: inputs so far from the training data that the
// standardised value or the prediction is not finite get 400 on both routes,
// never a 200 with +Inf (not JSON) or a 500, and no metric ever becomes NaN or
// infinite, even after huge finite predictions.
func TestNonFinitePrediction(t *testing.T) {
	for _, task := range []string{"regression", "binary", "multiclass"} {
		t.Run(task, func(t *testing.T) {
			_, ts := newTestServer(t, task, nil)
			infer := ts.URL + "/v2/models/toy-" + task + "/infer"
			oip := func(a, b, c string) string {
				return `{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[` + a + `,` + b + `,` + c + `]}]}`
			}
			// c has std 0.5: 1e308 standardises to +Inf.
			r := do(t, "POST", ts.URL+"/predict", `{"inputs":[[1,2,3],[1,2,1e308]]}`)
			assert.Equal(t, 400, r.code, r.body)
			assert.Equal(t, "inputs[1]: the prediction is not finite for this input: c = 1e+308 is too far outside the training data (mean 3, std 0.5)", errorOf(t, r.body))
			r = do(t, "POST", infer, oip("1", "2", "-1e308"))
			assert.Equal(t, 400, r.code, r.body)
			assert.Contains(t, errorOf(t, r.body), "row 0: the prediction is not finite for this input: c = -1e+308 is too far outside")

			// Finite standardised values whose prediction may overflow: each answer
			// is 400 naming the row, or 200 with finite JSON numbers.
			codes := map[int]int{}
			for _, e := range []string{"1e300", "-1e300", "1e305", "-1e305", "1e307", "-1e307", "1.7e308", "-1.7e308"} {
				for _, row := range [][3]string{{e, "2", "3"}, {e, e, "3"}, {"1", e, "3"}} {
					for _, req := range []struct{ url, body string }{
						{ts.URL + "/predict", `{"input":[` + strings.Join(row[:], ",") + `]}`},
						{infer, oip(row[0], row[1], row[2])},
					} {
						r := do(t, "POST", req.url, req.body)
						codes[r.code]++
						switch r.code {
						case 200:
							var v any
							assert.NoError(t, json.Unmarshal([]byte(r.body), &v), "not JSON: %s", r.body)
						case 400:
							assert.Contains(t, errorOf(t, r.body), "the prediction is not finite for this input", req.body)
						default:
							t.Errorf("%s %s: %d %s", req.url, req.body, r.code, r.body)
						}
					}
				}
			}
			t.Logf("answers: %v", codes)
			if task == "regression" {
				assert.Positive(t, codes[400], "no input overflowed the regression: the test proves nothing")
				assert.Positive(t, codes[200], "no huge but finite prediction: the sums were not tested")
			}
			assert.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"input":[1,2,3]}`).code)
			fams := scrape(t, ts.URL)
			assertFiniteMetrics(t, fams)
			assertNo500(t, fams)
		})
	}

	// Weights of 1e200 overflow the logits to +Inf, and softmax gives NaN: a
	// classifier answers 400 too. (The toy binary model's sigmoid saturates to 0
	// or 1 instead; the check is the same code.)
	for _, task := range []string{"multiclass"} {
		t.Run(task+" overflowing weights", func(t *testing.T) {
			s, err := New(Config{ModelDir: writeModelScaled(t, task, 1e200)})
			require.NoError(t, err)
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			codes := map[int]int{}
			for _, row := range []string{"1,2,3", "1e10,-1e10,1e10", "1e100,1e100,1e100", "1e200,-1e200,1e200", "-1e300,1e300,-1e300", "1e300,1e300,1e300", "1e300,0,0", "0,-1e300,0", "0,0,-1e300"} {
				for _, req := range []struct{ url, body string }{
					{ts.URL + "/predict", `{"inputs":[[` + row + `]]}`},
					{ts.URL + "/v2/models/toy-" + task + "/infer", `{"inputs":[{"name":"input-0","shape":[3],"datatype":"FP64","data":[` + row + `]}]}`},
				} {
					r := do(t, "POST", req.url, req.body)
					codes[r.code]++
					if r.code == 400 {
						assert.Contains(t, errorOf(t, r.body), ": the prediction is not finite for this input", req.body)
					} else {
						assert.Equal(t, 200, r.code, r.body)
						var v any
						assert.NoError(t, json.Unmarshal([]byte(r.body), &v), "not JSON: %s", r.body)
					}
				}
			}
			t.Logf("answers: %v", codes)
			assert.Positive(t, codes[400], "no prediction overflowed: the test proves nothing")
			fams := scrape(t, ts.URL)
			assertFiniteMetrics(t, fams)
			assertNo500(t, fams)
		})
	}
}

func assertNo500(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, m := range fams["mlship_http_requests_total"].GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "code" && l.GetValue() == "500" {
				assert.Zero(t, m.GetCounter().GetValue(), "a 500 was answered")
			}
		}
	}
}

// TestSaturatingSum: a histogram sum saturates at the largest float64 instead of
// becoming +Inf (and NaN after a -Inf).
func TestSaturatingSum(t *testing.T) {
	h := newDriftHistogram([]string{"a"}, 2)
	for i := 0; i < 4; i++ {
		h.observe(i%2, []float64{math.MaxFloat64})
	}
	m := collect(t, h)[0].Histogram
	assert.Equal(t, math.MaxFloat64, m.GetSampleSum())
	assert.Equal(t, uint64(4), m.GetSampleCount())
	for i := 0; i < 8; i++ {
		h.observe(i%2, []float64{-math.MaxFloat64})
	}
	assert.Equal(t, -math.MaxFloat64, collect(t, h)[0].Histogram.GetSampleSum())
}

// TestErrorsAreShort: no error echoes a huge key, name or number back, on any
// route.
func TestErrorsAreShort(t *testing.T) {
	_, ts := newTestServer(t, "binary", nil)
	huge := strings.Repeat("k", 900_000)
	digits := strings.Repeat("9", 900_000)
	base := ts.URL + "/v2/models/toy-binary"
	tensor := func(name, shape, datatype, data string) string {
		return `{"inputs":[{"name":"` + name + `","shape":` + shape + `,"datatype":"` + datatype + `","data":` + data + `}]}`
	}
	tests := []struct {
		name, url, body, want string
	}{
		{"predict unknown feature", ts.URL + "/predict", `{"input":{"` + huge + `":1}}`, `unknown feature "kkkk`},
		{"predict unknown field", ts.URL + "/predict", `{"` + huge + `":1}`, `unknown field "kkkk`},
		{"predict number", ts.URL + "/predict", `{"input":[1` + digits + `e999,2,3]}`, `input[0] (a): 1999`},
		{"infer tensor name", base + "/infer", tensor(huge, "[1,3]", "FP64", "[1,2,3,4]"), `inputs[0] (kkkk`},
		{"infer feature name", base + "/infer", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]},{"name":"` + huge + `","shape":[1],"datatype":"FP64","data":[1]}]}`, `inputs[1]: "kkkk`},
		{"infer datatype", base + "/infer", tensor("input-0", "[1,3]", huge, "[1,2,3]"), `datatype "kkkk`},
		{"infer data number", base + "/infer", tensor("input-0", "[1,3]", "FP64", "[1,2,1"+digits+"e999]"), `data[2]: 1999`},
		{"infer integer", base + "/infer", tensor("input-0", "[1,3]", "INT64", "[1,2,1"+digits+".5]"), `data[2]: 1999`},
		{"infer shape number", base + "/infer", tensor("input-0", "[1"+digits+",3]", "FP64", "[1,2,3]"), `malformed inference request: inputs.shape: got number 1999`},
		{"infer parameter", base + "/infer", `{"parameters":{"` + huge[:500_000] + `":1` + digits[:500_000] + `e999},"inputs":[]}`, `malformed inference request: parameters: got number 1999`},
		{"infer output", base + "/infer", `{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[1,2,3]}],"outputs":[{"name":"` + huge + `"}]}`, `unknown output "kkkk`},
		{"model name", ts.URL + "/v2/models/" + strings.Repeat("m", 30_000), "", `model "mmmm`},
		{"version", base + "/versions/" + strings.Repeat("v", 30_000), "", `version "vvvv`},
		{"route", ts.URL + "/" + strings.Repeat("p", 30_000), "", `no route GET /pppp`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.body == "" {
				method = "GET"
			}
			r := do(t, method, tc.url, tc.body)
			assert.Contains(t, []int{400, 404}, r.code)
			msg := errorOf(t, r.body)
			assert.Contains(t, msg, tc.want)
			assert.Contains(t, msg, " bytes)")
			assert.Less(t, len(r.body), 600, msg)
		})
	}
}

// TestOpenInferenceProtocolStrict: datatypes, nested data that does not match
// its shape, the spec's GET /v2/, the binary data extension and the model
// metadata's parameters.
func TestOpenInferenceProtocolStrict(t *testing.T) {
	_, ts := newTestServer(t, "multiclass", nil)
	base := ts.URL + "/v2/models/toy-multiclass"
	tensor := func(shape, datatype, data string) string {
		return `{"inputs":[{"name":"input-0","shape":` + shape + `,"datatype":"` + datatype + `","data":` + data + `}]}`
	}
	bad := []struct{ name, body, want string }{
		{"int32 fraction", tensor("[1,3]", "INT32", "[1,2.3,3]"), "inputs[0] (input-0): data[1]: 2.3 is not a whole number, as datatype INT32 takes"},
		{"uint8 range", tensor("[1,3]", "UINT8", "[630,1,2]"), "inputs[0] (input-0): data[0]: 630 is out of the range of UINT8 (0 to 255)"},
		{"ragged", tensor("[2,3]", "FP64", "[[1,2,3,4],[5,6]]"), "inputs[0] (input-0): data[0] has 4 elements; the shape [2 3] wants 3 at dimension 1"},
		{"ragged rows", tensor("[2,3]", "FP64", "[[1,2,3]]"), "inputs[0] (input-0): data has 1 elements; the shape [2 3] wants 2 at dimension 0"},
		{"bool for numbers", tensor("[1,3]", "FP32", "[true,2,3]"), "inputs[0] (input-0): data[0] is a boolean; datatype FP32 takes numbers"},
		{"overflowing shape", tensor("[6148914691236517206,3]", "FP64", "[1,2]"), "inputs[0] (input-0): shape [6148914691236517206 3] has more elements than any request can hold"},
		{"shape not integer", tensor("[1.5,3]", "FP64", "[1,2,3]"), "malformed inference request: inputs.shape: got number 1.5, want an integer"},
		{"syntax", `{"inputs":[}`, "malformed inference request at byte 12: invalid character '}' looking for beginning of value"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", base+"/infer", tc.body)
			assert.Equal(t, 400, r.code, r.body)
			assert.Equal(t, tc.want, errorOf(t, r.body))
		})
	}
	// Valid nested and integer data is still served.
	for _, body := range []string{tensor("[2,3]", "INT32", "[[1,2,3],[4,5,6]]"), tensor("[2,3]", "UINT8", "[1,2,3,4,5,255]"), tensor("[1,3]", "BOOL", "[true,false,null]")} {
		r := do(t, "POST", base+"/infer", body)
		assert.Equal(t, 200, r.code, body+": "+r.body)
	}

	// Server metadata at the spec's path, with and without the trailing slash.
	for _, p := range []string{"/v2", "/v2/"} {
		r := do(t, "GET", ts.URL+p, "")
		require.Equal(t, 200, r.code, p)
		var meta struct {
			Name       string   `json:"name"`
			Extensions []string `json:"extensions"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &meta))
		assert.Equal(t, "mlship-serve", meta.Name)
		assert.NotContains(t, meta.Extensions, "binary_tensor_data")
	}

	// The binary tensor data extension: a clear 400, whatever the body.
	req, err := http.NewRequest("POST", base+"/infer", strings.NewReader("{\"inputs\":[]}\x00\x01\x02\x03"))
	require.NoError(t, err)
	req.Header.Set("Inference-Header-Content-Length", "13")
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, 400, res.StatusCode)
	assert.Equal(t, `the binary tensor data extension (header Inference-Header-Content-Length) is not supported: send the request as JSON, each tensor's values in its "data" array, without that header`, errorOf(t, string(b)))

	// Model metadata: every parameter a string, number or boolean.
	r := do(t, "GET", base, "")
	require.Equal(t, 200, r.code)
	var meta struct {
		Parameters map[string]any `json:"parameters"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &meta))
	require.NotEmpty(t, meta.Parameters)
	for k, v := range meta.Parameters {
		switch v.(type) {
		case string, float64, bool:
		default:
			t.Errorf("parameter %s is a %T, the protocol allows strings, numbers and booleans", k, v)
		}
	}
	assert.Equal(t, "a,b,c", meta.Parameters["features"])
	assert.Equal(t, "0,1,2", meta.Parameters["classes"])
	assert.Equal(t, "multiclass", meta.Parameters["task"])
}

// TestClassLabels: labels that are not JSON numbers are written as strings by
// /predict (a label "+1" or "0x10" written bare would not be JSON), and as a
// BYTES tensor by the Open Inference Protocol (they used to come back as 0).
func TestClassLabels(t *testing.T) {
	s, err := New(Config{ModelDir: writeModelWith(t, "multiclass", 1, []string{"setosa", "+1", "0x10"})})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	want, err := s.Model().Predict([][]float64{{1, 2, 3}, {-4, 5, 9}})
	require.NoError(t, err)
	labels := []string{"setosa", "+1", "0x10"}

	r := do(t, "POST", ts.URL+"/predict", `{"inputs":[[1,2,3],[-4,5,9]]}`)
	require.Equal(t, 200, r.code, r.body)
	var got struct {
		Outputs       []string             `json:"outputs"`
		Probabilities []map[string]float64 `json:"probabilities"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &got), r.body)
	assert.Equal(t, []string{labels[want.Class[0]], labels[want.Class[1]]}, got.Outputs)
	assert.InDelta(t, want.Probs[0][1], got.Probabilities[0]["+1"], 1e-15)

	r = do(t, "POST", ts.URL+"/v2/models/toy-multiclass/infer", `{"inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP64","data":[1,2,3,-4,5,9]}]}`)
	require.Equal(t, 200, r.code, r.body)
	var inf struct {
		Outputs []struct {
			Name     string `json:"name"`
			Datatype string `json:"datatype"`
			Data     []any  `json:"data"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &inf), r.body)
	assert.Equal(t, "BYTES", inf.Outputs[0].Datatype)
	assert.Equal(t, []any{labels[want.Class[0]], labels[want.Class[1]]}, inf.Outputs[0].Data)

	r = do(t, "GET", ts.URL+"/v2/models/toy-multiclass", "")
	assert.Contains(t, r.body, `"name":"output-0","datatype":"BYTES"`)
	assert.Contains(t, r.body, `"classes":"setosa,+1,0x10"`)
}
