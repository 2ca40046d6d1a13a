package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
)

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n3,4\n",
		"\ufeffa,b\r\n1,2\r\n",
		"\"a\",\"b, c\"\n\"1.5\",\" 2 \"\n",
		"a,b,c\n?,NA,\n1,nan,NULL\n\n\n",
		"a\n1e999\n",
		"a,b\n1\n",
		"a,a\n1,2\n",
		"a,,b\n1,2,3\n",
		"a,b\n1,2\"x\n",
		"a,b\n1,\"2\n",
		"a,b\n",
		"",
		"\ufeff",
		"\"a\nb\",c\n1,2\n",
		"x,y\n0x1p-2,-Infinity\n",
		"a\n1e-400\n",
		"a,b\n1,2\n3,\"4\n5,6\n7,8\n",
		"\ufeff\"a,b\r\n1,2\r\n",
		"a,b\n1,2\n3,\"4\n5\"x,6\n",
		"a,b\n1,\"2\"x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ReadCSVFrom("fuzz.csv", bytes.NewReader(data))
		if err != nil {
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("error is %T, want *Error: %v", err, err)
			}
			if fr != nil {
				t.Fatalf("frame and error both returned")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, `reading dataset "fuzz.csv"`) || strings.Contains(msg, "\n") {
				t.Fatalf("bad error message %q", msg)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; de.Line < 0 || de.Line > lines {
				t.Fatalf("error on line %d of %d: %v", de.Line, lines, err)
			}
			return
		}
		if len(fr.Header) == 0 || len(fr.Rows) == 0 || len(fr.Rows) != len(fr.Lines) {
			t.Fatalf("header %d, rows %d, lines %d", len(fr.Header), len(fr.Rows), len(fr.Lines))
		}
		seen := map[string]bool{}
		for _, h := range fr.Header {
			if h == "" || h != strings.TrimSpace(h) || seen[h] {
				t.Fatalf("bad header name %q in %q", h, fr.Header)
			}
			seen[h] = true
		}
		prev := 1
		for i, row := range fr.Rows {
			if len(row) != len(fr.Header) {
				t.Fatalf("row %d has %d cells, header %d", i, len(row), len(fr.Header))
			}
			for _, v := range row {
				if math.IsInf(v, 0) {
					t.Fatalf("row %d has Inf", i)
				}
			}
			if fr.Lines[i] <= prev {
				t.Fatalf("line numbers not increasing: %v", fr.Lines)
			}
			prev = fr.Lines[i]
		}
		sum := sha256.Sum256(data)
		if fr.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("sha256 mismatch")
		}
	})
}
