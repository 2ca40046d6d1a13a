package serve

import (
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/serve/wire"
)

// TestWireIsLean keeps the test binary of package wire, where the fuzz targets
// are, free of anything but the standard library and internal/category (the
// rules of a cell, itself of the standard library only): the fuzzer's speed
// depends on the number of packages in it (see wire/fuzz_test.go).
func TestWireIsLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-test", "-deps", "./wire").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/mlship/mlship/internal/serve/wire", "go list output looks wrong")
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/mlship/mlship/internal/serve/wire") || strings.HasPrefix(d, "[github.com/mlship/mlship/internal/serve/wire") {
			continue // the package itself, its test variant and test main
		}
		if d == "github.com/mlship/mlship/internal/category" {
			continue
		}
		assert.NotContains(t, strings.Split(d, "/")[0], ".", "the wire package's tests depend on %s", d)
	}
}

func TestDecodePredict(t *testing.T) {
	s := wire.NewSchema(features)
	nan := math.NaN()
	tests := []struct {
		name    string
		body    string
		rows    [][]float64
		batch   bool
		wantErr string
	}{
		{name: "array", body: `{"input": [1, 2.5, -3e2]}`, rows: [][]float64{{1, 2.5, -300}}},
		{name: "object any order", body: `{"input": {"c": 3, "a": 1, "b": 2}}`, rows: [][]float64{{1, 2, 3}}},
		{name: "null is missing", body: `{"input": [1, null, 3]}`, rows: [][]float64{{1, nan, 3}}},
		{name: "batch mixed", body: `{"inputs": [[1,2,3], {"a":4,"b":5,"c":null}]}`, rows: [][]float64{{1, 2, 3}, {4, 5, nan}}, batch: true},
		{name: "kserve v1 instances", body: `{"instances": [[0,0,0]]}`, rows: [][]float64{{0, 0, 0}}, batch: true},
		{name: "escaped key", body: `{"input": {"\u0061": 1, "b": 2, "c": 3}}`, rows: [][]float64{{1, 2, 3}}},
		{name: "whitespace", body: " \n{ \"input\" :\t[ 1 , 2 , 3 ] }\n", rows: [][]float64{{1, 2, 3}}},

		{name: "empty body", body: ``, wantErr: `empty request body`},
		{name: "not json", body: `hello`, wantErr: `malformed JSON at byte 0: unexpected 'h', want '{'`},
		{name: "truncated", body: `{"input": [1, 2`, wantErr: `malformed JSON: unexpected end of input`},
		{name: "too few", body: `{"input": [1, 2]}`, wantErr: `input has 2 values, the model takes 3: a, b, c`},
		{name: "too many", body: `{"input": [1, 2, 3, 4]}`, wantErr: `input has 4 values, the model takes 3`},
		{name: "string value", body: `{"input": [1, "2", 3]}`, wantErr: `input[1] (b): is a string, want a number (or null for missing)`},
		{name: "booleans are 1 and 0", body: `{"input": [true, false, 3]}`, rows: [][]float64{{1, 0, 3}}},
		{name: "bad literal", body: `{"input": [tru, 2, 3]}`, wantErr: `input[0] (a): malformed JSON at byte 11: unexpected 't', want a number`},
		{name: "NaN literal", body: `{"input": [NaN, 2, 3]}`, wantErr: `input[0] (a): NaN and Infinity are not numbers in JSON`},
		{name: "infinity", body: `{"input": [1, -Infinity, 3]}`, wantErr: `input[1] (b): NaN and Infinity are not numbers`},
		{name: "overflow", body: `{"input": [1, 1e999, 3]}`, wantErr: `input[1] (b): 1e999 is not a finite number`},
		{name: "leading zero", body: `{"input": [01, 2, 3]}`, wantErr: `input[0] (a): malformed JSON`},
		{name: "unknown feature", body: `{"input": {"a":1,"b":2,"zz":3}}`, wantErr: `input: unknown feature "zz"; the model takes a, b, c`},
		{name: "missing feature", body: `{"input": {"a":1}}`, wantErr: `input is missing features b, c (send null for a missing value)`},
		{name: "duplicate feature", body: `{"input": {"a":1,"a":2,"b":3,"c":4}}`, wantErr: `input: feature "a" given twice`},
		{name: "batch row error names the row", body: `{"inputs": [[1,2,3],[1,2]]}`, wantErr: `inputs[1] has 2 values`},
		{name: "empty batch", body: `{"inputs": []}`, wantErr: `inputs is an empty batch`},
		{name: "batch not array", body: `{"inputs": {"a":1}}`, wantErr: `inputs must be an array of rows`},
		{name: "row not array", body: `{"input": 5}`, wantErr: `input must be an array of 3 numbers or an object keyed by feature name`},
		{name: "unknown field", body: `{"data": [1,2,3]}`, wantErr: `unknown field "data"`},
		{name: "both", body: `{"input": [1,2,3], "inputs": [[1,2,3]]}`, wantErr: `not both "input" and "inputs"`},
		{name: "no rows", body: `{}`, wantErr: `no rows`},
		{name: "trailing data", body: `{"input": [1,2,3]} x`, wantErr: `data after the end of the request`},
		{name: "nested row value", body: `{"input": [[1],2,3]}`, wantErr: `input[0] (a): is an array`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req wire.PredictRequest
			err := s.DecodePredict([]byte(tc.body), &req)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), "\n")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.batch, req.Batch)
			require.Equal(t, len(tc.rows), req.Rows)
			for i, row := range tc.rows {
				for j, want := range row {
					got := req.Flat[i*3+j]
					if math.IsNaN(want) {
						assert.True(t, math.IsNaN(got), "row %d col %d", i, j)
					} else {
						assert.Equal(t, want, got, "row %d col %d", i, j)
					}
				}
			}
		})
	}
}

func TestFlattenNumbers(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name, data, datatype string
		shape                []int64
		want                 []float64
		wantErr              string
	}{
		{name: "flat", data: `[1, 2, 3, 4]`, datatype: "FP64", shape: []int64{2, 2}, want: []float64{1, 2, 3, 4}},
		{name: "nested", data: `[[1, 2], [3, null]]`, datatype: "FP32", shape: []int64{2, 2}, want: []float64{1, 2, 3, nan}},
		{name: "nested 3d", data: `[[[1],[2]],[[3],[4]]]`, datatype: "INT8", shape: []int64{2, 2, 1}, want: []float64{1, 2, 3, 4}},
		{name: "bools", data: `[true, false, null]`, datatype: "BOOL", shape: []int64{3}, want: []float64{1, 0, nan}},
		{name: "whole float is an integer", data: `[2.0, 1e2, -0]`, datatype: "INT32", shape: []int64{3}, want: []float64{2, 100, 0}},
		{name: "integer bounds", data: `[0, 255]`, datatype: "UINT8", shape: []int64{2}, want: []float64{0, 255}},
		{name: "int32 bounds", data: `[-2147483648, 2147483647]`, datatype: "INT32", shape: []int64{2}, want: []float64{-2147483648, 2147483647}},
		{name: "fp16 bound", data: `[65504, -65504]`, datatype: "FP16", shape: []int64{2}, want: []float64{65504, -65504}},
		{name: "empty", data: `[]`, datatype: "FP64", shape: []int64{0, 3}, want: []float64{}},

		{name: "int32 fraction", data: `[1, 2.3]`, datatype: "INT32", shape: []int64{2}, wantErr: "data[1]: 2.3 is not a whole number, as datatype INT32 takes"},
		{name: "uint8 range", data: `[630]`, datatype: "UINT8", shape: []int64{1}, wantErr: "data[0]: 630 is out of the range of UINT8 (0 to 255)"},
		{name: "uint negative", data: `[-1]`, datatype: "UINT32", shape: []int64{1}, wantErr: "data[0]: -1 is out of the range of UINT32"},
		{name: "int64 range", data: `[9223372036854775808]`, datatype: "INT64", shape: []int64{1}, wantErr: "is out of the range of INT64"},
		{name: "fp32 range", data: `[1e39]`, datatype: "FP32", shape: []int64{1}, wantErr: "data[0]: 1e39 is out of the range of FP32"},
		{name: "fp16 range", data: `[70000]`, datatype: "FP16", shape: []int64{1}, wantErr: "out of the range of FP16 (-65504 to 65504)"},
		{name: "fp64 overflow", data: `[1e999]`, datatype: "FP64", shape: []int64{1}, wantErr: "data[0]: 1e999 is not a finite number"},
		{name: "bool number", data: `[1]`, datatype: "BOOL", shape: []int64{1}, wantErr: "data[0]: 1 is not true or false, as datatype BOOL takes"},
		{name: "number bool", data: `[true]`, datatype: "FP64", shape: []int64{1}, wantErr: "data[0] is a boolean; datatype FP64 takes numbers"},
		{name: "string", data: `[1, "x"]`, datatype: "FP64", shape: []int64{2}, wantErr: "data[1] is a string; datatype FP64 takes numbers"},
		{name: "nested string", data: `[[1, 2], [3, "x"]]`, datatype: "INT64", shape: []int64{2, 2}, wantErr: "data[1][1] is a string; datatype INT64 takes whole numbers"},
		{name: "ragged same count", data: `[[1,2,3,4],[5,6]]`, datatype: "FP64", shape: []int64{2, 3}, wantErr: "data[0] has 4 elements; the shape [2 3] wants 3 at dimension 1"},
		{name: "ragged short", data: `[[1,2,3],[4,5]]`, datatype: "FP64", shape: []int64{2, 3}, wantErr: "data[1] has 2 elements; the shape [2 3] wants 3 at dimension 1"},
		{name: "too many rows", data: `[[1,2,3],[4,5,6],[7,8,9]]`, datatype: "FP64", shape: []int64{2, 3}, wantErr: "data has 3 elements; the shape [2 3] wants 2 at dimension 0"},
		{name: "mixed flat then nested", data: `[1,2,3,[4,5,6]]`, datatype: "FP64", shape: []int64{2, 3}, wantErr: "data[3] is an array, but the data before it is flat"},
		{name: "mixed nested then flat", data: `[[1,2,3],4,5,6]`, datatype: "FP64", shape: []int64{2, 3}, wantErr: "data[1] is a value; nested data must follow the shape [2 3], which wants an array of 3 here"},
		{name: "deeper than shape", data: `[[1],[2]]`, datatype: "FP64", shape: []int64{2}, wantErr: "data[0] is an array; the shape [2] has 1 dimension(s)"},
		{name: "flat count", data: `[1,2,3]`, datatype: "FP64", shape: []int64{2, 3}, wantErr: "shape [2 3] does not match 3 data values"},
		{name: "not an array", data: `5`, datatype: "FP64", shape: []int64{1}, wantErr: "data: want an array"},
		{name: "missing", data: ``, datatype: "FP64", shape: []int64{1}, wantErr: "data: missing"},
		{name: "trailing", data: `[1] 2`, datatype: "FP64", shape: []int64{1}, wantErr: "data: malformed JSON at byte 4: data after the end"},
		{name: "unterminated", data: `[1, 2`, datatype: "FP64", shape: []int64{2}, wantErr: "malformed JSON: unexpected end of input"},
		{name: "BYTES", data: `["a"]`, datatype: "BYTES", shape: []int64{1}, wantErr: `datatype "BYTES" is not numeric`},
		{name: "empty shape", data: `[1]`, datatype: "FP64", shape: []int64{}, wantErr: "shape is empty"},
		{name: "negative dim", data: `[1]`, datatype: "FP64", shape: []int64{-1, 3}, wantErr: "shape [-1 3] has a negative dimension"},
		{name: "too many dims", data: `[1]`, datatype: "FP64", shape: []int64{1, 1, 1, 1, 1, 1, 1, 1, 1}, wantErr: "shape has 9 dimensions; at most 8"},
		// 6148914691236517206 * 3 wraps around int64 to 2: the product must be checked.
		{name: "overflowing shape", data: `[1,2]`, datatype: "FP64", shape: []int64{6148914691236517206, 3}, wantErr: "has more elements than any request can hold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wire.FlattenNumbers([]byte(tc.data), tc.datatype, tc.shape)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.IsType(t, &wire.BadRequest{}, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, len(tc.want))
			for i, w := range tc.want {
				if math.IsNaN(w) {
					assert.True(t, math.IsNaN(got[i]), "value %d", i)
				} else {
					assert.Equal(t, w, got[i], "value %d", i)
				}
			}
		})
	}
}

// TestErrorsQuoteAShortPrefix: an error never echoes a huge key or number back,
// only its first bytes and its length.
func TestErrorsQuoteAShortPrefix(t *testing.T) {
	s := wire.NewSchema(features)
	huge := strings.Repeat("k", 900_000)
	digits := strings.Repeat("9", 900_000)
	for name, tc := range map[string]struct{ body, want string }{
		"unknown feature": {`{"input": {"` + huge + `": 1}}`, `input: unknown feature "` + strings.Repeat("k", 64) + `"... (900000 bytes); the model takes a, b, c`},
		"unknown field":   {`{"` + huge + `": 1}`, `unknown field "` + strings.Repeat("k", 64) + `"... (900000 bytes): want "input" (one row) or "inputs" (a batch)`},
		"huge number":     {`{"input": [1e` + digits + `, 2, 3]}`, `input[0] (a): 1e` + strings.Repeat("9", 62) + `... (900002 bytes) is not a finite number`},
	} {
		t.Run(name, func(t *testing.T) {
			var req wire.PredictRequest
			err := s.DecodePredict([]byte(tc.body), &req)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.Less(t, len(err.Error()), 300)
		})
	}
	_, err := wire.FlattenNumbers([]byte(`[1`+digits+`.5]`), "INT64", []int64{1})
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 300, err.Error())

	assert.Equal(t, "abc", wire.Clip("abc"))
	assert.Equal(t, `"abc"`, wire.Quote("abc"))
	// The cut never splits a UTF-8 sequence: 63 ASCII bytes, then a 3-byte rune.
	long := strings.Repeat("x", 63) + "€€"
	assert.Equal(t, strings.Repeat("x", 63)+"... (69 bytes)", wire.Clip(long))
}
