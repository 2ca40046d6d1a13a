package train

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/model/modeltest"
)

// peopleConfig trains on modeltest.PeopleCSV: a categorical city, a boolean
// member and a yes/no target.
func peopleConfig(t *testing.T) Config {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "people.csv")
	require.NoError(t, os.WriteFile(data, []byte(modeltest.PeopleCSV(400, 1)), 0o644))
	cfg := DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.MaxCategories = data, "buys", 3
	cfg.Epochs = 40
	cfg.OutDir = filepath.Join(dir, "model")
	cfg.SplitOut = filepath.Join(dir, "split.json")
	return cfg
}

func TestTrainCategorical(t *testing.T) {
	cfg := peopleConfig(t)
	var log bytes.Buffer
	cfg.Log = &log
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	card := res.Card

	assert.Equal(t, dataset.Binary, card.Task, "a yes/no target is binary")
	assert.Equal(t, []string{"no", "yes"}, card.Classes)
	assert.Equal(t, []string{"age", "city", "member", "income"}, card.Features, "the raw columns, in file order")

	// The categories are the 3 most frequent cities of the training rows.
	b, err := os.ReadFile(cfg.SplitOut)
	require.NoError(t, err)
	var split struct{ Train []int }
	require.NoError(t, json.Unmarshal(b, &split))
	f, err := dataset.ReadCSV(cfg.DataPath)
	require.NoError(t, err)
	counts := map[string]int{}
	for _, i := range split.Train {
		if c := f.Text[1][i]; c != "" {
			counts[c]++
		}
	}
	cities := slices.Clone(modeltest.Cities)
	slices.SortFunc(cities, func(a, b string) int {
		if d := counts[b] - counts[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	assert.Equal(t, map[string][]string{"city": cities[:3]}, card.Categories)
	assert.Equal(t, dataset.InputNames(card.Features, card.Categories), card.Inputs)
	assert.Equal(t, []string{"age", "city=" + cities[0], "city=" + cities[1], "city=" + cities[2], "city=(other)", "member", "income"}, card.Inputs)
	assert.Equal(t, 7, card.Network.Inputs)
	assert.Equal(t, 3, card.Data.MaxCategories)
	assert.Positive(t, card.Data.MissingBy["city"], "NA cities are missing")

	// One-hot inputs are 0 and 1 as they are; the others are standardised.
	for k := 1; k <= 4; k++ {
		assert.Equal(t, []float64{0, 0, 1}, []float64{card.Preprocess.Impute[k], card.Preprocess.Mean[k], card.Preprocess.Std[k]}, card.Inputs[k])
	}
	assert.InDelta(t, 50, card.Preprocess.Mean[0], 5)
	assert.InDelta(t, 0.5, card.Preprocess.Mean[5], 0.1, "member: true and false are 1 and 0")

	// The reference: z-score shares of the numeric features, slot shares of city.
	ref := card.Reference
	require.NotNil(t, ref)
	var names []string
	for _, fs := range ref.Features {
		names = append(names, fs.Name)
	}
	assert.Equal(t, []string{"age", "member", "income"}, names)
	require.Len(t, ref.Categories, 1)
	assert.Equal(t, "city", ref.Categories[0].Name)
	require.Len(t, ref.Categories[0].Shares, 4)
	sum := 0.0
	for k, s := range ref.Categories[0].Shares {
		sum += s
		if k < 3 {
			assert.InDelta(t, float64(counts[cities[k]])/float64(len(split.Train)), s, 1e-12, cities[k])
		}
	}
	assert.Less(t, sum, 1.0, "rows missing the city are in no slot")
	assert.Greater(t, sum, 0.9)

	// The directory reads back, and the predictor takes raw rows in the
	// user's column order with the city as its slot.
	m, err := model.Load(cfg.OutDir)
	require.NoError(t, err)
	assert.Greater(t, res.Metrics["accuracy"], 0.8, "city and age decide most of the target")
	x, y, err := dataset.Labeled(f, dataset.Schema{Features: card.Features, Target: card.Target, Task: card.Task, Classes: card.Classes, Categories: card.Categories})
	require.NoError(t, err)
	p, err := m.Predict(x)
	require.NoError(t, err)
	right := 0
	for i, c := range p.Class {
		if float64(c) == y[i] {
			right++
		}
	}
	assert.Greater(t, float64(right)/float64(len(y)), 0.8)

	// The log says what became categorical and how.
	assert.Contains(t, log.String(), "categorical city: 3 categories one-hot (\""+cities[0]+"\", \""+cities[1]+"\", \""+cities[2]+"\") and (other); ")
	assert.Contains(t, log.String(), "missing, which set none of its inputs\n")
	assert.NotContains(t, log.String(), "warning")
}

// TestTrainCategoricalPreprocess: the predictor's Preprocess of a raw row
// (the city as its slot) is the row the network was trained on.
func TestTrainCategoricalPreprocess(t *testing.T) {
	cfg := peopleConfig(t)
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	m, err := model.Load(cfg.OutDir)
	require.NoError(t, err)
	c := m.Card
	paris := slices.Index(c.Categories["city"], "paris")
	require.GreaterOrEqual(t, paris, 0)
	s := m.NewScratch()
	z := m.Preprocess([]float64{50, float64(paris), 1, math.NaN()}, s)
	want := []float64{(50 - c.Preprocess.Mean[0]) / c.Preprocess.Std[0], 0, 0, 0, 0, (1 - c.Preprocess.Mean[5]) / c.Preprocess.Std[5], 0}
	want[1+paris] = 1
	want[6] = (c.Preprocess.Impute[6] - c.Preprocess.Mean[6]) / c.Preprocess.Std[6]
	assert.Equal(t, want, z)
	// missing city: none of its inputs; a slot out of range: the other slot
	z = m.Preprocess([]float64{50, math.NaN(), 1, 40}, s)
	assert.Equal(t, []float64{0, 0, 0, 0}, z[1:5])
	z = m.Preprocess([]float64{50, 17, 1, 40}, s)
	assert.Equal(t, []float64{0, 0, 0, 1}, z[1:5])
}

func TestTrainCategoricalSameBytes(t *testing.T) {
	a, b := peopleConfig(t), peopleConfig(t)
	a.Epochs, b.Epochs = 3, 3
	for _, cfg := range []Config{a, b} {
		_, err := Run(context.Background(), cfg)
		require.NoError(t, err)
	}
	for _, f := range []string{model.CardFile, model.WeightsFile, model.MetricsFile} {
		x, err := os.ReadFile(filepath.Join(a.OutDir, f))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b.OutDir, f))
		require.NoError(t, err)
		assert.Equal(t, string(x), string(y), "%s differs between two runs with the same seed", f)
	}
}

// TestTrainNumericCardUnchanged: a CSV of numbers writes the card it wrote
// before categorical features existed: none of their fields.
func TestTrainNumericCardUnchanged(t *testing.T) {
	cfg := heartConfig(t)
	cfg.Epochs = 2
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(cfg.OutDir, model.CardFile))
	require.NoError(t, err)
	var card struct {
		Top       map[string]json.RawMessage
		Data      map[string]json.RawMessage `json:"data"`
		Reference map[string]json.RawMessage `json:"reference"`
	}
	require.NoError(t, json.Unmarshal(b, &card.Top))
	require.NoError(t, json.Unmarshal(b, &card))
	assert.NotContains(t, card.Top, "categories")
	assert.NotContains(t, card.Top, "inputs")
	assert.NotContains(t, card.Data, "max_categories")
	assert.NotContains(t, card.Reference, "categories")
	assert.Contains(t, card.Reference, "features")
}

func TestTrainTextWarnings(t *testing.T) {
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("a,b,y\n")
	for i := range 40 {
		b, y := "1.5", "yes"
		switch {
		case i == 7:
			b = "n/a" // a typo in a column of numbers
		case i%2 == 0:
			b = "2.5"
		}
		if i%3 == 0 {
			y = "no"
		}
		if i == 11 {
			y = "2"
		}
		csv.WriteString(strings.Join([]string{string(rune('0' + i%10)), b, y}, ",") + "\n")
	}
	data := filepath.Join(dir, "d.csv")
	require.NoError(t, os.WriteFile(data, []byte(csv.String()), 0o644))
	cfg := DefaultConfig()
	cfg.DataPath, cfg.Target, cfg.Epochs, cfg.OutDir = data, "y", 1, filepath.Join(dir, "model")
	var log bytes.Buffer
	cfg.Log = &log
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"2", "no", "yes"}, res.Card.Classes, "numbers first, then text")
	assert.Equal(t, dataset.Multiclass, res.Card.Task)
	assert.Contains(t, log.String(), `warning: the target "y" holds numbers and text (line 2: "no"; 39 text and 1 number cells): its classes are labels, numbers among them`+"\n")
	assert.Contains(t, log.String(), `warning: column "b" holds numbers and text (line 9: "n/a"; 1 text and 39 number cells), so it is categorical, each number a category; if it is numeric, fix those cells`+"\n")
}
