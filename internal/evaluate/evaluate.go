// Package evaluate scores a trained model on labelled rows with the pure-Go
// predictor: the train step uses it for the test split, the gate for new data.
package evaluate

import (
	"context"
	"fmt"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model"
)

// Score evaluates m on raw rows (NaN = missing) with known targets (class
// indices, or values for regression) and returns the metrics and, for
// classifiers, the confusion matrix [true][predicted].
func Score(m *model.Model, rows [][]float64, y []float64) (metrics.Values, [][]int, error) {
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("scoring: no rows")
	}
	p, err := m.Predict(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("scoring: %w", err)
	}
	if m.Card.Network.Output == model.OutputLinear {
		return metrics.Regression(y, p.Value), nil, nil
	}
	yi := make([]int, len(y))
	for i := range y {
		yi[i] = int(y[i])
	}
	if m.Card.Network.Output == model.OutputSigmoid {
		p1 := make([]float64, len(y))
		for i := range y {
			p1[i] = p.Probs[i][1]
		}
		v, c := metrics.Binary(yi, p1)
		return v, c, nil
	}
	v, c := metrics.Multiclass(yi, p.Probs)
	return v, c, nil
}

// File loads the model in modelDir and scores it on the CSV at dataPath, which
// must hold the model's feature columns and its target column (read like the
// training CSV: a categorical feature's category the model does not list is
// its other slot, see dataset.Labeled).
func File(ctx context.Context, modelDir, dataPath string) (metrics.Values, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := model.Load(modelDir)
	if err != nil {
		return nil, err
	}
	f, err := dataset.ReadCSV(dataPath)
	if err != nil {
		return nil, err
	}
	c := m.Card
	x, y, err := dataset.Labeled(f, dataset.Schema{
		Features: c.Features, Target: c.Target, Task: dataset.Task(c.Task), Binarize: c.Binarize, Classes: c.Classes,
		Categories: c.Categories,
	})
	if err != nil {
		return nil, err
	}
	v, _, err := Score(m, x, y)
	if err != nil {
		return nil, fmt.Errorf("evaluating %q on %q: %w", modelDir, dataPath, err)
	}
	return v, nil
}
