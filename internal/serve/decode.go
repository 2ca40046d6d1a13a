package serve

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// badRequest is a client error: the server answers 400 with its message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// maxQuoted is how much of a client's key, name or number an error quotes.
const maxQuoted = 64

// clip returns s, or when it is longer than maxQuoted bytes its first bytes and
// "... (N bytes)": errors never echo a huge key or number back.
func clip(s string) string { return clipTo(s, maxQuoted) }

// clipTo is clip with a limit of n bytes; the cut falls on a UTF-8 boundary.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// quote is strconv.Quote of s, clipped like clip: "abc..."... (N bytes).
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	c := clip(s)
	i := strings.LastIndex(c, "... (")
	return strconv.Quote(c[:i]) + c[i:]
}

// schema is what the decoders need to know of the model's inputs.
type schema struct {
	features []string
	index    map[string]int
}

func newSchema(features []string) *schema {
	s := &schema{features: features, index: make(map[string]int, len(features))}
	for i, f := range features {
		s.index[f] = i
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
		return badf("malformed JSON: unexpected end of input, want %s", want)
	}
	c := p.b[p.i]
	if c < 0x20 || c >= 0x7f {
		return badf("malformed JSON at byte %d: want %s", p.i, want)
	}
	return badf("malformed JSON at byte %d: unexpected %q, want %s", p.i, c, want)
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
				return "", badf("malformed JSON: string is not valid UTF-8")
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", badf("malformed JSON at byte %d: control character in string", p.i)
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
				return "", badf("malformed JSON: string is not valid UTF-8")
			}
			return sb.String(), nil
		case c < 0x20:
			return "", badf("malformed JSON at byte %d: control character in string", p.i)
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
				return "", badf("malformed JSON at byte %d: bad \\u escape", p.i)
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
			return "", badf("malformed JSON at byte %d: bad escape \\%c", p.i-1, e)
		}
	}
	return "", badf("malformed JSON: unterminated string")
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
		return 0, badf("%s is not a finite number", clip(string(p.b[start:p.i])))
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
		return badf("malformed JSON: nested too deeply")
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
		return badf("malformed JSON at byte %d: data after the end of the request", p.i)
	}
	return nil
}

// cell reads one feature value: a number, or null for a missing value (which the
// model's preprocessing imputes). The value is named in errors as row[idx]
// (feature) or row.feature.
func (p *parser) cell(s *schema, row rowRef, idx int, byName bool) (float64, error) {
	where := func() string {
		if byName {
			return row.String() + "." + s.features[idx]
		}
		return fmt.Sprintf("%s[%d] (%s)", row, idx, s.features[idx])
	}
	switch c := p.peek(); {
	case c == 'n':
		if p.literal("null") {
			return math.NaN(), nil
		}
	case c == '"':
		return 0, badf("%s: is a string, want a number (or null for missing)", where())
	case c == 't' || c == 'f':
		return 0, badf("%s: is a boolean, want a number (or null for missing)", where())
	case c == '[' || c == '{':
		return 0, badf("%s: is an %s, want a number (or null for missing)", where(), map[byte]string{'[': "array", '{': "object"}[c])
	case c == 'N' || c == 'I' || c == '-' && p.i+1 < len(p.b) && p.b[p.i+1] == 'I':
		return 0, badf("%s: NaN and Infinity are not numbers in JSON (send null for a missing value)", where())
	}
	v, err := p.number()
	if err != nil {
		return 0, badf("%s: %v", where(), err.(*badRequest).msg)
	}
	return v, nil
}

// row reads one row, as an array of the model's features in order or as an
// object keyed by feature name, into dst (len = number of features).
func (s *schema) row(p *parser, dst []float64, name rowRef) error {
	switch p.peek() {
	case '[':
		p.i++
		n := 0
		if !p.eat(']') {
			for {
				var v float64
				var err error
				if n < len(dst) {
					v, err = p.cell(s, name, n, false)
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
			return badf("%s has %d values, the model takes %d: %s", name, n, len(dst), listFeatures(s.features))
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
				idx, ok := s.index[key]
				if !ok {
					return badf("%s: unknown feature %s; the model takes %s", name, quote(key), listFeatures(s.features))
				}
				if got[idx] {
					return badf("%s: feature %q given twice", name, key)
				}
				v, err := p.cell(s, name, idx, true)
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
					missing = append(missing, s.features[i])
				}
			}
			return badf("%s is missing features %s (send null for a missing value)", name, listFeatures(missing))
		}
		return nil
	}
	if p.peek() == 0 {
		return p.syntax("a row")
	}
	return badf("%s must be an array of %d numbers or an object keyed by feature name", name, len(dst))
}

// predictRequest is a decoded /predict body: rows in a flat backing array.
type predictRequest struct {
	key   string // "input", "inputs" or "instances"
	batch bool
	rows  int
	flat  []float64 // rows x features
}

// decodePredict reads {"input": ROW}, {"inputs": [ROW, ...]} or KServe v1's
// {"instances": [ROW, ...]}, where ROW is an array of numbers in feature order or
// an object keyed by feature name; null is a missing value. req.flat is reused.
func (s *schema) decodePredict(body []byte, req *predictRequest) error {
	p := &parser{b: body}
	nf := len(s.features)
	req.flat, req.rows, req.batch = req.flat[:0], 0, false
	if err := p.expect('{'); err != nil {
		if p.peek() == 0 {
			return badf("empty request body: want {\"input\": [...]} or {\"inputs\": [[...], ...]}")
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
					return badf("give one of \"input\", \"inputs\" or \"instances\", not both %q and %q", found, key)
				}
				found = key
				req.key = found
				if key == "input" {
					req.flat = grow(req.flat, nf)
					if err := s.row(p, req.flat[:nf], rowRef{"input", -1}); err != nil {
						return err
					}
					req.rows = 1
					break
				}
				req.batch = true
				if p.peek() != '[' {
					return badf("%s must be an array of rows", key)
				}
				p.i++
				if p.eat(']') {
					return badf("%s is an empty batch", key)
				}
				for {
					req.flat = grow(req.flat, (req.rows+1)*nf)
					if err := s.row(p, req.flat[req.rows*nf:(req.rows+1)*nf], rowRef{key, req.rows}); err != nil {
						return err
					}
					req.rows++
					if p.eat(']') {
						break
					}
					if err := p.expect(','); err != nil {
						return err
					}
				}
			default:
				return badf("unknown field %s: want \"input\" (one row) or \"inputs\" (a batch)", quote(key))
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
		return badf("no rows: want {\"input\": [...]} or {\"inputs\": [[...], ...]}")
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

func grow(s []float64, n int) []float64 {
	if cap(s) >= n {
		return s[:n]
	}
	out := make([]float64, n, max(n, 2*cap(s)))
	copy(out, s)
	return out
}

func listFeatures(fs []string) string {
	const maxShown = 12
	if len(fs) <= maxShown {
		return strings.Join(fs, ", ")
	}
	return strings.Join(fs[:maxShown], ", ") + fmt.Sprintf(", ... (%d in all)", len(fs))
}
