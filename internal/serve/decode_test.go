package serve

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodePredict(t *testing.T) {
	s := newSchema(features)
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
		{name: "bool value", body: `{"input": [true, 2, 3]}`, wantErr: `input[0] (a): is a boolean`},
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
			var req predictRequest
			err := s.decodePredict([]byte(tc.body), &req)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), "\n")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.batch, req.batch)
			require.Equal(t, len(tc.rows), req.rows)
			for i, row := range tc.rows {
				for j, want := range row {
					got := req.flat[i*3+j]
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
	got, err := flattenNumbers([]byte(`[[1, 2], [3, null]]`), false)
	require.NoError(t, err)
	assert.Equal(t, 4, len(got))
	assert.Equal(t, []float64{1, 2, 3}, got[:3])
	assert.True(t, math.IsNaN(got[3]))
	got, err = flattenNumbers([]byte(`[true, false]`), true)
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 0}, got)
	_, err = flattenNumbers([]byte(`[1, "x"]`), false)
	require.ErrorContains(t, err, "value 1 is a string")
	_, err = flattenNumbers([]byte(strings.Repeat("[", 40)+strings.Repeat("]", 40)), false)
	require.ErrorContains(t, err, "nested too deeply")
}

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
	s := newSchema(features)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req predictRequest
		if err := s.decodePredict(body, &req); err != nil {
			if _, ok := err.(*badRequest); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if req.rows < 1 || len(req.flat) != req.rows*len(features) {
			t.Fatalf("rows %d, %d values", req.rows, len(req.flat))
		}
		for _, v := range req.flat {
			if math.IsInf(v, 0) {
				t.Fatalf("infinite value accepted from %q", body)
			}
		}
	})
}

// FuzzFlattenNumbers does the same for the Open Inference Protocol's tensor data.
func FuzzFlattenNumbers(f *testing.F) {
	for _, seed := range []string{`[1,2,3]`, `[[1,2],[3,4]]`, `[null, true]`, `[`, `["a"]`, `1`, `[1e400]`} {
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, bools bool) {
		vals, err := flattenNumbers(data, bools)
		if err != nil {
			return
		}
		for _, v := range vals {
			if math.IsInf(v, 0) {
				t.Fatalf("infinite value accepted from %q", data)
			}
		}
	})
}
