package serve

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDriftHistogramMatchesPrometheus feeds the same values, from concurrent
// goroutines over several shards, to the sharded drift histogram and to a plain
// Prometheus histogram with the same buckets: the scraped results must agree.
func TestDriftHistogramMatchesPrometheus(t *testing.T) {
	h := newDriftHistogram([]string{"a", "b"}, 5)
	ref := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ref", Buckets: zBuckets}, []string{"feature"})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			shard := h.shard()
			for i := 0; i < 2000; i++ {
				// Values on bucket bounds too: a bound is inclusive (le).
				row := []float64{rng.NormFloat64() * 2, float64(rng.IntN(7) - 3)}
				h.observe(shard, row)
				ref.WithLabelValues("a").Observe(row[0])
				ref.WithLabelValues("b").Observe(row[1])
			}
		}(g)
	}
	wg.Wait()
	got := collect(t, h)
	want := collect(t, ref)
	require.Len(t, got, 2)
	for i := range got {
		g, w := got[i].Histogram, want[i].Histogram
		assert.Equal(t, w.GetSampleCount(), g.GetSampleCount())
		assert.InDelta(t, w.GetSampleSum(), g.GetSampleSum(), 1e-6)
		require.Len(t, g.Bucket, len(w.Bucket))
		for b := range w.Bucket {
			assert.Equal(t, w.Bucket[b].GetUpperBound(), g.Bucket[b].GetUpperBound())
			assert.Equal(t, w.Bucket[b].GetCumulativeCount(), g.Bucket[b].GetCumulativeCount(), "feature %d bucket le=%v", i, w.Bucket[b].GetUpperBound())
		}
	}
}

func collect(t *testing.T, c prometheus.Collector) []*dto.Metric {
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	fams, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, fams, 1)
	return fams[0].Metric // sorted by label value
}
