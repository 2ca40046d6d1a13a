// Package model holds what a trained model is on disk and how to run it: the network
// spec, the model card, the safetensors weights and a pure-Go predictor. It does not
// import gorgonia, so the model server and the gate can use it and stay small.
package model

import (
	"fmt"
	"strings"
)

// Network kinds.
const (
	KindMLP = "mlp"
	KindCNN = "cnn"
)

// Output activations.
const (
	OutputSigmoid = "sigmoid" // binary: one unit, P(class 1)
	OutputSoftmax = "softmax" // multiclass: one unit per class
	OutputLinear  = "linear"  // regression: one unit
)

// Network describes the architecture. Layer order: convolution blocks (CNN only),
// flatten, dense hidden layers, dense output layer.
type Network struct {
	Kind       string      `json:"kind"`            // "mlp" or "cnn"
	Inputs     int         `json:"inputs"`          // number of input features
	Outputs    int         `json:"outputs"`         // output units
	Image      *Image      `json:"image,omitempty"` // CNN: how the inputs form an image
	Conv       []ConvLayer `json:"conv,omitempty"`  // CNN: convolution blocks
	Hidden     []int       `json:"hidden"`          // dense hidden layer sizes
	Activation string      `json:"activation"`      // hidden activation: relu or tanh
	Output     string      `json:"output"`          // sigmoid, softmax or linear
}

// Image says how a row of features is read as an image: channels x height x width,
// in that order (channel-major), which is how a flattened CHW image is laid out.
type Image struct {
	Channels int `json:"channels"`
	Height   int `json:"height"`
	Width    int `json:"width"`
}

// ConvLayer is one block: a same-padded, stride-1 convolution with bias, the hidden
// activation, then a non-overlapping max pool of Pool x Pool (none when Pool <= 1).
type ConvLayer struct {
	Filters int `json:"filters"`
	Kernel  int `json:"kernel"` // odd
	Pool    int `json:"pool"`
}

// Param is one named weight tensor.
type Param struct {
	Name  string
	Shape []int
}

// Size is the number of values in the tensor.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Validate checks the spec is complete and consistent.
func (n Network) Validate() error {
	if n.Inputs <= 0 {
		return fmt.Errorf("network: inputs must be positive, got %d", n.Inputs)
	}
	if n.Outputs <= 0 {
		return fmt.Errorf("network: outputs must be positive, got %d", n.Outputs)
	}
	switch n.Activation {
	case "relu", "tanh":
	default:
		return fmt.Errorf("network: unknown activation %q (want relu or tanh)", n.Activation)
	}
	switch n.Output {
	case OutputSigmoid, OutputLinear:
		if n.Outputs != 1 {
			return fmt.Errorf("network: %s output needs 1 unit, got %d", n.Output, n.Outputs)
		}
	case OutputSoftmax:
		if n.Outputs < 2 {
			return fmt.Errorf("network: softmax output needs at least 2 units, got %d", n.Outputs)
		}
	default:
		return fmt.Errorf("network: unknown output %q (want sigmoid, softmax or linear)", n.Output)
	}
	for i, h := range n.Hidden {
		if h <= 0 {
			return fmt.Errorf("network: hidden layer %d has size %d", i+1, h)
		}
	}
	switch n.Kind {
	case KindMLP:
		if n.Image != nil || len(n.Conv) > 0 {
			return fmt.Errorf("network: an mlp has no image or conv layers")
		}
	case KindCNN:
		if n.Image == nil {
			return fmt.Errorf("network: a cnn needs an image shape (channels, height, width)")
		}
		im := *n.Image
		if im.Channels <= 0 || im.Height <= 0 || im.Width <= 0 {
			return fmt.Errorf("network: image shape %dx%dx%d must be positive", im.Channels, im.Height, im.Width)
		}
		if im.Channels*im.Height*im.Width != n.Inputs {
			return fmt.Errorf("network: image %dx%dx%d has %d values but the data has %d features",
				im.Channels, im.Height, im.Width, im.Channels*im.Height*im.Width, n.Inputs)
		}
		if len(n.Conv) == 0 {
			return fmt.Errorf("network: a cnn needs at least one conv layer")
		}
		h, w := im.Height, im.Width
		for i, c := range n.Conv {
			if c.Filters <= 0 {
				return fmt.Errorf("network: conv layer %d: filters must be positive", i+1)
			}
			if c.Kernel <= 0 || c.Kernel%2 == 0 {
				return fmt.Errorf("network: conv layer %d: kernel must be odd and positive, got %d", i+1, c.Kernel)
			}
			if c.Pool > 1 {
				if h < c.Pool || w < c.Pool {
					return fmt.Errorf("network: conv layer %d: pool %d is larger than the %dx%d feature map", i+1, c.Pool, h, w)
				}
				h, w = h/c.Pool, w/c.Pool
			}
		}
	default:
		return fmt.Errorf("network: unknown kind %q (want mlp or cnn)", n.Kind)
	}
	return nil
}

// ConvShapes returns, for each conv block, its input shape (channels, height, width)
// and the flattened size after the last block.
func (n Network) ConvShapes() (in [][3]int, flat int) {
	if n.Image == nil {
		return nil, n.Inputs
	}
	c, h, w := n.Image.Channels, n.Image.Height, n.Image.Width
	for _, l := range n.Conv {
		in = append(in, [3]int{c, h, w})
		c = l.Filters
		if l.Pool > 1 {
			h, w = h/l.Pool, w/l.Pool
		}
	}
	return in, c * h * w
}

// Params lists the weight tensors in a fixed order: conv{i}.weight (filters, channels,
// k, k), conv{i}.bias (filters), then dense{j}.weight (in, out), dense{j}.bias (out),
// the last dense layer being the output layer.
func (n Network) Params() []Param {
	var ps []Param
	shapes, flat := n.ConvShapes()
	for i, l := range n.Conv {
		ps = append(ps,
			Param{Name: fmt.Sprintf("conv%d.weight", i), Shape: []int{l.Filters, shapes[i][0], l.Kernel, l.Kernel}},
			Param{Name: fmt.Sprintf("conv%d.bias", i), Shape: []int{l.Filters}})
	}
	in := flat
	sizes := append(append([]int(nil), n.Hidden...), n.Outputs)
	for j, out := range sizes {
		ps = append(ps,
			Param{Name: fmt.Sprintf("dense%d.weight", j), Shape: []int{in, out}},
			Param{Name: fmt.Sprintf("dense%d.bias", j), Shape: []int{out}})
		in = out
	}
	return ps
}

// CountParams is the total number of trainable values.
func (n Network) CountParams() int {
	t := 0
	for _, p := range n.Params() {
		t += p.Size()
	}
	return t
}

// String is a short human description, e.g. "mlp 13-64-32-1 relu/sigmoid".
func (n Network) String() string {
	var b strings.Builder
	b.WriteString(n.Kind)
	b.WriteByte(' ')
	if n.Image != nil {
		fmt.Fprintf(&b, "%dx%dx%d", n.Image.Channels, n.Image.Height, n.Image.Width)
		for _, c := range n.Conv {
			fmt.Fprintf(&b, "-c%dk%d", c.Filters, c.Kernel)
			if c.Pool > 1 {
				fmt.Fprintf(&b, "p%d", c.Pool)
			}
		}
	} else {
		fmt.Fprintf(&b, "%d", n.Inputs)
	}
	for _, h := range n.Hidden {
		fmt.Fprintf(&b, "-%d", h)
	}
	fmt.Fprintf(&b, "-%d %s/%s", n.Outputs, n.Activation, n.Output)
	return b.String()
}
