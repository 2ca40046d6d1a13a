package serve

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/category"
	"github.com/mlship/mlship/internal/serve/wire"
	"github.com/mlship/mlship/internal/version"
)

// Open Inference Protocol v2 (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/),
// REST/JSON binding.

// Tensor names of the model's metadata.
const (
	oipInput  = "input-0"       // [N, features] FP64 (BYTES for a model with categorical features)
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
		return s.fail(w, wk, http.StatusNotFound, "model %s not found; this server serves %q", wire.Quote(name), s.name), false
	}
	if v := r.PathValue("version"); v != "" && v != s.version {
		return s.fail(w, wk, http.StatusNotFound, "version %s of model %q not found; this server serves version %q", wire.Quote(v), s.name, s.version), false
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
	inType := "FP64"
	if s.schema.Encoders != nil {
		inType = "BYTES"
	}
	meta := oipModelMeta{
		Name: s.name, Versions: []string{s.version}, Platform: "mlship",
		Inputs:  []oipTensorMeta{{Name: oipInput, Datatype: inType, Shape: []int64{-1, int64(len(c.Features))}}},
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
	if s.schema.Encoders != nil {
		var cat []string
		for j, e := range s.schema.Encoders {
			if e != nil {
				cat = append(cat, c.Features[j])
			}
		}
		meta.Parameters["categorical_features"] = strings.Join(cat, ",")
		meta.Parameters["input_layout"] = "one tensor " + oipInput + " of shape [N, features] in feature order, datatype BYTES: a categorical feature's category as a string (or a number), a numeric feature's value as a number (or a string of one); or one tensor per feature named after it of shape [N], BYTES for a categorical feature"
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

// binaryHeader is the header of the protocol's binary tensor data extension.
const binaryHeader = "Inference-Header-Content-Length"

// decodeInfer turns an inference request into rows of raw feature values.
func (s *Server) decodeInfer(body []byte, wk *work) (*oipRequest, int, error) {
	var req oipRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, jsonError(err)
	}
	nf := len(s.schema.Features)
	if len(req.Inputs) == 0 {
		return nil, 0, wire.Badf("inputs: empty; want one tensor %q of shape [N, %d] or one tensor per feature", oipInput, nf)
	}
	data := make([][]float64, len(req.Inputs))
	texts := make([][]string, len(req.Inputs))
	for i, t := range req.Inputs {
		vals, txt, err := wire.FlattenTensor(t.Data, t.Datatype, t.Shape)
		if err != nil {
			return nil, 0, wire.Badf("inputs[%d] (%s): %v", i, wire.Clip(t.Name), err)
		}
		data[i], texts[i] = vals, txt
	}
	flat := wk.req.Flat[:0]
	s.schema.ResetUnseen(&wk.req)
	// cell puts element e of tensor i, the value of feature j, into flat.
	cell := func(i, e, j int) error {
		v := data[i][e]
		var text string
		if texts[i] != nil {
			text = texts[i][e]
		}
		if s.schema.Encoders != nil && s.schema.Encoders[j] != nil {
			if text == "" && !math.IsNaN(v) {
				text = category.FormatNumber(v)
			}
			flat = append(flat, s.schema.Slot(j, text, wk.req.Unseen))
			return nil
		}
		if text != "" {
			n, kind := category.Parse(text)
			switch kind {
			case category.Number, category.Missing:
				v = n
			default:
				return wire.Badf("inputs[%d] (%s): data element %d is %s, and feature %q takes numbers", i, wire.Clip(req.Inputs[i].Name), e, wire.Quote(text), s.schema.Features[j])
			}
		}
		flat = append(flat, v)
		return nil
	}
	var rows int
	_, isFeature := s.schema.Index[req.Inputs[0].Name]
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
			return nil, 0, wire.Badf("inputs[0] (%s): shape %v; the model takes [N, %d]: %s", wire.Clip(t.Name), shape, nf, wire.ListFeatures(s.schema.Features))
		}
		for e := range data[0] {
			if err := cell(0, e, e%nf); err != nil {
				return nil, 0, err
			}
		}
	} else {
		// One tensor per feature, each [N] or [N, 1].
		cols := make([]int, nf) // the tensor of each feature, +1 (0: none)
		for i, t := range req.Inputs {
			j, ok := s.schema.Index[t.Name]
			if !ok {
				return nil, 0, wire.Badf("inputs[%d]: %s is not a feature of the model (%s) nor %q", i, wire.Quote(t.Name), wire.ListFeatures(s.schema.Features), oipInput)
			}
			if cols[j] != 0 {
				return nil, 0, wire.Badf("inputs[%d]: feature %q given twice", i, t.Name)
			}
			if len(t.Shape) > 2 || len(t.Shape) == 2 && t.Shape[1] != 1 {
				return nil, 0, wire.Badf("inputs[%d] (%s): shape %v; a feature tensor is [N] or [N, 1]", i, t.Name, t.Shape)
			}
			if len(data[i]) != len(data[0]) {
				return nil, 0, wire.Badf("inputs[%d] (%s): %d rows, inputs[0] has %d", i, t.Name, len(data[i]), len(data[0]))
			}
			cols[j] = i + 1
		}
		for j, c := range cols {
			if c == 0 {
				return nil, 0, wire.Badf("inputs: feature %q is missing", s.schema.Features[j])
			}
		}
		rows = len(data[0])
		for r := 0; r < rows; r++ {
			for j, c := range cols {
				if err := cell(c-1, r, j); err != nil {
					return nil, 0, err
				}
			}
		}
	}
	if rows == 0 {
		return nil, 0, wire.Badf("inputs: no rows")
	}
	wk.req.Flat = flat
	for _, o := range req.Outputs {
		if o.Name != oipOutput && !(o.Name == oipProbs && len(s.labels) > 0) {
			return nil, 0, wire.Badf("outputs: unknown output %s (the model has %s)", wire.Quote(o.Name), s.outputNames())
		}
	}
	return &req, rows, nil
}

// jsonError turns encoding/json's error into a wire.BadRequest that quotes at most a
// short prefix of what the client sent.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return wire.Badf("malformed inference request at byte %d: %s", se.Offset, wire.Clip(se.Error()))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the request"
		}
		return wire.Badf("malformed inference request: %s: got %s, want %s", wire.Clip(field), wire.Clip(te.Value), jsonKind(te.Type))
	}
	return wire.Badf("malformed inference request: %s", wire.Clip(err.Error()))
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
	if err := s.run(wk, wk.req.Flat, rows, "", wk.req.Unseen); err != nil {
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
