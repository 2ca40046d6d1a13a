package metrics

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tol = 1e-12

// The expected numbers below were computed once with scikit-learn 1.2.1
// (Debian python3-sklearn) by /usr/bin/python3, with pred = (p >= 0.5):
//
//	accuracy_score(y, pred)
//	precision_score(y, pred, zero_division=0)
//	recall_score(y, pred, zero_division=0)
//	f1_score(y, pred, zero_division=0)
//	roc_auc_score(y, p)
//	log_loss(y, p, eps=1e-15, labels=[0, 1])
//	confusion_matrix(y, pred, labels=[0, 1])
func TestBinary(t *testing.T) {
	tests := []struct {
		name string
		y    []int
		p    []float64
		want Values
		cm   [][]int
	}{
		{
			name: "ties in scores and at the threshold",
			y:    []int{0, 0, 1, 1, 1, 0, 1, 0, 1, 1},
			p:    []float64{0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.9, 0.2, 0.65, 0.5},
			want: Values{
				Accuracy: 0.8, Precision: 0.8333333333333334, Recall: 0.8333333333333334,
				F1: 0.8333333333333334, ROCAUC: 0.875, LogLoss: 0.4727880339981031,
			},
			cm: [][]int{{3, 1}, {1, 5}},
		},
		{
			name: "log_loss clips certain wrong answers",
			y:    []int{1, 0, 1, 0},
			p:    []float64{1.0, 0.0, 0.0, 0.3},
			want: Values{
				Accuracy: 0.75, Precision: 1.0, Recall: 0.5,
				F1: 0.6666666666666666, ROCAUC: 0.625, LogLoss: 8.723862834712355,
			},
			cm: [][]int{{2, 0}, {1, 1}},
		},
		{
			name: "no positive predictions: zero division gives 0",
			y:    []int{1, 0, 1},
			p:    []float64{0.1, 0.2, 0.3},
			want: Values{
				Accuracy: 0.3333333333333333, Precision: 0, Recall: 0,
				F1: 0, ROCAUC: 0.5, LogLoss: 1.2432338162113972,
			},
			cm: [][]int{{1, 0}, {2, 0}},
		},
		{
			name: "one class only: roc_auc undefined and left out",
			y:    []int{0, 0, 0},
			p:    []float64{0.1, 0.6, 0.3},
			want: Values{
				Accuracy: 0.6666666666666666, Precision: 0, Recall: 0,
				F1: 0, LogLoss: 0.4594420638235712,
			},
			cm: [][]int{{2, 1}, {0, 0}},
		},
		{
			name: "all scores tied",
			y:    []int{0, 1, 0, 1},
			p:    []float64{0.5, 0.5, 0.5, 0.5},
			want: Values{
				Accuracy: 0.5, Precision: 0.5, Recall: 1.0,
				F1: 0.6666666666666666, ROCAUC: 0.5, LogLoss: 0.6931471805599453,
			},
			cm: [][]int{{0, 2}, {0, 2}},
		},
		{
			name: "perfect ranking",
			y:    []int{0, 1, 0, 1},
			p:    []float64{0.0, 1.0, 0.2, 0.7},
			want: Values{
				Accuracy: 1, Precision: 1, Recall: 1,
				F1: 1, ROCAUC: 1, LogLoss: 0.14495462381323604,
			},
			cm: [][]int{{2, 0}, {0, 2}},
		},
		{
			name: "empty",
			want: Values{},
			cm:   [][]int{{0, 0}, {0, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cm := Binary(tt.y, tt.p)
			assertValues(t, tt.want, got)
			assert.Equal(t, tt.cm, cm)
		})
	}
}

func TestBinaryPanics(t *testing.T) {
	assert.PanicsWithValue(t, "metrics.Binary: 2 labels but 1 probabilities", func() {
		Binary([]int{0, 1}, []float64{0.5})
	})
	assert.PanicsWithValue(t, "metrics.Binary: label 2 at row 1 is not 0 or 1", func() {
		Binary([]int{0, 2}, []float64{0.5, 0.5})
	})
}

func TestROCAUCInvariantToMonotoneRescaling(t *testing.T) {
	y := []int{0, 0, 1, 1, 1, 0, 1, 0, 1, 1}
	p := []float64{0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.9, 0.2, 0.65, 0.5}
	q := make([]float64, len(p))
	for i, v := range p {
		q[i] = v*v*v - 3 // strictly increasing map keeps ranks and ties
	}
	a, ok := rocAUC(y, p)
	require.True(t, ok)
	b, ok := rocAUC(y, q)
	require.True(t, ok)
	assert.InDelta(t, 0.875, a, tol)
	assert.InDelta(t, a, b, tol)

	// Reversed scores give 1 - auc.
	r := make([]float64, len(p))
	for i, v := range p {
		r[i] = -v
	}
	c, ok := rocAUC(y, r)
	require.True(t, ok)
	assert.InDelta(t, 1-a, c, tol)
}

// Expected values from scikit-learn 1.2.1, pred = P.argmax(axis=1):
//
//	accuracy_score(y, pred)
//	f1_score(y, pred, average="macro", zero_division=0)
//	log_loss(y, P, eps=1e-15, labels=list(range(K)))
//	confusion_matrix(y, pred, labels=list(range(K)))
func TestMulticlass(t *testing.T) {
	tests := []struct {
		name  string
		y     []int
		probs [][]float64
		want  Values
		cm    [][]int
	}{
		{
			name: "three classes",
			y:    []int{0, 1, 2, 2, 1, 0, 2, 1},
			probs: [][]float64{
				{0.7, 0.2, 0.1}, {0.1, 0.6, 0.3}, {0.2, 0.2, 0.6}, {0.3, 0.4, 0.3},
				{0.5, 0.3, 0.2}, {0.8, 0.1, 0.1}, {0.1, 0.1, 0.8}, {0.2, 0.5, 0.3},
			},
			want: Values{Accuracy: 0.75, MacroF1: 0.7555555555555555, LogLoss: 0.6157132604138689},
			cm:   [][]int{{2, 0, 0}, {1, 2, 0}, {0, 1, 2}},
		},
		{
			// Class 3 is neither true nor predicted, so macro_f1 averages
			// over classes 0..2 only; the zero and one probabilities are
			// clipped and the last row (argmax tie: first wins) renormalized.
			name: "unused class, clipping, argmax tie",
			y:    []int{0, 1, 0, 1, 2},
			probs: [][]float64{
				{1.0, 0.0, 0.0, 0.0}, {0.2, 0.7, 0.1, 0.0}, {0.4, 0.5, 0.1, 0.0},
				{0.0, 0.0, 1.0, 0.0}, {0.2, 0.2, 0.4, 0.4},
			},
			want: Values{Accuracy: 0.6, MacroF1: 0.611111111111111, LogLoss: 7.382070871878336},
			cm:   [][]int{{1, 1, 0, 0}, {0, 1, 1, 0}, {0, 0, 1, 0}, {0, 0, 0, 0}},
		},
		{
			name:  "empty",
			want:  Values{},
			cm:    [][]int{},
			probs: [][]float64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cm := Multiclass(tt.y, tt.probs)
			assertValues(t, tt.want, got)
			assert.Equal(t, tt.cm, cm)
		})
	}
}

func TestMulticlassPanics(t *testing.T) {
	tests := []struct {
		name  string
		y     []int
		probs [][]float64
		msg   string
	}{
		{"length mismatch", []int{0}, nil, "metrics.Multiclass: 1 labels but 0 probability rows"},
		{"ragged", []int{0, 1}, [][]float64{{1, 0}, {1}}, "metrics.Multiclass: row 1 has 1 probabilities, want 2"},
		{"label out of range", []int{0, 3}, [][]float64{{1, 0, 0}, {1, 0, 0}}, "metrics.Multiclass: label 3 at row 1 is outside 0..2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.msg, func() { Multiclass(tt.y, tt.probs) })
		})
	}
}

// Expected values from scikit-learn 1.2.1:
//
//	mean_squared_error(y, p), mean_squared_error(y, p, squared=False),
//	mean_absolute_error(y, p), r2_score(y, p)
func TestRegression(t *testing.T) {
	tests := []struct {
		name    string
		y, pred []float64
		want    Values
	}{
		{
			name: "sklearn docs example",
			y:    []float64{3, -0.5, 2, 7},
			pred: []float64{2.5, 0.0, 2, 8},
			want: Values{MSE: 0.375, RMSE: 0.6123724356957945, MAE: 0.5, R2: 0.9486081370449679},
		},
		{
			name: "constant target, perfect predictions: r2 1",
			y:    []float64{2, 2, 2},
			pred: []float64{2, 2, 2},
			want: Values{MSE: 0, RMSE: 0, MAE: 0, R2: 1},
		},
		{
			name: "constant target, imperfect predictions: r2 0",
			y:    []float64{2, 2, 2},
			pred: []float64{1, 2, 3},
			want: Values{MSE: 0.6666666666666666, RMSE: 0.816496580927726, MAE: 0.6666666666666666, R2: 0},
		},
		{
			name: "worse than the mean: negative r2",
			y:    []float64{1, 2, 3},
			pred: []float64{3, 2, 1},
			want: Values{MSE: 2.6666666666666665, RMSE: 1.632993161855452, MAE: 1.3333333333333333, R2: -3},
		},
		{
			// sklearn returns NaN with a warning for r2 of one sample.
			name: "one row: r2 left out",
			y:    []float64{1},
			pred: []float64{3},
			want: Values{MSE: 4, RMSE: 2, MAE: 2},
		},
		{
			name: "empty",
			want: Values{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertValues(t, tt.want, Regression(tt.y, tt.pred))
		})
	}
	assert.PanicsWithValue(t, "metrics.Regression: 1 values but 0 predictions", func() {
		Regression([]float64{1}, nil)
	})
}

func TestNames(t *testing.T) {
	tests := []struct {
		task string
		want []string
	}{
		{"binary", []string{"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}},
		{"multiclass", []string{"accuracy", "macro_f1", "log_loss"}},
		{"regression", []string{"mse", "rmse", "mae", "r2"}},
		{"clustering", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.task, func(t *testing.T) {
			assert.Equal(t, tt.want, Names(tt.task))
		})
	}

	t.Run("results are copies", func(t *testing.T) {
		n := Names("binary")
		n[0] = "changed"
		assert.Equal(t, "accuracy", Names("binary")[0])
		a := All()
		a[0] = "changed"
		assert.Equal(t, "accuracy", All()[0])
	})
}

func TestNamesMatchComputedKeys(t *testing.T) {
	bin, _ := Binary([]int{0, 1, 1}, []float64{0.2, 0.7, 0.4})
	mc, _ := Multiclass([]int{0, 1}, [][]float64{{0.6, 0.4}, {0.3, 0.7}})
	reg := Regression([]float64{1, 2, 4}, []float64{1, 3, 3})
	for task, v := range map[string]Values{"binary": bin, "multiclass": mc, "regression": reg} {
		t.Run(task, func(t *testing.T) {
			assert.ElementsMatch(t, Names(task), keys(v))
		})
	}
}

func TestAllKnownHigherIsBetter(t *testing.T) {
	assert.Equal(t, []string{
		"accuracy", "f1", "log_loss", "macro_f1", "mae", "mse", "precision", "r2", "recall", "rmse", "roc_auc",
	}, All())

	tests := []struct {
		name   string
		known  bool
		higher bool
	}{
		{"accuracy", true, true},
		{"precision", true, true},
		{"recall", true, true},
		{"f1", true, true},
		{"roc_auc", true, true},
		{"macro_f1", true, true},
		{"r2", true, true},
		{"log_loss", true, false},
		{"mse", true, false},
		{"rmse", true, false},
		{"mae", true, false},
		{"acc", false, true},
		{"", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.known, Known(tt.name))
			assert.Equal(t, tt.higher, HigherIsBetter(tt.name))
		})
	}
}

func assertValues(t *testing.T, want, got Values) {
	t.Helper()
	require.ElementsMatch(t, keys(want), keys(got), "metric names")
	for k, w := range want {
		g := got[k]
		require.False(t, math.IsNaN(g), "%s is NaN", k)
		assert.InDelta(t, w, g, tol, k)
	}
}

func keys(v Values) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	return out
}
