// Package modeltest writes small, valid model directories for tests of the
// packages that read them (gate, report, image, serve): the card, weights that
// match its sha256, and a metrics.json that agrees with the card, as train
// writes them, without training.
package modeltest

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
)

// Options describe a toy model; the zero value is a binary model of target "y"
// with no metrics.
type Options struct {
	Name     string       // default "toy"
	Task     dataset.Task // default binary
	Target   string       // default "y"
	Binarize string
	// Classes default to "0", "1" (binary) or "0".."NClasses-1" (multiclass);
	// none for regression.
	Classes  []string
	NClasses int // multiclass, when Classes is nil; default 3
	Metrics  map[string]float64
	// Categories makes features (of a, b, c) categorical with these
	// categories: one-hot inputs, as train writes them.
	Categories map[string][]string
}

// Card returns the card and weights of the toy model o describes: an MLP of
// three features, one hidden layer of 4, deterministic weights.
func Card(o Options) (*model.Card, map[string]model.Tensor) {
	if o.Name == "" {
		o.Name = "toy"
	}
	if o.Task == "" {
		o.Task = dataset.Binary
	}
	if o.Target == "" {
		o.Target = "y"
	}
	features := []string{"a", "b", "c"}
	pre := dataset.Preprocessor{Impute: []float64{1, 2, 3}, Mean: []float64{1, 2, 3}, Std: []float64{1, 2, 0.5}}
	var inputs []string
	if o.Categories != nil {
		inputs = dataset.InputNames(features, o.Categories)
		pre = dataset.Preprocessor{}
		for j, f := range features {
			w, imp, mean, std := 1, float64(j+1), float64(j+1), []float64{1, 2, 0.5}[j]
			if c, ok := o.Categories[f]; ok {
				w, imp, mean, std = len(c)+1, 0, 0, 1
			}
			for range w {
				pre.Impute = append(pre.Impute, imp)
				pre.Mean = append(pre.Mean, mean)
				pre.Std = append(pre.Std, std)
			}
		}
	}
	net := model.Network{Kind: model.KindMLP, Inputs: len(pre.Mean), Hidden: []int{4}, Activation: "relu"}
	var scale *model.Scale
	switch o.Task {
	case dataset.Binary:
		net.Outputs, net.Output = 1, model.OutputSigmoid
		if o.Classes == nil {
			o.Classes = []string{"0", "1"}
		}
	case dataset.Multiclass:
		if o.Classes == nil {
			n := o.NClasses
			if n == 0 {
				n = 3
			}
			for i := range n {
				o.Classes = append(o.Classes, strconv.Itoa(i))
			}
		}
		net.Outputs, net.Output = len(o.Classes), model.OutputSoftmax
	default:
		net.Outputs, net.Output = 1, model.OutputLinear
		scale = &model.Scale{Mean: 10, Std: 2}
	}
	card := &model.Card{
		Format: model.Format, Name: o.Name, Task: o.Task, Features: features, Categories: o.Categories, Inputs: inputs, Target: o.Target,
		Binarize: o.Binarize, Classes: o.Classes,
		Preprocess:  pre,
		TargetScale: scale, Network: net, Params: net.CountParams(),
		Metrics: o.Metrics,
		Data:    model.DataInfo{File: "toy.csv", SHA256: "0000000000000000000000000000000000000000000000000000000000000000", Rows: 10},
		Seed:    1, Version: "test",
	}
	tensors := map[string]model.Tensor{}
	v := 0.1
	for _, p := range net.Params() {
		data := make([]float64, p.Size())
		for i := range data {
			data[i] = v
			v = -v*1.1 + 0.05
		}
		tensors[p.Name] = model.Tensor{Shape: p.Shape, Data: data}
	}
	return card, tensors
}

// Write writes the toy model o describes to dir (created; its parent too) and
// returns dir.
func Write(t testing.TB, dir string, o Options) string {
	t.Helper()
	card, tensors := Card(o)
	if err := model.WriteDir(dir, card, tensors, nil); err != nil {
		t.Fatalf("writing toy model: %v", err)
	}
	return dir
}

// Dir writes the toy model o describes to a new temporary directory.
func Dir(t testing.TB, o Options) string {
	t.Helper()
	return Write(t, filepath.Join(t.TempDir(), "model"), o)
}
