package train

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/mlship/mlship/internal/model"
)

// cnnBenchNets are the two CNNs: the digits network (1x8x8, conv 16x3
// pool 2, dense 64, batch 32) and a CIFAR-sized one (3x32x32, conv 32x3 pool 2,
// conv 64x3 pool 2, dense 64, batch 64).
var cnnBenchNets = []struct {
	name  string
	batch int
	net   model.Network
}{
	{"digits", 32, model.Network{Kind: model.KindCNN, Inputs: 64, Outputs: 10, Image: &model.Image{Channels: 1, Height: 8, Width: 8},
		Conv: []model.ConvLayer{{Filters: 16, Kernel: 3, Pool: 2}}, Hidden: []int{64}, Activation: "relu", Output: model.OutputSoftmax}},
	{"cifar", 64, model.Network{Kind: model.KindCNN, Inputs: 3 * 32 * 32, Outputs: 10, Image: &model.Image{Channels: 3, Height: 32, Width: 32},
		Conv: []model.ConvLayer{{Filters: 32, Kernel: 3, Pool: 2}, {Filters: 64, Kernel: 3, Pool: 2}}, Hidden: []int{64}, Activation: "relu", Output: model.OutputSoftmax}},
}

// BenchmarkCNNStep measures one optimiser step of each CNN; samples/s is reported.
func BenchmarkCNNStep(b *testing.B) {
	for _, c := range cnnBenchNets {
		b.Run(c.name, func(b *testing.B) {
			n, err := newNet(fitConfig{Net: c.net, BatchSize: c.batch, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}, initParams(c.net, 1), false)
			if err != nil {
				b.Fatal(err)
			}
			defer n.vm.Close()
			fillBatch(n, rand.New(rand.NewPCG(1, 1)), false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := n.runStep(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.batch)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkTrainDigits runs the whole train step on the digits CNN (30 epochs,
// validation each epoch) and reports training samples/s.
func BenchmarkTrainDigits(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Task = "../../examples/digits/digits.csv", "label", "multiclass"
	cfg.Kind, cfg.Image, cfg.Conv, cfg.Hidden = model.KindCNN, &model.Image{Channels: 1, Height: 8, Width: 8}, []model.ConvLayer{{Filters: 16, Kernel: 3, Pool: 2}}, []int{64}
	cfg.BatchSize, cfg.Epochs, cfg.Patience = 32, 30, 0
	cfg.OutDir = b.TempDir() + "/model"
	var samples, secs float64
	for i := 0; i < b.N; i++ {
		res, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		samples += res.SamplesPerSecond * res.TrainSeconds
		secs += res.TrainSeconds
	}
	b.ReportMetric(samples/secs, "samples/s")
}
