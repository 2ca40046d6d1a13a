// Package wire decodes the request bodies of mlship-serve: /predict's JSON rows
// and the Open Inference Protocol's tensor data. It reads numbers straight into
// float64 rows without building a generic tree, says where a problem is, and
// quotes at most a short prefix of what a client sent. It depends on the
// standard library and internal/category (itself the standard library's only)
// alone, so that its fuzz targets run fast: the fuzzer scans the coverage
// counters of every package in the test binary after each input.
package wire

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mlship/mlship/internal/category"
)

// BadRequest is a client error: the server answers 400 with its message.
type BadRequest struct{ msg string }

func (e *BadRequest) Error() string { return e.msg }

// Badf is a BadRequest with a formatted message.
func Badf(format string, a ...any) error { return &BadRequest{fmt.Sprintf(format, a...)} }

// maxQuoted is how much of a client's key, name or number an error quotes.
const maxQuoted = 64

// Clip returns s, or when it is longer than maxQuoted bytes its first bytes and
// "... (N bytes)": errors never echo a huge key or number back.
func Clip(s string) string { return ClipTo(s, maxQuoted) }

// ClipTo is Clip with a limit of n bytes; the cut falls on a UTF-8 boundary.
func ClipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// Quote is strconv.Quote of s, clipped like Clip: "abc"... (N bytes).
func Quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	c := Clip(s)
	i := strings.LastIndex(c, "... (")
	return strconv.Quote(c[:i]) + c[i:]
}

// Schema is what the decoders need to know of the model's inputs.
type Schema struct {
	Features []string       // in the model's order
	Index    map[string]int // position of each feature
	// Encoders holds the encoder of each categorical feature (nil for a
	// numeric one); nil when every feature is numeric. A categorical
	// feature's value is decoded into its one-hot slot (see Cell).
	Encoders []*category.Encoder
}

// NewSchema is the schema of a model taking features, in order.
func NewSchema(features []string) *Schema {
	s := &Schema{Features: features, Index: make(map[string]int, len(features))}
	for i, f := range features {
		s.Index[f] = i
	}
	return s
}

// parser is a small JSON reader for the request shapes the server accepts. It
// reads numbers straight into float64 rows without building a generic tree, and
// says where a problem is (which row, which value).
type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) syntax(want string) error {
	if p.i >= len(p.b) {
		return Badf("malformed JSON: unexpected end of input, want %s", want)
	}
	c := p.b[p.i]
	if c < 0x20 || c >= 0x7f {
		return Badf("malformed JSON at byte %d: want %s", p.i, want)
	}
	return Badf("malformed JSON at byte %d: unexpected %q, want %s", p.i, c, want)
}

func (p *parser) expect(c byte) error {
	if !p.eat(c) {
		return p.syntax(strconv.QuoteRune(rune(c)))
	}
	return nil
}

// str reads a JSON string.
func (p *parser) str() (string, error) {
	if p.peek() != '"' {
		return "", p.syntax("a string")
	}
	p.i++
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", Badf("malformed JSON: string is not valid UTF-8")
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", Badf("malformed JSON at byte %d: control character in string", p.i)
		}
		p.i++
	}
	var sb strings.Builder
	sb.Grow(2 * (p.i - start + 8))
	sb.Write(p.b[start:p.i])
	for p.i < len(p.b) {
		// Copy the run of plain bytes up to the next quote, escape or control
		// character at once: byte by byte, a long escaped key cost 12 ns a byte.
		j := p.i
		for j < len(p.b) && p.b[j] != '"' && p.b[j] != '\\' && p.b[j] >= 0x20 {
			j++
		}
		sb.Write(p.b[p.i:j])
		p.i = j
		if p.i >= len(p.b) {
			break
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.ValidString(sb.String()) {
				return "", Badf("malformed JSON: string is not valid UTF-8")
			}
			return sb.String(), nil
		case c < 0x20:
			return "", Badf("malformed JSON at byte %d: control character in string", p.i)
		}
		p.i++
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", Badf("malformed JSON at byte %d: bad \\u escape", p.i)
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					p.i += 2
					if lo, ok := p.hex4(); ok {
						r2 = utf16.DecodeRune(r, lo)
					}
				}
				r = r2
			}
			sb.WriteRune(r)
		default:
			return "", Badf("malformed JSON at byte %d: bad escape \\%c", p.i-1, e)
		}
	}
	return "", Badf("malformed JSON: unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// number reads a JSON number; it must be finite as a float64.
func (p *parser) number() (float64, error) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if digits() == 0 || (p.b[intStart] == '0' && p.i-intStart > 1) {
		p.i = start
		return 0, p.syntax("a number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return 0, p.syntax("a digit")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return 0, p.syntax("a digit")
		}
	}
	v, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, Badf("%s is not a finite number", Clip(string(p.b[start:p.i])))
	}
	return v, nil
}

// literal reads true, false or null.
func (p *parser) literal(word string) bool {
	p.ws()
	if strings.HasPrefix(string(p.b[p.i:min(len(p.b), p.i+len(word))]), word) {
		p.i += len(word)
		return true
	}
	return false
}

// skip reads and discards any JSON value.
func (p *parser) skip(depth int) error {
	if depth > 64 {
		return Badf("malformed JSON: nested too deeply")
	}
	switch p.peek() {
	case '{':
		p.i++
		if p.eat('}') {
			return nil
		}
		for {
			if _, err := p.str(); err != nil {
				return err
			}
			if err := p.expect(':'); err != nil {
				return err
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			if p.eat('}') {
				return nil
			}
			if err := p.expect(','); err != nil {
				return err
			}
		}
	case '[':
		p.i++
		if p.eat(']') {
			return nil
		}
		for {
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			if p.eat(']') {
				return nil
			}
			if err := p.expect(','); err != nil {
				return err
			}
		}
	case '"':
		_, err := p.str()
		return err
	case 't':
		if p.literal("true") {
			return nil
		}
	case 'f':
		if p.literal("false") {
			return nil
		}
	case 'n':
		if p.literal("null") {
			return nil
		}
	default:
		_, err := p.number()
		return err
	}
	return p.syntax("a value")
}

func (p *parser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return Badf("malformed JSON at byte %d: data after the end of the request", p.i)
	}
	return nil
}

// categorical reports whether feature idx is categorical.
func (s *Schema) categorical(idx int) bool { return s.Encoders != nil && s.Encoders[idx] != nil }

// Slot is the one-hot slot of feature idx (categorical) for a value given as
// text (a string, or the FormatNumber text of a number): NaN when it is
// missing (category.Canon), the Other slot when the model does not list it, in
// which case unseen[idx] (when unseen is not nil) counts it.
func (s *Schema) Slot(idx int, text string, unseen []int) float64 {
	t, missing := category.Canon(text)
	if missing {
		return math.NaN()
	}
	slot, known := s.Encoders[idx].Slot(t)
	if !known && unseen != nil {
		unseen[idx]++
	}
	return float64(slot)
}

// cell reads one feature value: a number (true and false are 1 and 0), or null
// for a missing value (which the model's preprocessing imputes); for a
// categorical feature a string or a number, its category, becomes its slot
// (Slot). The value is named in errors as row[idx] (feature) or row.feature.
func (p *parser) cell(s *Schema, row rowRef, idx int, byName bool, unseen []int) (float64, error) {
	where := func() string {
		if byName {
			return row.String() + "." + s.Features[idx]
		}
		return fmt.Sprintf("%s[%d] (%s)", row, idx, s.Features[idx])
	}
	if s.categorical(idx) {
		switch c := p.peek(); {
		case c == 'n' && p.literal("null"):
			return math.NaN(), nil
		case c == '"':
			str, err := p.str()
			if err != nil {
				return 0, err
			}
			return s.Slot(idx, str, unseen), nil
		case c == 't' && p.literal("true"):
			return s.Slot(idx, "1", unseen), nil
		case c == 'f' && p.literal("false"):
			return s.Slot(idx, "0", unseen), nil
		case c == '[' || c == '{':
			return 0, Badf("%s: is an %s, want a category (a string or a number; null for missing)", where(), map[byte]string{'[': "array", '{': "object"}[c])
		case c == 'N' || c == 'I' || c == '-' && p.i+1 < len(p.b) && p.b[p.i+1] == 'I':
			return 0, Badf("%s: NaN and Infinity are not numbers in JSON (send null for a missing value)", where())
		}
		v, err := p.number()
		if err != nil {
			return 0, Badf("%s: %v", where(), err.(*BadRequest).msg)
		}
		return s.Slot(idx, category.FormatNumber(v), unseen), nil
	}
	switch c := p.peek(); {
	case c == 'n':
		if p.literal("null") {
			return math.NaN(), nil
		}
	case c == '"':
		return 0, Badf("%s: is a string, want a number (or null for missing)", where())
	case c == 't':
		if p.literal("true") {
			return 1, nil
		}
	case c == 'f':
		if p.literal("false") {
			return 0, nil
		}
	case c == '[' || c == '{':
		return 0, Badf("%s: is an %s, want a number (or null for missing)", where(), map[byte]string{'[': "array", '{': "object"}[c])
	case c == 'N' || c == 'I' || c == '-' && p.i+1 < len(p.b) && p.b[p.i+1] == 'I':
		return 0, Badf("%s: NaN and Infinity are not numbers in JSON (send null for a missing value)", where())
	}
	v, err := p.number()
	if err != nil {
		return 0, Badf("%s: %v", where(), err.(*BadRequest).msg)
	}
	return v, nil
}

// row reads one row, as an array of the model's features in order or as an
// object keyed by feature name, into dst (len = number of features); unseen
// counts categories the model does not list, per feature.
func (s *Schema) row(p *parser, dst []float64, name rowRef, unseen []int) error {
	switch p.peek() {
	case '[':
		p.i++
		n := 0
		if !p.eat(']') {
			for {
				var v float64
				var err error
				if n < len(dst) {
					v, err = p.cell(s, name, n, false, unseen)
				} else {
					err = p.skip(0)
				}
				if err != nil {
					return err
				}
				if n < len(dst) {
					dst[n] = v
				}
				n++
				if p.eat(']') {
					break
				}
				if err := p.expect(','); err != nil {
					return err
				}
			}
		}
		if n != len(dst) {
			return Badf("%s has %d values, the model takes %d: %s", name, n, len(dst), ListFeatures(s.Features))
		}
		return nil
	case '{':
		p.i++
		seen := 0
		got := make([]bool, len(dst))
		if !p.eat('}') {
			for {
				key, err := p.str()
				if err != nil {
					return err
				}
				if err := p.expect(':'); err != nil {
					return err
				}
				idx, ok := s.Index[key]
				if !ok {
					return Badf("%s: unknown feature %s; the model takes %s", name, Quote(key), ListFeatures(s.Features))
				}
				if got[idx] {
					return Badf("%s: feature %q given twice", name, key)
				}
				v, err := p.cell(s, name, idx, true, unseen)
				if err != nil {
					return err
				}
				dst[idx], got[idx] = v, true
				seen++
				if p.eat('}') {
					break
				}
				if err := p.expect(','); err != nil {
					return err
				}
			}
		}
		if seen != len(dst) {
			var missing []string
			for i, ok := range got {
				if !ok {
					missing = append(missing, s.Features[i])
				}
			}
			return Badf("%s is missing features %s (send null for a missing value)", name, ListFeatures(missing))
		}
		return nil
	}
	if p.peek() == 0 {
		return p.syntax("a row")
	}
	if s.Encoders != nil {
		return Badf("%s must be an array of %d values or an object keyed by feature name", name, len(dst))
	}
	return Badf("%s must be an array of %d numbers or an object keyed by feature name", name, len(dst))
}

// PredictRequest is a decoded /predict body: rows in a flat backing array.
type PredictRequest struct {
	Key   string // "input", "inputs" or "instances"
	Batch bool
	Rows  int
	Flat  []float64 // rows x features; a categorical feature's value is its slot
	// Unseen counts, per feature, the values of a categorical feature that
	// are none of its categories (given the Other slot); nil when no feature
	// is categorical.
	Unseen []int
}

// ResetUnseen sets req.Unseen to zeros for s's features (nil when none is
// categorical).
func (s *Schema) ResetUnseen(req *PredictRequest) {
	if s.Encoders == nil {
		req.Unseen = nil
		return
	}
	if len(req.Unseen) != len(s.Features) {
		req.Unseen = make([]int, len(s.Features))
	}
	clear(req.Unseen)
}

// DecodePredict reads {"input": ROW}, {"inputs": [ROW, ...]} or KServe v1's
// {"instances": [ROW, ...]}, where ROW is an array of values in feature order or
// an object keyed by feature name: a number (true and false are 1 and 0), for a
// categorical feature a string or a number (its category); null is a missing
// value. req.Flat is reused.
func (s *Schema) DecodePredict(body []byte, req *PredictRequest) error {
	p := &parser{b: body}
	nf := len(s.Features)
	req.Flat, req.Rows, req.Batch = req.Flat[:0], 0, false
	s.ResetUnseen(req)
	if err := p.expect('{'); err != nil {
		if p.peek() == 0 {
			return Badf("empty request body: want {\"input\": [...]} or {\"inputs\": [[...], ...]}")
		}
		return err
	}
	found := ""
	if !p.eat('}') {
		for {
			key, err := p.str()
			if err != nil {
				return err
			}
			if err := p.expect(':'); err != nil {
				return err
			}
			switch key {
			case "input", "inputs", "instances":
				if found != "" {
					return Badf("give one of \"input\", \"inputs\" or \"instances\", not both %q and %q", found, key)
				}
				found = key
				req.Key = found
				if key == "input" {
					req.Flat = Grow(req.Flat, nf)
					if err := s.row(p, req.Flat[:nf], rowRef{"input", -1}, req.Unseen); err != nil {
						return err
					}
					req.Rows = 1
					break
				}
				req.Batch = true
				if p.peek() != '[' {
					return Badf("%s must be an array of rows", key)
				}
				p.i++
				if p.eat(']') {
					return Badf("%s is an empty batch", key)
				}
				for {
					req.Flat = Grow(req.Flat, (req.Rows+1)*nf)
					if err := s.row(p, req.Flat[req.Rows*nf:(req.Rows+1)*nf], rowRef{key, req.Rows}, req.Unseen); err != nil {
						return err
					}
					req.Rows++
					if p.eat(']') {
						break
					}
					if err := p.expect(','); err != nil {
						return err
					}
				}
			default:
				return Badf("unknown field %s: want \"input\" (one row) or \"inputs\" (a batch)", Quote(key))
			}
			if p.eat('}') {
				break
			}
			if err := p.expect(','); err != nil {
				return err
			}
		}
	}
	if found == "" {
		return Badf("no rows: want {\"input\": [...]} or {\"inputs\": [[...], ...]}")
	}
	return p.end()
}

// rowRef names a row in errors: "input", or "inputs[3]" in a batch. It is
// formatted only when an error needs it.
type rowRef struct {
	key string
	i   int // -1 for a single row
}

func (r rowRef) String() string {
	if r.i < 0 {
		return r.key
	}
	return r.key + "[" + strconv.Itoa(r.i) + "]"
}

// Grow returns s with length n, reallocated (doubling) when its capacity is short.
func Grow(s []float64, n int) []float64 {
	if cap(s) >= n {
		return s[:n]
	}
	out := make([]float64, n, max(n, 2*cap(s)))
	copy(out, s)
	return out
}

// ListFeatures lists feature names for an error, the first 12 and a count.
func ListFeatures(fs []string) string {
	const maxShown = 12
	if len(fs) <= maxShown {
		return strings.Join(fs, ", ")
	}
	return strings.Join(fs[:maxShown], ", ") + fmt.Sprintf(", ... (%d in all)", len(fs))
}

// tensorType is what a tensor datatype allows: true and false (BOOL), or numbers in
// [lo, hi], whole numbers only for the integer types; BYTES (FlattenTensor only)
// strings, and numbers, true and false, as a model with categorical features
// takes them.
type tensorType struct {
	bytes   bool
	boolean bool
	integer bool
	lo, hi  float64
	span    string // the range, for errors
}

var types = map[string]tensorType{
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

// maxDims bounds a tensor's dimensions (the model takes at most 2; more are
// refused later with the shapes it takes).
const maxDims = 8

// shapeSize checks a tensor shape and returns its number of elements.
func shapeSize(shape []int64) (int64, error) {
	if len(shape) == 0 {
		return 0, Badf("shape is empty; want [N, features] or [N]")
	}
	if len(shape) > maxDims {
		return 0, Badf("shape has %d dimensions; at most %d", len(shape), maxDims)
	}
	size := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, Badf("shape %v has a negative dimension", shape)
		}
		if d != 0 && size > math.MaxInt64/d {
			return 0, Badf("shape %v has more elements than any request can hold", shape)
		}
		size *= d
	}
	return size, nil
}

// FlattenNumbers reads a tensor's data: a JSON array of its elements in
// row-major order, flat or nested exactly as the shape (the protocol allows
// both; a nested array must have shape[k] elements at depth k, and a flat one
// all the elements). null is a missing value. Each element must fit the
// datatype: true or false for BOOL; a whole number in range for the integer
// types; a number in range for FP16, FP32 and FP64. The result has exactly as
// many values as the shape has elements.
func FlattenNumbers(raw []byte, datatype string, shape []int64) ([]float64, error) {
	typ, ok := types[datatype]
	if !ok {
		return nil, Badf("datatype %s is not numeric (want BOOL, UINT8 to UINT64, INT8 to INT64, FP16, FP32 or FP64)", Quote(datatype))
	}
	vals, _, err := flatten(raw, datatype, typ, shape)
	return vals, err
}

// FlattenTensor is FlattenNumbers that also takes datatype BYTES, whose
// elements may be strings as well as numbers, true and false (1 and 0) and
// null: texts[i] is element i when it is a string (vals[i] is then NaN), ""
// otherwise. texts is nil for the numeric datatypes.
func FlattenTensor(raw []byte, datatype string, shape []int64) (vals []float64, texts []string, err error) {
	if datatype == "BYTES" {
		return flatten(raw, datatype, tensorType{bytes: true}, shape)
	}
	typ, ok := types[datatype]
	if !ok {
		return nil, nil, Badf("datatype %s is not one this model takes (want BYTES, BOOL, UINT8 to UINT64, INT8 to INT64, FP16, FP32 or FP64)", Quote(datatype))
	}
	return flatten(raw, datatype, typ, shape)
}

func flatten(raw []byte, datatype string, typ tensorType, shape []int64) ([]float64, []string, error) {
	size, err := shapeSize(shape)
	if err != nil {
		return nil, nil, err
	}
	f := &flattener{p: parser{b: raw}, typ: typ, datatype: datatype, shape: shape}
	switch f.p.peek() {
	case 0:
		return nil, nil, Badf("data: missing")
	case '[':
	default:
		return nil, nil, Badf("data: want an array of the tensor's values")
	}
	f.out = make([]float64, 0, min(size, int64(len(raw))))
	if typ.bytes {
		f.texts = make([]string, 0, cap(f.out))
	}
	if err := f.array(0); err != nil {
		return nil, nil, Badf("data%v", err)
	}
	if err := f.p.end(); err != nil {
		return nil, nil, Badf("data: %v", err)
	}
	if int64(len(f.out)) != size {
		return nil, nil, Badf("shape %v does not match %d data values", shape, len(f.out))
	}
	return f.out, f.texts, nil
}

// flattener reads nested tensor data. Its errors start with the element's
// path ("[1][0]: ..."), or ": ..." for the tensor as a whole.
type flattener struct {
	p        parser
	typ      tensorType
	datatype string
	shape    []int64
	nested   bool // the data is nested (its first element is an array), not flat
	idx      []int
	out      []float64
	texts    []string // BYTES: the strings, "" for other elements
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
					return Badf("%s is an array, but the data before it is flat: give the values flat or nested as the shape %v, not both", f.path(level+1), f.shape)
				case level+1 >= len(f.shape):
					return Badf("%s is an array; the shape %v has %d dimension(s), so a value belongs here", f.path(level+1), f.shape, len(f.shape))
				}
				if err := f.array(level + 1); err != nil {
					return err
				}
			} else {
				if f.nested && level != len(f.shape)-1 {
					return Badf("%s is a value; nested data must follow the shape %v, which wants an array of %d here", f.path(level+1), f.shape, f.shape[level+1])
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
				return Badf(": %v", err)
			}
		}
	}
	if f.nested && int64(n) != f.shape[level] {
		return Badf("%s has %d elements; the shape %v wants %d at dimension %d", f.path(level), n, f.shape, f.shape[level], level)
	}
	return nil
}

// value reads one element at depth level.
func (f *flattener) value(level int) error {
	if f.typ.bytes {
		return f.bytesValue(level)
	}
	p := &f.p
	where := func() string { return f.path(level + 1) }
	switch c := p.peek(); {
	case c == 'n' && p.literal("null"):
		f.out = append(f.out, math.NaN())
		return nil
	case c == 't' || c == 'f':
		if !f.typ.boolean {
			return Badf("%s is a boolean; datatype %s takes numbers", where(), f.datatype)
		}
		if p.literal("true") {
			f.out = append(f.out, 1)
			return nil
		}
		if p.literal("false") {
			f.out = append(f.out, 0)
			return nil
		}
		return Badf(": %v", p.syntax("a value"))
	case c == '"':
		return Badf("%s is a string; datatype %s takes %s", where(), f.datatype, f.kind())
	case c == '{':
		return Badf("%s is an object; datatype %s takes %s", where(), f.datatype, f.kind())
	}
	start := p.i
	v, err := p.number()
	if err != nil {
		return Badf("%s: %v", where(), err)
	}
	lit := Clip(string(p.b[start:p.i]))
	switch {
	case f.typ.boolean:
		return Badf("%s: %s is not true or false, as datatype BOOL takes", where(), lit)
	case f.typ.integer && v != math.Trunc(v):
		return Badf("%s: %s is not a whole number, as datatype %s takes", where(), lit, f.datatype)
	case v < f.typ.lo || v > f.typ.hi:
		return Badf("%s: %s is out of the range of %s (%s)", where(), lit, f.datatype, f.typ.span)
	}
	f.out = append(f.out, v)
	return nil
}

// bytesValue reads one element of a BYTES tensor: a string, a number, true or
// false (1 or 0), or null.
func (f *flattener) bytesValue(level int) error {
	p := &f.p
	where := func() string { return f.path(level + 1) }
	text := ""
	v := math.NaN()
	switch c := p.peek(); {
	case c == 'n' && p.literal("null"):
	case c == 't' && p.literal("true"):
		v = 1
	case c == 'f' && p.literal("false"):
		v = 0
	case c == '"':
		s, err := p.str()
		if err != nil {
			return Badf("%s: %v", where(), err)
		}
		text = s
	case c == '{':
		return Badf("%s is an object; datatype BYTES takes strings (or numbers)", where())
	default:
		n, err := p.number()
		if err != nil {
			return Badf("%s: %v", where(), err)
		}
		v = n
	}
	f.out = append(f.out, v)
	f.texts = append(f.texts, text)
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

// IsJSONNumber reports whether s is a number in JSON's grammar (strconv accepts
// more: "+1", "0x10", "1_000", "Inf"), so that it can be written unquoted.
func IsJSONNumber(s string) bool {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	p := &parser{b: []byte(s)}
	_, err := p.number()
	return err == nil && p.i == len(s)
}
