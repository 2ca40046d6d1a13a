package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPredict(t *testing.T) {
	for _, task := range []string{"binary", "multiclass", "regression"} {
		t.Run(task, func(t *testing.T) {
			s, ts := newTestServer(t, task, nil)
			rows := [][]float64{{1, 2, 3}, {0.5, -1, 7}, {3, 3, math.NaN()}}
			want, err := s.Model().Predict(rows)
			require.NoError(t, err)

			// One row, as an array and as an object: same answer.
			for _, body := range []string{`{"input": [1, 2, 3]}`, `{"input": {"c": 3, "b": 2, "a": 1}}`} {
				r := do(t, "POST", ts.URL+"/predict", body)
				require.Equal(t, http.StatusOK, r.code, r.body)
				assert.Equal(t, "application/json", r.header.Get("Content-Type"))
				var got struct {
					Output        float64            `json:"output"`
					Probabilities map[string]float64 `json:"probabilities"`
				}
				require.NoError(t, json.Unmarshal([]byte(r.body), &got))
				if task == "regression" {
					assert.InDelta(t, want.Value[0], got.Output, 1e-12)
					assert.Nil(t, got.Probabilities)
					continue
				}
				assert.Equal(t, float64(want.Class[0]), got.Output)
				for j, p := range want.Probs[0] {
					assert.InDelta(t, p, got.Probabilities[fmt.Sprint(j)], 1e-15)
				}
			}

			// A batch with a missing value (null is imputed like in training).
			r := do(t, "POST", ts.URL+"/predict", `{"inputs": [[1,2,3],[0.5,-1,7],[3,3,null]]}`)
			require.Equal(t, http.StatusOK, r.code, r.body)
			var got struct {
				Outputs       []float64            `json:"outputs"`
				Probabilities []map[string]float64 `json:"probabilities"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.body), &got))
			require.Len(t, got.Outputs, 3)
			for i := range rows {
				if task == "regression" {
					assert.InDelta(t, want.Value[i], got.Outputs[i], 1e-12)
					continue
				}
				assert.Equal(t, float64(want.Class[i]), got.Outputs[i])
				assert.InDelta(t, want.Probs[i][0], got.Probabilities[i]["0"], 1e-15)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	_, ts := newTestServer(t, "binary", func(c *Config) { c.MaxBodyBytes = 100 })
	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"wrong count", "POST", "/predict", `{"input":[1,2]}`, 400, "input has 2 values, the model takes 3"},
		{"malformed", "POST", "/predict", `{"input":`, 400, "malformed JSON"},
		{"unknown feature", "POST", "/predict", `{"input":{"x":1}}`, 400, `unknown feature "x"`},
		{"too large", "POST", "/predict", `{"input":[` + strings.Repeat("1,", 100) + `1]}`, 413, "over the limit of 100 bytes"},
		{"wrong method", "GET", "/predict", ``, 405, "method GET not allowed on /predict (allowed: POST)"},
		{"wrong method v2", "DELETE", "/v2/health/live", ``, 405, "allowed: GET, HEAD"},
		{"no route", "GET", "/nope", ``, 404, "no route GET /nope"},
		{"unknown model", "POST", "/v2/models/other/infer", `{}`, 404, `model "other" not found; this server serves "toy-binary"`},
		{"unknown version", "GET", "/v2/models/toy-binary/versions/v9", ``, 404, `version "v9" of model "toy-binary" not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, ts.URL+tc.path, tc.body)
			assert.Equal(t, tc.code, r.code)
			var e struct {
				Error string `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
			assert.Contains(t, e.Error, tc.want)
			if tc.code == 405 {
				assert.NotEmpty(t, r.header.Get("Allow"))
			}
		})
	}

	// 413 also when the client streams the body without a Content-Length.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"input":[` + strings.Repeat("1,", 200)))
		pw.Close()
	}()
	res, err := http.Post(ts.URL+"/predict", "application/json", pr)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
}

func TestOpenInferenceProtocol(t *testing.T) {
	s, ts := newTestServer(t, "multiclass", nil)
	want, err := s.Model().Predict([][]float64{{1, 2, 3}, {4, 5, 6}})
	require.NoError(t, err)
	base := ts.URL + "/v2/models/toy-multiclass"

	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/toy-multiclass/ready", "/v2", "/healthz", "/readyz"} {
		assert.Equal(t, http.StatusOK, do(t, "GET", ts.URL+p, "").code, p)
	}

	var meta oipModelMeta
	r := do(t, "GET", base, "")
	require.Equal(t, 200, r.code)
	require.NoError(t, json.Unmarshal([]byte(r.body), &meta))
	assert.Equal(t, "toy-multiclass", meta.Name)
	assert.Equal(t, []oipTensorMeta{{Name: "input-0", Datatype: "FP64", Shape: []int64{-1, 3}}}, meta.Inputs)
	assert.Equal(t, "probabilities", meta.Outputs[1].Name)
	assert.Equal(t, []int64{-1, 3}, meta.Outputs[1].Shape)

	type out struct {
		ModelName    string `json:"model_name"`
		ModelVersion string `json:"model_version"`
		ID           string `json:"id"`
		Outputs      []struct {
			Name     string    `json:"name"`
			Shape    []int64   `json:"shape"`
			Datatype string    `json:"datatype"`
			Data     []float64 `json:"data"`
		} `json:"outputs"`
	}
	requests := map[string]string{
		"matrix":         `{"id":"r1","inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP64","data":[1,2,3,4,5,6]}]}`,
		"nested fp32":    `{"id":"r1","inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}]}`,
		"per feature":    `{"id":"r1","inputs":[{"name":"c","shape":[2],"datatype":"INT64","data":[3,6]},{"name":"a","shape":[2,1],"datatype":"INT64","data":[1,4]},{"name":"b","shape":[2],"datatype":"FP64","data":[2,5]}]}`,
		"int any name":   `{"id":"r1","inputs":[{"name":"x","shape":[2,3],"datatype":"INT32","data":[1,2,3,4,5,6]}]}`,
		"version in url": `{"id":"r1","inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP64","data":[1,2,3,4,5,6]}]}`,
	}
	for name, body := range requests {
		t.Run(name, func(t *testing.T) {
			url := base + "/infer"
			if name == "version in url" {
				url = base + "/versions/" + s.version + "/infer"
			}
			r := do(t, "POST", url, body)
			require.Equal(t, 200, r.code, r.body)
			var got out
			require.NoError(t, json.Unmarshal([]byte(r.body), &got))
			assert.Equal(t, "toy-multiclass", got.ModelName)
			assert.Equal(t, s.version, got.ModelVersion)
			assert.Equal(t, "r1", got.ID)
			require.Len(t, got.Outputs, 2)
			assert.Equal(t, "output-0", got.Outputs[0].Name)
			assert.Equal(t, "INT64", got.Outputs[0].Datatype)
			assert.Equal(t, []float64{float64(want.Class[0]), float64(want.Class[1])}, got.Outputs[0].Data)
			assert.Equal(t, []int64{2, 3}, got.Outputs[1].Shape)
			assert.InDeltaSlice(t, append(want.Probs[0], want.Probs[1]...), got.Outputs[1].Data, 1e-15)
		})
	}

	r = do(t, "POST", base+"/infer", `{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[1,2,3]}],"outputs":[{"name":"probabilities"}]}`)
	require.Equal(t, 200, r.code)
	var got out
	require.NoError(t, json.Unmarshal([]byte(r.body), &got))
	require.Len(t, got.Outputs, 1)
	assert.Equal(t, "probabilities", got.Outputs[0].Name)

	bad := map[string]string{
		`{"inputs":[]}`: "inputs: empty",
		`{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`:                                              "shape [1 2]; the model takes [N, 3]",
		`{"inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP64","data":[1,2,3]}]}`:                                            "shape [2 3] does not match 3 data values",
		`{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"BYTES","data":["a","b","c"]}]}`:                                     `inputs[0] (input-0): data element 0 is "a", and feature "a" takes numbers`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]},{"name":"b","shape":[1],"datatype":"FP64","data":[1]}]}`:  `feature "c" is missing`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]},{"name":"zz","shape":[1],"datatype":"FP64","data":[1]}]}`: `"zz" is not a feature of the model`,
		`{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[1,2,3]}],"outputs":[{"name":"nope"}]}`:                `unknown output "nope"`,
		`{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[1,2,"x"]}]}`:                                          "data[2] is a string; datatype FP64 takes numbers",
		`{"inputs":`: "malformed inference request",
	}
	for body, want := range bad {
		r := do(t, "POST", base+"/infer", body)
		assert.Equal(t, 400, r.code, body)
		var e struct {
			Error string `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
		assert.Contains(t, e.Error, want, body)
	}
}

func TestDrainFailsReadiness(t *testing.T) {
	s, ts := newTestServer(t, "binary", nil)
	assert.Equal(t, 200, do(t, "GET", ts.URL+"/readyz", "").code)
	s.Drain()
	for _, p := range []string{"/readyz", "/v2/health/ready", "/v2/models/toy-binary/ready"} {
		assert.Equal(t, 503, do(t, "GET", ts.URL+p, "").code, p)
	}
	assert.Equal(t, 200, do(t, "GET", ts.URL+"/healthz", "").code, "still live")
	assert.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"input":[1,2,3]}`).code, "still serving while draining")
}

// TestInFlightLimit holds one request in flight (in the handler, its body read)
// and checks that the next one is refused at once with 429, then served once the
// first has finished.
func TestInFlightLimit(t *testing.T) {
	s, ts := newTestServer(t, "binary", func(c *Config) { c.MaxInFlight = 1 })
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	s.admitted = func() {
		once.Do(func() {
			held <- struct{}{}
			<-hold
		})
	}
	first := make(chan int)
	go func() {
		res, err := http.Post(ts.URL+"/predict", "application/json", strings.NewReader(`{"input":[1,2,3]}`))
		if err != nil {
			first <- -1
			return
		}
		res.Body.Close()
		first <- res.StatusCode
	}()
	<-held
	assert.EqualValues(t, 1, s.inflight.Load())
	start := time.Now()
	r := do(t, "POST", ts.URL+"/predict", `{"input":[1,2,3]}`)
	assert.Equal(t, http.StatusTooManyRequests, r.code)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Contains(t, r.body, "too many requests in flight (limit 1)")
	assert.Less(t, time.Since(start), 2*time.Second)
	// Health and metrics are not limited.
	assert.Equal(t, 200, do(t, "GET", ts.URL+"/healthz", "").code)
	close(hold)
	assert.Equal(t, 200, <-first)
	assert.Equal(t, 200, do(t, "POST", ts.URL+"/predict", `{"input":[1,2,3]}`).code)
	assert.EqualValues(t, 0, s.inflight.Load(), "every slot is given back")
}
