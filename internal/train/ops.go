package train

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/mlship/mlship/internal/fpmath"
)

// The graph's nonlinear functions are mlship's own gorgonia ops, computed with
// internal/fpmath: gorgonia's Tanh, Softplus (and its derivative, Sigmoid) and
// LogSoftMax call math.Tanh, math.Exp, math.Log1p and math.Log, whose results
// differ between architectures (assembly on amd64 and arm64, fused multiply-adds
// on arm64), and LogSoftMax's derivative is itself a fusable g - exp(y)*s. With
// these, the products (portableBLAS) and gorgonia's elementwise + - * (one
// IEEE 754 operation per element), a training step computes the same bits on
// every GOARCH.

// opKind names a portableOp.
type opKind int

const (
	opTanh           opKind = iota // tanh(x)
	opTanhGrad                     // (y, g) -> g * (1 - y*y), y = tanh(x)
	opSoftplus                     // log(1 + exp(x))
	opSoftplusGrad                 // (x, g) -> g * sigmoid(x)
	opLogSoftmax                   // x - log(sum(exp(x))) along the last axis
	opLogSoftmaxGrad               // (y, g) -> g - exp(y) * sum(g) along the last axis, y = logsoftmax(x)
)

var opNames = [...]string{"tanh", "tanhGrad", "softplus", "softplusGrad", "logSoftmax", "logSoftmaxGrad"}

// portableOp is a gorgonia op on float64 tensors of any shape whose output has
// the shape of its first input. A value of it is comparable (gorgonia compares
// ops) and its hash is its name, so equal ops on equal inputs are one node.
type portableOp struct{ kind opKind }

func pTanh(x *G.Node) (*G.Node, error)       { return G.ApplyOp(portableOp{opTanh}, x) }
func pSoftplus(x *G.Node) (*G.Node, error)   { return G.ApplyOp(portableOp{opSoftplus}, x) }
func pLogSoftmax(x *G.Node) (*G.Node, error) { return G.ApplyOp(portableOp{opLogSoftmax}, x) }

func (o portableOp) Arity() int {
	switch o.kind {
	case opTanhGrad, opSoftplusGrad, opLogSoftmaxGrad:
		return 2
	}
	return 1
}

func (o portableOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	if o.Arity() == 2 {
		return hm.NewFnType(a, a, a)
	}
	return hm.NewFnType(a, a)
}

func (o portableOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != o.Arity() {
		return nil, fmt.Errorf("%v: %d inputs, want %d", o, len(in), o.Arity())
	}
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input shape is a %T", o, in[0])
	}
	if o.Arity() == 2 {
		if s2, ok := in[1].(tensor.Shape); !ok || !s.Eq(s2) {
			return nil, fmt.Errorf("%v: input shapes %v and %v differ", o, s, in[1])
		}
	}
	return s.Clone(), nil
}

func (o portableOp) ReturnsPtr() bool      { return false }
func (o portableOp) CallsExtern() bool     { return false }
func (o portableOp) OverwritesInput() int  { return -1 }
func (o portableOp) String() string        { return "mlship." + opNames[o.kind] }
func (o portableOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }
func (o portableOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// Do computes the op into a new tensor.
func (o portableOp) Do(in ...G.Value) (G.Value, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%v: no inputs", o)
	}
	out := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(in[0].Shape().Clone()...))
	return o.UsePreallocDo(out, in...)
}

// UsePreallocDo computes the op into prealloc when it is a float64 tensor of the
// output's shape (the tape machine's register from the last step), else into a
// new tensor. prealloc may be one of the inputs: every output element is written
// only after the inputs it depends on were read.
func (o portableOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != o.Arity() {
		return nil, fmt.Errorf("%v: %d inputs, want %d", o, len(in), o.Arity())
	}
	args := make([][]float64, len(in))
	for i, v := range in {
		d, err := float64s(v)
		if err != nil {
			return nil, fmt.Errorf("%v: input %d: %w", o, i, err)
		}
		if i > 0 && len(d) != len(args[0]) {
			return nil, fmt.Errorf("%v: inputs of %d and %d values", o, len(args[0]), len(d))
		}
		args[i] = d
	}
	shape := in[0].Shape()
	dst, ok := prealloc.(*tensor.Dense)
	if !ok || dst.Dtype() != tensor.Float64 || !dst.Shape().Eq(shape) || dst.RequiresIterator() {
		dst = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape.Clone()...))
	}
	out := dst.Data().([]float64)
	if len(out) != len(args[0]) {
		return nil, fmt.Errorf("%v: output of %d values for an input of %d", o, len(out), len(args[0]))
	}
	x := args[0]
	switch o.kind {
	case opTanh:
		for i, v := range x {
			out[i] = fpmath.Tanh(v)
		}
	case opTanhGrad:
		g := args[1]
		for i, y := range x {
			out[i] = g[i] * (1 - float64(y*y))
		}
	case opSoftplus:
		for i, v := range x {
			out[i] = softplus(v)
		}
	case opSoftplusGrad:
		g := args[1]
		for i, v := range x {
			out[i] = g[i] * sigmoid(v)
		}
	case opLogSoftmax, opLogSoftmaxGrad:
		n := 1
		if dims := shape.Dims(); dims > 0 {
			n = shape[dims-1]
		}
		if n == 0 {
			break
		}
		for r := 0; r+n <= len(x); r += n {
			if o.kind == opLogSoftmax {
				logSoftmaxRow(x[r:r+n], out[r:r+n])
			} else {
				logSoftmaxGradRow(x[r:r+n], args[1][r:r+n], out[r:r+n])
			}
		}
	}
	return dst, nil
}

// float64s returns the values of a contiguous float64 tensor.
func float64s(v G.Value) ([]float64, error) {
	if t, ok := v.(*tensor.Dense); ok && t.RequiresIterator() {
		return nil, fmt.Errorf("a non-contiguous tensor of shape %v", t.Shape())
	}
	d, ok := v.Data().([]float64)
	if !ok {
		return nil, fmt.Errorf("%v values, want float64", v.Dtype())
	}
	n := v.Shape().TotalSize()
	if len(d) < n {
		return nil, fmt.Errorf("%d values for shape %v", len(d), v.Shape())
	}
	return d[:n], nil
}

// softplus is log(1 + e**x), as max(x, 0) + log1p(e**-|x|) so that it neither
// overflows nor loses the small term.
func softplus(x float64) float64 {
	return max(x, 0) + fpmath.Log1p(fpmath.Exp(-math.Abs(x)))
}

// sigmoid is 1/(1 + e**-x), the same function as the predictor's.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + fpmath.Exp(-z))
	}
	e := fpmath.Exp(z)
	return e / (1 + e)
}

// logSoftmaxRow writes x - max(x) - log(sum(exp(x - max(x)))) into out.
func logSoftmaxRow(x, out []float64) {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = max(mx, v)
	}
	sum := 0.0
	for _, v := range x {
		sum += fpmath.Exp(v - mx)
	}
	lse := fpmath.Log(sum)
	for i, v := range x {
		out[i] = (v - mx) - lse
	}
}

// logSoftmaxGradRow writes g - exp(y)*sum(g) into out: the gradient of the row's
// log-softmax x -> y at x, given g, the gradient at y.
func logSoftmaxGradRow(y, g, out []float64) {
	s := 0.0
	for _, v := range g {
		s += v
	}
	for i, v := range y {
		out[i] = g[i] - float64(fpmath.Exp(v)*s)
	}
}

// DiffWRT says the unary ops are differentiable in their input (the gradient ops
// are not differentiated).
func (o portableOp) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for i := range d {
		d[i] = o.Arity() == 1
	}
	return d
}

// SymDiff returns the gradient of the input from the output and its gradient.
func (o portableOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v is not differentiable", o)
	}
	var d *G.Node
	var err error
	switch o.kind {
	case opTanh:
		d, err = G.ApplyOp(portableOp{opTanhGrad}, output, grad)
	case opSoftplus:
		d, err = G.ApplyOp(portableOp{opSoftplusGrad}, inputs[0], grad)
	case opLogSoftmax:
		d, err = G.ApplyOp(portableOp{opLogSoftmaxGrad}, output, grad)
	default:
		return nil, fmt.Errorf("%v is not differentiable", o)
	}
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}
