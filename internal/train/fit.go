package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"time"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/fpmath"
	"github.com/mlship/mlship/internal/model"
)

// fitConfig is what the gorgonia trainer needs; the step fills it from Config.
type fitConfig struct {
	Net          model.Network
	Task         dataset.Task
	BatchSize    int
	MaxEpochs    int
	Patience     int
	LearningRate float64
	Beta1, Beta2 float64
	Epsilon      float64
	Seed         int64
	// DType is the arithmetic's type: DTypeFloat64 (or "") or DTypeFloat32
	// (dense networks only).
	DType string
	// NoRewind makes every step use gorgonia's full Reset (see net.rewind).
	NoRewind bool
	// Graph trains a dense network with the gorgonia graph (newNet) instead of
	// denseNet, for tests that compare the two.
	Graph bool
	// OnEpoch, when set, is called after each epoch (for progress logs).
	OnEpoch func(e model.Epoch, epochs int, d time.Duration)
}

// fitData holds preprocessed rows. Y is the class index (classification) or the
// scaled target (regression). With Pre set, the training rows are raw and each is
// standardised by Pre.Transform as it is put into a batch.
type fitData struct {
	Pre    *dataset.Preprocessor
	XTrain [][]float64
	YTrain []float64
	XVal   [][]float64
	YVal   []float64
}

type fitResult struct {
	Tensors   map[string]model.Tensor
	Curve     []model.Epoch
	BestEpoch int
	Stopped   bool
	Steps     int
	// TrainTime is the time spent in the epoch loop (graph runs, optimiser, validation).
	TrainTime time.Duration
	// SamplesSeen counts training rows processed (padding excluded).
	SamplesSeen int
}

// net is a compiled gorgonia graph for one batch size.
type net struct {
	cfg     fitConfig
	g       *G.ExprGraph
	x, t, w *G.Node // inputs: rows, weighted targets, row weights
	loss    *G.Node
	logits  G.Value       // output layer before its activation, read only when asked for (tests)
	params  []*G.Node     // same order as cfg.Net.Params()
	specs   []model.Param // file layout of each param
	vm      G.VM
	xBuf    []float64 // backing arrays of the inputs, filled in place
	tBuf    []float64
	wBuf    []float64
	adamM   [][]float64
	adamV   [][]float64
	step    int
	rw      *rewinder // nil: use the VM's Reset (see rewind)
}

// initParams returns initial values: Glorot-uniform weights from a seeded PCG and
// zero biases, in the layout of the graph.
func initParams(n model.Network, seed int64) [][]float64 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d6c73686970)) // "mlship"
	var vals [][]float64
	for _, p := range n.Params() {
		v := make([]float64, p.Size())
		if len(p.Shape) > 1 {
			fanIn, fanOut := p.Shape[0], p.Shape[1]
			if len(p.Shape) == 4 { // conv: filters, channels, k, k
				rf := p.Shape[2] * p.Shape[3]
				fanIn, fanOut = p.Shape[1]*rf, p.Shape[0]*rf
			}
			limit := math.Sqrt(6 / float64(fanIn+fanOut))
			for i := range v {
				// rng.Float64 is a product: rounded, so that no architecture fuses
				// it with what follows
				u := float64(rng.Float64())
				v[i] = (float64(u*2) - 1) * limit
			}
		}
		vals = append(vals, v)
	}
	return vals
}

func activate(n *G.Node, name string) (*G.Node, error) {
	switch name {
	case "relu":
		return G.Rectify(n)
	case "tanh":
		return pTanh(n)
	}
	return nil, fmt.Errorf("unknown activation %q", name)
}

// newNet builds and compiles the graph. It is the only place a graph is built, so it
// first switches gorgonia to portableBLAS (usePortableBLAS).
func newNet(cfg fitConfig, init [][]float64, readLogits bool) (*net, error) {
	usePortableBLAS()
	n := &net{cfg: cfg, g: G.NewGraph(), specs: cfg.Net.Params()}
	B := cfg.BatchSize
	spec := cfg.Net
	g := n.g
	n.xBuf = make([]float64, B*spec.Inputs)
	n.tBuf = make([]float64, B*spec.Outputs)
	n.wBuf = make([]float64, B)
	n.x = G.NewMatrix(g, tensor.Float64, G.WithShape(B, spec.Inputs), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(B, spec.Inputs), tensor.WithBacking(n.xBuf))))
	n.t = G.NewMatrix(g, tensor.Float64, G.WithShape(B, spec.Outputs), G.WithName("t"),
		G.WithValue(tensor.New(tensor.WithShape(B, spec.Outputs), tensor.WithBacking(n.tBuf))))
	n.w = G.NewMatrix(g, tensor.Float64, G.WithShape(B, 1), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(B, 1), tensor.WithBacking(n.wBuf))))

	// Learnables. Conv kernels live in the graph as (filters, channels*k*k) matrices,
	// the file's layout (convOp); biases as (1, n) rows.
	for i, p := range n.specs {
		var shape tensor.Shape
		vals := init[i]
		switch len(p.Shape) {
		case 4:
			shape = tensor.Shape{p.Shape[0], p.Shape[1] * p.Shape[2] * p.Shape[3]}
		case 2:
			shape = tensor.Shape{p.Shape[0], p.Shape[1]}
		case 1:
			shape = tensor.Shape{1, p.Shape[0]}
		}
		node := G.NewMatrix(g, tensor.Float64, G.WithShape(shape...), G.WithName(p.Name),
			G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))))
		n.params = append(n.params, node)
	}

	h := n.x
	var err error
	pi := 0
	if spec.Kind == model.KindCNN {
		// images stay flat rows, in the file's (channels, height, width) order (conv.go)
		c, hh, ww := spec.Image.Channels, spec.Image.Height, spec.Image.Width
		for li, l := range spec.Conv {
			if h, err = convBlock(h, n.params[pi], n.params[pi+1], c, hh, ww, l.Kernel, l.Filters, l.Pool, spec.Activation, li == 0); err != nil {
				return nil, err
			}
			pi += 2
			c = l.Filters
			if l.Pool > 1 {
				hh, ww = hh/l.Pool, ww/l.Pool
			}
		}
	}
	for pi < len(n.params) {
		z, err := G.Mul(h, n.params[pi])
		if err != nil {
			return nil, fmt.Errorf("dense: %w", err)
		}
		if z, err = G.BroadcastAdd(z, n.params[pi+1], nil, []byte{0}); err != nil {
			return nil, fmt.Errorf("dense bias: %w", err)
		}
		pi += 2
		if pi < len(n.params) {
			if z, err = activate(z, spec.Activation); err != nil {
				return nil, err
			}
		}
		h = z
	}

	if readLogits {
		G.Read(h, &n.logits)
	}
	// Loss: a weighted sum over the batch, where each real row weighs 1/rows and
	// padding rows weigh 0, so a short last batch is averaged correctly.
	switch spec.Output {
	case model.OutputSigmoid:
		// binary cross-entropy on logits: softplus(z) - y*z, weighted.
		sp, err := pSoftplus(h)
		if err != nil {
			return nil, err
		}
		a := G.Must(G.HadamardProd(n.w, sp))
		b := G.Must(G.HadamardProd(n.t, h))
		n.loss = G.Must(G.Sum(G.Must(G.Sub(a, b))))
	case model.OutputSoftmax:
		ls, err := pLogSoftmax(h)
		if err != nil {
			return nil, err
		}
		n.loss = G.Must(G.Neg(G.Must(G.Sum(G.Must(G.HadamardProd(n.t, ls))))))
	case model.OutputLinear:
		// mean squared error: t holds y itself here, w the row weights.
		d := G.Must(G.Sub(h, n.t))
		n.loss = G.Must(G.Sum(G.Must(G.HadamardProd(n.w, G.Must(G.Square(d))))))
	}
	if _, err := G.Grad(n.loss, n.params...); err != nil {
		return nil, fmt.Errorf("gradients: %w", err)
	}
	n.vm = G.NewTapeMachine(g, G.BindDualValues(n.params...))
	if !cfg.NoRewind {
		n.rw = newRewinder(n.vm)
	}
	for _, p := range n.params {
		sz := p.Shape().TotalSize()
		n.adamM = append(n.adamM, make([]float64, sz))
		n.adamV = append(n.adamV, make([]float64, sz))
	}
	return n, nil
}

// runStep runs forward and backward on the batch already in the buffers, then
// applies one Adam update. It returns the batch loss.
func (n *net) runStep() (float64, error) {
	if err := n.runGraph(); err != nil {
		return 0, err
	}
	loss := n.loss.Value().Data().(float64)
	n.step++
	cfg := n.cfg
	// Adam (Kingma & Ba, 2015) in the form of their section 2: with
	// lrT = lr*sqrt(1-b2^t)/(1-b1^t) and epsT = eps*sqrt(1-b2^t), the update
	// lrT*m/(sqrt(v)+epsT) equals lr*mhat/(sqrt(vhat)+eps) with one division less.
	// Every product that is added to is rounded first (float64(x*y)), so that no
	// architecture fuses it into one FMA instruction; math.Sqrt is correctly
	// rounded everywhere, fpmath.Pow is portable.
	c2 := math.Sqrt(1 - fpmath.Pow(cfg.Beta2, float64(n.step)))
	lrT := cfg.LearningRate * c2 / (1 - fpmath.Pow(cfg.Beta1, float64(n.step)))
	epsT := float64(cfg.Epsilon * c2) // rounded: the loop adds it
	b1, b2 := cfg.Beta1, cfg.Beta2
	for i, p := range n.params {
		gv, err := p.Grad()
		if err != nil {
			return 0, fmt.Errorf("gradient of %s: %w", p.Name(), err)
		}
		grad := gv.Data().([]float64)
		w := p.Value().Data().([]float64)
		m, v := n.adamM[i][:len(grad)], n.adamV[i][:len(grad)]
		w = w[:len(grad)]
		for j, gj := range grad {
			mj := float64(b1*m[j]) + float64((1-b1)*gj)
			vj := float64(b2*v[j]) + float64((1-b2)*gj*gj)
			m[j], v[j] = mj, vj
			w[j] -= lrT * mj / (math.Sqrt(vj) + epsT)
		}
		clear(grad) // gorgonia adds into bound gradients on each run
	}
	n.rewind()
	return loss, nil
}

// runGraph runs the whole program once: on this goroutine through the tape
// machine's Run when it was found, else through RunAll.
func (n *net) runGraph() error {
	if n.rw == nil {
		return n.vm.RunAll()
	}
	out := n.rw.run.Call([]reflect.Value{n.rw.prog})
	if err, _ := out[0].Interface().(error); err != nil {
		return err
	}
	return nil
}

// rewind readies the tape machine for the next step. gorgonia's Reset drops every
// register, so each step re-allocates all its intermediate tensors (most of the
// step's time went to that allocation and the garbage collection it causes). When
// the machine is gorgonia's tape machine, rewind instead sets its program counter
// back to 0 and keeps the registers: each op then writes into last step's buffer
// (its UsePreallocDo path). A register that holds values of different shapes
// within one step (the register allocator reuses registers) is cleared, since an
// op would otherwise be handed a buffer of the wrong shape. TestRewindMatchesReset
// proves both ways give bit-identical training. Any other VM gets a plain Reset.
func (n *net) rewind() {
	r := n.rw
	if r == nil {
		n.vm.Reset()
		return
	}
	*r.pc = 0
	for _, id := range r.volatile {
		(*r.mem)[id] = nil
	}
}

// rewinder holds what rewind and run need from inside gorgonia's tape machine.
type rewinder struct {
	pc       *int
	mem      *[]G.Value
	volatile []int
	run      reflect.Value // the machine's Run method
	prog     reflect.Value // its whole program, as Run's argument
}

// newRewinder reaches into gorgonia's tape machine (v0.9.18 layout: fields pc,
// cpumem, and the register map from LocMap) by reflection, or returns nil when the layout differs.
// TestGorgoniaPinned fails when gorgonia moves off v0.9.18, so that this is reviewed.
func newRewinder(vm G.VM) *rewinder {
	v := reflect.ValueOf(vm)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	e := v.Elem()
	pc, mem := e.FieldByName("pc"), e.FieldByName("cpumem")
	locMap := v.MethodByName("LocMap")
	if !pc.IsValid() || pc.Kind() != reflect.Int ||
		!mem.IsValid() || mem.Type() != reflect.TypeFor[[]G.Value]() ||
		!locMap.IsValid() || locMap.Type().NumIn() != 0 || locMap.Type().NumOut() != 1 {
		return nil
	}
	loc := locMap.Call(nil)[0]
	if loc.Kind() != reflect.Map || loc.Type().Key() != reflect.TypeFor[*G.Node]() {
		return nil
	}
	// Registers shared by nodes of different shapes are volatile.
	shapes := map[int]string{}
	vol := map[int]bool{}
	iter := loc.MapRange()
	for iter.Next() {
		node := iter.Key().Interface().(*G.Node)
		reg := iter.Value()
		id := reg.FieldByName("id")
		if !id.IsValid() || id.Kind() != reflect.Int {
			return nil
		}
		key := fmt.Sprint(node.Shape())
		if prev, ok := shapes[int(id.Int())]; ok && prev != key {
			vol[int(id.Int())] = true
		}
		shapes[int(id.Int())] = key
	}
	// Run(fragment) executes instructions on the calling goroutine; RunAll does the
	// same on a new goroutine with the OS thread locked, which cost about 40us a
	// call here, a sixth of a whole training step.
	run := v.MethodByName("Run")
	prog := v.MethodByName("Prog")
	if !run.IsValid() || run.Type().NumIn() != 1 || !prog.IsValid() || prog.Type().NumIn() != 0 {
		return nil
	}
	p := prog.Call(nil)[0]
	if p.Kind() != reflect.Pointer || p.Elem().Kind() != reflect.Struct {
		return nil
	}
	instr := p.Elem().FieldByName("instructions")
	if !instr.IsValid() || instr.Type() != run.Type().In(0) || !instr.CanAddr() {
		return nil
	}
	r := &rewinder{
		pc:   (*int)(unsafe.Pointer(pc.UnsafeAddr())),
		mem:  (*[]G.Value)(unsafe.Pointer(mem.UnsafeAddr())),
		run:  run,
		prog: reflect.NewAt(instr.Type(), unsafe.Pointer(instr.UnsafeAddr())).Elem(),
	}
	for id := range vol {
		r.volatile = append(r.volatile, id)
	}
	return r
}

// export copies the current weights out in the file layout.
func (n *net) export() map[string]model.Tensor {
	out := make(map[string]model.Tensor, len(n.params))
	for i, p := range n.params {
		spec := n.specs[i]
		vals := append([]float64(nil), p.Value().Data().([]float64)...)
		out[spec.Name] = model.Tensor{Shape: append([]int(nil), spec.Shape...), Data: vals}
	}
	return out
}

// fit trains with Adam and early stopping on validation loss, restoring the best
// weights. It is deterministic for a seed.
func fit(ctx context.Context, cfg fitConfig, d fitData) (_ *fitResult, err error) {
	// The network's sizes were validated and its memory planned; a panic left in
	// gorgonia is a bug, but it must still end as one line, not a stack trace.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("gorgonia panicked on network %s: %v (a bug: please report it)", cfg.Net, p)
		}
	}()
	n, err := newEngine(cfg, initParams(cfg.Net, cfg.Seed))
	if err != nil {
		return nil, fmt.Errorf("building the network: %w", err)
	}
	defer n.close()
	xBuf, tBuf, wBuf := n.buffers()
	rows := len(d.XTrain)
	B := cfg.BatchSize
	in, outs := cfg.Net.Inputs, cfg.Net.Outputs
	order := make([]int, rows)
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x73687566666c65)) // "shuffle"
	res := &fitResult{BestEpoch: 0}
	best := math.Inf(1)
	var bestTensors map[string]model.Tensor
	since := 0
	start := time.Now()
	card := &model.Card{Task: cfg.Task, Network: cfg.Net, TargetScale: &model.Scale{Std: 1}}
	for epoch := 1; epoch <= cfg.MaxEpochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		shuffle(rng, order)
		sum := 0.0
		for off := 0; off < rows; off += B {
			cnt := min(B, rows-off)
			wt := 1 / float64(cnt)
			clear(tBuf)
			for r := 0; r < B; r++ {
				if r >= cnt {
					clear(xBuf[r*in : (r+1)*in])
					wBuf[r] = 0
					continue
				}
				idx := order[off+r]
				if d.Pre != nil {
					d.Pre.Transform(d.XTrain[idx], xBuf[r*in:(r+1)*in])
				} else {
					copy(xBuf[r*in:(r+1)*in], d.XTrain[idx])
				}
				wBuf[r] = wt
				y := d.YTrain[idx]
				switch cfg.Net.Output {
				case model.OutputSigmoid:
					tBuf[r] = y * wt
				case model.OutputSoftmax:
					tBuf[r*outs+int(y)] = wt
				case model.OutputLinear:
					tBuf[r] = y
				}
			}
			loss, err := n.runStep()
			if err != nil {
				return nil, fmt.Errorf("epoch %d: %w", epoch, err)
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, fmt.Errorf("epoch %d: the training loss became %v (try a lower learning rate)", epoch, loss)
			}
			sum += float64(loss * float64(cnt))
			res.Steps++
			res.SamplesSeen += cnt
		}
		tensors := n.export()
		m, err := model.New(card, tensors)
		if err != nil {
			return nil, err
		}
		vl, valMetric := valLoss(m, cfg.Net.Output, d.XVal, d.YVal)
		e := model.Epoch{Epoch: epoch, Loss: sum / float64(rows), ValLoss: vl, ValMetric: valMetric}
		res.Curve = append(res.Curve, e)
		if cfg.OnEpoch != nil {
			cfg.OnEpoch(e, cfg.MaxEpochs, time.Since(t0))
		}
		if vl < best {
			best, bestTensors, res.BestEpoch, since = vl, tensors, epoch, 0
		} else if since++; cfg.Patience > 0 && since >= cfg.Patience {
			res.Stopped = true
			break
		}
	}
	res.TrainTime = time.Since(start)
	res.Tensors = bestTensors
	return res, nil
}

// valLoss returns the mean loss (same loss as training) and the validation metric
// (accuracy for classification, with the classes of model.BinaryClass and
// model.Argmax; RMSE in scaled units for regression). The rows are spread over
// up to GOMAXPROCS goroutines, each writing its rows' losses into their slots;
// the losses are then summed in row order, so the result is the same bits for
// any core count.
func valLoss(m *model.Model, output string, X [][]float64, Y []float64) (loss, metric float64) {
	losses := make([]float64, len(X))
	hits := make([]bool, len(X))
	rowsLoss := func(i0, i1 int) {
		s := m.NewScratch()
		const eps = 1e-15
		for i := i0; i < i1; i++ {
			out := m.Forward(X[i], s)
			y := Y[i]
			switch output {
			case model.OutputSigmoid:
				p := min(max(out[0], eps), 1-eps)
				losses[i] = -(float64(y*fpmath.Log(p)) + float64((1-y)*fpmath.Log(1-p)))
				hits[i] = model.BinaryClass(out[0]) == int(y)
			case model.OutputSoftmax:
				losses[i] = -fpmath.Log(max(out[int(y)], eps))
				hits[i] = model.Argmax(out) == int(y)
			case model.OutputLinear:
				d := out[0] - y
				losses[i] = float64(d * d)
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(X)/valRowsPerWorker)
	if workers < 2 {
		rowsLoss(0, len(X))
	} else {
		var wg sync.WaitGroup
		per := (len(X) + workers - 1) / workers
		for i0 := 0; i0 < len(X); i0 += per {
			wg.Add(1)
			go func(i0, i1 int) {
				defer wg.Done()
				rowsLoss(i0, i1)
			}(i0, min(i0+per, len(X)))
		}
		wg.Wait()
	}
	correct := 0
	for i, l := range losses {
		loss += l
		if hits[i] {
			correct++
		}
	}
	nrow := float64(len(X))
	loss /= nrow
	if output == model.OutputLinear {
		return loss, math.Sqrt(loss)
	}
	return loss, float64(correct) / nrow
}

// valRowsPerWorker is the fewest validation rows worth a goroutine of their own.
const valRowsPerWorker = 1024

// shuffle is a Fisher-Yates shuffle written out so that the order depends only on
// the PCG stream, not on the Go version's rand helpers.
func shuffle(rng *rand.Rand, a []int) {
	for i := len(a) - 1; i > 0; i-- {
		j := int(rng.Uint64() % uint64(i+1))
		a[i], a[j] = a[j], a[i]
	}
}
