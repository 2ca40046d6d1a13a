package serve

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/version"
)

// Open Inference Protocol v2 (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/),
// REST/JSON binding.

// Tensor names of the model's metadata.
const (
	oipInput  = "input-0"       // [N, features] FP64
	oipOutput = "output-0"      // [N]: class label (classifiers) or value
	oipProbs  = "probabilities" // [N, classes] FP64 (classifiers)
)

type oipTensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type oipModelMeta struct {
	Name     string          `json:"name"`
	Versions []string        `json:"versions"`
	Platform string          `json:"platform"`
	Inputs   []oipTensorMeta `json:"inputs"`
	Outputs  []oipTensorMeta `json:"outputs"`
	// Parameters are the protocol's $parameters: every value a string, number or
	// boolean, so lists are joined with commas.
	Parameters map[string]string `json:"parameters,omitempty"`
}

func (s *Server) checkModel(w http.ResponseWriter, r *http.Request, wk *work) (int, bool) {
	if name := r.PathValue("name"); name != s.name {
		return s.fail(w, wk, http.StatusNotFound, "model %s not found; this server serves %q", quote(name), s.name), false
	}
	if v := r.PathValue("version"); v != "" && v != s.version {
		return s.fail(w, wk, http.StatusNotFound, "version %s of model %q not found; this server serves version %q", quote(v), s.name, s.version), false
	}
	return 0, true
}

// labelType is the datatype of output-0: the value (FP64) of a regression; for
// a classifier its class labels as INT64 when they are all whole numbers, FP64
// when they are all numbers, else BYTES (strings).
func (s *Server) labelType() string {
	switch {
	case len(s.labels) == 0:
		return "FP64"
	case s.classValue == nil:
		return "BYTES"
	case s.intClass:
		return "INT64"
	}
	return "FP64"
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request, wk *work) int {
	if code, ok := s.checkModel(w, r, wk); !ok {
		return code
	}
	c := s.model.Card
	meta := oipModelMeta{
		Name: s.name, Versions: []string{s.version}, Platform: "mlship",
		Inputs:  []oipTensorMeta{{Name: oipInput, Datatype: "FP64", Shape: []int64{-1, int64(len(c.Features))}}},
		Outputs: []oipTensorMeta{{Name: oipOutput, Datatype: s.labelType(), Shape: []int64{-1}}},
		Parameters: map[string]string{
			"task": string(c.Task), "features": strings.Join(c.Features, ","), "target": c.Target,
			"input_layout": "one tensor " + oipInput + " of shape [N, features] in feature order, or one tensor per feature named after it of shape [N]",
		},
	}
	if len(c.Classes) > 0 {
		meta.Outputs = append(meta.Outputs, oipTensorMeta{Name: oipProbs, Datatype: "FP64", Shape: []int64{-1, int64(len(c.Classes))}})
		meta.Parameters["classes"] = strings.Join(c.Classes, ",")
	}
	b, _ := json.Marshal(meta)
	return writeJSON(w, http.StatusOK, append(b, '\n'))
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request, wk *work) int {
	if code, ok := s.checkModel(w, r, wk); !ok {
		return code
	}
	if !s.ready.Load() {
		return writeJSON(w, http.StatusServiceUnavailable, []byte(`{"name":`+strconv.Quote(s.name)+`,"ready":false}`+"\n"))
	}
	return writeJSON(w, http.StatusOK, []byte(`{"name":`+strconv.Quote(s.name)+`,"ready":true}`+"\n"))
}

func (s *Server) serverMetadata(w http.ResponseWriter, _ *http.Request, _ *work) int {
	b, _ := json.Marshal(map[string]any{"name": "mlship-serve", "version": version.Version, "extensions": []string{}})
	return writeJSON(w, http.StatusOK, append(b, '\n'))
}

type oipTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

type oipRequest struct {
	ID         string         `json:"id,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []oipTensor    `json:"inputs"`
	Outputs    []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

// oipType is what a tensor datatype allows: true and false (BOOL), or numbers in
// [lo, hi], whole numbers only for the integer types.
type oipType struct {
	boolean bool
	integer bool
	lo, hi  float64
	span    string // the range, for errors
}

var oipTypes = map[string]oipType{
	"BOOL":   {boolean: true},
	"UINT8":  {integer: true, lo: 0, hi: math.MaxUint8, span: "0 to 255"},
	"UINT16": {integer: true, lo: 0, hi: math.MaxUint16, span: "0 to 65535"},
	"UINT32": {integer: true, lo: 0, hi: math.MaxUint32, span: "0 to 4294967295"},
	"UINT64": {integer: true, lo: 0, hi: math.Nextafter(1<<64, 0), span: "0 to 18446744073709551615"},
	"INT8":   {integer: true, lo: math.MinInt8, hi: math.MaxInt8, span: "-128 to 127"},
	"INT16":  {integer: true, lo: math.MinInt16, hi: math.MaxInt16, span: "-32768 to 32767"},
	"INT32":  {integer: true, lo: math.MinInt32, hi: math.MaxInt32, span: "-2147483648 to 2147483647"},
	"INT64":  {integer: true, lo: math.MinInt64, hi: math.Nextafter(1<<63, 0), span: "-9223372036854775808 to 9223372036854775807"},
	"FP16":   {lo: -65504, hi: 65504, span: "-65504 to 65504"},
	"FP32":   {lo: -math.MaxFloat32, hi: math.MaxFloat32, span: "-3.4028234663852886e+38 to 3.4028234663852886e+38"},
	"FP64":   {lo: -math.MaxFloat64, hi: math.MaxFloat64},
}

// binaryHeader is the header of the protocol's binary tensor data extension.
const binaryHeader = "Inference-Header-Content-Length"

// decodeInfer turns an inference request into rows of raw feature values.
func (s *Server) decodeInfer(body []byte, wk *work) (*oipRequest, int, error) {
	var req oipRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, jsonError(err)
	}
	nf := len(s.schema.features)
	if len(req.Inputs) == 0 {
		return nil, 0, badf("inputs: empty; want one tensor %q of shape [N, %d] or one tensor per feature", oipInput, nf)
	}
	data := make([][]float64, len(req.Inputs))
	for i, t := range req.Inputs {
		vals, err := flattenNumbers(t.Data, t.Datatype, t.Shape)
		if err != nil {
			return nil, 0, badf("inputs[%d] (%s): %v", i, clip(t.Name), err)
		}
		data[i] = vals
	}
	flat := wk.req.flat[:0]
	var rows int
	_, isFeature := s.schema.index[req.Inputs[0].Name]
	if len(req.Inputs) == 1 && (!isFeature || nf == 1) {
		// One tensor [N, F] (or [F] for one row; [N] when the model takes one feature).
		t := req.Inputs[0]
		shape := t.Shape
		switch {
		case len(shape) == 2 && shape[1] == int64(nf):
			rows = int(shape[0])
		case len(shape) == 1 && nf == 1:
			rows = int(shape[0])
		case len(shape) == 1 && shape[0] == int64(nf):
			rows = 1
		default:
			return nil, 0, badf("inputs[0] (%s): shape %v; the model takes [N, %d]: %s", clip(t.Name), shape, nf, listFeatures(s.schema.features))
		}
		flat = append(flat, data[0]...)
	} else {
		// One tensor per feature, each [N] or [N, 1].
		cols := make([][]float64, nf)
		for i, t := range req.Inputs {
			j, ok := s.schema.index[t.Name]
			if !ok {
				return nil, 0, badf("inputs[%d]: %s is not a feature of the model (%s) nor %q", i, quote(t.Name), listFeatures(s.schema.features), oipInput)
			}
			if cols[j] != nil {
				return nil, 0, badf("inputs[%d]: feature %q given twice", i, t.Name)
			}
			if len(t.Shape) > 2 || len(t.Shape) == 2 && t.Shape[1] != 1 {
				return nil, 0, badf("inputs[%d] (%s): shape %v; a feature tensor is [N] or [N, 1]", i, t.Name, t.Shape)
			}
			if len(data[i]) != len(data[0]) {
				return nil, 0, badf("inputs[%d] (%s): %d rows, inputs[0] has %d", i, t.Name, len(data[i]), len(data[0]))
			}
			cols[j] = data[i]
		}
		for j, c := range cols {
			if c == nil {
				return nil, 0, badf("inputs: feature %q is missing", s.schema.features[j])
			}
		}
		rows = len(cols[0])
		for r := 0; r < rows; r++ {
			for j := range cols {
				flat = append(flat, cols[j][r])
			}
		}
	}
	if rows == 0 {
		return nil, 0, badf("inputs: no rows")
	}
	wk.req.flat = flat
	for _, o := range req.Outputs {
		if o.Name != oipOutput && !(o.Name == oipProbs && len(s.labels) > 0) {
			return nil, 0, badf("outputs: unknown output %s (the model has %s)", quote(o.Name), s.outputNames())
		}
	}
	return &req, rows, nil
}

// jsonError turns encoding/json's error into a badRequest that quotes at most a
// short prefix of what the client sent.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badf("malformed inference request at byte %d: %s", se.Offset, clip(se.Error()))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the request"
		}
		return badf("malformed inference request: %s: got %s, want %s", clip(field), clip(te.Value), jsonKind(te.Type))
	}
	return badf("malformed inference request: %s", clip(err.Error()))
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a finite number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a JSON value"
}

func (s *Server) outputNames() string {
	if len(s.labels) > 0 {
		return oipOutput + ", " + oipProbs
	}
	return oipOutput
}

// maxDims bounds a tensor's dimensions (the model takes at most 2; more are
// refused later with the shapes it takes).
const maxDims = 8

// shapeSize checks a tensor shape and returns its number of elements.
func shapeSize(shape []int64) (int64, error) {
	if len(shape) == 0 {
		return 0, badf("shape is empty; want [N, features] or [N]")
	}
	if len(shape) > maxDims {
		return 0, badf("shape has %d dimensions; at most %d", len(shape), maxDims)
	}
	size := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, badf("shape %v has a negative dimension", shape)
		}
		if d != 0 && size > math.MaxInt64/d {
			return 0, badf("shape %v has more elements than any request can hold", shape)
		}
		size *= d
	}
	return size, nil
}

// flattenNumbers reads a tensor's data: a JSON array of its elements in
// row-major order, flat or nested exactly as the shape (the protocol allows
// both; a nested array must have shape[k] elements at depth k, and a flat one
// all the elements). null is a missing value. Each element must fit the
// datatype: true or false for BOOL; a whole number in range for the integer
// types; a number in range for FP16, FP32 and FP64. The result has exactly as
// many values as the shape has elements.
func flattenNumbers(raw []byte, datatype string, shape []int64) ([]float64, error) {
	typ, ok := oipTypes[datatype]
	if !ok {
		return nil, badf("datatype %s is not numeric (want BOOL, UINT8 to UINT64, INT8 to INT64, FP16, FP32 or FP64)", quote(datatype))
	}
	size, err := shapeSize(shape)
	if err != nil {
		return nil, err
	}
	f := &flattener{p: parser{b: raw}, typ: typ, datatype: datatype, shape: shape}
	switch f.p.peek() {
	case 0:
		return nil, badf("data: missing")
	case '[':
	default:
		return nil, badf("data: want an array of the tensor's values")
	}
	f.out = make([]float64, 0, min(size, int64(len(raw))))
	if err := f.array(0); err != nil {
		return nil, badf("data%v", err)
	}
	if err := f.p.end(); err != nil {
		return nil, badf("data: %v", err)
	}
	if int64(len(f.out)) != size {
		return nil, badf("shape %v does not match %d data values", shape, len(f.out))
	}
	return f.out, nil
}

// flattener reads nested tensor data. Its errors start with the element's
// path ("[1][0]: ..."), or ": ..." for the tensor as a whole.
type flattener struct {
	p        parser
	typ      oipType
	datatype string
	shape    []int64
	nested   bool // the data is nested (its first element is an array), not flat
	idx      []int
	out      []float64
}

func (f *flattener) path(levels int) string {
	var b strings.Builder
	for _, i := range f.idx[:levels] {
		b.WriteString("[" + strconv.Itoa(i) + "]")
	}
	return b.String()
}

// array reads the array at depth level (the cursor is on its '[').
func (f *flattener) array(level int) error {
	p := &f.p
	p.i++
	f.idx = append(f.idx[:level], 0)
	n := 0
	if !p.eat(']') {
		for {
			f.idx[level] = n
			if p.peek() == '[' {
				if level == 0 && n == 0 {
					f.nested = true
				}
				switch {
				case !f.nested:
					return badf("%s is an array, but the data before it is flat: give the values flat or nested as the shape %v, not both", f.path(level+1), f.shape)
				case level+1 >= len(f.shape):
					return badf("%s is an array; the shape %v has %d dimension(s), so a value belongs here", f.path(level+1), f.shape, len(f.shape))
				}
				if err := f.array(level + 1); err != nil {
					return err
				}
			} else {
				if f.nested && level != len(f.shape)-1 {
					return badf("%s is a value; nested data must follow the shape %v, which wants an array of %d here", f.path(level+1), f.shape, f.shape[level+1])
				}
				if err := f.value(level); err != nil {
					return err
				}
			}
			n++
			if p.eat(']') {
				break
			}
			if err := p.expect(','); err != nil {
				return badf(": %v", err)
			}
		}
	}
	if f.nested && int64(n) != f.shape[level] {
		return badf("%s has %d elements; the shape %v wants %d at dimension %d", f.path(level), n, f.shape, f.shape[level], level)
	}
	return nil
}

// value reads one element at depth level.
func (f *flattener) value(level int) error {
	p := &f.p
	where := func() string { return f.path(level + 1) }
	switch c := p.peek(); {
	case c == 'n' && p.literal("null"):
		f.out = append(f.out, math.NaN())
		return nil
	case c == 't' || c == 'f':
		if !f.typ.boolean {
			return badf("%s is a boolean; datatype %s takes numbers", where(), f.datatype)
		}
		if p.literal("true") {
			f.out = append(f.out, 1)
			return nil
		}
		if p.literal("false") {
			f.out = append(f.out, 0)
			return nil
		}
		return badf(": %v", p.syntax("a value"))
	case c == '"':
		return badf("%s is a string; datatype %s takes %s", where(), f.datatype, f.kind())
	case c == '{':
		return badf("%s is an object; datatype %s takes %s", where(), f.datatype, f.kind())
	}
	start := p.i
	v, err := p.number()
	if err != nil {
		return badf("%s: %v", where(), err)
	}
	lit := clip(string(p.b[start:p.i]))
	switch {
	case f.typ.boolean:
		return badf("%s: %s is not true or false, as datatype BOOL takes", where(), lit)
	case f.typ.integer && v != math.Trunc(v):
		return badf("%s: %s is not a whole number, as datatype %s takes", where(), lit, f.datatype)
	case v < f.typ.lo || v > f.typ.hi:
		return badf("%s: %s is out of the range of %s (%s)", where(), lit, f.datatype, f.typ.span)
	}
	f.out = append(f.out, v)
	return nil
}

func (f *flattener) kind() string {
	switch {
	case f.typ.boolean:
		return "true or false"
	case f.typ.integer:
		return "whole numbers"
	}
	return "numbers"
}

type oipOutTensor struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     any     `json:"data"` // []float64, or []string for BYTES class labels
}

// infer answers POST /v2/models/{name}/infer.
func (s *Server) infer(w http.ResponseWriter, r *http.Request, wk *work) int {
	if code, ok := s.checkModel(w, r, wk); !ok {
		return code
	}
	if r.Header.Get(binaryHeader) != "" {
		dropBody(w) // the binary body is not read
		return s.fail(w, wk, http.StatusBadRequest, "the binary tensor data extension (header %s) is not supported: send the request as JSON, each tensor's values in its \"data\" array, without that header", binaryHeader)
	}
	body, code := s.admit(w, r, wk)
	if code != 0 {
		return code
	}
	req, rows, err := s.decodeInfer(body, wk)
	if err != nil {
		return s.fail(w, wk, http.StatusBadRequest, "%v", err)
	}
	if err := s.run(wk, wk.req.flat, rows, ""); err != nil {
		return s.fail(w, wk, http.StatusBadRequest, "%v", err)
	}
	want := map[string]bool{}
	for _, o := range req.Outputs {
		want[o.Name] = true
	}
	all := len(want) == 0
	var outs []oipOutTensor
	if all || want[oipOutput] {
		t := oipOutTensor{Name: oipOutput, Shape: []int64{int64(rows)}, Datatype: s.labelType()}
		switch {
		case len(s.labels) == 0:
			t.Data = wk.values
		case t.Datatype == "BYTES":
			labels := make([]string, len(wk.classes))
			for i, c := range wk.classes {
				labels[i] = s.model.Card.Classes[c]
			}
			t.Data = labels
		default:
			vals := make([]float64, len(wk.classes))
			for i, c := range wk.classes {
				vals[i] = s.classValue[c]
			}
			t.Data = vals
		}
		outs = append(outs, t)
	}
	if len(s.labels) > 0 && (all || want[oipProbs]) {
		outs = append(outs, oipOutTensor{Name: oipProbs, Shape: []int64{int64(rows), int64(len(s.labels))}, Datatype: "FP64", Data: wk.probs})
	}
	resp := struct {
		ModelName    string         `json:"model_name"`
		ModelVersion string         `json:"model_version"`
		ID           string         `json:"id,omitempty"`
		Parameters   map[string]any `json:"parameters,omitempty"`
		Outputs      []oipOutTensor `json:"outputs"`
	}{ModelName: s.name, ModelVersion: s.version, ID: req.ID, Outputs: outs}
	b, err := json.Marshal(resp)
	if err != nil {
		return s.fail(w, wk, http.StatusInternalServerError, "encoding the response: %v", err)
	}
	s.release(wk)
	return writeJSON(w, http.StatusOK, append(b, '\n'))
}
