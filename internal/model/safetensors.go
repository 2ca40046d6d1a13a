package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// The weights file is safetensors (https://huggingface.co/docs/safetensors): an
// 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype","shape","data_offsets":[begin,end]} (offsets relative to the data that
// follows the header), then the raw little-endian data. mlship writes F64 tensors in
// name order, the header padded with spaces to a multiple of 8 bytes, so the same
// weights always give the same bytes. Python reads it with
// `safetensors.numpy.load_file("model.safetensors")`.

// Tensor is a named float64 tensor in row-major order.
type Tensor struct {
	Shape []int
	Data  []float64
}

type stEntry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// maxHeader bounds the JSON header we accept, against corrupt or hostile files.
const maxHeader = 100 << 20

// WriteSafetensors encodes tensors (and optional string metadata) to w as F64.
func WriteSafetensors(w io.Writer, tensors map[string]Tensor, meta map[string]string) error {
	return WriteSafetensorsAs(w, tensors, meta, "F64")
}

// WriteSafetensorsAs encodes tensors as dtype "F64" or "F32". At F32 every value
// must be a float32 exactly (a model trained in float32): nothing is rounded.
func WriteSafetensorsAs(w io.Writer, tensors map[string]Tensor, meta map[string]string, dtype string) error {
	size := 8
	switch dtype {
	case "F64":
	case "F32":
		size = 4
	default:
		return fmt.Errorf("dtype %q is not supported (want F64 or F32)", dtype)
	}
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	header := make(map[string]any, len(names)+1)
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	off := 0
	for _, name := range names {
		t := tensors[name]
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if n != len(t.Data) {
			return fmt.Errorf("tensor %q: shape %v holds %d values, data has %d", name, t.Shape, n, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		if size == 4 {
			for i, v := range t.Data {
				if float64(float32(v)) != v && v == v {
					return fmt.Errorf("tensor %q: value %d (%v) is not a float32", name, i, v)
				}
			}
		}
		header[name] = stEntry{DType: dtype, Shape: shape, Offsets: [2]int{off, off + size*n}}
		off += size * n
	}
	hj, err := json.Marshal(header) // map keys are sorted: deterministic
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	buf := make([]byte, 8, 8+len(hj)+off)
	binary.LittleEndian.PutUint64(buf, uint64(len(hj)))
	buf = append(buf, hj...)
	for _, name := range names {
		for _, v := range tensors[name].Data {
			if size == 4 {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(v)))
			} else {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
			}
		}
	}
	_, err = w.Write(buf)
	return err
}

// ReadSafetensors decodes a safetensors file holding F64 (or F32, widened) tensors.
func ReadSafetensors(path string) (map[string]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	t, m, err := DecodeSafetensors(b)
	if err != nil {
		return nil, nil, fmt.Errorf("reading weights %q: %w", path, err)
	}
	return t, m, nil
}

// DecodeSafetensors decodes safetensors bytes.
func DecodeSafetensors(b []byte) (map[string]Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("file too short for a safetensors header")
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("header length %d is larger than the file", n)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b[8 : 8+n]))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	data := b[8+n:]
	out := make(map[string]Tensor, len(raw))
	var meta map[string]string
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("metadata: %w", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		count := 1
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q: negative dimension in shape %v", name, e.Shape)
			}
			count *= d
		}
		var width int
		switch e.DType {
		case "F64":
			width = 8
		case "F32":
			width = 4
		default:
			return nil, nil, fmt.Errorf("tensor %q: dtype %s is not supported (want F64 or F32)", name, e.DType)
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin < 0 || end < begin || end > len(data) || end-begin != count*width {
			return nil, nil, fmt.Errorf("tensor %q: data offsets [%d,%d] do not fit shape %v (%s) in %d data bytes",
				name, begin, end, e.Shape, e.DType, len(data))
		}
		vals := make([]float64, count)
		src := data[begin:end]
		for i := range vals {
			if width == 8 {
				vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))
			} else {
				vals[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
			}
		}
		out[name] = Tensor{Shape: e.Shape, Data: vals}
	}
	return out, meta, nil
}
