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
	"strings"

	"github.com/mlship/mlship/internal/category"
)

// Frame is a CSV file read as numbers and text: one float64 per cell of a
// column of numbers, NaN for a missing cell, and the cells of the text
// columns as text.
type Frame struct {
	Path   string   // as given
	Header []string // column names, trimmed, unique and non-empty
	// Rows holds one float64 per cell: NaN for a missing cell, and for every
	// cell of a text column (see Text). Every row has len(Header) cells.
	Rows [][]float64
	// Text holds the text columns: those with a cell that is neither a number
	// (true and false count as 1 and 0) nor a missing marker. Text[j] is nil
	// for a column of numbers; for a text column Text[j][i] is the cell of row
	// i as category.Canon reads it ("" when missing; a number as its shortest
	// text). Text is nil when no column is text.
	Text [][]string
	// TextInfo says, for each text column (indexed like Header), where its
	// first text cell is and how many of its cells are numbers.
	TextInfo []TextInfo
	Lines    []int  // 1-based line number in the file of each row (header is line 1)
	SHA256   string // hex sha256 of the file bytes
}

// TextInfo describes a text column of a Frame, for messages.
type TextInfo struct {
	Line    int    // the line of its first text cell
	Cell    string // that cell, trimmed
	Texts   int    // cells that are text
	Numbers int    // cells that are numbers
}

// IsText reports whether column j is a text column.
func (f *Frame) IsText(j int) bool { return j < len(f.Text) && f.Text[j] != nil }

// IsMissing reports whether a cell value (before trimming) is a missing
// marker: "", "?", "NA", "NaN", "nan", "N/A", "null" or "NULL".
func IsMissing(cell string) bool { return category.IsMissing(cell) }

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

// ReadCSVFrom reads a CSV stream with a header line; name is used as
// Frame.Path and in errors. A UTF-8 byte order mark is stripped, CRLF line
// ends and quoted fields are accepted, blank lines are skipped, and
// whitespace around cells is ignored. Missing markers (see IsMissing) become
// NaN, true and false (any case) 1 and 0. A column with a cell that is
// neither a number nor missing is a text column (Frame.Text), whatever its
// other cells hold. An infinite or overflowing number is an error in any
// column. Every error is an *Error naming the line and column.
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
	var block []float64            // backing store for rows, allocated in chunks
	var intern []map[string]string // per text column: one copy of each cell text
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
			v, kind := category.Parse(cell)
			if kind == category.Infinite {
				l, _ := cr.FieldPos(j)
				return fail(l, header[j], quoteCell(strings.TrimSpace(cell))+" is not a finite number", nil)
			}
			if kind == category.Text && !fr.IsText(j) {
				if fr.Text == nil {
					fr.Text = make([][]string, ncol)
					fr.TextInfo = make([]TextInfo, ncol)
					intern = make([]map[string]string, ncol)
				}
				intern[j] = map[string]string{}
				fr.toText(j, intern[j])
				l, _ := cr.FieldPos(j)
				fr.TextInfo[j].Line, fr.TextInfo[j].Cell = l, strings.TrimSpace(cell)
			}
			if !fr.IsText(j) {
				row[j] = v
				continue
			}
			row[j] = math.NaN()
			var t string
			switch kind {
			case category.Number:
				t = internString(intern[j], category.FormatNumber(v))
				fr.TextInfo[j].Numbers++
			case category.Text:
				t = internString(intern[j], strings.TrimSpace(cell))
				fr.TextInfo[j].Texts++
			}
			fr.Text[j] = append(fr.Text[j], t)
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

// toText makes column j, so far numbers, a text column: the cells of the rows
// read so far become text (a number its shortest text, category.Canon's) and
// their numbers NaN.
func (f *Frame) toText(j int, intern map[string]string) {
	col := make([]string, len(f.Rows), max(2*len(f.Rows), 16))
	for i, r := range f.Rows {
		if v := r[j]; !math.IsNaN(v) {
			col[i] = internString(intern, category.FormatNumber(v))
			f.TextInfo[j].Numbers++
		}
		r[j] = math.NaN()
	}
	f.Text[j] = col
}

// internString returns the one copy of s kept in m: a column of a few
// categories holds a few strings, not one per row (nor the csv reader's
// line buffers, which its fields point into).
func internString(m map[string]string, s string) string {
	if t, ok := m[s]; ok {
		return t
	}
	t := strings.Clone(s)
	m[t] = t
	return t
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
