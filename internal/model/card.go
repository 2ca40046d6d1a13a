package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/fsutil"
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
	Format   string       `json:"format"`
	Name     string       `json:"name"`
	Task     dataset.Task `json:"task"`     // binary, multiclass or regression
	Features []string     `json:"features"` // input order
	Target   string       `json:"target"`
	// Binarize is the rule that made a binary target, e.g. ">0"; empty when none.
	Binarize string `json:"binarize,omitempty"`
	// Classes are the labels of the class indices (classification only).
	Classes []string `json:"classes,omitempty"`
	// Preprocess is applied to raw inputs: missing values imputed, then standardised.
	Preprocess dataset.Preprocessor `json:"preprocess"`
	// TargetScale (regression) maps the network output back: y = out*Std + Mean.
	TargetScale *Scale             `json:"target_scale,omitempty"`
	Network     Network            `json:"network"`
	Params      int                `json:"params"`
	Training    Training           `json:"training"`
	Metrics     map[string]float64 `json:"metrics"`                    // on the test split
	Confusion   [][]int            `json:"confusion_matrix,omitempty"` // [true][predicted], test split
	Data        DataInfo           `json:"data"`
	Seed        int64              `json:"seed"`
	Weights     WeightsInfo        `json:"weights"`
	Version     string             `json:"mlship_version"`
	GitSHA      string             `json:"git_sha,omitempty"`
}

// Scale is an affine map.
type Scale struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// Training records how the model was fitted.
type Training struct {
	Optimizer    string  `json:"optimizer"` // "adam"
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
	Split     SplitInfo      `json:"split"`
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
	DType  string `json:"dtype"`  // "F64"
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

// ReadCard reads dir/model.json.
func ReadCard(dir string) (*Card, error) {
	p := filepath.Join(dir, CardFile)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
				return nil, fmt.Errorf("reading model %q: no such directory", dir)
			}
			return nil, fmt.Errorf("reading model %q: no %s in it (is it a model directory written by mlship train?)", dir, CardFile)
		}
		return nil, fmt.Errorf("reading model %q: %w", dir, err)
	}
	var c Card
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("reading model card %q: %w", p, err)
	}
	if c.Format != Format {
		return nil, fmt.Errorf("reading model card %q: format %q is not %q", p, c.Format, Format)
	}
	if err := c.Network.Validate(); err != nil {
		return nil, fmt.Errorf("reading model card %q: %w", p, err)
	}
	if len(c.Features) != c.Network.Inputs {
		return nil, fmt.Errorf("reading model card %q: %d features but the network takes %d inputs", p, len(c.Features), c.Network.Inputs)
	}
	if err := c.Preprocess.Validate(len(c.Features)); err != nil {
		return nil, fmt.Errorf("reading model card %q: preprocess: %w", p, err)
	}
	return &c, nil
}

// WriteDir writes a complete model directory (card, weights, metrics.json) to dir
// without ever leaving a partial one: files go to a temporary sibling directory that
// is renamed into place at the end. An existing dir is replaced only when it is a
// model directory (holds model.json) or empty; anything else is refused.
func WriteDir(dir string, card *Card, tensors map[string]Tensor, metricsJSON []byte) error {
	if err := CheckReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, ".mlship-model-*")
	if err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	var wbuf bytes.Buffer
	if err := WriteSafetensors(&wbuf, tensors, map[string]string{"format": Format, "network": card.Network.String()}); err != nil {
		return fmt.Errorf("writing model %q: weights: %w", dir, err)
	}
	sum := sha256.Sum256(wbuf.Bytes())
	card.Weights = WeightsInfo{File: WeightsFile, Format: "safetensors", DType: "F64", SHA256: hex.EncodeToString(sum[:])}
	cb, err := card.Marshal()
	if err != nil {
		return fmt.Errorf("writing model %q: card: %w", dir, err)
	}
	files := []struct {
		name string
		data []byte
	}{{WeightsFile, wbuf.Bytes()}, {MetricsFile, metricsJSON}, {CardFile, cb}}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("writing model %q: %w", dir, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	if err := fsutil.ReplaceDir(tmp, dir); err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	ok = true
	return nil
}

// CheckReplaceable reports whether WriteDir may write dir: it does not exist, is
// empty, or is a model directory (holds model.json).
func CheckReplaceable(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("writing model %q: it exists and is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, CardFile)); err == nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("writing model %q: the directory is not empty and holds no %s; refusing to replace it", dir, CardFile)
	}
	return nil
}
