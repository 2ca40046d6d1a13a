// Package metrics computes classification and regression metrics, reads and
// writes the metrics.json file of a model directory and compares metrics
// against a baseline.
//
// The numbers follow scikit-learn's definitions: log_loss clips probabilities
// to [1e-15, 1-1e-15] and renormalizes each row, roc_auc handles tied scores
// with average ranks, precision, recall and f1 use zero_division=0, macro_f1
// averages the per-class F1 over the classes present in the true or the
// predicted labels, and r2 is 1 for a perfect fit and 0 for an imperfect fit
// of a constant target. They are the same bits on every GOARCH: products are
// rounded before they are added (float64(x*y), which no architecture may fuse
// into an FMA instruction) and log is internal/fpmath's.
package metrics

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/fpmath"
	"github.com/mlship/mlship/internal/model"
)

// Values maps metric names (see Names) to their values.
type Values map[string]float64

// Metric names.
const (
	Accuracy  = "accuracy"
	Precision = "precision"
	Recall    = "recall"
	F1        = "f1"
	ROCAUC    = "roc_auc"
	LogLoss   = "log_loss"
	MacroF1   = "macro_f1"
	MSE       = "mse"
	RMSE      = "rmse"
	MAE       = "mae"
	R2        = "r2"
)

// probEps is the probability clipping bound of log_loss.
const probEps = 1e-15

// Names returns the metric keys reported for a task (a dataset.Task name:
// "binary", "multiclass" or "regression") in their canonical order, or nil for
// an unknown task.
func Names(task string) []string {
	switch dataset.Task(task) {
	case dataset.Binary:
		return []string{Accuracy, Precision, Recall, F1, ROCAUC, LogLoss}
	case dataset.Multiclass:
		return []string{Accuracy, MacroF1, LogLoss}
	case dataset.Regression:
		return []string{MSE, RMSE, MAE, R2}
	}
	return nil
}

// canonical returns every known name once, in the order of Names for
// binary, multiclass and regression.
func canonical() []string {
	var out []string
	for _, task := range []dataset.Task{dataset.Binary, dataset.Multiclass, dataset.Regression} {
		for _, n := range Names(string(task)) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// All returns the union of the metric names of all tasks, sorted.
func All() []string {
	out := canonical()
	sort.Strings(out)
	return out
}

// Known reports whether name is a metric of some task.
func Known(name string) bool {
	return slices.Contains(canonical(), name)
}

// HigherIsBetter reports whether a larger value of the metric is better. It
// is false for the losses and errors (log_loss, mse, rmse, mae) and true for
// every other name, unknown ones included.
func HigherIsBetter(name string) bool {
	switch name {
	case LogLoss, MSE, RMSE, MAE:
		return false
	}
	return true
}

// Binary computes the binary classification metrics of true labels y (0 or
// 1) and predicted probabilities p1 of class 1. A row is predicted as
// model.BinaryClass(p1) (class 1 when p1 >= 0.5). The confusion matrix is indexed [true][predicted]. roc_auc
// is left out when y holds a single class (it is undefined there); every
// metric is left out when y is empty. It panics when the lengths differ or a
// label is not 0 or 1.
func Binary(y []int, p1 []float64) (Values, [][]int) {
	if len(y) != len(p1) {
		panic(fmt.Sprintf("metrics.Binary: %d labels but %d probabilities", len(y), len(p1)))
	}
	cm := [][]int{{0, 0}, {0, 0}}
	v := Values{}
	if len(y) == 0 {
		return v, cm
	}
	loss := 0.0
	for i, t := range y {
		if t != 0 && t != 1 {
			panic(fmt.Sprintf("metrics.Binary: label %d at row %d is not 0 or 1", t, i))
		}
		cm[t][model.BinaryClass(p1[i])]++
		// Like sklearn: clip both columns, renormalize the row.
		q1, q0 := clip(p1[i]), clip(1-p1[i])
		q := q0
		if t == 1 {
			q = q1
		}
		loss -= fpmath.Log(q / (q0 + q1))
	}
	n := float64(len(y))
	tn, fp, fn, tp := cm[0][0], cm[0][1], cm[1][0], cm[1][1]
	v[Accuracy] = float64(tn+tp) / n
	v[Precision] = ratio(tp, tp+fp)
	v[Recall] = ratio(tp, tp+fn)
	v[F1] = ratio(2*tp, 2*tp+fp+fn)
	if auc, ok := rocAUC(y, p1); ok {
		v[ROCAUC] = auc
	}
	v[LogLoss] = loss / n
	return v, cm
}

// Multiclass computes the multiclass metrics of true class indices y and
// per-row class probabilities probs (each row of the same length K; the
// predicted class is model.Argmax, the first index of the largest probability). The
// confusion matrix is K x K, indexed [true][predicted]. Every metric is left
// out when y is empty. It panics when the lengths differ, rows are ragged or
// a label is outside 0..K-1.
func Multiclass(y []int, probs [][]float64) (Values, [][]int) {
	if len(y) != len(probs) {
		panic(fmt.Sprintf("metrics.Multiclass: %d labels but %d probability rows", len(y), len(probs)))
	}
	v := Values{}
	if len(y) == 0 {
		return v, [][]int{}
	}
	k := len(probs[0])
	cm := make([][]int, k)
	for i := range cm {
		cm[i] = make([]int, k)
	}
	loss := 0.0
	for i, t := range y {
		row := probs[i]
		if len(row) != k {
			panic(fmt.Sprintf("metrics.Multiclass: row %d has %d probabilities, want %d", i, len(row), k))
		}
		if t < 0 || t >= k {
			panic(fmt.Sprintf("metrics.Multiclass: label %d at row %d is outside 0..%d", t, i, k-1))
		}
		sum := 0.0
		for _, p := range row {
			sum += clip(p)
		}
		cm[t][model.Argmax(row)]++
		loss -= fpmath.Log(clip(row[t]) / sum)
	}
	n := float64(len(y))
	correct := 0
	f1sum, classes := 0.0, 0
	for c := 0; c < k; c++ {
		correct += cm[c][c]
		tp, fp, fn := cm[c][c], 0, 0
		for o := 0; o < k; o++ {
			if o != c {
				fp += cm[o][c]
				fn += cm[c][o]
			}
		}
		if tp+fp+fn == 0 {
			continue // class absent from both y and predictions: sklearn leaves it out
		}
		classes++
		f1sum += ratio(2*tp, 2*tp+fp+fn)
	}
	v[Accuracy] = float64(correct) / n
	v[MacroF1] = f1sum / float64(classes)
	v[LogLoss] = loss / n
	return v, cm
}

// Regression computes mse, rmse, mae and r2 of the true values y and the
// predictions pred. Like sklearn with force_finite, r2 is 1 when the
// predictions are exact and 0 when y is constant but the predictions are
// not; r2 is left out for fewer than 2 rows (sklearn returns NaN) and every
// metric is left out when y is empty. It panics when the lengths differ.
func Regression(y, pred []float64) Values {
	if len(y) != len(pred) {
		panic(fmt.Sprintf("metrics.Regression: %d values but %d predictions", len(y), len(pred)))
	}
	v := Values{}
	if len(y) == 0 {
		return v
	}
	n := float64(len(y))
	mean := 0.0
	for _, t := range y {
		mean += t
	}
	mean /= n
	var sse, sae, sst float64
	for i, t := range y {
		d := t - pred[i]
		sse += float64(d * d)
		sae += math.Abs(d)
		sst += float64((t - mean) * (t - mean))
	}
	v[MSE] = sse / n
	v[RMSE] = math.Sqrt(sse / n)
	v[MAE] = sae / n
	if len(y) >= 2 {
		switch {
		case sse == 0:
			v[R2] = 1
		case sst == 0:
			v[R2] = 0
		default:
			v[R2] = 1 - sse/sst
		}
	}
	return v
}

// rocAUC is the area under the ROC curve as the Mann-Whitney statistic with
// average ranks for tied scores, which equals sklearn's trapezoidal area. ok
// is false when y holds a single class.
func rocAUC(y []int, score []float64) (float64, bool) {
	idx := make([]int, len(y))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	var pos, neg int
	rankSum := 0.0 // sum of the (1-based, tie-averaged) ranks of the positives
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		avg := float64(float64(i+1+j) / 2) // mean of ranks i+1..j (rounded: the compiler multiplies by 0.5)
		for _, r := range idx[i:j] {
			if y[r] == 1 {
				pos++
				rankSum += avg
			} else {
				neg++
			}
		}
		if j == i { // NaN scores never compare equal; step past them
			j = i + 1
			if y[idx[i]] == 1 {
				pos++
				rankSum += float64(i + 1)
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0, false
	}
	p, q := float64(pos), float64(neg)
	return (rankSum - float64(p*(p+1)/2)) / (p * q), true
}

func clip(p float64) float64 {
	return math.Max(probEps, math.Min(1-probEps, p))
}

// ratio is num/den, or 0 when den is 0 (sklearn's zero_division=0).
func ratio(num, den int) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}
