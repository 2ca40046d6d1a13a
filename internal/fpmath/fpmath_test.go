package fpmath

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

// inputs returns n deterministic arguments for a function: spread over its
// interesting range, with both signs where the function takes them.
type gen func(r *rand.Rand) float64

// The generators, too, round every product before adding to it (float64(...)):
// their inputs must be the same on every GOARCH for goldenDigest.
var (
	genExp   gen = func(r *rand.Rand) float64 { return float64(unit(r)*1460) - 750 }
	genSmall gen = func(r *rand.Rand) float64 { return (float64(unit(r)*2) - 1) * math.Ldexp(1, -r.IntN(60)) }
	genLog   gen = func(r *rand.Rand) float64 { return math.Ldexp(unit(r)+0.5, r.IntN(2097)-1074) } // subnormals too
	genLog1p gen = func(r *rand.Rand) float64 {
		if r.IntN(3) == 0 {
			return -unit(r) // (-1, 0]
		}
		return math.Ldexp(unit(r)+0.5, r.IntN(200)-100)
	}
	genTanh gen = func(r *rand.Rand) float64 { return (float64(unit(r)*2) - 1) * math.Ldexp(1, r.IntN(12)-6) }
)

// unit is r.Float64(), rounded: that is a product, which arm64 would fuse with an
// addition to it.
func unit(r *rand.Rand) float64 { return float64(r.Float64()) }

var funcs = []struct {
	name  string
	f     func(float64) float64
	std   func(float64) float64
	exact func(float64) float64
	args  []gen
	// same: the math package computes the same bits on amd64 (pure Go there,
	// without calls to Exp or Log)
	same bool
}{
	{"Exp", Exp, math.Exp, exactExp, []gen{genExp, genSmall}, false},
	{"Log", Log, math.Log, exactLog, []gen{genLog}, false},
	{"Log1p", Log1p, math.Log1p, exactLog1p, []gen{genLog1p, genSmall}, true},
	{"Tanh", Tanh, math.Tanh, exactTanh, []gen{genTanh, genSmall}, false},
}

// The exact results, rounded to float64, from math/big at 300 bits.
const prec = 300

func bf(x float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(x) }

var ln2 = func() *big.Float { // ln 2 = sum 1/(k 2^k)
	s, p := bf(0), bf(1)
	for k := 1; k < 400; k++ {
		p.Quo(p, bf(2))
		s.Add(s, new(big.Float).SetPrec(prec).Quo(p, bf(float64(k))))
	}
	return s
}()

// bigExp returns e**x for any x.
func bigExp(x *big.Float) *big.Float {
	q := new(big.Float).SetPrec(prec).Quo(x, ln2)
	kf, _ := q.Float64()
	k := math.Round(kf)
	r := new(big.Float).SetPrec(prec).Sub(x, new(big.Float).SetPrec(prec).Mul(bf(k), ln2))
	sum, term := bf(1), bf(1)
	for n := 1; n < 80; n++ {
		term.Mul(term, r)
		term.Quo(term, bf(float64(n)))
		sum.Add(sum, term)
	}
	return sum.SetMantExp(sum, int(k))
}

// bigLog returns ln x for x > 0.
func bigLog(x *big.Float) *big.Float {
	m := new(big.Float).SetPrec(prec)
	e := x.MantExp(m) // x = m * 2**e, m in [0.5, 1)
	// ln m = 2 atanh(z), z = (m-1)/(m+1), |z| <= 1/3
	z := new(big.Float).SetPrec(prec).Quo(new(big.Float).SetPrec(prec).Sub(m, bf(1)), new(big.Float).SetPrec(prec).Add(m, bf(1)))
	z2 := new(big.Float).SetPrec(prec).Mul(z, z)
	sum, p := bf(0), new(big.Float).SetPrec(prec).Set(z)
	for n := 1; n < 400; n += 2 {
		sum.Add(sum, new(big.Float).SetPrec(prec).Quo(p, bf(float64(n))))
		p.Mul(p, z2)
	}
	sum.Mul(sum, bf(2))
	return sum.Add(sum, new(big.Float).SetPrec(prec).Mul(bf(float64(e)), ln2))
}

func f64(x *big.Float) float64 { v, _ := x.Float64(); return v }

func exactExp(x float64) float64 { return f64(bigExp(bf(x))) }
func exactLog(x float64) float64 {
	if x == 0 {
		return math.Inf(-1)
	}
	return f64(bigLog(bf(x)))
}
func exactLog1p(x float64) float64 {
	if x == 0 {
		return x
	}
	return f64(bigLog(new(big.Float).SetPrec(prec).Add(bf(1), bf(x))))
}
func exactTanh(x float64) float64 {
	if math.Abs(x) < 1e-30 {
		return x
	}
	e := bigExp(bf(2 * x)) // 2*x is exact
	num := new(big.Float).SetPrec(prec).Sub(e, bf(1))
	return f64(num.Quo(num, new(big.Float).SetPrec(prec).Add(e, bf(1))))
}

const samples = 20000

// ulps is the distance between a and b in units in the last place.
func ulps(a, b float64) uint64 {
	if a == b || math.IsNaN(a) && math.IsNaN(b) {
		return 0
	}
	ia, ib := int64(math.Float64bits(a)), int64(math.Float64bits(b))
	if ia < 0 {
		ia = math.MinInt64 - ia
	}
	if ib < 0 {
		ib = math.MinInt64 - ib
	}
	if ia > ib {
		return uint64(ia - ib)
	}
	return uint64(ib - ia)
}

// TestAgainstMath: every function is within one ulp of the exact result (computed
// with math/big), and on amd64 (no fused instructions, pure Go there) Log1p and Pow
// with an integer exponent are the same bits as the math package's.
func TestAgainstMath(t *testing.T) {
	for _, fn := range funcs {
		t.Run(fn.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			bad := 0
			for _, g := range fn.args {
				for i := 0; i < samples; i++ {
					x := g(r)
					got := fn.f(x)
					if i%40 == 0 { // math/big is slow
						if want := fn.exact(x); ulps(got, want) > 1 {
							if bad++; bad < 10 {
								t.Errorf("%s(%v) = %v, exactly %v (%d ulp)", fn.name, x, got, want, ulps(got, want))
							}
						}
					}
					if fn.same && runtime.GOARCH == "amd64" && math.Float64bits(got) != math.Float64bits(fn.std(x)) {
						if bad++; bad < 10 {
							t.Errorf("%s(%v) = %v, math says %v", fn.name, x, got, fn.std(x))
						}
					}
				}
			}
		})
	}
	t.Run("Pow", func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < samples; i++ {
			x, n := float64(unit(r)*4), float64(r.IntN(3000)-1000)
			got, want := Pow(x, n), math.Pow(x, n)
			if runtime.GOARCH == "amd64" {
				assert.Equal(t, math.Float64bits(want), math.Float64bits(got), "Pow(%v, %v)", x, n)
			}
			if d := ulps(got, want); d > 1 && !(math.IsInf(want, 0) || want == 0) {
				// integer powers accumulate rounding; compare relative error
				assert.InEpsilon(t, want, got, 1e-12, "Pow(%v, %v)", x, n)
			}
			y := float64(unit(r)*20) - 10
			assert.InEpsilon(t, math.Pow(x+0.01, y), Pow(x+0.01, y), 1e-14, "Pow(%v, %v)", x+0.01, y)
		}
	})
}

// negZero is -0 (the literal -0.0 is +0 in Go).
var negZero = math.Copysign(0, -1)

func TestSpecialCases(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	cases := []struct {
		name    string
		f       func(float64) float64
		x, want float64
	}{
		{"Exp", Exp, 0, 1}, {"Exp", Exp, negZero, 1}, {"Exp", Exp, 1, math.E}, {"Exp", Exp, -1, 1 / math.E},
		{"Exp", Exp, inf, inf}, {"Exp", Exp, -inf, 0}, {"Exp", Exp, nan, nan},
		// math.Exp's amd64 assembly overflows from 709.78 on; the largest finite
		// result is at 709.782712893384
		{"Exp", Exp, 709.78, 1.7928227943945155e+308}, {"Exp", Exp, 709.79, inf},
		{"Exp", Exp, -745.13, 5e-324}, {"Exp", Exp, -745.14, 0}, {"Exp", Exp, 1e-300, 1}, {"Exp", Exp, -1e-300, 1},
		{"Log", Log, 0, -inf}, {"Log", Log, negZero, -inf}, {"Log", Log, 1, 0}, {"Log", Log, -1, nan},
		{"Log", Log, inf, inf}, {"Log", Log, -inf, nan}, {"Log", Log, nan, nan}, {"Log", Log, math.E, 1},
		// subnormal (math.Log's amd64 assembly says -709.09 here)
		{"Log", Log, math.SmallestNonzeroFloat64, -744.4400719213812},
		{"Log", Log, math.MaxFloat64, 709.782712893384},
		{"Log1p", Log1p, 0, 0}, {"Log1p", Log1p, negZero, negZero}, {"Log1p", Log1p, -1, -inf}, {"Log1p", Log1p, -2, nan},
		{"Log1p", Log1p, inf, inf}, {"Log1p", Log1p, -inf, nan}, {"Log1p", Log1p, nan, nan},
		{"Log1p", Log1p, 1e-300, 1e-300}, {"Log1p", Log1p, -1e-300, -1e-300}, {"Log1p", Log1p, 1e-10, 9.9999999995e-11},
		{"Log1p", Log1p, math.E - 1, 1}, {"Log1p", Log1p, math.MaxFloat64, 709.782712893384},
		{"Tanh", Tanh, 0, 0}, {"Tanh", Tanh, negZero, negZero}, {"Tanh", Tanh, inf, 1}, {"Tanh", Tanh, -inf, -1},
		{"Tanh", Tanh, nan, nan}, {"Tanh", Tanh, 45, 1}, {"Tanh", Tanh, -45, -1}, {"Tanh", Tanh, 1e-300, 1e-300},
		{"Tanh", Tanh, 0.625, 0.5545997223493823}, {"Tanh", Tanh, -0.625, -0.5545997223493823},
	}
	for _, c := range cases {
		got := c.f(c.x)
		if math.IsNaN(c.want) {
			assert.True(t, math.IsNaN(got), "%s(%v) = %v, want NaN", c.name, c.x, got)
			continue
		}
		assert.LessOrEqual(t, ulps(got, c.want), uint64(1), "%s(%v) = %v, want %v", c.name, c.x, got, c.want)
		assert.Equal(t, math.Signbit(c.want), math.Signbit(got), "%s(%v) sign", c.name, c.x)
	}
	for _, c := range [][2]float64{{0, 0}, {2, 0.5}, {2, -0.5}, {-2, 3}, {-2, 0.5}, {0, -1}, {negZero, -3}, {negZero, 3}, {inf, -1}, {-inf, 3}, {-inf, -3}, {0.5, inf}, {2, -inf}, {-1, inf}, {nan, 2}, {2, nan}, {1, nan}, {2, 1e30}, {-1, 1e30}, {0.5, 1e30}} {
		got, want := Pow(c[0], c[1]), math.Pow(c[0], c[1])
		if math.IsNaN(want) {
			assert.True(t, math.IsNaN(got), "Pow(%v, %v)", c[0], c[1])
			continue
		}
		assert.Equal(t, want, got, "Pow(%v, %v)", c[0], c[1])
		assert.Equal(t, math.Signbit(want), math.Signbit(got), "Pow(%v, %v) sign", c[0], c[1])
	}
}

// goldenDigest is the sha256 of the bits of every function on the inputs of
// digest. It was computed on linux/amd64; internal/crossarch runs this test for
// linux/arm64 under qemu, where it must come out the same: that is the promise
// of the package. A change of the inputs or of a function changes it on purpose.
const goldenDigest = "eebdd4c73d614fa8c1ae7371b0c3c5d847453bdf7f43c87aaa126f5923389f06"

// digest hashes the results of every function on deterministic inputs.
func digest() string {
	h := sha256.New()
	var b [8]byte
	put := func(v float64) {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	for _, fn := range funcs {
		r := rand.New(rand.NewPCG(11, 12))
		for _, g := range fn.args {
			for i := 0; i < samples; i++ {
				put(fn.f(g(r)))
			}
		}
	}
	r := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < samples; i++ {
		x := float64(unit(r) * 4)
		put(Pow(x, float64(r.IntN(3000)-1000)))
		put(Pow(x, float64(unit(r)*20)-10))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestSameBitsEverywhere(t *testing.T) {
	assert.Equal(t, goldenDigest, digest(), "fpmath results changed on %s/%s", runtime.GOOS, runtime.GOARCH)
}
