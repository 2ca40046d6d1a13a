package train

import (
	"math"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
)

// reference computes the card's training distribution: each numeric feature's
// share of the training rows in the z-score buckets mlship-serve exports (the
// rows imputed and standardised as the server does), each categorical
// feature's share of them in its one-hot slots (as mlship-serve counts its
// categories), and the distribution of m's predictions on the validation rows
// (the test rows when there are none).
func reference(m *model.Model, ds *dataset.Dataset, split dataset.Split) (*model.Reference, error) {
	card := m.Card
	inputs := m.Inputs()
	s := m.NewScratch()
	counts := make([][]int, len(inputs))
	for j, in := range inputs {
		n := len(model.ZBuckets) + 1
		if in.Encoder != nil {
			n = in.Encoder.Width()
		}
		counts[j] = make([]int, n)
	}
	for _, r := range split.Train {
		z := m.Preprocess(ds.X[r], s)
		for j, in := range inputs {
			if in.Encoder == nil {
				counts[j][model.ZBucket(z[in.Offset])]++
			} else if v := ds.X[r][j]; !math.IsNaN(v) {
				counts[j][int(v)]++
			}
		}
	}
	ref := &model.Reference{Buckets: append([]float64(nil), model.ZBuckets...), Rows: len(split.Train), Features: []model.FeatureShares{}}
	for j, in := range inputs {
		shares := make([]float64, len(counts[j]))
		for b, c := range counts[j] {
			if len(split.Train) > 0 {
				shares[b] = float64(c) / float64(len(split.Train))
			}
		}
		fs := model.FeatureShares{Name: in.Name, Shares: shares}
		if in.Encoder != nil {
			ref.Categories = append(ref.Categories, fs)
		} else {
			ref.Features = append(ref.Features, fs)
		}
	}
	rows := split.Val
	if len(rows) == 0 {
		rows = split.Test
	}
	xs := make([][]float64, len(rows))
	for i, r := range rows {
		xs[i] = ds.X[r]
	}
	p, err := m.Predict(xs)
	if err != nil {
		return nil, err
	}
	ps := model.PredictionShares{Rows: len(rows)}
	if len(card.Classes) > 0 {
		ps.Classes = make([]float64, len(card.Classes))
		for _, c := range p.Class {
			ps.Classes[c]++
		}
		for i := range ps.Classes {
			if len(rows) > 0 {
				ps.Classes[i] /= float64(len(rows))
			}
		}
	} else if len(p.Value) > 0 {
		ps.Values = model.Shares(card.ValueBuckets(), p.Value)
		mean, std := meanStd(p.Value)
		ps.Mean, ps.Std = &mean, &std
	}
	ref.Predictions = ps
	return ref, nil
}

// meanStd is the mean and (population) standard deviation of v, by Welford's
// method.
func meanStd(v []float64) (mean, std float64) {
	var m2 float64
	for i, x := range v {
		d := x - mean
		mean += d / float64(i+1)
		m2 += float64(d * (x - mean))
	}
	if len(v) > 0 {
		std = math.Sqrt(m2 / float64(len(v)))
	}
	return mean, std
}
