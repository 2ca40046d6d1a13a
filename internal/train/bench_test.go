package train

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/mlship/mlship/internal/model"
)

// BenchmarkStep measures one optimiser step (forward, backward, Adam) of the heart
// recipe's network at batch 32 and 256; samples/s is reported as a custom metric.
func BenchmarkStep(b *testing.B) {
	for _, bs := range []int{32, 256} {
		b.Run(map[int]string{32: "batch32", 256: "batch256"}[bs], func(b *testing.B) {
			spec := model.Network{Kind: model.KindMLP, Inputs: 13, Outputs: 1, Hidden: []int{64, 32}, Activation: "relu", Output: model.OutputSigmoid}
			n, err := newNet(fitConfig{Net: spec, BatchSize: bs, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}, initParams(spec, 1), false)
			if err != nil {
				b.Fatal(err)
			}
			fillBatch(n, rand.New(rand.NewPCG(1, 1)), false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := n.runStep(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bs)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkTrainHeart runs the whole train step on the heart recipe (read, split,
// fit with validation each epoch, score, write) and reports training samples/s.
func BenchmarkTrainHeart(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Binarize = "../../examples/heart-disease/heart.csv", "target", ">0"
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
