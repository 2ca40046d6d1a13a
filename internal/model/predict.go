package model

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/fpmath"
	"github.com/mlship/mlship/internal/kernels"
)

// Model is a loaded model directory: its card and weights, ready to predict in pure
// Go. A Model is safe for concurrent use; each goroutine needs its own Scratch.
// Predictions are the same bits on every GOARCH: products are rounded before they
// are added (float64(x*y), which no architecture may fuse into an FMA
// instruction) and exp and tanh are internal/fpmath's.
type Model struct {
	Card   *Card
	Dir    string
	inputs []Input // the card's features and where they enter the network
	onehot bool    // some feature is categorical: raw rows are expanded
	convs  []convLayer
	dense  []denseLayer
	tanh   bool // the hidden activation: tanh, else relu
}

type convLayer struct {
	w        []float64 // filters x channels x k x k
	b        []float64
	c, h, w0 int          // input shape
	f, k, p  int          // filters, kernel, pool
	nz       []kernels.NZ // per filter: its non-zero weights
}

type denseLayer struct {
	w       []float64 // in x out, row-major
	b       []float64
	in, out int
}

// Load reads a model directory, verifies it like ReadCard (the weights' sha256
// and metrics.json against the card) and builds the predictor.
func Load(dir string) (*Model, error) {
	card, err := readCard(dir)
	if err != nil {
		return nil, err
	}
	wp := filepath.Join(dir, card.Weights.File)
	raw, err := os.ReadFile(wp)
	if err != nil {
		return nil, weightsOpenError(dir, wp, err)
	}
	sum := sha256.Sum256(raw)
	if err := checkWeightsSum(dir, wp, card, sum[:]); err != nil {
		return nil, err
	}
	if err := checkMetricsFile(dir, card); err != nil {
		return nil, err
	}
	tensors, _, err := DecodeSafetensors(raw)
	if err != nil {
		return nil, fmt.Errorf("reading weights %q: %w", wp, err)
	}
	m, err := New(card, tensors)
	if err != nil {
		return nil, fmt.Errorf("reading model %q: %w", dir, err)
	}
	m.Dir = dir
	return m, nil
}

// New builds a Model from a card and its tensors (checked against the network spec).
func New(card *Card, tensors map[string]Tensor) (*Model, error) {
	n := card.Network
	if err := n.Validate(); err != nil {
		return nil, err
	}
	get := func(p Param) ([]float64, error) {
		t, ok := tensors[p.Name]
		if !ok {
			return nil, fmt.Errorf("weights: tensor %q is missing", p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return nil, fmt.Errorf("weights: tensor %q has shape %v, the network needs %v", p.Name, t.Shape, p.Shape)
		}
		return t.Data, nil
	}
	m := &Model{Card: card}
	inputs, width, err := card.Layout()
	if err != nil {
		return nil, fmt.Errorf("card: %w", err)
	}
	if len(card.Categories) > 0 && width != n.Inputs {
		return nil, fmt.Errorf("card: %d features make %d inputs (categorical ones one-hot) but the network takes %d", len(card.Features), width, n.Inputs)
	}
	m.inputs, m.onehot = inputs, len(card.Categories) > 0
	m.tanh = n.Activation == "tanh"
	params := n.Params()
	if len(tensors) != len(params) {
		return nil, fmt.Errorf("weights: %d tensors, the network has %d", len(tensors), len(params))
	}
	shapes, flat := n.ConvShapes()
	i := 0
	for li, l := range n.Conv {
		w, err := get(params[i])
		if err != nil {
			return nil, err
		}
		b, err := get(params[i+1])
		if err != nil {
			return nil, err
		}
		i += 2
		s := shapes[li]
		c := convLayer{w: w, b: b, c: s[0], h: s[1], w0: s[2], f: l.Filters, k: l.Kernel, p: l.Pool}
		ckk := c.c * c.k * c.k
		for f := 0; f < c.f; f++ {
			c.nz = append(c.nz, kernels.NonZeros(w[f*ckk:(f+1)*ckk], make([]int, ckk)))
		}
		m.convs = append(m.convs, c)
	}
	in := flat
	for i < len(params) {
		w, err := get(params[i])
		if err != nil {
			return nil, err
		}
		b, err := get(params[i+1])
		if err != nil {
			return nil, err
		}
		out := params[i+1].Shape[0]
		m.dense = append(m.dense, denseLayer{w: w, b: b, in: in, out: out})
		in = out
		i += 2
	}
	if dataset.Task(card.Task) == dataset.Regression && card.TargetScale == nil {
		return nil, fmt.Errorf("card: a regression model needs target_scale")
	}
	return m, nil
}

// activate applies the hidden activation to v in place: tanh, or relu (x where
// x > 0, else +0; NaN too), the latter on the bits without a branch (half of the
// values are negative, in no pattern a branch predictor could learn): x > 0
// exactly when its bits minus one are below +Inf's.
func (m *Model) activate(v []float64) {
	if m.tanh {
		for i, x := range v {
			v[i] = fpmath.Tanh(x)
		}
		return
	}
	for i, x := range v {
		u := math.Float64bits(x)
		_, below := bits.Sub64(u-1, 0x7ff0000000000000, 0)
		v[i] = math.Float64frombits(u & -below)
	}
}

// Scratch holds the buffers of one forward pass.
type Scratch struct {
	x   []float64
	a   []float64
	b   []float64
	out []float64
	col []float64 // a conv layer's input as columns (im2col)
}

// NewScratch allocates buffers big enough for any layer of m.
func (m *Model) NewScratch() *Scratch {
	size, cols := m.Card.Network.Inputs, 0
	for _, c := range m.convs {
		size = max(size, c.f*c.h*c.w0)
		cols = max(cols, c.c*c.k*c.k*c.h*c.w0)
	}
	for _, d := range m.dense {
		size = max(size, d.out)
	}
	return &Scratch{
		x:   make([]float64, m.Card.Network.Inputs),
		a:   make([]float64, size),
		b:   make([]float64, size),
		out: make([]float64, m.Card.Network.Outputs),
		col: make([]float64, cols),
	}
}

// Forward runs the network on an already preprocessed row and returns the output
// activations (P(class 1) for sigmoid, class probabilities for softmax, the scaled
// value for linear). The slice belongs to s and is overwritten by the next call.
func (m *Model) Forward(x []float64, s *Scratch) []float64 {
	cur := s.a[:len(x)]
	copy(cur, x)
	other := s.b
	for _, c := range m.convs {
		n := c.forward(cur, other, s.col, m.activate)
		cur, other = other[:n], cur[:cap(cur)]
	}
	last := len(m.dense) - 1
	for li, d := range m.dense {
		out := other[:d.out]
		copy(out, d.b)
		for i, xi := range cur[:d.in] {
			if xi == 0 {
				continue
			}
			kernels.Axpy(xi, d.w[i*d.out:(i+1)*d.out], out) // out[j] += xi*w[i,j]
		}
		if li < last {
			m.activate(out)
		}
		cur, other = out, cur[:cap(cur)]
	}
	res := s.out
	copy(res, cur)
	switch m.Card.Network.Output {
	case OutputSigmoid:
		res[0] = sigmoid(res[0])
	case OutputSoftmax:
		softmax(res)
	}
	return res
}

// forward computes convolution + bias + activation + max pool from in (CHW) into
// dst and returns the number of values written. Pooling works in place in dst.
// The convolution is the trainer's (internal/train, convOp): the input as
// columns (col, c*k*k rows of h*w values, zero outside the image), then each
// filter's output row summed from 0 over its non-zero weights in index order
// (kernels.Row), then + the bias.
func (c convLayer) forward(in, dst, col []float64, activate func([]float64)) int {
	hw := c.h * c.w0
	col = col[:c.c*c.k*c.k*hw]
	kernels.Im2col(in, col, c.c, c.h, c.w0, c.k)
	for f := 0; f < c.f; f++ {
		o := dst[f*hw : (f+1)*hw]
		kernels.Row(c.w[f*len(col)/hw:(f+1)*len(col)/hw], c.nz[f], col, hw, o, true)
		b := c.b[f]
		for i := range o {
			o[i] += b
		}
		activate(o)
	}
	if c.p <= 1 {
		return c.f * hw
	}
	oh, ow := c.h/c.p, c.w0/c.p
	// Pooling writes each output before any later input it could overwrite is read:
	// output index (f*oh+y)*ow+x <= input index f*hw + y*p*w0 + x*p.
	for f := 0; f < c.f; f++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				best := math.Inf(-1)
				for py := 0; py < c.p; py++ {
					for px := 0; px < c.p; px++ {
						v := dst[f*hw+(y*c.p+py)*c.w0+x*c.p+px]
						if v > best {
							best = v
						}
					}
				}
				dst[(f*oh+y)*ow+x] = best
			}
		}
	}
	return c.f * oh * ow
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + fpmath.Exp(-z))
	}
	e := fpmath.Exp(z)
	return e / (1 + e)
}

func softmax(v []float64) {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = max(mx, x)
	}
	sum := 0.0
	for i, x := range v {
		v[i] = fpmath.Exp(x - mx)
		sum += v[i]
	}
	for i := range v {
		v[i] /= sum
	}
}

// Preprocess turns a raw row (one value per feature, NaN = missing; a
// categorical feature's value is its slot, see Inputs) into the network's
// inputs in s's input buffer: categorical features one-hot, then imputed and
// standardised.
func (m *Model) Preprocess(raw []float64, s *Scratch) []float64 {
	if !m.onehot {
		m.Card.Preprocess.Transform(raw, s.x)
		return s.x
	}
	m.expand(raw, s.x)
	m.Card.Preprocess.Transform(s.x, s.x)
	return s.x
}

// PredictRow preprocesses a raw row (NaN = missing) and runs the network. For
// regression the returned single value is in the target's units.
func (m *Model) PredictRow(raw []float64, s *Scratch) []float64 {
	out := m.Forward(m.Preprocess(raw, s), s)
	if ts := m.Card.TargetScale; ts != nil {
		out[0] = float64(out[0]*ts.Std) + ts.Mean
	}
	return out
}

// Prediction holds the outputs for a batch of rows.
type Prediction struct {
	Class []int       // classification: predicted class index (BinaryClass or Argmax)
	Probs [][]float64 // classification: per-class probabilities (binary: [1-p, p])
	Value []float64   // regression: predicted value
}

// Predict runs the model on raw rows.
func (m *Model) Predict(rows [][]float64) (*Prediction, error) {
	s := m.NewScratch()
	p := &Prediction{}
	for i, r := range rows {
		if len(r) != len(m.Card.Features) {
			return nil, fmt.Errorf("row %d has %d values, the model takes %d", i+1, len(r), len(m.Card.Features))
		}
		out := m.PredictRow(r, s)
		switch m.Card.Network.Output {
		case OutputLinear:
			p.Value = append(p.Value, out[0])
		case OutputSigmoid:
			p.Probs = append(p.Probs, []float64{1 - out[0], out[0]})
			p.Class = append(p.Class, BinaryClass(out[0]))
		case OutputSoftmax:
			p.Probs = append(p.Probs, slices.Clone(out))
			p.Class = append(p.Class, Argmax(out))
		}
	}
	return p, nil
}
