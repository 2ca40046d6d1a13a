package wire

// The fuzz targets live alone in this package's tests, importing nothing but the
// standard library and internal/category (the rules of a cell, a few functions):
// after every input the fuzzer scans the coverage counters of every package in
// the test binary, so a binary with testify (or, in internal/serve, Prometheus
// and protobuf: 68 KB of counters against 6 KB here) runs several times fewer
// inputs a second. The decoders' table tests are in internal/serve
// (decode_test.go).

import (
	"math"
	"testing"

	"github.com/mlship/mlship/internal/category"
)

var features = []string{"a", "b", "c"}

// maxFuzzInput bounds the inputs the fuzz targets look at. Go's minimizer, run
// on every input that finds new coverage, tries all n²/2 ways to cut a range out
// of it and reports its executions only when it is done (or after
// -fuzzminimizetime, 60 s): minimizing a 3 KB input was 5 million runs, and with
// both workers minimizing the fuzzer showed "0 execs/s" for up to a minute.
// Bodies of any size are covered by the unit tests (900 KB keys and numbers);
// 1 KiB holds batches of a hundred rows, long keys and 800-digit numbers.
const maxFuzzInput = 1 << 10

// FuzzDecodePredict feeds arbitrary bodies to the /predict decoder: it must never
// panic, and a body it accepts must give whole rows of finite numbers or NaN.
func FuzzDecodePredict(f *testing.F) {
	for _, seed := range []string{
		`{"input": [1, 2, 3]}`, `{"inputs": [[1,2,3],{"a":1,"b":null,"c":3}]}`, `{"instances": [[0,0,0]]}`,
		`{"input": {"\u0061": 1, "b": 2, "c": 3}}`, `{"input": [1e999, 2, 3]}`, `{"input": "x"}`, `{`, ``, `[]`,
		`{"input": [-0.0, 1E+2, 3e-5]}`, `{"inputs": []}`, `{"input": [1,2,3]} trailing`, "{\"input\":[\"\\ud800\",2,3]}",
	} {
		f.Add([]byte(seed))
	}
	s := NewSchema(features)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzInput {
			return
		}
		var req PredictRequest
		if err := s.DecodePredict(body, &req); err != nil {
			if _, ok := err.(*BadRequest); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if req.Rows < 1 || len(req.Flat) != req.Rows*len(features) {
			t.Fatalf("rows %d, %d values", req.Rows, len(req.Flat))
		}
		for _, v := range req.Flat {
			if math.IsInf(v, 0) {
				t.Fatalf("infinite value accepted from %q", body)
			}
		}
	})
}

// FuzzDecodePredictCategorical is FuzzDecodePredict for a model whose feature b
// is categorical (categories x and 1): a body it accepts gives b's one-hot slot
// (0, 1, or 2 for any other category) or NaN, and counts no more unseen
// categories than rows.
func FuzzDecodePredictCategorical(f *testing.F) {
	for _, seed := range []string{
		`{"input": [1, "x", 3]}`, `{"inputs": [[1,"new",3],{"a":1,"b":null,"c":3}]}`, `{"input": {"b": 1.0, "a": true, "c": false}}`,
		`{"input": [1, ["x"], 3]}`, `{"input": [1, "x", 3]}`, `{"input": [1, " NA ", 3]}`, `{"input": [1, 1e999, 3]}`,
	} {
		f.Add([]byte(seed))
	}
	s := NewSchema(features)
	s.Encoders = []*category.Encoder{nil, category.NewEncoder([]string{"x", "1"}), nil}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzInput {
			return
		}
		var req PredictRequest
		if err := s.DecodePredict(body, &req); err != nil {
			if _, ok := err.(*BadRequest); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if req.Rows < 1 || len(req.Flat) != req.Rows*len(features) {
			t.Fatalf("rows %d, %d values", req.Rows, len(req.Flat))
		}
		for i, v := range req.Flat {
			switch {
			case math.IsInf(v, 0):
				t.Fatalf("infinite value accepted from %q", body)
			case i%3 == 1 && !math.IsNaN(v) && v != 0 && v != 1 && v != 2:
				t.Fatalf("slot %v of b from %q", v, body)
			}
		}
		if len(req.Unseen) != 3 || req.Unseen[0] != 0 || req.Unseen[2] != 0 || req.Unseen[1] > req.Rows {
			t.Fatalf("unseen %v for %d rows from %q", req.Unseen, req.Rows, body)
		}
	})
}

// FuzzFlattenNumbers does the same for the Open Inference Protocol's tensor
// data, with any datatype and a shape of up to 4 small dimensions: it must never
// panic, and data it accepts must give exactly as many values as the shape has
// elements, each finite (or NaN, missing) and allowed by the datatype (BYTES,
// through FlattenTensor: strings, numbers, true and false).
func FuzzFlattenNumbers(f *testing.F) {
	for _, seed := range []struct {
		data  string
		dt    uint8
		shape []byte
	}{
		{`[1,2,3]`, 11, []byte{3}}, {`[[1,2],[3,4]]`, 11, []byte{2, 2}}, {`[null, true]`, 0, []byte{2}}, {`[`, 11, []byte{1}},
		{`["a"]`, 11, []byte{1}}, {`1`, 11, []byte{1}}, {`[1e400]`, 11, []byte{1}}, {`[2.3]`, 7, []byte{1}}, {`[630]`, 1, []byte{1}},
		{`[[1,2,3,4],[5,6]]`, 11, []byte{2, 3}}, {`[[[1],[2]],[[3],[4]]]`, 5, []byte{2, 2, 1}}, {`[1,[2]]`, 11, []byte{2}},
	} {
		f.Add([]byte(seed.data), seed.dt, seed.shape)
	}
	names := []string{"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"}
	f.Fuzz(func(t *testing.T, data []byte, dt uint8, dims []byte) {
		if len(data) > maxFuzzInput || len(dims) > 4 {
			return // only 4 dimensions are read: longer dims would only be minimized
		}
		datatype := names[int(dt)%len(names)]
		shape := make([]int64, 0, 4)
		size := 1
		for _, d := range dims {
			shape = append(shape, int64(d%8))
			size *= int(d % 8)
		}
		vals, texts, err := FlattenTensor(data, datatype, shape)
		if err != nil {
			if _, ok := err.(*BadRequest); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(vals) != size {
			t.Fatalf("shape %v: %d values from %q", shape, len(vals), data)
		}
		if datatype == "BYTES" {
			if len(texts) != size {
				t.Fatalf("shape %v: %d strings from %q", shape, len(texts), data)
			}
			for i, v := range vals {
				if math.IsInf(v, 0) || texts[i] != "" && !math.IsNaN(v) {
					t.Fatalf("BYTES value %v (string %q) accepted from %q", v, texts[i], data)
				}
			}
			return
		}
		if texts != nil {
			t.Fatalf("strings of datatype %s", datatype)
		}
		typ := types[datatype]
		for _, v := range vals {
			switch {
			case math.IsNaN(v):
			case math.IsInf(v, 0):
				t.Fatalf("infinite value accepted from %q", data)
			case typ.boolean && v != 0 && v != 1:
				t.Fatalf("BOOL value %v accepted from %q", v, data)
			case typ.integer && v != math.Trunc(v), !typ.boolean && (v < typ.lo || v > typ.hi):
				t.Fatalf("%s value %v accepted from %q", datatype, v, data)
			}
		}
	})
}
