package category

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParse(t *testing.T) {
	tests := []struct {
		cell string
		v    float64
		kind Kind
	}{
		{"1", 1, Number}, {" 2.5 ", 2.5, Number}, {"-3e2", -300, Number}, {"1e-400", 0, Number},
		{"true", 1, Number}, {"FALSE", 0, Number}, {" True ", 1, Number},
		{"", math.NaN(), Missing}, {"?", math.NaN(), Missing}, {"NA", math.NaN(), Missing}, {"NAN", math.NaN(), Missing}, {" null ", math.NaN(), Missing},
		{"inf", math.Inf(1), Infinite}, {"-Infinity", math.Inf(-1), Infinite}, {"1e999", math.Inf(1), Infinite},
		{"yes", 0, Text}, {"1,5", 0, Text}, {"truee", 0, Text}, {"0x10", 0, Text},
	}
	for _, tt := range tests {
		t.Run(tt.cell, func(t *testing.T) {
			v, k := Parse(tt.cell)
			assert.Equal(t, tt.kind, k)
			if math.IsNaN(tt.v) {
				assert.True(t, math.IsNaN(v))
			} else if k != Text {
				assert.Equal(t, tt.v, v)
			}
		})
	}
	v, _ := Parse("-0")
	assert.True(t, math.Signbit(v), "a number is read as it is: -0 stays -0")
}

func TestCanon(t *testing.T) {
	tests := []struct {
		cell, text string
		missing    bool
	}{
		{" paris ", "paris", false}, {"Paris", "Paris", false}, {"1.0", "1", false}, {"1e3", "1000", false},
		{"-0", "0", false}, {"TRUE", "1", false}, {"false", "0", false}, {"NA", "", true}, {"", "", true},
		{"inf", "inf", false}, {"(other)", "(other)", false},
	}
	for _, tt := range tests {
		text, missing := Canon(tt.cell)
		assert.Equal(t, tt.text, text, "%q", tt.cell)
		assert.Equal(t, tt.missing, missing, "%q", tt.cell)
	}
	assert.Equal(t, "0.1", FormatNumber(0.1))
	assert.Equal(t, "0", FormatNumber(math.Copysign(0, -1)))
}

func TestEncoder(t *testing.T) {
	e := NewEncoder([]string{"paris", "london"})
	assert.Equal(t, 3, e.Width())
	for _, tt := range []struct {
		text  string
		slot  int
		known bool
	}{{"paris", 0, true}, {"london", 1, true}, {"rome", 2, false}, {Other, 2, false}, {"", 2, false}} {
		slot, known := e.Slot(tt.text)
		assert.Equal(t, tt.slot, slot, tt.text)
		assert.Equal(t, tt.known, known, tt.text)
	}
	assert.Equal(t, "london", e.Label(1))
	assert.Equal(t, Other, e.Label(2))
}
