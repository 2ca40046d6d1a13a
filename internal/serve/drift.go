package serve

import (
	"math"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// driftHistogram is mlship_input_feature_zscore: per feature, a histogram of the
// live inputs standardised with the training mean and std. Every request adds
// one observation per feature, so it is the server's hottest metric: its counts
// are kept in shards (a request's pooled buffers own one) so that concurrent
// requests do not contend on the same cache lines, and are summed when
// Prometheus scrapes. Semantics are a Prometheus histogram's.
type driftHistogram struct {
	desc     *prometheus.Desc
	features []string
	shards   []driftShard
	next     atomic.Uint32
}

type driftShard struct {
	counts []atomic.Uint64 // feature*(len(zBuckets)+1) + bucket; the last bucket is +Inf
	sums   []atomic.Uint64 // per feature, float64 bits
	_      [64]byte        // keeps shards' hot words apart
}

func newDriftHistogram(features []string, shards int) *driftHistogram {
	h := &driftHistogram{
		desc: prometheus.NewDesc("mlship_input_feature_zscore",
			"Live input values standardised with the training mean and std (training data: mean 0, std 1); for drift detection.",
			[]string{"feature"}, nil),
		features: features,
		shards:   make([]driftShard, shards),
	}
	for i := range h.shards {
		h.shards[i].counts = make([]atomic.Uint64, len(features)*(len(zBuckets)+1))
		h.shards[i].sums = make([]atomic.Uint64, len(features))
	}
	return h
}

// shard hands out shard indices round robin, one per pooled work buffer.
func (h *driftHistogram) shard() int { return int(h.next.Add(1)) % len(h.shards) }

// observe adds one row of standardised values to a shard.
func (h *driftHistogram) observe(shard int, z []float64) {
	s := &h.shards[shard]
	nb := len(zBuckets) + 1
	for j, v := range z {
		b := sort.SearchFloat64s(zBuckets, v) // first upper bound >= v; len(zBuckets) is +Inf
		s.counts[j*nb+b].Add(1)
		for {
			old := s.sums[j].Load()
			if s.sums[j].CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
				break
			}
		}
	}
}

func (h *driftHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *driftHistogram) Collect(ch chan<- prometheus.Metric) {
	nb := len(zBuckets) + 1
	for j, f := range h.features {
		var count uint64
		var sum float64
		per := make([]uint64, nb)
		for i := range h.shards {
			s := &h.shards[i]
			for b := 0; b < nb; b++ {
				per[b] += s.counts[j*nb+b].Load()
			}
			sum += math.Float64frombits(s.sums[j].Load())
		}
		buckets := make(map[float64]uint64, len(zBuckets))
		for b, upper := range zBuckets {
			count += per[b]
			buckets[upper] = count
		}
		count += per[len(zBuckets)]
		ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets, f)
	}
}
