package dataset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Frame is a CSV file read as numbers: one float64 per cell, NaN for a
// missing cell.
type Frame struct {
	Path   string      // as given
	Header []string    // column names, trimmed, unique and non-empty
	Rows   [][]float64 // NaN for a missing cell; every row has len(Header) cells
	Lines  []int       // 1-based line number in the file of each row (header is line 1)
	SHA256 string      // hex sha256 of the file bytes
}

// IsMissing reports whether a cell value (before trimming) is a missing
// marker: "", "?", "NA", "NaN", "nan", "N/A", "null" or "NULL".
func IsMissing(cell string) bool {
	switch strings.TrimSpace(cell) {
	case "", "?", "NA", "NaN", "nan", "N/A", "null", "NULL":
		return true
	}
	return false
}

// ReadCSV reads the CSV file at path. See ReadCSVFrom.
func ReadCSV(path string) (*Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	defer f.Close()
	return ReadCSVFrom(path, f)
}

// utf8BOM is stripped from the start of the input.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ReadCSVFrom reads a CSV stream with a header line and numeric cells; name
// is used as Frame.Path and in errors. A UTF-8 byte order mark is stripped,
// CRLF line ends and quoted fields are accepted, blank lines are skipped,
// and whitespace around numbers is ignored. Missing markers (see IsMissing)
// become NaN. Every error is an *Error naming the line and column.
func ReadCSVFrom(name string, r io.Reader) (*Frame, error) {
	h := sha256.New()
	var last lastLine
	br := bufio.NewReaderSize(io.TeeReader(r, io.MultiWriter(h, &last)), 64<<10)
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
		last.bom = len(utf8BOM)
	}

	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // ragged rows get our own, clearer error
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true

	fail := func(line int, column, msg string, err error) (*Frame, error) {
		return nil, &Error{File: name, Line: line, Column: column, Msg: msg, Err: err}
	}
	readErr := func(err error) (*Frame, error) {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return fail(0, "", "", err)
		}
		if errors.Is(pe.Err, csv.ErrQuote) && pe.StartLine > 0 {
			// For a quote that is never closed the reader reports the end of
			// the file (a column just past the last line), however far from
			// where the quote opened: name the row it opened in instead.
			if _, err := br.Peek(1); err == io.EOF && pe.Column > last.len() {
				return fail(pe.StartLine, "", fmt.Sprintf("a quoted field in the row starting on this line has no closing quote (the file ends at line %d)", pe.Line), nil)
			}
			if pe.StartLine != pe.Line {
				return fail(pe.Line, "", fmt.Sprintf("column %d, in a quoted field of the row starting on line %d", pe.Column, pe.StartLine), pe.Err)
			}
		}
		return fail(pe.Line, "", "", pe.Err)
	}

	// Header: the first record that is not blank.
	var rec []string
	for {
		var err error
		rec, err = cr.Read()
		if err == io.EOF {
			return fail(0, "", "file is empty", nil)
		}
		if err != nil {
			return readErr(err)
		}
		if !isBlank(rec) {
			break
		}
	}
	headerLine, _ := cr.FieldPos(0)
	header := make([]string, len(rec))
	seen := make(map[string]int, len(rec))
	for i, c := range rec {
		c = strings.TrimSpace(c)
		if c == "" {
			return fail(headerLine, "", fmt.Sprintf("column %d has an empty name", i+1), nil)
		}
		if j, dup := seen[c]; dup {
			return fail(headerLine, c, fmt.Sprintf("duplicate column name (columns %d and %d)", j+1, i+1), nil)
		}
		seen[c] = i
		header[i] = c
	}
	ncol := len(header)

	fr := &Frame{Path: name, Header: header}
	var block []float64 // backing store for rows, allocated in chunks
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return readErr(err)
		}
		if isBlank(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != ncol {
			return fail(line, "", fmt.Sprintf("has %d %s, want %d (one per header column)", len(rec), plural(len(rec), "field"), ncol), nil)
		}
		if len(block) < ncol {
			block = make([]float64, ncol*chunkRows(len(fr.Rows), ncol))
		}
		row := block[:ncol:ncol]
		block = block[ncol:]
		for j, cell := range rec {
			v, msg := parseCell(cell)
			if msg != "" {
				l, _ := cr.FieldPos(j)
				return fail(l, header[j], msg, nil)
			}
			row[j] = v
		}
		fr.Rows = append(fr.Rows, row)
		fr.Lines = append(fr.Lines, line)
	}
	if len(fr.Rows) == 0 {
		return fail(0, "", "file has a header but no data rows", nil)
	}
	// The csv reader stops at EOF, so everything went through the hash;
	// drain anyway in case a reader returned EOF early with data pending.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return fail(0, "", "", err)
	}
	fr.SHA256 = hex.EncodeToString(h.Sum(nil))
	return fr, nil
}

// lastLine measures the last line written to it: its length in bytes
// without the newline (a carriage return counts) and without a stripped
// byte order mark.
type lastLine struct {
	cur, prev int // bytes since the last newline; length of the line before it
	newlines  int
	bom       int // bytes of a byte order mark at the start, not counted
}

func (l *lastLine) Write(p []byte) (int, error) {
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.cur += len(p)
			return n, nil
		}
		l.prev, l.cur = l.cur+i, 0
		l.newlines++
		p = p[i+1:]
	}
}

// len is the length of the last line; a final newline ends it.
func (l *lastLine) len() int {
	n, first := l.cur, l.newlines == 0
	if l.cur == 0 && l.newlines > 0 {
		n, first = l.prev, l.newlines == 1
	}
	if first {
		n -= l.bom
	}
	return n
}

// chunkRows says how many rows the next backing chunk holds: it doubles
// with the rows read so far, between 16 rows and about 64K cells.
func chunkRows(have, ncol int) int {
	n := max(have, 16)
	if limit := max((64<<10)/ncol, 1); n > limit {
		n = limit
	}
	return n
}

// isBlank reports whether a record is an empty or whitespace-only line.
func isBlank(rec []string) bool {
	return len(rec) == 0 || len(rec) == 1 && strings.TrimSpace(rec[0]) == ""
}

// parseCell parses one cell; msg is non-empty when the cell is invalid.
func parseCell(cell string) (v float64, msg string) {
	s := strings.TrimSpace(cell)
	if IsMissing(s) {
		return math.NaN(), ""
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case math.IsInf(v, 0):
		return 0, quoteCell(s) + " is not a finite number"
	case err != nil:
		// ErrRange with a finite value is an underflow to 0 or a
		// subnormal, which is a fine number.
		if !errors.Is(err, strconv.ErrRange) {
			return 0, quoteCell(s) + " is not a number"
		}
	}
	// Other NaN spellings ("NAN", "nAn") are missing too.
	return v, ""
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
