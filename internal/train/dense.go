package train

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"

	"github.com/mlship/mlship/internal/fpmath"
	"github.com/mlship/mlship/internal/model"
)

// denseNet trains a dense network (model.KindMLP) without gorgonia: the forward
// pass, the loss and the backward pass written out over flat row-major buffers
// allocated once. Profiling the 100k-row benchmark showed about half of a
// gorgonia step outside the arithmetic (the tape machine's dispatch, reflection,
// shape checks, broadcasting, the relu's mask tensors); here a step is the
// matrix products (portableBLAS, whose rows spread over goroutines for large
// products without changing any entry) and one pass over each layer's values.
//
// It computes the same loss and gradients as the graph of newNet (the tests
// compare them: TestDenseNetMatchesGraph), with the same portability rules: no
// product is added to unrounded (float64(x*y)), the nonlinear functions are
// internal/fpmath's (softplus, sigmoid, tanh, log-softmax of ops.go), the
// products are portableBLAS's. So a training run gives the same bits on every
// GOARCH and for any core count; the bits differ from the graph's only in the
// order of a few sums (a bias gradient is summed over the batch in row order).
type denseNet struct {
	cfg   fitConfig
	specs []model.Param
	sizes []int // layer widths: inputs, hidden..., outputs
	B     int

	xBuf, tBuf, wBuf []float64 // the batch: rows, weighted targets, row weights

	w, b   [][]float64 // per layer l (0-based): weights (sizes[l] x sizes[l+1]) and biases
	gw, gb [][]float64 // their gradients
	z      [][]float64 // per layer: B x sizes[l+1], pre-activation, then activation in place (hidden)
	dz     [][]float64 // per layer: B x sizes[l+1], gradient of the loss w.r.t. z
	adamM  [][]float64 // per param in specs order
	adamV  [][]float64
	step   int
}

func newDenseNet(cfg fitConfig, init [][]float64) (*denseNet, error) {
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
	n := &denseNet{cfg: cfg, specs: specs, B: B}
	n.sizes = append(append([]int{spec.Inputs}, spec.Hidden...), spec.Outputs)
	n.xBuf = make([]float64, B*spec.Inputs)
	n.tBuf = make([]float64, B*spec.Outputs)
	n.wBuf = make([]float64, B)
	for l := 0; l < nl; l++ {
		in, out := n.sizes[l], n.sizes[l+1]
		if len(init[2*l]) != in*out || len(init[2*l+1]) != out {
			return nil, fmt.Errorf("mlp engine: layer %d: initial values of the wrong size", l)
		}
		n.w = append(n.w, append([]float64(nil), init[2*l]...))
		n.b = append(n.b, append([]float64(nil), init[2*l+1]...))
		n.gw = append(n.gw, make([]float64, in*out))
		n.gb = append(n.gb, make([]float64, out))
		n.z = append(n.z, make([]float64, B*out))
		n.dz = append(n.dz, make([]float64, B*out))
	}
	for _, p := range specs {
		n.adamM = append(n.adamM, make([]float64, p.Size()))
		n.adamV = append(n.adamV, make([]float64, p.Size()))
	}
	return n, nil
}

// forward computes every layer's values for the batch in xBuf: z[l] holds the
// activations of hidden layers and the logits of the output layer.
func (n *denseNet) forward() {
	usePortableBLAS() // the same products as the graph's (and as the tests check)
	var bl portableBLAS
	h := n.xBuf
	last := len(n.w) - 1
	for l := range n.w {
		in, out := n.sizes[l], n.sizes[l+1]
		z := n.z[l]
		bl.Dgemm(blas.NoTrans, blas.NoTrans, n.B, out, in, 1, h, in, n.w[l], out, 0, z, out)
		bias := n.b[l]
		for r := 0; r < n.B; r++ {
			row := z[r*out : (r+1)*out]
			for j := range row {
				row[j] += bias[j]
			}
		}
		if l < last {
			switch n.cfg.Net.Activation {
			case "relu":
				for i, v := range z {
					// without a branch (half of them are negative, in no
					// pattern); NaN stays NaN and ends the run
					z[i] = max(v, 0)
				}
			case "tanh":
				for i, v := range z {
					z[i] = fpmath.Tanh(v)
				}
			}
		}
		h = z
	}
}

// lossAndGrad returns the batch loss (the graph's: a weighted sum) and writes
// its gradient w.r.t. the output layer's logits into the last dz.
func (n *denseNet) lossAndGrad() float64 {
	last := len(n.w) - 1
	zs, dz := n.z[last], n.dz[last]
	outs := n.sizes[last+1]
	loss := 0.0
	switch n.cfg.Net.Output {
	case model.OutputSigmoid:
		// softplus(z)*w - t*z; its derivative w*sigmoid(z) - t
		for i, z := range zs {
			w, t := n.wBuf[i], n.tBuf[i]
			loss += float64(w*softplus(z)) - float64(t*z)
			dz[i] = float64(w*sigmoid(z)) - t
		}
	case model.OutputSoftmax:
		// -sum t*logsoftmax(z); its derivative exp(ls)*sum(t) - t
		ls := make([]float64, outs)
		for r := 0; r < n.B; r++ {
			row, t, d := zs[r*outs:(r+1)*outs], n.tBuf[r*outs:(r+1)*outs], dz[r*outs:(r+1)*outs]
			logSoftmaxRow(row, ls)
			s := 0.0
			for j, tj := range t {
				loss -= float64(tj * ls[j])
				s += tj
			}
			for j, tj := range t {
				d[j] = float64(fpmath.Exp(ls[j])*s) - tj
			}
		}
	case model.OutputLinear:
		// w*(z-t)^2; its derivative 2*w*(z-t)
		for i, z := range zs {
			d := z - n.tBuf[i]
			loss += float64(n.wBuf[i] * float64(d*d))
			dz[i] = float64(n.wBuf[i]*d) * 2
		}
	}
	return loss
}

// backward computes the gradients of every weight and bias from the last dz.
func (n *denseNet) backward() {
	var bl portableBLAS
	for l := len(n.w) - 1; l >= 0; l-- {
		in, out := n.sizes[l], n.sizes[l+1]
		h := n.xBuf
		if l > 0 {
			h = n.z[l-1]
		}
		dz := n.dz[l]
		// dW = h^T dz, db = the column sums of dz (rows in order)
		bl.Dgemm(blas.Trans, blas.NoTrans, in, out, n.B, 1, h, in, dz, out, 0, n.gw[l], out)
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
		bl.Dgemm(blas.NoTrans, blas.Trans, n.B, in, out, 1, dz, out, n.w[l], out, 0, dh, in)
		switch n.cfg.Net.Activation {
		case "relu":
			// dh where the unit was active (y > 0), else +0, without a branch
			for i, y := range h {
				var keep uint64
				if y > 0 {
					keep = ^uint64(0)
				}
				dh[i] = math.Float64frombits(math.Float64bits(dh[i]) & keep)
			}
		case "tanh":
			for i, y := range h {
				dh[i] *= 1 - float64(y*y)
			}
		}
	}
}

// runStep runs forward and backward on the batch in the buffers and applies one
// Adam update, as net.runStep does. It returns the batch loss.
func (n *denseNet) runStep() (float64, error) {
	n.forward()
	loss := n.lossAndGrad()
	n.backward()
	n.step++
	cfg := n.cfg
	// Adam, exactly as net.runStep (see there).
	c2 := math.Sqrt(1 - fpmath.Pow(cfg.Beta2, float64(n.step)))
	lrT := cfg.LearningRate * c2 / (1 - fpmath.Pow(cfg.Beta1, float64(n.step)))
	epsT := float64(cfg.Epsilon * c2)
	b1, b2 := cfg.Beta1, cfg.Beta2
	for i := range n.specs {
		w, grad := n.w[i/2], n.gw[i/2]
		if i%2 == 1 {
			w, grad = n.b[i/2], n.gb[i/2]
		}
		m, v := n.adamM[i], n.adamV[i]
		for j, gj := range grad {
			mj := float64(b1*m[j]) + float64((1-b1)*gj)
			vj := float64(b2*v[j]) + float64((1-b2)*gj*gj)
			m[j], v[j] = mj, vj
			w[j] -= lrT * mj / (math.Sqrt(vj) + epsT)
		}
	}
	return loss, nil
}

func (n *denseNet) buffers() (x, t, w []float64) { return n.xBuf, n.tBuf, n.wBuf }
func (n *denseNet) close()                       {}

// export copies the current weights out in the file layout.
func (n *denseNet) export() map[string]model.Tensor {
	out := make(map[string]model.Tensor, len(n.specs))
	for i, spec := range n.specs {
		src := n.w[i/2]
		if i%2 == 1 {
			src = n.b[i/2]
		}
		out[spec.Name] = model.Tensor{Shape: append([]int(nil), spec.Shape...), Data: append([]float64(nil), src...)}
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
	if cfg.Net.Kind != model.KindCNN && len(cfg.Net.Conv) == 0 && !cfg.Graph {
		return newDenseNet(cfg, init)
	}
	return newNet(cfg, init, false)
}
