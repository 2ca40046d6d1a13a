package model

// How a classifier's outputs become a class. These are the only definitions of the
// rules: Predict, the server, the validation accuracy of training and the metrics the
// gate compares all call them, so a row gets the same class everywhere.

// Threshold is the probability of class 1 from which a binary (sigmoid) model
// predicts class 1. The scikit-learn reference numbers of the metrics tests were
// computed with the same rule (pred = p >= 0.5); changing it changes every
// binary model's predictions and metrics.
const Threshold = 0.5

// BinaryClass returns the class a binary model predicts for p1, its probability of
// class 1: 1 when p1 >= Threshold, else 0 (a NaN gives 0).
func BinaryClass(p1 float64) int {
	if p1 >= Threshold {
		return 1
	}
	return 0
}

// Argmax returns the class a multiclass model predicts for its class
// probabilities p: the first index of the largest value, so a tie goes to the
// lower class. A NaN never compares larger, so it is chosen only at index 0;
// an empty p gives 0.
func Argmax(p []float64) int {
	best := 0
	for j, v := range p {
		if v > p[best] {
			best = j
		}
	}
	return best
}

// ClassOf returns the predicted class of a classifier's output activations as
// Forward and PredictRow return them: a single value (sigmoid, P(class 1)) goes
// through BinaryClass, several (softmax, one per class) through Argmax. It means
// nothing for a regression (linear) output.
func ClassOf(out []float64) int {
	if len(out) == 1 {
		return BinaryClass(out[0])
	}
	return Argmax(out)
}
