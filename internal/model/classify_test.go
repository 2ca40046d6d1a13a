package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBinaryClass(t *testing.T) {
	for _, tc := range []struct {
		p1   float64
		want int
	}{
		{0, 0}, {0.25, 0}, {math.Nextafter(0.5, 0), 0}, {0.5, 1}, {0.75, 1}, {1, 1},
		{math.NaN(), 0}, {math.Inf(-1), 0}, {math.Inf(1), 1},
	} {
		assert.Equal(t, tc.want, BinaryClass(tc.p1), "p1 %v", tc.p1)
	}
}

func TestArgmax(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		p    []float64
		want int
	}{
		{nil, 0},
		{[]float64{0.2, 0.5, 0.3}, 1},
		{[]float64{0.4, 0.4, 0.2}, 0}, // a tie goes to the lower class
		{[]float64{0.2, 0.4, 0.4}, 1},
		{[]float64{nan, 0.9, 0.1}, 0}, // nothing compares larger than a NaN
		{[]float64{0.1, nan, 0.9}, 2},
	} {
		assert.Equal(t, tc.want, Argmax(tc.p), "p %v", tc.p)
	}
}

func TestClassOf(t *testing.T) {
	assert.Equal(t, 1, ClassOf([]float64{0.5}))
	assert.Equal(t, 0, ClassOf([]float64{0.49}))
	// Two outputs are softmax probabilities, not [1-p, p]: argmax, no threshold.
	assert.Equal(t, 0, ClassOf([]float64{0.5, 0.5}))
	assert.Equal(t, 2, ClassOf([]float64{0.1, 0.2, 0.7}))
}
