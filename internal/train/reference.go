package train

import (
	"math"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
)

// reference computes the card's training distribution: each feature's share of
// the training rows in the z-score buckets mlship-serve exports (the rows
// imputed and standardised as the server does), and the distribution of m's
// predictions on the validation rows (the test rows when there are none).
func reference(m *model.Model, ds *dataset.Dataset, split dataset.Split) (*model.Reference, error) {
	card := m.Card
	nf := len(card.Features)
	s := m.NewScratch()
	counts := make([][]int, nf)
	for j := range counts {
		counts[j] = make([]int, len(model.ZBuckets)+1)
	}
	for _, r := range split.Train {
		z := m.Preprocess(ds.X[r], s)
		for j, v := range z[:nf] {
			counts[j][model.ZBucket(v)]++
		}
	}
	ref := &model.Reference{Buckets: append([]float64(nil), model.ZBuckets...), Rows: len(split.Train)}
	for j, f := range card.Features {
		shares := make([]float64, len(counts[j]))
		for b, c := range counts[j] {
			if len(split.Train) > 0 {
				shares[b] = float64(c) / float64(len(split.Train))
			}
		}
		ref.Features = append(ref.Features, model.FeatureShares{Name: f, Shares: shares})
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
