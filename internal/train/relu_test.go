package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// special are values the bit tricks must treat as the arithmetic does.
var special = []float64{0, math.Copysign(0, -1), 1e-310, -1e-310, 1e308, math.Inf(1), math.Inf(-1), math.NaN(), 1, -1}

func sameBits[T float](a, b T) bool {
	if a != a && b != b { // NaN: any payload
		return true
	}
	if is64[T]() {
		return math.Float64bits(float64(a)) == math.Float64bits(float64(b))
	}
	return math.Float32bits(float32(a)) == math.Float32bits(float32(b))
}

// TestReluBits: relu and reluGrad on the bits agree with max(v, 0) and y > 0 on
// every special value and random ones, in both types.
func TestReluBits(t *testing.T) {
	vals := append([]float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		math.Float64frombits(0xfff8000000000001), math.Float64frombits(0x7ff0000000000001)}, special...)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		vals = append(vals, rng.NormFloat64())
	}
	z64 := append([]float64(nil), vals...)
	relu(z64)
	z32 := make([]float32, len(vals))
	for i, v := range vals {
		z32[i] = float32(v)
	}
	relu(z32)
	dh64, dh32 := make([]float64, len(vals)), make([]float32, len(vals))
	for i := range dh64 {
		dh64[i], dh32[i] = -1.5, -1.5
	}
	reluGrad(vals, dh64)
	h32 := make([]float32, len(vals))
	for i, v := range vals {
		h32[i] = float32(v)
	}
	reluGrad(h32, dh32)
	for i, v := range vals {
		if w := max(v, 0); !sameBits(z64[i], w) {
			t.Fatalf("relu(%v) = %v, max gives %v", v, z64[i], w)
		}
		if w := max(float32(v), 0); !sameBits(z32[i], w) {
			t.Fatalf("relu32(%v) = %v, max gives %v", float32(v), z32[i], w)
		}
		want64, want32 := 0.0, float32(0)
		if v > 0 {
			want64 = -1.5
		}
		if float32(v) > 0 {
			want32 = -1.5
		}
		if math.Float64bits(dh64[i]) != math.Float64bits(want64) || math.Float32bits(dh32[i]) != math.Float32bits(want32) {
			t.Fatalf("reluGrad at %v: %v and %v, want %v and %v", v, dh64[i], dh32[i], want64, want32)
		}
	}
}
