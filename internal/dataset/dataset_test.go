package dataset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustFrame(t *testing.T, s string) *Frame {
	t.Helper()
	f, err := readString(t, s)
	require.NoError(t, err)
	return f
}

// csvWithTarget builds a CSV with features a, b and the given target
// values (one row each).
func csvWithTarget(targets ...string) string {
	var b strings.Builder
	b.WriteString("a,b,y\n")
	for i, y := range targets {
		b.WriteString(strconv.Itoa(i) + "," + strconv.Itoa(i*2) + "," + y + "\n")
	}
	return b.String()
}

func TestParseTask(t *testing.T) {
	tests := []struct {
		in      string
		want    Task
		wantErr string
	}{
		{"binary", Binary, ""},
		{"multiclass", Multiclass, ""},
		{"regression", Regression, ""},
		{" Binary ", Binary, ""},
		{"REGRESSION", Regression, ""},
		{"", "", ""},
		{"auto", "", ""},
		{"classification", "", `unknown task "classification" (want binary, multiclass, regression or auto)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTask(tt.in)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestBuildTargets(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		spec    Spec
		task    Task
		classes []string
		y       []float64
	}{
		{"infer binary 0/1", []string{"0", "1", "1", "0", "1"}, Spec{}, Binary, []string{"0", "1"}, []float64{0, 1, 1, 0, 1}},
		{"infer binary -1/1", []string{"1", "-1", "1", "-1", "1"}, Spec{}, Binary, []string{"-1", "1"}, []float64{1, 0, 1, 0, 1}},
		{"infer binary non-integer", []string{"0.5", "2.5", "0.5", "2.5", "0.5"}, Spec{}, Binary, []string{"0.5", "2.5"}, []float64{0, 1, 0, 1, 0}},
		{"infer multiclass", []string{"2", "0", "1", "2", "7"}, Spec{}, Multiclass, []string{"0", "1", "2", "7"}, []float64{2, 0, 1, 2, 3}},
		{"integer floats are integers", []string{"1.0", "2.0", "3.0", "1.0", "3.0"}, Spec{}, Multiclass, []string{"1", "2", "3"}, []float64{0, 1, 2, 0, 2}},
		{"negative zero is zero", []string{"-0", "0", "1", "2", "0"}, Spec{}, Multiclass, []string{"0", "1", "2"}, []float64{0, 0, 1, 2, 0}},
		{"infer regression non-integer", []string{"1.5", "2", "3", "4", "5"}, Spec{}, Regression, nil, []float64{1.5, 2, 3, 4, 5}},
		{"explicit regression with two values", []string{"0", "1", "1", "0", "1"}, Spec{Task: Regression}, Regression, nil, []float64{0, 1, 1, 0, 1}},
		{"explicit multiclass with two values", []string{"3", "5", "3", "5", "3"}, Spec{Task: Multiclass}, Multiclass, []string{"3", "5"}, []float64{0, 1, 0, 1, 0}},
		{"explicit binary", []string{"3", "5", "3", "5", "3"}, Spec{Task: Binary}, Binary, []string{"3", "5"}, []float64{0, 1, 0, 1, 0}},
		{"binarize >0", []string{"0", "1", "4", "0", "2"}, Spec{Binarize: ">0"}, Binary, []string{"0", "1"}, []float64{0, 1, 1, 0, 1}},
		{"binarize >=2 with spaces", []string{"0", "1", "4", "0", "2"}, Spec{Binarize: " >= 2 "}, Binary, []string{"0", "1"}, []float64{0, 0, 1, 0, 1}},
		{"binarize <", []string{"0", "1", "4", "0", "2"}, Spec{Binarize: "<1"}, Binary, []string{"0", "1"}, []float64{1, 0, 0, 1, 0}},
		{"binarize <=", []string{"0", "1", "4", "0", "2"}, Spec{Binarize: "<=1.5"}, Binary, []string{"0", "1"}, []float64{1, 1, 0, 1, 0}},
		{"binarize ==", []string{"0", "1", "4", "0", "2"}, Spec{Binarize: "==4"}, Binary, []string{"0", "1"}, []float64{0, 0, 1, 0, 0}},
		{"binarize !=", []string{"0", "1", "4", "0", "2"}, Spec{Binarize: "!=0"}, Binary, []string{"0", "1"}, []float64{0, 1, 1, 0, 1}},
		{"binarize with explicit binary", []string{"0.1", "0.9", "0.4", "0.6", "0.5"}, Spec{Binarize: ">0.5", Task: Binary}, Binary, []string{"0", "1"}, []float64{0, 1, 0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFrame(t, csvWithTarget(tt.targets...))
			spec := tt.spec
			spec.Target = "y"
			d, err := Build(f, spec)
			require.NoError(t, err)
			assert.Equal(t, tt.task, d.Task)
			assert.Equal(t, tt.classes, d.Classes)
			assert.Equal(t, len(tt.classes), d.NumClasses())
			assert.Equal(t, tt.y, d.Y)
			assert.Equal(t, "y", d.Target)
			assert.Equal(t, []string{"a", "b"}, d.Features)
			assert.Equal(t, []int{2, 3, 4, 5, 6}, d.Lines)
			assert.Equal(t, f.SHA256, d.SHA256)
		})
	}
}

func TestBuildInferenceLimits(t *testing.T) {
	seq := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strconv.Itoa(i)
		}
		return out
	}
	t.Run("20 integer classes are multiclass", func(t *testing.T) {
		d, err := Build(mustFrame(t, csvWithTarget(seq(20)...)), Spec{Target: "y"})
		require.NoError(t, err)
		assert.Equal(t, Multiclass, d.Task)
		assert.Len(t, d.Classes, 20)
		// numeric, not lexical, class order
		assert.Equal(t, "10", d.Classes[10])
	})
	t.Run("21 integer values are regression", func(t *testing.T) {
		d, err := Build(mustFrame(t, csvWithTarget(seq(21)...)), Spec{Target: "y"})
		require.NoError(t, err)
		assert.Equal(t, Regression, d.Task)
		assert.Nil(t, d.Classes)
	})
	t.Run("explicit multiclass beyond 20", func(t *testing.T) {
		d, err := Build(mustFrame(t, csvWithTarget(seq(25)...)), Spec{Target: "y", Task: Multiclass})
		require.NoError(t, err)
		assert.Len(t, d.Classes, 25)
	})
}

func TestBuildFeatures(t *testing.T) {
	const in = "id,a,b,c,y\n" +
		"1,1,?,3,0\n" +
		"2,4,5,,1\n" +
		"3,7,8,9,0\n" +
		"4,NA,11,12,1\n" +
		"5,13,14,15,0\n"
	tests := []struct {
		name      string
		spec      Spec
		features  []string
		x0        []float64
		missing   int
		missingBy map[string]int
	}{
		{"all but target", Spec{Target: "y"}, []string{"id", "a", "b", "c"}, []float64{1, 1, nan, 3}, 3, map[string]int{"a": 1, "b": 1, "c": 1}},
		{"drop", Spec{Target: "y", Drop: []string{"id", "b"}}, []string{"a", "c"}, []float64{1, 3}, 2, map[string]int{"a": 1, "c": 1}},
		{"explicit order", Spec{Target: "y", Features: []string{"c", "a"}}, []string{"c", "a"}, []float64{3, 1}, 2, map[string]int{"a": 1, "c": 1}},
		{"explicit with drop of other column", Spec{Target: "y", Features: []string{"c"}, Drop: []string{"id"}}, []string{"c"}, []float64{3}, 1, map[string]int{"c": 1}},
		{"no missing", Spec{Target: "y", Features: []string{"id"}}, []string{"id"}, []float64{1}, 0, map[string]int{}},
		{"target in the middle", Spec{Target: "id", Features: []string{"y", "c"}}, []string{"y", "c"}, []float64{0, 3}, 1, map[string]int{"c": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFrame(t, in)
			d, err := Build(f, tt.spec)
			require.NoError(t, err)
			assert.Equal(t, tt.features, d.Features)
			require.Len(t, d.X, 5)
			for _, row := range d.X {
				assert.Len(t, row, len(tt.features))
			}
			assertRows(t, [][]float64{tt.x0}, d.X[:1])
			assert.Equal(t, tt.missing, d.Missing)
			assert.Equal(t, tt.missingBy, d.MissingBy)
		})
	}
	t.Run("columns empty in every row are left out", func(t *testing.T) {
		const in = "e1,a,e2,b,y\n" +
			",1,NA,2,0\n" +
			"?,3,,4,1\n" +
			",5,,6,0\n" +
			",7,,8,1\n" +
			",9,,,0\n"
		d, err := Build(mustFrame(t, in), Spec{Target: "y"})
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b"}, d.Features)
		assert.Equal(t, []string{"e1", "e2"}, d.Empty)
		assertRows(t, [][]float64{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, nan}}, d.X)
		assert.Equal(t, 1, d.Missing, "the empty columns are not imputed")
		assert.Equal(t, map[string]int{"b": 1}, d.MissingBy)

		d, err = Build(mustFrame(t, in), Spec{Target: "y", Drop: []string{"e1"}})
		require.NoError(t, err)
		assert.Equal(t, []string{"e2"}, d.Empty, "a dropped column is not reported again")
	})
	t.Run("rows do not alias the frame", func(t *testing.T) {
		f := mustFrame(t, in)
		d, err := Build(f, Spec{Target: "y"})
		require.NoError(t, err)
		d.X[0][0] = 99
		d.Lines[0] = 99
		assert.Equal(t, 1.0, f.Rows[0][0])
		assert.Equal(t, 2, f.Lines[0])
		// appending to one row must not overwrite the next
		_ = append(d.X[0], 42)
		assert.Equal(t, 2.0, d.X[1][0])
	})
}

func TestBuildErrors(t *testing.T) {
	const base = "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,2\n"
	manyCols := "c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12,c13,c14\n" +
		strings.Repeat("0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n", 5)
	tests := []struct {
		name   string
		csv    string
		spec   Spec
		line   int
		column string
		msg    string
	}{
		{"no target", base, Spec{}, 0, "", `reading dataset "t.csv": no target column given; columns: a, b, y`},
		{"unknown target", base, Spec{Target: "label"}, 0, "", `reading dataset "t.csv": target column "label" not found; columns: a, b, y`},
		{"column list truncated", manyCols, Spec{Target: "x"}, 0, "", `reading dataset "t.csv": target column "x" not found; columns: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, ... (3 more)`},
		{"unknown drop", base, Spec{Target: "y", Drop: []string{"z"}}, 0, "", `reading dataset "t.csv": drop column "z" not found; columns: a, b, y`},
		{"target dropped", base, Spec{Target: "y", Drop: []string{"y"}}, 0, "y", `reading dataset "t.csv": column "y": the target is also listed in drop`},
		{"unknown feature", base, Spec{Target: "y", Features: []string{"a", "q"}}, 0, "", `reading dataset "t.csv": feature column "q" not found; columns: a, b, y`},
		{"target as feature", base, Spec{Target: "y", Features: []string{"a", "y"}}, 0, "y", `reading dataset "t.csv": column "y": the target is also listed as a feature`},
		{"feature dropped", base, Spec{Target: "y", Features: []string{"a"}, Drop: []string{"a"}}, 0, "a", `reading dataset "t.csv": column "a": column is listed both as a feature and in drop`},
		{"feature twice", base, Spec{Target: "y", Features: []string{"a", "a"}}, 0, "a", `reading dataset "t.csv": column "a": feature listed twice`},
		{"no features left", base, Spec{Target: "y", Drop: []string{"a", "b"}}, 0, "", `reading dataset "t.csv": no feature columns left (target "y", 2 dropped)`},
		{"too few rows", "a,y\n1,0\n2,1\n3,0\n4,1\n", Spec{Target: "y"}, 0, "", `reading dataset "t.csv": need at least 5 rows, have 4`},
		{"empty feature asked for", "a,e,y\n1,,0\n2,,1\n3,,0\n4,,1\n5,,0\n", Spec{Target: "y", Features: []string{"a", "e"}}, 0, "e",
			`reading dataset "t.csv": column "e": is empty in every row (5 rows), so it cannot be a feature; remove it from the features`},
		{"only empty features", "e,f,y\n,,0\n,,1\n,,0\n,,1\n,,0\n", Spec{Target: "y"}, 0, "",
			`reading dataset "t.csv": no feature columns left (target "y", 0 dropped, 2 empty in every row: e, f)`},
		{"empty target", "a,y\n1,\n2,\n3,NA\n4,\n5,\n", Spec{Target: "y"}, 0, "y", `reading dataset "t.csv": column "y": the target column is empty in every row (5 rows)`},
		{"missing target", "a,y\n1,0\n2,1\n3,?\n4,1\n5,0\n", Spec{Target: "y"}, 4, "y", `reading dataset "t.csv": line 4, column "y": target value is missing`},
		{"constant target", "a,y\n1,3\n2,3\n3,3\n4,3\n5,3\n", Spec{Target: "y"}, 0, "y", `reading dataset "t.csv": column "y": target is constant (every row is 3)`},
		{"binary with three values", base, Spec{Target: "y", Task: Binary}, 0, "y", `reading dataset "t.csv": column "y": binary task needs exactly 2 distinct target values, have 3 (0, 1, 2); set binarize to split them`},
		{"multiclass non-integer", "a,y\n1,0.5\n2,1\n3,2\n4,1\n5,0\n", Spec{Target: "y", Task: Multiclass}, 0, "y", `reading dataset "t.csv": column "y": multiclass task needs integer target values, have 0, 0.5, 1, 2`},
		{"binarize without op", base, Spec{Target: "y", Binarize: "1"}, 0, "y", `reading dataset "t.csv": column "y": bad binarize expression "1": want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>`},
		{"binarize without number", base, Spec{Target: "y", Binarize: ">"}, 0, "y", `reading dataset "t.csv": column "y": bad binarize expression ">": want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>`},
		{"binarize bad op", base, Spec{Target: "y", Binarize: "=>1"}, 0, "y", `reading dataset "t.csv": column "y": bad binarize expression "=>1": want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>`},
		{"binarize bad number", base, Spec{Target: "y", Binarize: ">one"}, 0, "y", `reading dataset "t.csv": column "y": bad binarize expression ">one": > compares numbers and "one" is not one; a label is compared with == or != only`},
		{"binarize inf", base, Spec{Target: "y", Binarize: "<inf"}, 0, "y", `reading dataset "t.csv": column "y": bad binarize expression "<inf": want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>`},
		{"binarize one class", base, Spec{Target: "y", Binarize: ">5"}, 0, "y", `reading dataset "t.csv": column "y": binarize ">5" puts every row in one class (0 of 5 rows positive)`},
		{"binarize with regression", base, Spec{Target: "y", Binarize: ">0", Task: Regression}, 0, "y", `reading dataset "t.csv": column "y": binarize ">0" needs a binary task, not regression`},
		{"unknown task", base, Spec{Target: "y", Task: "Binary"}, 0, "", `reading dataset "t.csv": unknown task "Binary" (want binary, multiclass or regression)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Build(mustFrame(t, tt.csv), tt.spec)
			require.Error(t, err)
			assert.Nil(t, d)
			var de *Error
			require.True(t, errors.As(err, &de))
			assert.Equal(t, tt.line, de.Line)
			assert.Equal(t, tt.column, de.Column)
			assert.Equal(t, tt.msg, err.Error())
		})
	}
	t.Run("nil frame", func(t *testing.T) {
		_, err := Build(nil, Spec{Target: "y"})
		require.EqualError(t, err, "reading dataset: no frame")
	})
	t.Run("line numbers do not match rows", func(t *testing.T) {
		f := mustFrame(t, base)
		f.Lines = f.Lines[:3]
		_, err := Build(f, Spec{Target: "y"})
		require.EqualError(t, err, `reading dataset "t.csv": frame has 5 rows but 3 line numbers`)
	})
	t.Run("ragged hand-made frame", func(t *testing.T) {
		f := mustFrame(t, base)
		f.Rows[2] = f.Rows[2][:2]
		_, err := Build(f, Spec{Target: "a"})
		require.EqualError(t, err, `reading dataset "t.csv": line 4: row has 2 cells, want 3`)
	})
}

func TestBuildHandMadeFrame(t *testing.T) {
	f := &Frame{
		Header: []string{"x", "y"},
		Rows:   [][]float64{{1, 0}, {2, 1}, {3, 0}, {4, 1}, {5, nan}},
	}
	_, err := Build(f, Spec{Target: "y"})
	require.EqualError(t, err, `reading dataset: line 6, column "y": target value is missing`)

	f.Rows[4][1] = 1
	d, err := Build(f, Spec{Target: "y"})
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3, 4, 5, 6}, d.Lines)
	assert.Equal(t, Binary, d.Task)
}

func TestBuildRealData(t *testing.T) {
	t.Run("heart multiclass", func(t *testing.T) {
		f := readReal(t, heartPath)
		d, err := Build(f, Spec{Target: "target"})
		require.NoError(t, err)
		assert.Equal(t, Multiclass, d.Task)
		assert.Equal(t, []string{"0", "1", "2", "3", "4"}, d.Classes)
		assert.Len(t, d.Features, 13)
		assert.NotContains(t, d.Features, "target")
		require.Len(t, d.X, 303)
		assert.Equal(t, 6, d.Missing)
		assert.Equal(t, map[string]int{"ca": 4, "thal": 2}, d.MissingBy)
		counts := make([]int, 5)
		for _, y := range d.Y {
			counts[int(y)]++
		}
		assert.Equal(t, []int{164, 55, 36, 35, 13}, counts)
	})
	t.Run("heart binarized", func(t *testing.T) {
		f := readReal(t, heartPath)
		d, err := Build(f, Spec{Target: "target", Binarize: ">0"})
		require.NoError(t, err)
		assert.Equal(t, Binary, d.Task)
		assert.Equal(t, []string{"0", "1"}, d.Classes)
		pos := 0
		for _, y := range d.Y {
			pos += int(y)
		}
		assert.Equal(t, 139, pos)
	})
	t.Run("digits", func(t *testing.T) {
		f := readReal(t, digitsPath)
		d, err := Build(f, Spec{Target: "label"})
		require.NoError(t, err)
		assert.Equal(t, Multiclass, d.Task)
		assert.Equal(t, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, d.Classes)
		assert.Len(t, d.Features, 64)
		assert.Equal(t, 0, d.Missing)
		assert.Empty(t, d.MissingBy)
		require.Len(t, d.Y, 1797)
	})
}

// TestBuildReuseFrame: with ReuseFrame, Build gives the same dataset as
// without it (features in another order than the file's, a text feature,
// missing cells), holding X in the frame's rows.
func TestBuildReuseFrame(t *testing.T) {
	csv := "a,b,city,target\n1,2,paris,0\n?,4,rome,1\n5,6,,0\n7,8,paris,1\n9,10,rome,0\n11,12,oslo,1\n"
	for _, spec := range []Spec{
		{Target: "target"},
		{Target: "target", Features: []string{"city", "b", "a"}},
		{Target: "b", Drop: []string{"city"}, Features: []string{"target", "a"}, Task: Regression},
	} {
		f1, err := ReadCSVFrom("x.csv", strings.NewReader(csv))
		require.NoError(t, err)
		want, err := Build(f1, spec)
		require.NoError(t, err)
		f2, err := ReadCSVFrom("x.csv", strings.NewReader(csv))
		require.NoError(t, err)
		spec.ReuseFrame = true
		got, err := Build(f2, spec)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(want.X), fmt.Sprint(got.X), "%+v", spec)
		require.True(t, &got.X[0] == &f2.Rows[0], "X is not the frame's rows")
		want.X, got.X = nil, nil
		require.Equal(t, want, got)
	}
}
