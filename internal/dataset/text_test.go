package dataset

import (
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Text columns: string targets, categorical features, booleans and columns
// that mix numbers and text.

func TestReadCSVText(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name string
		in   string
		rows [][]float64
		text [][]string // per column; nil for a column of numbers
		info []TextInfo // per column
	}{
		{"numbers only: no text", "a,b\n1,2\n3,4\n", [][]float64{{1, 2}, {3, 4}}, nil, nil},
		{"booleans are 1 and 0 in any case", "a,b\ntrue,FALSE\nFalse,True\n ?,tRuE\n", [][]float64{{1, 0}, {0, 1}, {nan, 1}}, nil, nil},
		{"a text column", "a,city\n1,paris\n2, london \n3,NA\n4,paris\n",
			[][]float64{{1, nan}, {2, nan}, {3, nan}, {4, nan}},
			[][]string{nil, {"paris", "london", "", "paris"}},
			[]TextInfo{{}, {Line: 2, Cell: "paris", Texts: 3}}},
		{"numbers before the first text cell become their shortest text", "a,b\n1.0,1\n-0,2\n1e3,3\nyes,4\ntrue,5\n",
			[][]float64{{nan, 1}, {nan, 2}, {nan, 3}, {nan, 4}, {nan, 5}},
			[][]string{{"1", "0", "1000", "yes", "1"}, nil},
			[]TextInfo{{Line: 5, Cell: "yes", Texts: 1, Numbers: 4}, {}}},
		{"comma decimal is text", "a,b\n\"1,5\",2\n", [][]float64{{nan, 2}}, [][]string{{"1,5"}, nil}, []TextInfo{{Line: 2, Cell: "1,5", Texts: 1}, {}}},
		{"long value kept whole", "a\n" + long + "\n", [][]float64{{nan}}, [][]string{{long}}, []TextInfo{{Line: 2, Cell: long, Texts: 1}}},
		{"newline in a quoted value", "a,b\n1,\"x\ny\"\n", [][]float64{{1, nan}}, [][]string{nil, {"x\ny"}}, []TextInfo{{}, {Line: 2, Cell: "x\ny", Texts: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFrame(t, tt.in)
			assertRows(t, tt.rows, f.Rows)
			assert.Equal(t, tt.text, f.Text)
			assert.Equal(t, tt.info, f.TextInfo)
			for j := range f.Header {
				assert.Equal(t, tt.text != nil && tt.text[j] != nil, f.IsText(j), "column %d", j)
			}
		})
	}
	t.Run("an infinite number is an error in a text column too", func(t *testing.T) {
		_, err := readString(t, "a,b\nparis,1\ninf,2\n")
		assert.EqualError(t, err, `reading dataset "t.csv": line 3, column "a": "inf" is not a finite number`)
	})
	t.Run("one string per category", func(t *testing.T) {
		f := mustFrame(t, "c\nparis\nparis\n")
		assert.Equal(t, []string{"paris", "paris"}, f.Text[0])
		assert.Same(t, unsafe.StringData(f.Text[0][0]), unsafe.StringData(f.Text[0][1]), "the two cells share their bytes")
	})
}

func TestBuildTextTargets(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		spec    Spec
		task    Task
		classes []string
		y       []float64
	}{
		{"yes/no is binary, labels sorted", []string{"yes", "no", "yes", "no", "no"}, Spec{}, Binary, []string{"no", "yes"}, []float64{1, 0, 1, 0, 0}},
		{"class names are multiclass", []string{"setosa", "virginica", "versicolor", "setosa", "virginica"}, Spec{}, Multiclass, []string{"setosa", "versicolor", "virginica"}, []float64{0, 2, 1, 0, 2}},
		{"two labels with task multiclass", []string{"a", "b", "a", "b", "a"}, Spec{Task: Multiclass}, Multiclass, []string{"a", "b"}, []float64{0, 1, 0, 1, 0}},
		{"numbers by value before text", []string{"10", "9", "x", "B", "1.50"}, Spec{}, Multiclass, []string{"1.5", "9", "10", "B", "x"}, []float64{2, 1, 4, 3, 0}},
		{"more than 20 labels stay multiclass", nil, Spec{}, Multiclass, nil, nil},
		{"binarize ==yes", []string{"yes", "no", "maybe", "yes", "no"}, Spec{Binarize: "==yes"}, Binary, []string{"0", "1"}, []float64{1, 0, 0, 1, 0}},
		{"binarize !=none with spaces", []string{"none", "a", "b", "none", "c"}, Spec{Binarize: " != none "}, Binary, []string{"0", "1"}, []float64{0, 1, 1, 0, 1}},
		{"binarize a number on a mixed target compares its text", []string{"1", "1.0", "x", "2", "x"}, Spec{Binarize: "==1"}, Binary, []string{"0", "1"}, []float64{1, 1, 0, 0, 0}},
		{"binarize ==true matches true in any case", []string{"TRUE", "x", "true", "x", "x"}, Spec{Binarize: "==True"}, Binary, []string{"0", "1"}, []float64{1, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targets := tt.targets
			if targets == nil { // 30 distinct labels
				for i := range 30 {
					targets = append(targets, "c"+string(rune('A'+i)))
				}
			}
			f := mustFrame(t, csvWithTarget(targets...))
			spec := tt.spec
			spec.Target = "y"
			d, err := Build(f, spec)
			require.NoError(t, err)
			assert.Equal(t, tt.task, d.Task)
			require.NotNil(t, d.TargetText)
			if tt.targets == nil {
				assert.Len(t, d.Classes, 30)
				return
			}
			assert.Equal(t, tt.classes, d.Classes)
			assert.Equal(t, tt.y, d.Y)
			assert.Equal(t, []string{"a", "b"}, d.Features)
			assert.Nil(t, d.Text, "no categorical feature")
		})
	}
}

func TestBuildTextErrors(t *testing.T) {
	text := csvWithTarget("yes", "no", "yes", "no", "yes")
	numbers := csvWithTarget("0", "1", "0", "1", "0")
	tests := []struct {
		name   string
		csv    string
		spec   Spec
		line   int
		column string
		msg    string
	}{
		{"text target for regression", csvWithTarget("1", "2", "x", "4", "5"), Spec{Task: Regression}, 4, "y",
			`reading dataset "t.csv": line 4, column "y": a regression target must be numbers, and "x" is not one (a target of text is a classification target: set task to binary or multiclass, or fix the cell)`},
		{"binary with three labels", csvWithTarget("a", "b", "c", "a", "b"), Spec{Task: Binary}, 0, "y",
			`reading dataset "t.csv": column "y": binary task needs exactly 2 distinct target values, have 3 ("a", "b", "c"); set binarize to split them`},
		{"constant text", csvWithTarget("yes", "yes", "yes", "yes", "yes"), Spec{}, 0, "y", `reading dataset "t.csv": column "y": target is constant (every row is "yes")`},
		{"missing label", csvWithTarget("yes", "no", "NA", "no", "yes"), Spec{}, 4, "y", `reading dataset "t.csv": line 4, column "y": target value is missing`},
		{"binarize > on text", text, Spec{Binarize: ">5"}, 2, "y",
			`reading dataset "t.csv": line 2, column "y": binarize ">5" compares numbers, and the target holds text ("yes"); compare a label with == or !=`},
		{"binarize > with a label", text, Spec{Binarize: ">yes"}, 0, "y",
			`reading dataset "t.csv": column "y": bad binarize expression ">yes": > compares numbers and "yes" is not one; a label is compared with == or != only`},
		{"binarize <= with a label", numbers, Spec{Binarize: "<=none"}, 0, "y",
			`reading dataset "t.csv": column "y": bad binarize expression "<=none": <= compares numbers and "none" is not one; a label is compared with == or != only`},
		{"binarize a label on numbers", numbers, Spec{Binarize: "==yes"}, 0, "y",
			`reading dataset "t.csv": column "y": binarize "==yes" compares with the label "yes", but the target holds numbers only; compare with a number`},
		{"binarize a label nobody has", text, Spec{Binarize: "==maybe"}, 0, "y",
			`reading dataset "t.csv": column "y": binarize "==maybe" puts every row in one class (0 of 5 rows positive)`},
		{"binarize a missing marker", text, Spec{Binarize: "==NA"}, 0, "y",
			`reading dataset "t.csv": column "y": bad binarize expression "==NA": want <op><number> with op one of > >= < <= == !=, or ==<label> or !=<label>`},
		{"binarize a label with multiclass", text, Spec{Binarize: "==yes", Task: Multiclass}, 0, "y",
			`reading dataset "t.csv": column "y": binarize "==yes" needs a binary task, not multiclass`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.Target = "y"
			_, err := Build(mustFrame(t, tt.csv), spec)
			require.Error(t, err)
			var de *Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tt.line, de.Line)
			assert.Equal(t, tt.column, de.Column)
			assert.Equal(t, tt.msg, err.Error())
		})
	}
}

// cityCSV has a numeric feature age, a categorical city (paris 4 times,
// london 3, berlin 2, rome 1, one missing), a boolean member and a text target.
const cityCSV = `age,city,member,y
30,paris,true,yes
40,london,false,no
50,paris,TRUE,yes
60,berlin,false,no
35,london,true,yes
45,paris,false,no
55,rome,true,yes
65,NA,false,no
33,london,true,yes
44,berlin,false,no
66,paris,true,yes
`

func TestBuildCategorical(t *testing.T) {
	d, err := Build(mustFrame(t, cityCSV), Spec{Target: "y"})
	require.NoError(t, err)
	assert.Equal(t, []string{"age", "city", "member"}, d.Features)
	require.Len(t, d.Text, 3)
	assert.Nil(t, d.Text[0])
	assert.Equal(t, []string{"paris", "london", "paris", "berlin", "london", "paris", "rome", "", "london", "berlin", "paris"}, d.Text[1])
	assert.Nil(t, d.Text[2], "booleans are numbers")
	assert.Equal(t, TextInfo{Line: 2, Cell: "paris", Texts: 10}, d.TextInfo[1])
	assert.Equal(t, 1, d.Missing)
	assert.Equal(t, map[string]int{"city": 1}, d.MissingBy)
	for i, x := range d.X {
		assert.True(t, math.IsNaN(x[1]), "row %d: a categorical cell is NaN until encoded", i)
		assert.Equal(t, float64((i+1)%2), x[2], "row %d: member", i)
	}
	assert.Equal(t, Binary, d.Task)
	assert.Equal(t, []string{"no", "yes"}, d.Classes)

	all := make([]int, len(d.Y))
	for i := range all {
		all[i] = i
	}
	tests := []struct {
		name string
		rows []int
		max  int
		want []string
	}{
		{"most frequent first", all, 20, []string{"paris", "london", "berlin", "rome"}},
		{"capped", all, 2, []string{"paris", "london"}},
		{"equal counts in label order", []int{1, 3, 6}, 20, []string{"berlin", "london", "rome"}},
		{"counted on the given rows only", []int{0, 1, 2}, 20, []string{"paris", "london"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cats, err := d.FitCategories(tt.rows, tt.max)
			require.NoError(t, err)
			assert.Equal(t, map[string][]string{"city": tt.want}, cats)
		})
	}

	t.Run("a category spelled (other) is never listed", func(t *testing.T) {
		d, err := Build(mustFrame(t, "c,y\n(other),1\n(other),0\na,1\n(other),0\nb,1\n"), Spec{Target: "y"})
		require.NoError(t, err)
		cats, err := d.FitCategories([]int{0, 1, 2, 3, 4}, 20)
		require.NoError(t, err)
		assert.Equal(t, map[string][]string{"c": {"a", "b"}}, cats)
	})
	t.Run("no value in the training rows", func(t *testing.T) {
		_, err := d.FitCategories([]int{7}, 20)
		assert.EqualError(t, err, `reading dataset "t.csv": column "city": has no value in the 1 training rows (its values are all in the validation and test rows); drop it`)
	})
	t.Run("numeric only: no categories", func(t *testing.T) {
		n, err := Build(mustFrame(t, csvWithTarget("0", "1", "0", "1", "0")), Spec{Target: "y"})
		require.NoError(t, err)
		cats, err := n.FitCategories([]int{0, 1}, 20)
		require.NoError(t, err)
		assert.Nil(t, cats)
	})

	t.Run("encode and one-hot: rare, missing", func(t *testing.T) {
		d, err := Build(mustFrame(t, cityCSV), Spec{Target: "y"})
		require.NoError(t, err)
		cats := map[string][]string{"city": {"paris", "london"}}
		d.EncodeCategories(cats)
		slots := make([]float64, len(d.X))
		for i, x := range d.X {
			slots[i] = x[1]
		}
		// paris 0, london 1, berlin and rome the other slot 2, missing NaN
		assertRows(t, [][]float64{{0, 1, 0, 2, 1, 0, 2, nan, 1, 2, 0}}, [][]float64{slots})

		e, onehot := d.OneHot(cats)
		assert.Equal(t, []string{"age", "city=paris", "city=london", "city=(other)", "member"}, e.Features)
		assert.Equal(t, []bool{false, true, true, true, false}, onehot)
		assert.Equal(t, []float64{30, 1, 0, 0, 1}, e.X[0])
		assert.Equal(t, []float64{60, 0, 0, 1, 0}, e.X[3], "berlin: other")
		assert.Equal(t, []float64{65, 0, 0, 0, 0}, e.X[7], "missing: no slot")
		assert.Equal(t, d.Y, e.Y)
		assert.Equal(t, 0, e.Missing, "the one-hot inputs are never missing")
		assert.Empty(t, e.MissingBy)
		assert.Nil(t, e.Text)
	})
	t.Run("input names", func(t *testing.T) {
		assert.Equal(t, []string{"a", "c=x", "c=y", "c=(other)", "b", "d=(other)"},
			InputNames([]string{"a", "c", "b", "d"}, map[string][]string{"c": {"x", "y"}, "d": {}}))
		assert.Equal(t, []string{"a", "b"}, InputNames([]string{"a", "b"}, nil))
	})
}

func TestCompareLabels(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"2", "10", -1}, {"10", "2", 1}, {"-1", "0", -1}, {"1", "1", 0},
		{"1", "a", -1}, {"a", "1", 1}, {"B", "a", -1}, {"no", "yes", -1}, {"yes", "yes", 0},
	} {
		assert.Equal(t, tt.want, CompareLabels(tt.a, tt.b), "%q vs %q", tt.a, tt.b)
	}
}

func TestLabeledText(t *testing.T) {
	schema := Schema{
		Features: []string{"age", "city"}, Target: "y", Task: Binary, Classes: []string{"no", "yes"},
		Categories: map[string][]string{"city": {"paris", "london"}},
	}
	t.Run("categories, unseen and missing, text labels", func(t *testing.T) {
		f := mustFrame(t, "y,city,age,extra\nyes,paris,30,x\nno,tokyo,40,y\nyes,,50,z\nno,london,NA,w\n")
		x, y, err := Labeled(f, schema)
		require.NoError(t, err)
		assertRows(t, [][]float64{{30, 0}, {40, 2}, {50, nan}, {nan, 1}}, x)
		assert.Equal(t, []float64{1, 0, 1, 0}, y)
	})
	t.Run("a categorical column of numbers in new data", func(t *testing.T) {
		s := schema
		s.Categories = map[string][]string{"city": {"75", "69"}}
		x, _, err := Labeled(mustFrame(t, "age,city,y\n1,75.0,yes\n2,69,no\n3,13,yes\n"), s)
		require.NoError(t, err)
		assertRows(t, [][]float64{{1, 0}, {2, 1}, {3, 2}}, x)
	})
	t.Run("binarize a label", func(t *testing.T) {
		s := Schema{Features: []string{"age"}, Target: "y", Task: Binary, Binarize: "!=none", Classes: []string{"0", "1"}}
		_, y, err := Labeled(mustFrame(t, "age,y\n1,none\n2,flu\n3,cold\n"), s)
		require.NoError(t, err)
		assert.Equal(t, []float64{0, 1, 1}, y)
		_, y, err = Labeled(mustFrame(t, "age,y\n1,0\n2,1\n"), s)
		require.NoError(t, err)
		assert.Equal(t, []float64{1, 1}, y, "numbers are never the label none")
	})
	errs := []struct {
		name   string
		csv    string
		schema Schema
		msg    string
	}{
		{"text in a numeric feature", "age,city,y\n1,paris,yes\nold,paris,no\n", schema,
			`reading dataset "t.csv": line 3, column "age": "old" is not a number (the model's feature "age" is numeric)`},
		{"long text in a numeric feature is shortened", "age,city,y\n" + strings.Repeat("x", 100) + ",paris,yes\n", schema,
			`reading dataset "t.csv": line 2, column "age": "` + strings.Repeat("x", 40) + `"... is not a number (the model's feature "age" is numeric)`},
		{"unknown label", "age,city,y\n1,paris,yes\n2,paris,maybe\n", schema,
			`reading dataset "t.csv": line 3, column "y": label "maybe" is not one of the model's classes (no, yes)`},
		{"text target for a regression model", "age,y\n1,2\n2,high\n", Schema{Features: []string{"age"}, Target: "y", Task: Regression},
			`reading dataset "t.csv": line 3, column "y": "high" is not a number (the model predicts a number)`},
		{"binarize > on a text target", "age,y\n1,2\n2,high\n", Schema{Features: []string{"age"}, Target: "y", Task: Binary, Binarize: ">1"},
			`reading dataset "t.csv": line 3, column "y": binarize ">1" compares numbers, and the target holds text ("high")`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Labeled(mustFrame(t, tt.csv), tt.schema)
			assert.EqualError(t, err, tt.msg)
		})
	}
}
