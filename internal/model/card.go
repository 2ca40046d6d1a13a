package model

import (
	"bytes"
	"encoding/json"

	"github.com/mlship/mlship/internal/dataset"
)

// Files in a model directory.
const (
	CardFile    = "model.json"
	WeightsFile = "model.safetensors"
	MetricsFile = "metrics.json"
	// Format names the model card schema; bump it when a field changes meaning.
	Format = "mlship.model/v1"
)

// Card is the model card, model.json: everything needed to use, audit and
// reproduce the model, and nothing that changes from run to run (no timings, no
// absolute paths), so the same data, config and seed give the same bytes.
type Card struct {
	Format string       `json:"format"`
	Name   string       `json:"name"`
	Task   dataset.Task `json:"task"` // binary, multiclass or regression
	// Features are the model's input columns, in the order the predictor and
	// the server take a raw row.
	Features []string `json:"features"`
	// Categories lists, for each categorical feature (read from a column of
	// text), its categories in the order of its one-hot inputs; the Other
	// slot (category.Other) follows them. Absent when every feature is
	// numeric.
	Categories map[string][]string `json:"categories,omitempty"`
	// Inputs names the network's inputs when some feature is categorical:
	// Features with each categorical one expanded into "feature=category"
	// inputs and "feature=(other)" (dataset.InputNames). Absent otherwise:
	// the inputs are Features.
	Inputs []string `json:"inputs,omitempty"`
	Target string   `json:"target"`
	// Binarize is the rule that made a binary target, e.g. ">0"; empty when none.
	Binarize string `json:"binarize,omitempty"`
	// Classes are the labels of the class indices (classification only).
	Classes []string `json:"classes,omitempty"`
	// Preprocess is applied to the network's inputs (the raw row, its
	// categorical features one-hot): missing values imputed, then
	// standardised; a one-hot input has impute 0, mean 0 and std 1.
	Preprocess dataset.Preprocessor `json:"preprocess"`
	// TargetScale (regression) maps the network output back: y = out*Std + Mean.
	TargetScale *Scale             `json:"target_scale,omitempty"`
	Network     Network            `json:"network"`
	Params      int                `json:"params"`
	Training    Training           `json:"training"`
	Metrics     map[string]float64 `json:"metrics"`                    // on the test split
	Confusion   [][]int            `json:"confusion_matrix,omitempty"` // [true][predicted], test split
	// Reference is the training distribution live traffic is compared with
	// (absent in cards written before mlship recorded it).
	Reference *Reference  `json:"reference,omitempty"`
	Data      DataInfo    `json:"data"`
	Seed      int64       `json:"seed"`
	Weights   WeightsInfo `json:"weights"`
	Version   string      `json:"mlship_version"`
	GitSHA    string      `json:"git_sha,omitempty"`
}

// Scale is an affine map.
type Scale struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// Determinism is what train promises and internal/crossarch tests: the same
// weights, metrics and card, bit for bit, from the same mlship version, data
// file, settings and seed on any architecture, CPU and core count.
const Determinism = "same bits from the same mlship version, data, settings and seed, on any architecture, CPU and core count"

// Training records how the model was fitted.
type Training struct {
	Optimizer string `json:"optimizer"` // "adam"
	// DType is the training arithmetic's type: "float64" or "float32" (the
	// weights are then stored as F32). Cards written before it was recorded
	// have none: float64.
	DType string `json:"dtype,omitempty"`
	// Determinism says what reproduces these weights bit for bit
	// (Determinism; cards from before it have none).
	Determinism  string  `json:"determinism,omitempty"`
	LearningRate float64 `json:"learning_rate"`
	Beta1        float64 `json:"beta1"`
	Beta2        float64 `json:"beta2"`
	Epsilon      float64 `json:"epsilon"`
	Loss         string  `json:"loss"`
	BatchSize    int     `json:"batch_size"`
	MaxEpochs    int     `json:"max_epochs"`
	Patience     int     `json:"patience"`
	EpochsRun    int     `json:"epochs_run"`
	BestEpoch    int     `json:"best_epoch"`
	StoppedEarly bool    `json:"stopped_early"`
	ValMetric    string  `json:"val_metric"` // the metric in Curve[i].ValMetric
	Curve        []Epoch `json:"curve"`
}

// Epoch is one point of the training curve.
type Epoch struct {
	Epoch     int     `json:"epoch"`
	Loss      float64 `json:"loss"`
	ValLoss   float64 `json:"val_loss"`
	ValMetric float64 `json:"val_metric"`
}

// DataInfo is the lineage of the training data.
type DataInfo struct {
	File      string         `json:"file"` // base name
	SHA256    string         `json:"sha256"`
	Rows      int            `json:"rows"`
	Missing   int            `json:"missing_filled"`
	MissingBy map[string]int `json:"missing_by_feature,omitempty"`
	Dropped   []string       `json:"dropped,omitempty"`
	Empty     []string       `json:"dropped_empty,omitempty"` // columns left out because they are empty in every row
	// MaxCategories is the most categories a categorical feature keeps (the
	// train step's max-categories); set only when a feature is categorical.
	MaxCategories int       `json:"max_categories,omitempty"`
	Split         SplitInfo `json:"split"`
}

// SplitInfo describes the seeded split.
type SplitInfo struct {
	Train      int     `json:"train"`
	Val        int     `json:"val"`
	Test       int     `json:"test"`
	TestFrac   float64 `json:"test_fraction"`
	ValFrac    float64 `json:"val_fraction"`
	Stratified bool    `json:"stratified"`
}

// WeightsInfo points at the weights file.
type WeightsInfo struct {
	File   string `json:"file"`
	Format string `json:"format"` // "safetensors"
	DType  string `json:"dtype"`  // "F64", or "F32" for a model trained in float32
	SHA256 string `json:"sha256"`
}

// Marshal renders the card as indented JSON with a trailing newline.
func (c *Card) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
