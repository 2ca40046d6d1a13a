package dataset

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	heartPath  = "../../../shared/data/heart-disease/heart.csv"
	digitsPath = "../../../shared/data/digits/digits.csv"
)

// nan marks an expected missing cell in test tables.
var nan = math.NaN()

func readString(t *testing.T, s string) (*Frame, error) {
	t.Helper()
	return ReadCSVFrom("t.csv", strings.NewReader(s))
}

// assertRows compares rows cell by cell, treating NaN as equal to NaN.
func assertRows(t *testing.T, want, got [][]float64) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]), "row %d", i)
		for j := range want[i] {
			if math.IsNaN(want[i][j]) {
				assert.True(t, math.IsNaN(got[i][j]), "row %d col %d: want NaN, got %v", i, j, got[i][j])
			} else {
				assert.Equal(t, want[i][j], got[i][j], "row %d col %d", i, j)
			}
		}
	}
}

func TestReadCSVFromValid(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		header []string
		rows   [][]float64
		lines  []int
	}{
		{"basic", "a,b\n1,2\n3,4\n", []string{"a", "b"}, [][]float64{{1, 2}, {3, 4}}, []int{2, 3}},
		{"no final newline", "a,b\n1,2\n3,4", []string{"a", "b"}, [][]float64{{1, 2}, {3, 4}}, []int{2, 3}},
		{"bom", "\ufeffa,b\n1,2\n", []string{"a", "b"}, [][]float64{{1, 2}}, []int{2}},
		{"crlf", "a,b\r\n1,2\r\n3,4\r\n", []string{"a", "b"}, [][]float64{{1, 2}, {3, 4}}, []int{2, 3}},
		{"bom and crlf", "\ufeffa,b\r\n1,2\r\n", []string{"a", "b"}, [][]float64{{1, 2}}, []int{2}},
		{"quoted fields", "\"a\",\"b, c\"\n\"1.5\",\" 2 \"\n", []string{"a", "b, c"}, [][]float64{{1.5, 2}}, []int{2}},
		{"quoted header across lines", "\"a\nb\",c\n1,2\n", []string{"a\nb", "c"}, [][]float64{{1, 2}}, []int{3}},
		{"trailing blank lines", "a,b\n1,2\n\n\n  \n\t\n", []string{"a", "b"}, [][]float64{{1, 2}}, []int{2}},
		{"trailing blank crlf lines", "a,b\r\n1,2\r\n\r\n\r\n", []string{"a", "b"}, [][]float64{{1, 2}}, []int{2}},
		{"blank line between rows", "a,b\n1,2\n\n3,4\n", []string{"a", "b"}, [][]float64{{1, 2}, {3, 4}}, []int{2, 4}},
		{"blank lines before header", "\n\n a , b \n1,2\n", []string{"a", "b"}, [][]float64{{1, 2}}, []int{4}},
		{"whitespace around numbers", "a , b\n  1 ,\t2  \n", []string{"a", "b"}, [][]float64{{1, 2}}, []int{2}},
		{"number forms", "a,b,c,d,e\n1e3,-2.5,+3,.5,0x1p-2\n", []string{"a", "b", "c", "d", "e"}, [][]float64{{1000, -2.5, 3, 0.5, 0.25}}, []int{2}},
		{"underflow is zero", "a\n1e-400\n", []string{"a"}, [][]float64{{0}}, []int{2}},
		{"single column", "a\n1\n2\n", []string{"a"}, [][]float64{{1}, {2}}, []int{2, 3}},
		{
			"missing markers",
			"a,b,c,d,e,f,g,h,i,j\n,?,NA,NaN,nan,N/A,null,NULL, , ? \n1,2,3,4,5,6,7,8,9,10\n",
			[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"},
			[][]float64{{nan, nan, nan, nan, nan, nan, nan, nan, nan, nan}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			[]int{2, 3},
		},
		{"all-missing row is kept", "a,b\n,\n1,2\n", []string{"a", "b"}, [][]float64{{nan, nan}, {1, 2}}, []int{2, 3}},
		{"other nan spelling is missing", "a\nNAN\n", []string{"a"}, [][]float64{{nan}}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := readString(t, tt.in)
			require.NoError(t, err)
			assert.Equal(t, "t.csv", f.Path)
			assert.Equal(t, tt.header, f.Header)
			assertRows(t, tt.rows, f.Rows)
			assert.Equal(t, tt.lines, f.Lines)
			sum := sha256.Sum256([]byte(tt.in))
			assert.Equal(t, hex.EncodeToString(sum[:]), f.SHA256, "sha256 covers the raw bytes, BOM included")
		})
	}
}

func TestReadCSVFromErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		line    int
		column  string
		msg     string // exact Error() text
		wantErr error  // optional errors.Is target
	}{
		{"empty", "", 0, "", `reading dataset "t.csv": file is empty`, nil},
		{"only bom", "\ufeff", 0, "", `reading dataset "t.csv": file is empty`, nil},
		{"only blank lines", "\n  \n\r\n", 0, "", `reading dataset "t.csv": file is empty`, nil},
		{"header only", "a,b\n", 0, "", `reading dataset "t.csv": file has a header but no data rows`, nil},
		{"header and blank lines", "a,b\n\n\n", 0, "", `reading dataset "t.csv": file has a header but no data rows`, nil},
		{"duplicate column", "a,b,a\n1,2,3\n", 1, "a", `reading dataset "t.csv": line 1, column "a": duplicate column name (columns 1 and 3)`, nil},
		{"duplicate after trim", "a, a\n1,2\n", 1, "a", `reading dataset "t.csv": line 1, column "a": duplicate column name (columns 1 and 2)`, nil},
		{"empty column name", "a,,b\n1,2,3\n", 1, "", `reading dataset "t.csv": line 1: column 2 has an empty name`, nil},
		{"blank column name", "a, \n1,2\n", 1, "", `reading dataset "t.csv": line 1: column 2 has an empty name`, nil},
		{"too few fields", "a,b\n1,2\n3\n", 3, "", `reading dataset "t.csv": line 3: has 1 field, want 2 (one per header column)`, nil},
		{"too many fields", "a,b\n1,2\n3,4,5\n", 3, "", `reading dataset "t.csv": line 3: has 3 fields, want 2 (one per header column)`, nil},
		{"trailing comma", "a,b\n1,2,\n", 2, "", `reading dataset "t.csv": line 2: has 3 fields, want 2 (one per header column)`, nil},
		{"inf", "a\ninf\n", 2, "a", `reading dataset "t.csv": line 2, column "a": "inf" is not a finite number`, nil},
		{"minus infinity", "a\n-Infinity\n", 2, "a", `reading dataset "t.csv": line 2, column "a": "-Infinity" is not a finite number`, nil},
		{"overflow", "a,b\n1,2\n3,1e999\n", 3, "b", `reading dataset "t.csv": line 3, column "b": "1e999" is not a finite number`, nil},
		{"bare quote", "a,b\n1,2\"x\n", 2, "", `reading dataset "t.csv": line 2: bare " in non-quoted-field`, csv.ErrBareQuote},
		{"unterminated quote", "a,b\n1,\"2\n", 2, "", `reading dataset "t.csv": line 2: a quoted field in the row starting on this line has no closing quote (the file ends at line 2)`, nil},
		// The reader gives up at the end of the file; the quote opened on line 3.
		{"unterminated quote far from the end", "a,b\n1,2\n3,\"4\n5,6\n7,8\n9,10\n", 3, "",
			`reading dataset "t.csv": line 3: a quoted field in the row starting on this line has no closing quote (the file ends at line 6)`, nil},
		{"unterminated quote, no final newline", "a,b\n1,2\n3,\"4\n5,6\n7,8\n9,10", 3, "",
			`reading dataset "t.csv": line 3: a quoted field in the row starting on this line has no closing quote (the file ends at line 6)`, nil},
		{"unterminated quote, crlf and blank lines", "a,b\r\n1,2\r\n3,\"4\r\n5,6\r\n\r\n\n", 3, "",
			`reading dataset "t.csv": line 3: a quoted field in the row starting on this line has no closing quote (the file ends at line 6)`, nil},
		{"unterminated quote in the header", "\ufeff\"a,b\n1,2\n", 1, "",
			`reading dataset "t.csv": line 1: a quoted field in the row starting on this line has no closing quote (the file ends at line 2)`, nil},
		{"extraneous quote", "a,b\n1,\"2\"x\n3,4\n", 2, "", `reading dataset "t.csv": line 2: extraneous or missing " in quoted-field`, csv.ErrQuote},
		{"extraneous quote on the last line", "a,b\n1,\"2\"x\n", 2, "", `reading dataset "t.csv": line 2: extraneous or missing " in quoted-field`, csv.ErrQuote},
		{"extraneous quote in a field over lines", "a,b\n1,2\n3,\"4\n5\"x,6\n", 4, "",
			`reading dataset "t.csv": line 4: column 2, in a quoted field of the row starting on line 3: extraneous or missing " in quoted-field`, csv.ErrQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := readString(t, tt.in)
			require.Error(t, err)
			assert.Nil(t, f)
			var de *Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, "t.csv", de.File)
			assert.Equal(t, tt.line, de.Line)
			assert.Equal(t, tt.column, de.Column)
			assert.Equal(t, tt.msg, err.Error())
			assert.NotContains(t, err.Error(), "\n")
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

func TestReadCSVFromReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a,b\n1,2\n"), iotest.ErrReader(boom))
	_, err := ReadCSVFrom("t.csv", r)
	require.ErrorIs(t, err, boom)
	assert.Equal(t, `reading dataset "t.csv": boom`, err.Error())
}

func TestReadCSVFromSmallReads(t *testing.T) {
	// One byte at a time: BOM detection and hashing must not depend on
	// the reader returning large chunks.
	in := "\ufeffa,b\r\n1,2\r\n3,4\r\n"
	f, err := ReadCSVFrom("t.csv", iotest.OneByteReader(strings.NewReader(in)))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, f.Header)
	assertRows(t, [][]float64{{1, 2}, {3, 4}}, f.Rows)
	sum := sha256.Sum256([]byte(in))
	assert.Equal(t, hex.EncodeToString(sum[:]), f.SHA256)
}

func TestReadCSVFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	content := "x,y\n1,0\n2,1\n"
	require.NoError(t, os.WriteFile(good, []byte(content), 0o600))

	t.Run("ok", func(t *testing.T) {
		f, err := ReadCSV(good)
		require.NoError(t, err)
		assert.Equal(t, good, f.Path)
		sum := sha256.Sum256([]byte(content))
		assert.Equal(t, hex.EncodeToString(sum[:]), f.SHA256)
		assertRows(t, [][]float64{{1, 0}, {2, 1}}, f.Rows)
	})
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(dir, "nope.csv")
		_, err := ReadCSV(p)
		require.ErrorIs(t, err, fs.ErrNotExist)
		var de *Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, p, de.File)
		assert.True(t, strings.HasPrefix(err.Error(), "reading dataset "+strconv.Quote(p)+": open "), err.Error())
	})
	t.Run("directory", func(t *testing.T) {
		_, err := ReadCSV(dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "reading dataset "+strconv.Quote(dir))
	})
	t.Run("error names the file", func(t *testing.T) {
		p := filepath.Join(dir, "bad.csv")
		require.NoError(t, os.WriteFile(p, []byte("age,target\n63,0\ninf,1\n"), 0o600))
		_, err := ReadCSV(p)
		assert.EqualError(t, err, "reading dataset "+strconv.Quote(p)+`: line 3, column "age": "inf" is not a finite number`)
	})
}

func TestErrorString(t *testing.T) {
	inner := errors.New("inner")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"all", &Error{File: "h.csv", Line: 12, Column: "age", Msg: `"abc" is not a number`}, `reading dataset "h.csv": line 12, column "age": "abc" is not a number`},
		{"no line", &Error{File: "h.csv", Column: "age", Msg: "m"}, `reading dataset "h.csv": column "age": m`},
		{"no column", &Error{File: "h.csv", Line: 3, Msg: "m"}, `reading dataset "h.csv": line 3: m`},
		{"msg only", &Error{File: "h.csv", Msg: "m"}, `reading dataset "h.csv": m`},
		{"wrapped", &Error{File: "h.csv", Err: inner}, `reading dataset "h.csv": inner`},
		{"msg and wrapped", &Error{File: "h.csv", Line: 2, Msg: "m", Err: inner}, `reading dataset "h.csv": line 2: m: inner`},
		{"no file", &Error{Msg: "m"}, `reading dataset: m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
			if tt.err.Err != nil {
				assert.ErrorIs(t, tt.err, inner)
			}
		})
	}
}

func TestIsMissing(t *testing.T) {
	for _, s := range []string{"", " ", "?", " ? ", "NA", "NaN", "nan", "N/A", "null", "NULL", "\tNA\t"} {
		assert.True(t, IsMissing(s), "%q", s)
	}
	for _, s := range []string{"0", "na", "Null", "none", "-", "n/a", "??"} {
		assert.False(t, IsMissing(s), "%q", s)
	}
}

func TestReadCSVRealData(t *testing.T) {
	t.Run("heart", func(t *testing.T) {
		f := readReal(t, heartPath)
		assert.Equal(t, []string{"age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca", "thal", "target"}, f.Header)
		require.Len(t, f.Rows, 303)
		require.Len(t, f.Lines, 303)
		assert.Equal(t, 2, f.Lines[0])
		assert.Equal(t, 304, f.Lines[302])
		assertRows(t, [][]float64{{63, 1, 1, 145, 233, 1, 2, 150, 0, 2.3, 3, 0, 6, 0}}, f.Rows[:1])
		missing := map[string]int{}
		for _, row := range f.Rows {
			for j, v := range row {
				if math.IsNaN(v) {
					missing[f.Header[j]]++
				}
			}
		}
		assert.Equal(t, map[string]int{"ca": 4, "thal": 2}, missing)
		assert.Len(t, f.SHA256, 64)
	})
	t.Run("digits", func(t *testing.T) {
		f := readReal(t, digitsPath)
		require.Len(t, f.Header, 65)
		assert.Equal(t, "pixel_0", f.Header[0])
		assert.Equal(t, "label", f.Header[64])
		require.Len(t, f.Rows, 1797)
		for i, row := range f.Rows {
			require.Len(t, row, 65)
			for _, v := range row {
				require.False(t, math.IsNaN(v), "row %d", i)
			}
		}
	})
}

func readReal(t testing.TB, path string) *Frame {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("real data not available: %v", err)
	}
	f, err := ReadCSV(path)
	require.NoError(t, err)
	return f
}

func BenchmarkReadCSV(b *testing.B) {
	var sb strings.Builder
	const rows, cols = 20000, 20
	for j := range cols {
		if j > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("c" + strconv.Itoa(j))
	}
	sb.WriteByte('\n')
	for i := range rows {
		for j := range cols {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.FormatFloat(float64(i*cols+j)/7, 'g', 8, 64))
		}
		sb.WriteByte('\n')
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadCSVFrom("bench.csv", strings.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
