package serve

import (
	"math"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// shardedHistogram is a Prometheus histogram family whose counts are kept in
// shards (a request's pooled buffers own one) so that concurrent requests do not
// contend on the same cache lines; the shards are summed when Prometheus scrapes.
// Semantics are a Prometheus histogram's, except that a sum never becomes
// infinite: it saturates at ±math.MaxFloat64, so huge (finite) observations can
// never turn it into +Inf or, later, NaN. Callers observe finite values only.
//
// It serves mlship_input_feature_zscore (one series per feature; every request
// adds one observation per feature, so it is the server's hottest metric) and
// mlship_predicted_value (one series).
type shardedHistogram struct {
	desc    *prometheus.Desc
	series  [][]string // label values of each series
	buckets []float64  // upper bounds, ascending; +Inf is implicit
	shards  []histShard
	next    atomic.Uint32
}

type histShard struct {
	counts []atomic.Uint64 // series*(len(buckets)+1) + bucket; the last bucket is +Inf
	sums   []atomic.Uint64 // per series, float64 bits
	_      [64]byte        // keeps shards' hot words apart
}

func newShardedHistogram(desc *prometheus.Desc, series [][]string, buckets []float64, shards int) *shardedHistogram {
	h := &shardedHistogram{desc: desc, series: series, buckets: buckets, shards: make([]histShard, shards)}
	for i := range h.shards {
		h.shards[i].counts = make([]atomic.Uint64, len(series)*(len(buckets)+1))
		h.shards[i].sums = make([]atomic.Uint64, len(series))
	}
	return h
}

// newDriftHistogram is mlship_input_feature_zscore: per feature, a histogram of
// the live inputs standardised with the training mean and std.
func newDriftHistogram(features []string, shards int) *shardedHistogram {
	desc := prometheus.NewDesc("mlship_input_feature_zscore",
		"Live input values standardised with the training mean and std (training data: mean 0, std 1); for drift detection.",
		[]string{"feature"}, nil)
	series := make([][]string, len(features))
	for i, f := range features {
		series[i] = []string{f}
	}
	return newShardedHistogram(desc, series, zBuckets, shards)
}

// shard hands out shard indices round robin, one per pooled work buffer.
func (h *shardedHistogram) shard() int { return int(h.next.Add(1)) % len(h.shards) }

// observe adds one value to each series: v[j] to series j.
func (h *shardedHistogram) observe(shard int, v []float64) {
	for j, x := range v {
		h.observeOne(shard, j, x)
	}
}

// observeOne adds value v to series j.
func (h *shardedHistogram) observeOne(shard, j int, v float64) {
	s := &h.shards[shard]
	b := sort.SearchFloat64s(h.buckets, v) // first upper bound >= v; len(buckets) is +Inf
	s.counts[j*(len(h.buckets)+1)+b].Add(1)
	for {
		old := s.sums[j].Load()
		if s.sums[j].CompareAndSwap(old, math.Float64bits(saturate(math.Float64frombits(old)+v))) {
			return
		}
	}
}

// saturate clamps an overflowed sum to the largest finite float64 of its sign.
func saturate(x float64) float64 {
	if math.IsInf(x, 0) {
		return math.Copysign(math.MaxFloat64, x)
	}
	return x
}

func (h *shardedHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *shardedHistogram) Collect(ch chan<- prometheus.Metric) {
	nb := len(h.buckets) + 1
	per := make([]uint64, nb)
	for j, labels := range h.series {
		var count uint64
		var sum float64
		clear(per)
		for i := range h.shards {
			s := &h.shards[i]
			for b := 0; b < nb; b++ {
				per[b] += s.counts[j*nb+b].Load()
			}
			sum = saturate(sum + math.Float64frombits(s.sums[j].Load()))
		}
		buckets := make(map[float64]uint64, len(h.buckets))
		for b, upper := range h.buckets {
			count += per[b]
			buckets[upper] = count
		}
		count += per[len(h.buckets)]
		ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets, labels...)
	}
}
