package train

import (
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/mlship/mlship/internal/fpmath"
	"github.com/mlship/mlship/internal/kernels"
	"github.com/mlship/mlship/internal/model"
)

// denseNet trains a dense network (model.KindMLP) without gorgonia: the forward
// pass, the loss and the backward pass written out over flat row-major buffers
// allocated once. Profiling the 100k-row benchmark showed about half of a
// gorgonia step outside the arithmetic (the tape machine's dispatch, reflection,
// shape checks, broadcasting, the relu's mask tensors); here a step is the
// matrix products (gemmT, whose rows spread over goroutines for large products
// without changing any entry) and one pass over each layer's values.
//
// T is the arithmetic's type: float64 (the default), or float32 (--dtype
// float32: the weights, activations, gradients and Adam's moments in float32;
// the nonlinear functions are computed in float64 from float32 values and
// rounded to float32; the loss is summed in float64).
//
// At float64 it computes the same loss and gradients as the graph of newNet
// (the tests compare them: TestDenseNetMatchesGraph), with the same portability
// rules, which hold for float32 too: no product is added to unrounded (T(x*y)),
// the nonlinear functions are internal/fpmath's (softplus, sigmoid, tanh,
// log-softmax of ops.go), the products are gemmT's. So a training run gives the
// same bits on every GOARCH and for any core count; at float64 the bits differ
// from the graph's only in the order of a few sums (a bias gradient is summed
// over the batch in row order).
type denseNet[T float] struct {
	cfg   fitConfig
	specs []model.Param
	sizes []int // layer widths: inputs, hidden..., outputs
	B     int

	// The batch as fit writes it (rows, weighted targets, row weights), and
	// as the arithmetic reads it: the same slices at float64, converted
	// copies at float32.
	xBuf, tBuf, wBuf []float64
	x, t, wt         []T

	w, b   [][]T // per layer l (0-based): weights (sizes[l] x sizes[l+1]) and biases
	gw, gb [][]T // their gradients
	z      [][]T // per layer: B x sizes[l+1], pre-activation, then activation in place (hidden)
	dz     [][]T // per layer: B x sizes[l+1], gradient of the loss w.r.t. z
	adamM  [][]T // per param in specs order
	adamV  [][]T
	ls     []float64 // scratch: a row of logits, then its log-softmax
	step   int
}

// newDenseNet builds the float64 engine; newDenseNetT any.
func newDenseNet(cfg fitConfig, init [][]float64) (*denseNet[float64], error) {
	return newDenseNetT[float64](cfg, init)
}

func newDenseNetT[T float](cfg fitConfig, init [][]float64) (*denseNet[T], error) {
	spec := cfg.Net
	if spec.Kind == model.KindCNN || len(spec.Conv) > 0 {
		return nil, fmt.Errorf("mlp engine: network %s has convolutions", spec)
	}
	specs := spec.Params()
	nl := len(spec.Hidden) + 1
	if len(specs) != 2*nl || len(init) != len(specs) {
		return nil, fmt.Errorf("mlp engine: %d params for %d layers", len(specs), nl)
	}
	B := cfg.BatchSize
	n := &denseNet[T]{cfg: cfg, specs: specs, B: B}
	n.sizes = append(append([]int{spec.Inputs}, spec.Hidden...), spec.Outputs)
	n.xBuf = make([]float64, B*spec.Inputs)
	n.tBuf = make([]float64, B*spec.Outputs)
	n.wBuf = make([]float64, B)
	if is64[T]() {
		n.x, n.t, n.wt = sameSlice[T](n.xBuf), sameSlice[T](n.tBuf), sameSlice[T](n.wBuf)
	} else {
		n.x, n.t, n.wt = make([]T, len(n.xBuf)), make([]T, len(n.tBuf)), make([]T, len(n.wBuf))
	}
	n.ls = make([]float64, 2*spec.Outputs)
	conv := func(v []float64) []T {
		out := make([]T, len(v))
		convert(out, v)
		return out
	}
	for l := 0; l < nl; l++ {
		in, out := n.sizes[l], n.sizes[l+1]
		if len(init[2*l]) != in*out || len(init[2*l+1]) != out {
			return nil, fmt.Errorf("mlp engine: layer %d: initial values of the wrong size", l)
		}
		n.w = append(n.w, conv(init[2*l]))
		n.b = append(n.b, conv(init[2*l+1]))
		n.gw = append(n.gw, make([]T, in*out))
		n.gb = append(n.gb, make([]T, out))
		n.z = append(n.z, make([]T, B*out))
		n.dz = append(n.dz, make([]T, B*out))
	}
	for _, p := range specs {
		n.adamM = append(n.adamM, make([]T, p.Size()))
		n.adamV = append(n.adamV, make([]T, p.Size()))
	}
	return n, nil
}

// sameSlice is v as a []T when T is float64 (is64): the same memory.
func sameSlice[T float](v []float64) []T {
	if !is64[T]() {
		panic("sameSlice: T is not float64")
	}
	return *(*[]T)(unsafe.Pointer(&v))
}

// load converts the batch fit wrote into the arithmetic's buffers (float32 only:
// at float64 they are the same slices).
func (n *denseNet[T]) load() {
	if is64[T]() {
		return
	}
	convert(n.x, n.xBuf)
	convert(n.t, n.tBuf)
	convert(n.wt, n.wBuf)
}

// convert copies src into dst, each value rounded to T.
func convert[T float](dst []T, src []float64) {
	for i, v := range src {
		dst[i] = T(v)
	}
}

// forward computes every layer's values for the batch in x: z[l] holds the
// activations of hidden layers and the logits of the output layer.
func (n *denseNet[T]) forward() {
	h := n.x
	last := len(n.w) - 1
	for l := range n.w {
		in, out := n.sizes[l], n.sizes[l+1]
		z := n.z[l]
		gemmT(false, false, n.B, out, in, 1, h, in, n.w[l], out, 0, z, out)
		// + the bias: 1*b is b exactly, so axpy adds it as row[j] += b[j]
		bias := n.b[l]
		for r := 0; r < n.B; r++ {
			kernels.Axpy(1, bias, z[r*out:(r+1)*out])
		}
		if l < last {
			switch n.cfg.Net.Activation {
			case "relu":
				relu(z)
			case "tanh":
				for i, v := range z {
					z[i] = T(fpmath.Tanh(float64(v)))
				}
			}
		}
		h = z
	}
}

// lossAndGrad returns the batch loss (the graph's: a weighted sum, in float64)
// and writes its gradient w.r.t. the output layer's logits into the last dz.
func (n *denseNet[T]) lossAndGrad() float64 {
	last := len(n.w) - 1
	zs, dz := n.z[last], n.dz[last]
	outs := n.sizes[last+1]
	loss := 0.0
	switch n.cfg.Net.Output {
	case model.OutputSigmoid:
		// softplus(z)*w - t*z; its derivative w*sigmoid(z) - t
		for i, z := range zs {
			w, t := n.wt[i], n.t[i]
			zf, wf, tf := float64(z), float64(w), float64(t)
			loss += float64(wf*softplus(zf)) - float64(tf*zf)
			dz[i] = T(w*T(sigmoid(zf))) - t
		}
	case model.OutputSoftmax:
		// -sum t*logsoftmax(z); its derivative exp(ls)*sum(t) - t
		row, ls := n.ls[:outs], n.ls[outs:]
		for r := 0; r < n.B; r++ {
			for j, v := range zs[r*outs : (r+1)*outs] {
				row[j] = float64(v)
			}
			t, d := n.t[r*outs:(r+1)*outs], dz[r*outs:(r+1)*outs]
			logSoftmaxRow(row, ls)
			s := 0.0
			for j, tj := range t {
				loss -= float64(float64(tj) * ls[j])
				s += float64(tj)
			}
			for j, tj := range t {
				d[j] = T(fpmath.Exp(ls[j])*s) - tj
			}
		}
	case model.OutputLinear:
		// w*(z-t)^2; its derivative 2*w*(z-t)
		for i, z := range zs {
			d := z - n.t[i]
			df := float64(d)
			loss += float64(float64(n.wt[i]) * float64(df*df))
			dz[i] = T(n.wt[i]*d) * 2
		}
	}
	return loss
}

// backward computes the gradients of every weight and bias from the last dz.
func (n *denseNet[T]) backward() {
	for l := len(n.w) - 1; l >= 0; l-- {
		in, out := n.sizes[l], n.sizes[l+1]
		h := n.x
		if l > 0 {
			h = n.z[l-1]
		}
		dz := n.dz[l]
		// dW = h^T dz, db = the column sums of dz (rows in order)
		gemmT(true, false, in, out, n.B, 1, h, in, dz, out, 0, n.gw[l], out)
		gb := n.gb[l]
		clear(gb)
		for r := 0; r < n.B; r++ {
			for j, v := range dz[r*out : (r+1)*out] {
				gb[j] += v
			}
		}
		if l == 0 {
			break
		}
		// dh = dz W^T, then through the activation of layer l-1 (h holds its output)
		dh := n.dz[l-1]
		gemmT(false, true, n.B, in, out, 1, dz, out, n.w[l], out, 0, dh, in)
		switch n.cfg.Net.Activation {
		case "relu":
			reluGrad(h, dh)
		case "tanh":
			for i, y := range h {
				dh[i] *= 1 - T(y*y)
			}
		}
	}
}

// relu sets z[i] = max(z[i], 0) (Go's max: -0 becomes +0, NaN stays NaN and ends
// the run) on the bits, without a branch: half of the values are negative, in no
// pattern a branch predictor could learn, and Go compiles max with branches.
func relu[T float](z []T) {
	if is64[T]() {
		relu64(*(*[]float64)(unsafe.Pointer(&z)))
		return
	}
	relu32(*(*[]float32)(unsafe.Pointer(&z)))
}

func relu64(z []float64) {
	for i, v := range z {
		u := math.Float64bits(v)
		neg := uint64(int64(u) >> 63)                               // sign set
		nan := uint64(int64(0x7ff0000000000000-(u&^(1<<63))) >> 63) // NaN
		z[i] = math.Float64frombits(u &^ (neg &^ nan))
	}
}

func relu32(z []float32) {
	for i, v := range z {
		u := math.Float32bits(v)
		neg := uint32(int32(u) >> 31)
		nan := uint32(int32(0x7f800000-(u&^(1<<31))) >> 31)
		z[i] = math.Float32frombits(u &^ (neg &^ nan))
	}
}

// reluGrad keeps dh where the unit was active (y > 0), else makes it +0, without
// a branch: y > 0 exactly when its bits minus one are below +Inf's (zeros wrap
// around, negatives have the sign bit, NaNs are above +Inf).
func reluGrad[T float](h, dh []T) {
	if is64[T]() {
		reluGrad64(*(*[]float64)(unsafe.Pointer(&h)), *(*[]float64)(unsafe.Pointer(&dh)))
		return
	}
	reluGrad32(*(*[]float32)(unsafe.Pointer(&h)), *(*[]float32)(unsafe.Pointer(&dh)))
}

func reluGrad64(h, dh []float64) {
	dh = dh[:len(h)]
	for i, y := range h {
		_, below := bits.Sub64(math.Float64bits(y)-1, 0x7ff0000000000000, 0)
		dh[i] = math.Float64frombits(math.Float64bits(dh[i]) & -below)
	}
}

func reluGrad32(h, dh []float32) {
	dh = dh[:len(h)]
	for i, y := range h {
		_, below := bits.Sub32(math.Float32bits(y)-1, 0x7f800000, 0)
		dh[i] = math.Float32frombits(math.Float32bits(dh[i]) & -below)
	}
}

// runStep runs forward and backward on the batch in the buffers and applies one
// Adam update, as net.runStep does. It returns the batch loss.
func (n *denseNet[T]) runStep() (float64, error) {
	n.load()
	n.forward()
	loss := n.lossAndGrad()
	n.backward()
	n.step++
	cfg := n.cfg
	// Adam, exactly as net.runStep (see there); the step's constants are
	// computed in float64, then rounded to T.
	c2 := math.Sqrt(1 - fpmath.Pow(cfg.Beta2, float64(n.step)))
	lrT := T(cfg.LearningRate * c2 / (1 - fpmath.Pow(cfg.Beta1, float64(n.step))))
	epsT := T(float64(cfg.Epsilon * c2))
	b1, b2 := T(cfg.Beta1), T(cfg.Beta2)
	for i := range n.specs {
		w, grad := n.w[i/2], n.gw[i/2]
		if i%2 == 1 {
			w, grad = n.b[i/2], n.gb[i/2]
		}
		m, v := n.adamM[i], n.adamV[i]
		for j, gj := range grad {
			mj := T(b1*m[j]) + T((1-b1)*gj)
			vj := T(b2*v[j]) + T((1-b2)*gj*gj)
			m[j], v[j] = mj, vj
			w[j] -= lrT * mj / (T(math.Sqrt(float64(vj))) + epsT)
		}
	}
	return loss, nil
}

func (n *denseNet[T]) buffers() (x, t, w []float64) { return n.xBuf, n.tBuf, n.wBuf }
func (n *denseNet[T]) close()                       {}

// export copies the current weights out in the file layout (float32 values are
// exact in float64).
func (n *denseNet[T]) export() map[string]model.Tensor {
	out := make(map[string]model.Tensor, len(n.specs))
	for i, spec := range n.specs {
		src := n.w[i/2]
		if i%2 == 1 {
			src = n.b[i/2]
		}
		data := make([]float64, len(src))
		for j, v := range src {
			data[j] = float64(v)
		}
		out[spec.Name] = model.Tensor{Shape: append([]int(nil), spec.Shape...), Data: data}
	}
	return out
}

// engine is what fit trains with: denseNet for dense networks, the gorgonia graph
// (net) for convolutional ones or when fitConfig.Graph asks for it.
type engine interface {
	buffers() (x, t, w []float64)
	runStep() (float64, error)
	export() map[string]model.Tensor
	close()
}

func (n *net) buffers() (x, t, w []float64) { return n.xBuf, n.tBuf, n.wBuf }
func (n *net) close()                       { n.vm.Close() }

// newEngine builds the engine for cfg.
func newEngine(cfg fitConfig, init [][]float64) (engine, error) {
	dense := cfg.Net.Kind != model.KindCNN && len(cfg.Net.Conv) == 0
	switch {
	case cfg.DType == DTypeFloat32 && dense:
		return newDenseNetT[float32](cfg, init)
	case cfg.DType == DTypeFloat32:
		return nil, fmt.Errorf("dtype %s: only dense networks (mlp) train in float32", cfg.DType)
	case dense && !cfg.Graph:
		return newDenseNet(cfg, init)
	}
	return newNet(cfg, init, false)
}
