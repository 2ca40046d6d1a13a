package serve

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

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
	Name       string          `json:"name"`
	Versions   []string        `json:"versions"`
	Platform   string          `json:"platform"`
	Inputs     []oipTensorMeta `json:"inputs"`
	Outputs    []oipTensorMeta `json:"outputs"`
	Parameters map[string]any  `json:"parameters,omitempty"`
}

func (s *Server) checkModel(w http.ResponseWriter, r *http.Request, wk *work) (int, bool) {
	if name := r.PathValue("name"); name != s.name {
		return s.fail(w, wk, http.StatusNotFound, "model %q not found; this server serves %q", name, s.name), false
	}
	if v := r.PathValue("version"); v != "" && v != s.version {
		return s.fail(w, wk, http.StatusNotFound, "version %q of model %q not found; this server serves version %q", v, s.name, s.version), false
	}
	return 0, true
}

func (s *Server) labelType() string {
	if len(s.labels) == 0 || !s.intClass {
		return "FP64"
	}
	return "INT64"
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
		Parameters: map[string]any{
			"task": c.Task, "features": c.Features, "target": c.Target,
			"input_layout": "one tensor " + oipInput + " of shape [N, features] in feature order, or one tensor per feature named after it of shape [N]",
		},
	}
	if len(c.Classes) > 0 {
		meta.Outputs = append(meta.Outputs, oipTensorMeta{Name: oipProbs, Datatype: "FP64", Shape: []int64{-1, int64(len(c.Classes))}})
		meta.Parameters["classes"] = c.Classes
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

var oipNumeric = map[string]bool{
	"BOOL": true, "UINT8": true, "UINT16": true, "UINT32": true, "UINT64": true,
	"INT8": true, "INT16": true, "INT32": true, "INT64": true, "FP16": true, "FP32": true, "FP64": true,
}

// decodeInfer turns an inference request into rows of raw feature values.
func (s *Server) decodeInfer(body []byte, wk *work) (*oipRequest, int, error) {
	var req oipRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, badf("malformed inference request: %v", err)
	}
	nf := len(s.schema.features)
	if len(req.Inputs) == 0 {
		return nil, 0, badf("inputs: empty; want one tensor %q of shape [N, %d] or one tensor per feature", oipInput, nf)
	}
	data := make([][]float64, len(req.Inputs))
	for i, t := range req.Inputs {
		if !oipNumeric[t.Datatype] {
			return nil, 0, badf("inputs[%d] (%s): datatype %q is not numeric", i, t.Name, t.Datatype)
		}
		vals, err := flattenNumbers(t.Data, t.Datatype == "BOOL")
		if err != nil {
			return nil, 0, badf("inputs[%d] (%s): data: %v", i, t.Name, err)
		}
		size := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return nil, 0, badf("inputs[%d] (%s): shape %v has a negative dimension", i, t.Name, t.Shape)
			}
			size *= d
		}
		if len(t.Shape) == 0 || size != int64(len(vals)) {
			return nil, 0, badf("inputs[%d] (%s): shape %v does not match %d data values", i, t.Name, t.Shape, len(vals))
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
			return nil, 0, badf("inputs[0] (%s): shape %v; the model takes [N, %d]: %s", t.Name, shape, nf, listFeatures(s.schema.features))
		}
		flat = append(flat, data[0]...)
	} else {
		// One tensor per feature, each [N] or [N, 1].
		cols := make([][]float64, nf)
		for i, t := range req.Inputs {
			j, ok := s.schema.index[t.Name]
			if !ok {
				return nil, 0, badf("inputs[%d]: %q is not a feature of the model (%s) nor %q", i, t.Name, listFeatures(s.schema.features), oipInput)
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
	for i, v := range flat {
		if math.IsInf(v, 0) {
			return nil, 0, badf("inputs: row %d, feature %q: value is not finite", i/nf, s.schema.features[i%nf])
		}
	}
	wk.req.flat = flat
	for _, o := range req.Outputs {
		if o.Name != oipOutput && !(o.Name == oipProbs && len(s.labels) > 0) {
			return nil, 0, badf("outputs: unknown output %q (the model has %s)", o.Name, s.outputNames())
		}
	}
	return &req, rows, nil
}

func (s *Server) outputNames() string {
	if len(s.labels) > 0 {
		return oipOutput + ", " + oipProbs
	}
	return oipOutput
}

// flattenNumbers reads a JSON array of numbers (nested arrays allowed, as the
// protocol permits row-major nesting); null is a missing value, booleans count as
// 0 and 1 when allowed.
func flattenNumbers(raw json.RawMessage, bools bool) ([]float64, error) {
	p := &parser{b: raw}
	var out []float64
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 32 {
			return badf("nested too deeply")
		}
		switch c := p.peek(); {
		case c == '[':
			p.i++
			if p.eat(']') {
				return nil
			}
			for {
				if err := walk(depth + 1); err != nil {
					return err
				}
				if p.eat(']') {
					return nil
				}
				if err := p.expect(','); err != nil {
					return err
				}
			}
		case c == 'n' && p.literal("null"):
			out = append(out, math.NaN())
		case bools && c == 't' && p.literal("true"):
			out = append(out, 1)
		case bools && c == 'f' && p.literal("false"):
			out = append(out, 0)
		case c == '"':
			return badf("value %d is a string, want a number", len(out))
		default:
			v, err := p.number()
			if err != nil {
				return badf("value %d: %v", len(out), err.(*badRequest).msg)
			}
			out = append(out, v)
		}
		return nil
	}
	if len(raw) == 0 {
		return nil, badf("missing")
	}
	if err := walk(0); err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return out, nil
}

type oipOutTensor struct {
	Name     string    `json:"name"`
	Shape    []int64   `json:"shape"`
	Datatype string    `json:"datatype"`
	Data     []float64 `json:"data"`
}

// infer answers POST /v2/models/{name}/infer.
func (s *Server) infer(w http.ResponseWriter, r *http.Request, wk *work) int {
	if code, ok := s.checkModel(w, r, wk); !ok {
		return code
	}
	body, code, err := s.readBody(w, r, wk)
	if err != nil {
		return s.fail(w, wk, code, "%v", err)
	}
	req, rows, err := s.decodeInfer(body, wk)
	if err != nil {
		return s.fail(w, wk, http.StatusBadRequest, "%v", err)
	}
	s.run(wk, wk.req.flat, rows)
	want := map[string]bool{}
	for _, o := range req.Outputs {
		want[o.Name] = true
	}
	all := len(want) == 0
	var outs []oipOutTensor
	if all || want[oipOutput] {
		t := oipOutTensor{Name: oipOutput, Shape: []int64{int64(rows)}, Datatype: s.labelType()}
		if len(s.labels) == 0 {
			t.Data = wk.values
		} else {
			for _, c := range wk.classes {
				v, _ := strconv.ParseFloat(s.model.Card.Classes[c], 64)
				t.Data = append(t.Data, v)
			}
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
	return writeJSON(w, http.StatusOK, append(b, '\n'))
}
