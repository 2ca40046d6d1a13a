package train

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"runtime"
	"sync"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/mlship/mlship/internal/kernels"
)

// A CNN's convolution blocks are mlship's own gorgonia ops (convOp), on images
// kept flat, one row of a (batch, channels*height*width) matrix each, in the
// file's NCHW order, so that no reshape or transpose is needed between them:
//
//	conv      (x, W, b)  -> z      z[n,f,:] = W[f,:] · im2col(x[n]) + b[f]
//	pool      (z)        -> y      max over each pool x pool window, with relu
//	                               fused (max(0, max window)) for relu networks
//	gradients convGradX (W, dz), convGradW (x, dz), convGradB (dz), poolGrad (z, dy)
//
// W is the (filters, channels*k*k) matrix of the file's (filters, channels, k, k)
// kernel. gorgonia's own Im2Col, MaxPool2D and the transposes between them
// allocated on every step and spent most of a step in copies; these write into
// the tape machine's registers and reuse their scratch buffers.
//
// Every product is portableBLAS's (gemm.sumRows and internal/kernels' row
// kernel: the same IEEE 754 operations on every GOARCH and CPU, no fused
// multiply-add), called once per image.
// Images are spread over goroutines, and each image's result goes to its own
// place: the weight gradient is one partial sum per image, added in image order
// afterwards, and the bias gradient is summed image by image on one goroutine.
// So a step computes the same bits for any core count and architecture.

type convKind int

const (
	opConv      convKind = iota // (x, W, b) -> z
	opConvGradX                 // (W, dz) -> dx
	opConvGradW                 // (x, dz) -> dW
	opConvGradB                 // (dz) -> db
	opPool                      // (z) -> y
	opPoolGrad                  // (z, dy) -> dz
)

var convOpNames = [...]string{"conv", "convGradX", "convGradW", "convGradB", "maxPool", "maxPoolGrad"}

// convOp is one of the convolution block's ops. Its fields are the geometry: c
// input channels of h x w pixels, a k x k kernel with k/2 zero padding and stride 1
// (so the output is h x w too), f filters; pools of p x p (stride p, the last
// rows and columns dropped when p does not divide h or w). For the pool ops c is
// the number of channels pooled. gradX says whether conv's input needs a gradient
// (not for the network's input itself). The value is comparable and its String
// names all fields, as gorgonia wants of an op.
type convOp struct {
	kind          convKind
	c, h, w, k, f int
	p             int
	relu          bool
	gradX         bool
}

func (o convOp) ckk() int { return o.c * o.k * o.k }
func (o convOp) hw() int  { return o.h * o.w }
func (o convOp) ohw() int { return (o.h / o.p) * (o.w / o.p) }

func (o convOp) Arity() int {
	switch o.kind {
	case opConv:
		return 3
	case opConvGradB, opPool:
		return 1
	}
	return 2
}

func (o convOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	switch o.Arity() {
	case 3:
		return hm.NewFnType(a, a, a, a)
	case 2:
		return hm.NewFnType(a, a, a)
	}
	return hm.NewFnType(a, a)
}

// shapes returns the shapes the op's inputs must have and its output's, for a
// batch of b images.
func (o convOp) shapes(b int) (in []tensor.Shape, out tensor.Shape) {
	x, z := tensor.Shape{b, o.c * o.hw()}, tensor.Shape{b, o.f * o.hw()}
	W, bias := tensor.Shape{o.f, o.ckk()}, tensor.Shape{1, o.f}
	switch o.kind {
	case opConv:
		return []tensor.Shape{x, W, bias}, z
	case opConvGradX:
		return []tensor.Shape{W, z}, x
	case opConvGradW:
		return []tensor.Shape{x, z}, W
	case opConvGradB:
		return []tensor.Shape{z}, bias
	case opPool:
		return []tensor.Shape{x}, tensor.Shape{b, o.c * o.ohw()}
	default: // opPoolGrad
		return []tensor.Shape{x, {b, o.c * o.ohw()}}, x
	}
}

func (o convOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != o.Arity() {
		return nil, fmt.Errorf("%v: %d inputs, want %d", o, len(in), o.Arity())
	}
	shapes := make([]tensor.Shape, len(in))
	for i, d := range in {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%v: input %d's shape is a %T", o, i, d)
		}
		shapes[i] = s
	}
	_, out, err := o.check(shapes)
	return out, err
}

// check compares the inputs' shapes with the op's geometry and returns the
// expected shapes and the output's.
func (o convOp) check(shapes []tensor.Shape) ([]tensor.Shape, tensor.Shape, error) {
	bi := 0
	if o.kind == opConvGradX {
		bi = 1
	}
	if len(shapes[bi]) != 2 {
		return nil, nil, fmt.Errorf("%v: input %d has shape %v, want a matrix", o, bi, shapes[bi])
	}
	want, out := o.shapes(shapes[bi][0])
	for i, s := range shapes {
		if !s.Eq(want[i]) {
			return nil, nil, fmt.Errorf("%v: input %d has shape %v, want %v", o, i, s, want[i])
		}
	}
	return want, out, nil
}

func (o convOp) ReturnsPtr() bool     { return false }
func (o convOp) CallsExtern() bool    { return false }
func (o convOp) OverwritesInput() int { return -1 }
func (o convOp) String() string {
	return fmt.Sprintf("mlship.%s{c%d h%d w%d k%d f%d p%d relu %v gradX %v}", convOpNames[o.kind], o.c, o.h, o.w, o.k, o.f, o.p, o.relu, o.gradX)
}
func (o convOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }
func (o convOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// Do computes the op into a new tensor.
func (o convOp) Do(in ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, in...) }

// UsePreallocDo computes the op into prealloc when it is a float64 tensor of the
// output's shape, else into a new tensor. prealloc is never one of the inputs
// (the op does not overwrite them), and every element of it is written.
func (o convOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != o.Arity() {
		return nil, fmt.Errorf("%v: %d inputs, want %d", o, len(in), o.Arity())
	}
	shapes := make([]tensor.Shape, len(in))
	args := make([][]float64, len(in))
	for i, v := range in {
		d, err := float64s(v)
		if err != nil {
			return nil, fmt.Errorf("%v: input %d: %w", o, i, err)
		}
		args[i], shapes[i] = d, v.Shape()
	}
	_, shape, err := o.check(shapes)
	if err != nil {
		return nil, err
	}
	dst, ok := prealloc.(*tensor.Dense)
	if !ok || dst.Dtype() != tensor.Float64 || !dst.Shape().Eq(shape) || dst.RequiresIterator() {
		dst = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape.Clone()...))
	}
	out := dst.Data().([]float64)[:shape.TotalSize()]
	switch o.kind {
	case opConv:
		o.conv(args[0], args[1], args[2], out)
	case opConvGradX:
		o.convGradX(args[0], args[1], out)
	case opConvGradW:
		o.convGradW(args[0], args[1], out)
	case opConvGradB:
		o.convGradB(args[0], out)
	case opPool:
		o.pool(args[0], out)
	case opPoolGrad:
		o.poolGrad(args[0], args[1], out)
	}
	return dst, nil
}

// convParallelWork is the number of multiply-adds from which a conv op spreads
// images over goroutines. It is higher than Dgemm's parallelWork: below it (the
// digits network's 300k) waking the goroutines and their cache misses cost more
// than the second core saves, measured on 2 cores.
const convParallelWork = 1 << 21

// forImages calls fn(n0, n1) for ranges of images covering 0..b-1, on several
// goroutines when the work (multiply-adds) is large enough. fn must write only
// what belongs to its images.
func forImages(b, work int, fn func(n0, n1 int)) {
	workers := min(runtime.GOMAXPROCS(0), b)
	if work < convParallelWork || workers < 2 {
		fn(0, b)
		return
	}
	var wg sync.WaitGroup
	per := (b + workers - 1) / workers
	for n0 := 0; n0 < b; n0 += per {
		wg.Add(1)
		go func(n0, n1 int) {
			defer wg.Done()
			fn(n0, n1)
		}(n0, min(n0+per, b))
	}
	wg.Wait()
}

// im2col writes image img's (c, h, w) patches into col: with rowMajor, row
// p = y*w + x of a (h*w, c*k*k) matrix holds the patch around pixel p; else
// it is column p of a (c*k*k, h*w) matrix (kernels.Im2col, the predictor's
// too). Pixels outside the image are 0.
func (o convOp) im2col(img, col []float64, rowMajor bool) {
	k, h, w, pad := o.k, o.h, o.w, o.k/2
	hw, ckk := o.hw(), o.ckk()
	if rowMajor {
		// a pixel's patch at a time: its row of col is written in order
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				dst := col[(y*w+x)*ckk : (y*w+x+1)*ckk]
				inside := y >= pad && y-pad+k <= h && x >= pad && x-pad+k <= w
				for ch := 0; ch < o.c; ch++ {
					for ky := 0; ky < k; ky++ {
						d := dst[(ch*k+ky)*k : (ch*k+ky+1)*k]
						sy := y + ky - pad
						if inside {
							copy(d, img[ch*hw+sy*w+x-pad:ch*hw+sy*w+x-pad+k])
							continue
						}
						if sy < 0 || sy >= h {
							clear(d)
							continue
						}
						for kx := range d {
							if sx := x + kx - pad; sx >= 0 && sx < w {
								d[kx] = img[ch*hw+sy*w+sx]
							} else {
								d[kx] = 0
							}
						}
					}
				}
			}
		}
		return
	}
	kernels.Im2col(img, col, o.c, h, w, k)
}

// conv: z[n] (f, h*w) = W (f, c*k*k) · col(x[n]) (c*k*k, h*w), then + b[f].
// (Computing z[n]ᵀ instead, to skip the zeros of x rather than W's, gained
// nothing: after a max pool few activations are 0.)
func (o convOp) conv(x, W, b, z []float64) {
	B := len(x) / (o.c * o.hw())
	hw, ckk, nf := o.hw(), o.ckk(), o.f
	forImages(B, B*nf*hw*ckk, func(n0, n1 int) {
		col := getScratch(ckk * hw)
		defer putScratch(col)
		for n := n0; n < n1; n++ {
			o.im2col(x[n*o.c*hw:(n+1)*o.c*hw], *col, false)
			zn := z[n*nf*hw : (n+1)*nf*hw]
			g := gemm[float64]{n: hw, k: ckk, alpha: 1, a: W, ai: ckk, al: 1, b: *col, ldb: hw, c: zn, ldc: hw}
			g.sumRows(0, nf, g.c, g.ldc)
			for f := 0; f < nf; f++ {
				bf := b[f]
				row := zn[f*hw : (f+1)*hw]
				for i := range row {
					row[i] += bf
				}
			}
		}
	})
}

// convGradX: dcol[n] (h*w, c*k*k) = dz[n]ᵀ (h*w, f) · W (f, c*k*k), then each
// patch's gradient is added back to its pixels (col2im), patches in pixel order,
// a patch's entries in (channel, ky, kx) order.
func (o convOp) convGradX(W, dz, dx []float64) {
	hw, ckk := o.hw(), o.ckk()
	B := len(dz) / (o.f * hw)
	forImages(B, B*o.f*hw*ckk, func(n0, n1 int) {
		dcol := getScratch(hw * ckk)
		defer putScratch(dcol)
		for n := n0; n < n1; n++ {
			g := gemm[float64]{aT: true, n: ckk, k: o.f, alpha: 1, a: dz[n*o.f*hw:], ai: 1, al: hw, b: W, ldb: ckk, c: *dcol, ldc: ckk}
			g.sumRows(0, hw, g.c, g.ldc)
			img := dx[n*o.c*hw : (n+1)*o.c*hw]
			clear(img)
			o.col2im(*dcol, img)
		}
	})
}

// col2im adds each patch's gradient (dcol: a row of c*k*k per pixel) back to
// the pixels it covers, in the order of the loop "patches in pixel order (y,
// x), a patch's entries in (channel, ky, kx) order": a pixel (sy, sx) gets its
// terms from the patches at (sy-ky+pad, sx-kx+pad), so in that order ky falls,
// then kx falls. The loops below run ky and kx downwards outside the rows, which
// adds each pixel's terms in that same order (the same bits) without a branch
// per term.
func (o convOp) col2im(dcol, img []float64) {
	hw, ckk, k, h, w, pad := o.hw(), o.ckk(), o.k, o.h, o.w, o.k/2
	for ky := k - 1; ky >= 0; ky-- {
		dy := ky - pad
		y0, y1 := max(0, -dy), min(h, h-dy) // patches whose row sy = y+dy is inside
		for kx := k - 1; kx >= 0; kx-- {
			dx := kx - pad
			x0, x1 := max(0, -dx), min(w, w-dx)
			if x0 >= x1 {
				continue
			}
			for ch := 0; ch < o.c; ch++ {
				q := (ch*k+ky)*k + kx
				plane := img[ch*hw : (ch+1)*hw]
				for y := y0; y < y1; y++ {
					dst := plane[(y+dy)*w+x0+dx : (y+dy)*w+x1+dx]
					src := dcol[(y*w+x0)*ckk+q:]
					for i := range dst {
						dst[i] += src[i*ckk]
					}
				}
			}
		}
	}
}

// convGradW: dW = sum over images n, in order, of dz[n] (f, h*w) · col(x[n])ᵀ,
// col(x[n]) built row-major (h*w, c*k*k). Each image's product goes to its own
// buffer first, so that the order of the sum does not depend on the goroutines.
func (o convOp) convGradW(x, dz, dW []float64) {
	hw, ckk := o.hw(), o.ckk()
	B := len(x) / (o.c * hw)
	size := o.f * ckk
	parts := getScratch(B * size)
	defer putScratch(parts)
	forImages(B, B*o.f*hw*ckk, func(n0, n1 int) {
		col := getScratch(hw * ckk)
		defer putScratch(col)
		for n := n0; n < n1; n++ {
			o.im2col(x[n*o.c*hw:(n+1)*o.c*hw], *col, true)
			g := gemm[float64]{n: ckk, k: hw, alpha: 1, a: dz[n*o.f*hw:], ai: hw, al: 1, b: *col, ldb: ckk, c: (*parts)[n*size : (n+1)*size], ldc: ckk}
			g.sumRows(0, o.f, g.c, g.ldc)
		}
	})
	copy(dW, (*parts)[:size])
	for n := 1; n < B; n++ {
		p := (*parts)[n*size : (n+1)*size]
		for i, v := range p {
			dW[i] += v
		}
	}
}

// convGradB: db[f] = sum over images n, then pixels, in order, of dz[n, f, :].
func (o convOp) convGradB(dz, db []float64) {
	hw := o.hw()
	B := len(dz) / (o.f * hw)
	clear(db)
	for n := 0; n < B; n++ {
		for f := 0; f < o.f; f++ {
			s := db[f]
			for _, v := range dz[(n*o.f+f)*hw : (n*o.f+f+1)*hw] {
				s += v
			}
			db[f] = s
		}
	}
}

// poolArgmax writes into at the index in z of each pool window's maximum, and
// into best the maximum, as the predictor's pooling does: the first value
// strictly greater than all before it in row order (the window's first index,
// with -Inf, when there is none). z holds whole channel planes.
func (o convOp) poolArgmax(z []float64, at []int32, best []float64) {
	hw, w, p, oh, ow := o.hw(), o.w, o.p, o.h/o.p, o.w/o.p
	planes := len(z) / hw
	k := 0
	for pl := 0; pl < planes; pl++ {
		for yy := 0; yy < oh; yy++ {
			row0 := pl*hw + yy*p*w
			for xx := 0; xx < ow; xx++ {
				i0 := row0 + xx*p
				b, i := math.Inf(-1), i0
				if p == 2 { // the common case, unrolled and without branches
					r0, r1 := z[i0:i0+2], z[i0+w:i0+w+2]
					b, i = maxAt(b, i, r0[0], i0)
					b, i = maxAt(b, i, r0[1], i0+1)
					b, i = maxAt(b, i, r1[0], i0+w)
					b, i = maxAt(b, i, r1[1], i0+w+1)
				} else {
					for py := 0; py < p; py++ {
						r := i0 + py*w
						for px, v := range z[r : r+p] {
							if v > b {
								b, i = v, r+px
							}
						}
					}
				}
				at[k], best[k] = int32(i), b
				k++
			}
		}
	}
}

// maxAt returns (v, j) when v > b, else (b, i), without a branch (the compiler
// turns the comparison into a flag, not a jump): max pooling compares values in
// no pattern a branch predictor could learn.
func maxAt(b float64, i int, v float64, j int) (float64, int) {
	var gt uint64
	if v > b {
		gt = 1
	}
	mask := -gt
	bb, vb := math.Float64bits(b), math.Float64bits(v)
	return math.Float64frombits(bb ^ ((bb ^ vb) & mask)), i ^ ((i ^ j) & int(mask))
}

// pool: y = max over each window, then max(0, y) when relu.
func (o convOp) pool(z, y []float64) {
	at := getIdx(len(y))
	defer putIdx(at)
	o.poolArgmax(z, *at, y)
	if o.relu {
		for i, v := range y {
			if !(v > 0) {
				y[i] = 0
			}
		}
	}
}

// poolGrad: each window's gradient goes to its maximum (none when relu cut it
// to 0); every other input gets 0.
func (o convOp) poolGrad(z, dy, dz []float64) {
	at, best := getIdx(len(dy)), getScratch(len(dy))
	defer putIdx(at)
	defer putScratch(best)
	o.poolArgmax(z, *at, *best)
	clear(dz)
	for k, i := range *at {
		if o.relu && !((*best)[k] > 0) {
			continue
		}
		dz[i] = dy[k]
	}
}

// scratch holds the conv ops' float64 buffers (im2col matrices, the weight
// gradient's per-image parts) between steps. Unlike a sync.Pool, which the
// garbage collector empties, it keeps them: the per-image parts of a 3x32x32
// network are megabytes, and allocating (and zeroing) them again after every
// collection took a quarter of a step. It holds at most what the ops used at
// once.
var scratch struct {
	sync.Mutex
	free []*[]float64
}

func getScratch(n int) *[]float64 {
	scratch.Lock()
	defer scratch.Unlock()
	for i, p := range scratch.free {
		if cap(*p) >= n {
			scratch.free = append(scratch.free[:i], scratch.free[i+1:]...)
			*p = (*p)[:n]
			return p
		}
	}
	b := make([]float64, n)
	return &b
}

func putScratch(p *[]float64) {
	scratch.Lock()
	defer scratch.Unlock()
	scratch.free = append(scratch.free, p)
}

// idxs holds scratch index slices for the pool ops.
var idxs sync.Pool

func getIdx(n int) *[]int32 {
	if p, ok := idxs.Get().(*[]int32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]int32, n)
	return &b
}

func putIdx(p *[]int32) { idxs.Put(p) }

// DiffWRT: conv is differentiable in W and b, and in x when gradX; pool in z.
func (o convOp) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	switch o.kind {
	case opConv:
		if inputs == 3 {
			d[0], d[1], d[2] = o.gradX, true, true
		}
	case opPool:
		if inputs == 1 {
			d[0] = true
		}
	}
	return d
}

// SymDiff returns the gradients of the inputs from the output's.
func (o convOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	switch o.kind {
	case opConv:
		if len(inputs) != 3 {
			return nil, fmt.Errorf("%v: %d inputs, want 3", o, len(inputs))
		}
		x, W := inputs[0], inputs[1]
		var dx *G.Node
		if o.gradX {
			var err error
			if dx, err = G.ApplyOp(o.as(opConvGradX), W, grad); err != nil {
				return nil, err
			}
		}
		dW, err := G.ApplyOp(o.as(opConvGradW), x, grad)
		if err != nil {
			return nil, err
		}
		db, err := G.ApplyOp(o.as(opConvGradB), grad)
		if err != nil {
			return nil, err
		}
		return G.Nodes{dx, dW, db}, nil
	case opPool:
		if len(inputs) != 1 {
			return nil, fmt.Errorf("%v: %d inputs, want 1", o, len(inputs))
		}
		dz, err := G.ApplyOp(o.as(opPoolGrad), inputs[0], grad)
		if err != nil {
			return nil, err
		}
		return G.Nodes{dz}, nil
	}
	return nil, fmt.Errorf("%v is not differentiable", o)
}

func (o convOp) as(k convKind) convOp { o.kind = k; return o }

// convBlock adds one convolution block to the graph: conv, the activation and
// the pool (relu and the pool fused into one op); h is (batch, c*hh*ww) and so
// is the result, with the new channels and size.
func convBlock(h, W, b *G.Node, c, hh, ww, k, f, pool int, act string, first bool) (*G.Node, error) {
	conv := convOp{kind: opConv, c: c, h: hh, w: ww, k: k, f: f, p: 1, gradX: !first}
	z, err := G.ApplyOp(conv, h, W, b)
	if err != nil {
		return nil, fmt.Errorf("conv: %w", err)
	}
	p := max(pool, 1)
	pl := convOp{kind: opPool, c: f, h: hh, w: ww, p: p}
	if act == "relu" {
		pl.relu = true
	} else {
		if z, err = activate(z, act); err != nil {
			return nil, err
		}
		if p == 1 {
			return z, nil
		}
	}
	if z, err = G.ApplyOp(pl, z); err != nil {
		return nil, fmt.Errorf("max pool: %w", err)
	}
	return z, nil
}
