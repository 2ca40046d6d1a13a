// Package train is the train step: it reads a CSV, splits and preprocesses it,
// trains a network with gorgonia and writes a model directory.
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/evaluate"
	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model"
)

// Config is everything the train step needs. Zero values are not defaults: start
// from DefaultConfig.
type Config struct {
	// Name of the model (default: the data file's base name without extension).
	Name string `mlship:"name"`
	// DataPath is the CSV file (header row, numeric cells, missing values as
	// "", "?", "NA", "NaN").
	DataPath string `mlship:"data"`
	// Target is the column to predict.
	Target string `mlship:"target"`
	// Drop lists columns to ignore; Features, when set, lists the inputs and their order.
	Drop     []string `mlship:"drop"`
	Features []string `mlship:"features"`
	// Task is binary, multiclass, regression, or "" (or auto) to infer it from the target.
	Task string `mlship:"task"`
	// Binarize turns a target into a binary one, e.g. ">0", or "==yes" for a
	// target of text.
	Binarize string `mlship:"binarize"`
	// MaxCategories is the most categories a categorical feature (a column of
	// text) keeps, the most frequent in the training rows; the others share
	// one "other" input.
	MaxCategories int `mlship:"max-categories"`

	// Kind is "mlp" or "cnn".
	Kind string `mlship:"kind"`
	// Hidden lists the dense hidden layer sizes.
	Hidden []int `mlship:"hidden"`
	// Activation of hidden layers: relu or tanh.
	Activation string `mlship:"activation"`
	// Image and Conv describe the CNN (Kind "cnn" only).
	Image *model.Image      `mlship:"input-shape"`
	Conv  []model.ConvLayer `mlship:"conv"`

	BatchSize    int     `mlship:"batch-size"`    // rows per step; the last short batch is padded and masked out of the loss
	Epochs       int     `mlship:"epochs"`        // maximum epochs
	Patience     int     `mlship:"patience"`      // stop after this many epochs without a better validation loss (0: never)
	LearningRate float64 `mlship:"learning-rate"` // Adam step size
	TestFrac     float64 `mlship:"test-size"`     // fraction of all rows held out for the test metrics
	ValFrac      float64 `mlship:"val-size"`      // fraction of the remaining rows used for early stopping
	Seed         int64   `mlship:"seed"`          // drives the split, the initial weights and the shuffling
	// DType is the training arithmetic's type: DTypeFloat64 (the default) or
	// DTypeFloat32 (an MLP only; the weights are then stored as F32).
	DType string `mlship:"dtype"`

	// OutDir is the model directory to write (replaced only if it is a model directory or empty).
	OutDir string `mlship:"out"`
	// SplitOut, when set, receives the split as JSON {"train","val","test"}: 0-based data row indices.
	SplitOut string `mlship:"split-out"`

	Version string // mlship version recorded in the card
	GitSHA  string `mlship:"git-sha"` // commit recorded in the card, when known

	// Log receives one line per epoch and a summary; nil discards them.
	Log io.Writer
}

// DefaultConfig is the reference recipe: MLP 64-32 relu, Adam 0.001, batch 32, up
// to 100 epochs, patience 10, test 20%, validation 20% of the rest, seed 42.
func DefaultConfig() Config {
	return Config{
		Kind: model.KindMLP, Hidden: []int{64, 32}, Activation: "relu",
		BatchSize: 32, Epochs: 100, Patience: 10, LearningRate: 0.001,
		TestFrac: 0.2, ValFrac: 0.2, Seed: 42, OutDir: "model", MaxCategories: 20,
		DType: DTypeFloat64,
	}
}

// The training arithmetic's types (Config.DType).
const (
	DTypeFloat64 = "float64"
	DTypeFloat32 = "float32"
)

// Validate checks the configuration before any work is done. Its errors are
// *fault.FieldError keyed by input name (internal/spec), joined.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fault.Field(field, format, a...)) }
	if c.DataPath == "" {
		add("data", "is required (the training CSV)")
	}
	if c.Target == "" {
		add("target", "is required (the column to predict)")
	}
	if c.OutDir == "" {
		add("out", "is required (the model directory to write)")
	}
	if _, err := dataset.ParseTask(c.Task); err != nil {
		add("task", "must be binary, multiclass, regression or auto, got %q", c.Task)
	}
	switch c.Kind {
	case model.KindMLP:
		if c.Image != nil {
			add("input-shape", "is for a cnn only (set {kind} to cnn)")
		}
		if len(c.Conv) > 0 {
			add("conv", "is for a cnn only (set {kind} to cnn)")
		}
	case model.KindCNN:
		if c.Image == nil {
			add("input-shape", "is required for a cnn (CHANNELSxHEIGHTxWIDTH)")
		}
		if len(c.Conv) == 0 {
			add("conv", "is required for a cnn: at least one block FILTERSxKERNEL[pPOOL]")
		}
	default:
		add("kind", "must be mlp or cnn, got %q", c.Kind)
	}
	switch c.DType {
	case DTypeFloat64, "":
	case DTypeFloat32:
		if c.Kind == model.KindCNN {
			add("dtype", "float32 trains an mlp only; a cnn trains in float64")
		}
	default:
		add("dtype", "must be float32 or float64, got %q", c.DType)
	}
	for _, h := range c.Hidden {
		if h <= 0 {
			add("hidden", "sizes must be positive, got %d", h)
			break
		}
	}
	// Building the graph takes time growing with the square of the depth
	// (2000 layers: half a minute); no plain MLP or CNN this deep trains.
	if len(c.Hidden) > maxHidden {
		add("hidden", "has %d layers, at most %d are supported", len(c.Hidden), maxHidden)
	}
	if len(c.Conv) > maxConv {
		add("conv", "has %d blocks, at most %d are supported", len(c.Conv), maxConv)
	}
	if im := c.Image; im != nil && im.Channels > 0 && im.Height > 0 && im.Width > 0 {
		if hi, lo := bits.Mul64(uint64(im.Channels), uint64(im.Height)); hi != 0 || lo > math.MaxInt32 {
			add("input-shape", "%dx%dx%d has more values than any data file has columns", im.Channels, im.Height, im.Width)
		} else if hi, lo := bits.Mul64(lo, uint64(im.Width)); hi != 0 || lo > math.MaxInt32 {
			add("input-shape", "%dx%dx%d has more values than any data file has columns", im.Channels, im.Height, im.Width)
		}
	}
	if c.Activation != "relu" && c.Activation != "tanh" {
		add("activation", "must be relu or tanh, got %q", c.Activation)
	}
	if c.MaxCategories < 1 {
		add("max-categories", "must be at least 1, got %d", c.MaxCategories)
	}
	if c.BatchSize < 1 {
		add("batch-size", "must be at least 1, got %d", c.BatchSize)
	}
	if c.Epochs < 1 {
		add("epochs", "must be at least 1, got %d", c.Epochs)
	}
	if c.Patience < 0 {
		add("patience", "must not be negative, got %d", c.Patience)
	}
	if !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0) {
		add("learning-rate", "must be positive, got %v", c.LearningRate)
	}
	if !(c.TestFrac > 0 && c.TestFrac < 1) {
		add("test-size", "must be between 0 and 1, got %v", c.TestFrac)
	}
	if !(c.ValFrac > 0 && c.ValFrac < 1) {
		add("val-size", "must be between 0 and 1, got %v", c.ValFrac)
	}
	return errors.Join(errs...)
}

// The most hidden layers and conv blocks a network may have.
const (
	maxHidden = 256
	maxConv   = 64
)

// Result is what a training run produced.
type Result struct {
	ModelDir  string
	Card      *model.Card
	Metrics   metrics.Values
	TrainRows int
	// TrainSeconds is the time of the epoch loop; SamplesPerSecond the training rows
	// processed per second of it.
	TrainSeconds     float64
	SamplesPerSecond float64
}

// Run trains a model and writes its directory. Input problems (data, config) are
// returned as errors before anything is written; the model directory appears only
// when complete.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	if err := model.CheckReplaceable(cfg.OutDir); err != nil {
		return nil, err
	}
	task, _ := dataset.ParseTask(cfg.Task)
	// The garbage collector runs at GOGC 25 while training: the data is most
	// of the live heap and at the default 100 the heap grew to twice it before
	// a collection (the csv reader leaves each line's text behind; the
	// validation rows, the split, the scoring). A step allocates nothing, so
	// the extra collections cost little.
	defer lowGC()()
	ds, err := readData(cfg, task)
	if err != nil {
		return nil, err
	}
	if err := checkCategorical(cfg, ds); err != nil {
		return nil, err
	}
	net := model.Network{
		Kind: cfg.Kind, Inputs: len(ds.Features), Hidden: cfg.Hidden, Activation: cfg.Activation,
		Image: cfg.Image, Conv: cfg.Conv,
	}
	switch ds.Task {
	case dataset.Binary:
		net.Outputs, net.Output = 1, model.OutputSigmoid
	case dataset.Multiclass:
		net.Outputs, net.Output = len(ds.Classes), model.OutputSoftmax
	default:
		net.Outputs, net.Output = 1, model.OutputLinear
	}
	if err := net.Validate(); err != nil {
		return nil, fmt.Errorf("model for %q: %w", cfg.DataPath, err)
	}
	split, err := dataset.SplitRows(ds, dataset.SplitConfig{Seed: cfg.Seed, TestFrac: cfg.TestFrac, ValFrac: cfg.ValFrac, Stratify: ds.Task.Classification()})
	if err != nil {
		return nil, fmt.Errorf("splitting %q: %w", cfg.DataPath, err)
	}
	// Categorical features: their categories from the training rows, each a
	// slot in X (what the model takes), one-hot in the rows the network fits.
	cats, err := ds.FitCategories(split.Train, cfg.MaxCategories)
	if err != nil {
		return nil, err
	}
	fitDS, onehot := ds, []bool(nil)
	if cats != nil {
		ds.EncodeCategories(cats)
		fitDS, onehot = ds.OneHot(cats)
		net.Inputs = len(fitDS.Features)
	}
	// A batch larger than the training rows would only be padding.
	batch := min(cfg.BatchSize, len(split.Train))
	budget := systemBudget()
	if err := checkMemory(cfg, net, batch, len(split.Train)+len(split.Val), budget); err != nil {
		return nil, err
	}
	defer softMemoryLimit(budget.limit)()
	fd, pre, scale, err := prepare(fitDS, split, onehot)
	if err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(cfg.DataPath), filepath.Ext(cfg.DataPath))
	}
	valMetric := "accuracy"
	if ds.Task == dataset.Regression {
		valMetric = "rmse"
	}
	fmt.Fprintf(logw, "training %s on %s: %d rows (train %d, val %d, test %d), %d features, task %s, %s, %d params\n",
		name, filepath.Base(cfg.DataPath), len(ds.Y), len(split.Train), len(split.Val), len(split.Test),
		len(ds.Features), ds.Task, net, net.CountParams())
	if len(ds.Empty) > 0 {
		fmt.Fprintf(logw, "warning: left out %d %s empty in every row: %s\n", len(ds.Empty), plural(len(ds.Empty), "column"), strings.Join(ds.Empty, ", "))
	}
	logCategorical(logw, ds, cats)
	if fitDS.Missing > 0 {
		fmt.Fprintf(logw, "imputed %d missing values with training means (%s)\n", fitDS.Missing, describeMissing(fitDS.MissingBy))
	}
	if batch < cfg.BatchSize {
		fmt.Fprintf(logw, "batch size %d is more than the %d training rows: using %d\n", cfg.BatchSize, len(split.Train), batch)
	}
	dtype := cfg.DType
	if dtype == "" {
		dtype = DTypeFloat64
	}
	fc := fitConfig{
		Net: net, Task: ds.Task, BatchSize: batch, MaxEpochs: cfg.Epochs, Patience: cfg.Patience,
		LearningRate: cfg.LearningRate, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, Seed: cfg.Seed, DType: dtype,
		OnEpoch: func(e model.Epoch, epochs int, d time.Duration) {
			fmt.Fprintf(logw, "epoch %3d/%d  loss %.4f  val_loss %.4f  val_%s %.4f  %dms\n",
				e.Epoch, epochs, e.Loss, e.ValLoss, valMetric, e.ValMetric, d.Milliseconds())
		},
	}
	fr, err := fit(ctx, fc, fd)
	if err != nil {
		return nil, fmt.Errorf("training on %q: %w", cfg.DataPath, err)
	}
	card := &model.Card{
		Format: model.Format, Name: name, Task: ds.Task, Features: ds.Features, Categories: cats, Target: ds.Target,
		Binarize: cfg.Binarize, Classes: ds.Classes, Preprocess: pre, TargetScale: scale, Network: net,
		Params: net.CountParams(),
		Training: model.Training{
			Optimizer: "adam", DType: dtype, Determinism: model.Determinism, LearningRate: cfg.LearningRate, Beta1: fc.Beta1, Beta2: fc.Beta2, Epsilon: fc.Epsilon,
			Loss: lossName(net.Output), BatchSize: batch, MaxEpochs: cfg.Epochs, Patience: cfg.Patience,
			EpochsRun: len(fr.Curve), BestEpoch: fr.BestEpoch, StoppedEarly: fr.Stopped, ValMetric: valMetric, Curve: fr.Curve,
		},
		Data: model.DataInfo{
			File: filepath.Base(cfg.DataPath), SHA256: ds.SHA256, Rows: len(ds.Y), Missing: ds.Missing,
			MissingBy: ds.MissingBy, Dropped: cfg.Drop, Empty: ds.Empty,
			Split: model.SplitInfo{Train: len(split.Train), Val: len(split.Val), Test: len(split.Test),
				TestFrac: cfg.TestFrac, ValFrac: cfg.ValFrac, Stratified: ds.Task.Classification()},
		},
		Seed: cfg.Seed, Version: cfg.Version, GitSHA: cfg.GitSHA,
	}
	if len(card.Data.MissingBy) == 0 {
		card.Data.MissingBy = nil
	}
	if cats != nil {
		card.Inputs, card.Data.MaxCategories = fitDS.Features, cfg.MaxCategories
	}
	m, err := model.New(card, fr.Tensors)
	if err != nil {
		return nil, fmt.Errorf("checking the trained model: %w", err)
	}
	rows := make([][]float64, len(split.Test))
	for i, r := range split.Test {
		rows[i] = ds.X[r]
	}
	var ytest []float64
	for _, r := range split.Test {
		ytest = append(ytest, ds.Y[r])
	}
	vals, confusion, err := evaluate.Score(m, rows, ytest)
	if err != nil {
		return nil, err
	}
	card.Metrics, card.Confusion = vals, confusion
	if card.Reference, err = reference(m, ds, split); err != nil {
		return nil, fmt.Errorf("computing the training reference: %w", err)
	}
	mj, err := json.MarshalIndent(vals, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := model.WriteDir(cfg.OutDir, card, fr.Tensors, append(mj, '\n')); err != nil {
		return nil, err
	}
	if cfg.SplitOut != "" {
		if err := writeSplit(cfg.SplitOut, split); err != nil {
			return nil, err
		}
	}
	secs := fr.TrainTime.Seconds()
	res := &Result{
		ModelDir: cfg.OutDir, Card: card, Metrics: vals, TrainRows: len(split.Train),
		TrainSeconds: secs, SamplesPerSecond: float64(fr.SamplesSeen) / secs,
	}
	stop := "ran all epochs"
	if fr.Stopped {
		stop = fmt.Sprintf("stopped early after %d epochs without improvement", cfg.Patience)
	}
	fmt.Fprintf(logw, "best epoch %d of %d (%s); %.0f samples/s; wrote %s\n", fr.BestEpoch, len(fr.Curve), stop, res.SamplesPerSecond, cfg.OutDir)
	return res, nil
}

func lossName(output string) string {
	switch output {
	case model.OutputSigmoid:
		return "binary_cross_entropy"
	case model.OutputSoftmax:
		return "cross_entropy"
	}
	return "mse"
}

// prepare fits the preprocessing on the training rows (and the target's scale
// for regression) and returns the standardised training and validation rows. The
// test rows are standardised too, only to check that each value can be: the
// model preprocesses them itself when scored. Every error names the file, line
// and column of the value that cannot be represented.
func prepare(ds *dataset.Dataset, split dataset.Split, onehot []bool) (fitData, dataset.Preprocessor, *model.Scale, error) {
	var d fitData
	pre, err := dataset.FitPreprocessor(ds, split.Train)
	if err != nil {
		return d, pre, nil, err
	}
	for k, oh := range onehot {
		if oh { // one-hot inputs stay 0 and 1
			pre.Impute[k], pre.Mean[k], pre.Std[k] = 0, 0, 1
		}
	}
	// The training rows stay raw, in ds.X: fit standardises each into its
	// batch (d.Pre), with the same operations, so they are not held twice.
	if err := checkStandardize(ds, pre, split.Train); err != nil {
		return d, pre, nil, err
	}
	d.XTrain = make([][]float64, len(split.Train))
	for k, i := range split.Train {
		d.XTrain[k] = ds.X[i]
	}
	d.Pre = &pre
	if d.XVal, err = ds.Standardize(pre, split.Val); err != nil {
		return d, pre, nil, err
	}
	if err := checkStandardize(ds, pre, split.Test); err != nil {
		return d, pre, nil, err
	}
	if ds.Task != dataset.Regression {
		ys := func(idx []int) []float64 {
			out := make([]float64, len(idx))
			for i, r := range idx {
				out[i] = ds.Y[r]
			}
			return out
		}
		d.YTrain, d.YVal = ys(split.Train), ys(split.Val)
		return d, pre, nil, nil
	}
	mean, std, err := ds.Scale(ds.Target, ds.Y, split.Train)
	if err != nil {
		return d, pre, nil, err
	}
	if err := checkTargetUnits(ds, std); err != nil {
		return d, pre, nil, err
	}
	if d.YTrain, err = ds.StandardizeTarget(mean, std, split.Train); err != nil {
		return d, pre, nil, err
	}
	if d.YVal, err = ds.StandardizeTarget(mean, std, split.Val); err != nil {
		return d, pre, nil, err
	}
	if _, err = ds.StandardizeTarget(mean, std, split.Test); err != nil {
		return d, pre, nil, err
	}
	return d, pre, &model.Scale{Mean: mean, Std: std}, nil
}

var lowGCState struct {
	sync.Mutex
	runs int // Runs in progress
	old  int // the GC percent before the first of them
}

// lowGC sets GOGC 25 until the returned function is called; Runs at the same
// time (tests) share it, and the last to finish restores the setting before
// the first began.
func lowGC() func() {
	st := &lowGCState
	st.Lock()
	defer st.Unlock()
	if st.runs == 0 {
		st.old = debug.SetGCPercent(25)
	}
	st.runs++
	return func() {
		st.Lock()
		defer st.Unlock()
		if st.runs--; st.runs == 0 {
			debug.SetGCPercent(st.old)
		}
	}
}

// readData reads the CSV once and builds the dataset in the frame's own rows
// (dataset.Spec.ReuseFrame), so the data is held once.
func readData(cfg Config, task dataset.Task) (*dataset.Dataset, error) {
	frame, err := dataset.ReadCSV(cfg.DataPath)
	if err != nil {
		return nil, err
	}
	return dataset.Build(frame, dataset.Spec{Target: cfg.Target, Drop: cfg.Drop, Features: cfg.Features, Task: task, Binarize: cfg.Binarize, ReuseFrame: true})
}

// checkStandardize standardises rows a block at a time, only for the error of a
// value that cannot be represented (see dataset.Standardize), without keeping them.
func checkStandardize(ds *dataset.Dataset, pre dataset.Preprocessor, rows []int) error {
	const block = 4096
	for i := 0; i < len(rows); i += block {
		if _, err := ds.Standardize(pre, rows[i:min(i+block, len(rows))]); err != nil {
			return err
		}
	}
	return nil
}

// The regression metrics square errors in the target's units: a target whose
// spread is beyond these bounds gets an mse that overflows float64 (and cannot
// be written as JSON) or underflows to 0 (a perfect r2 for any model).
const (
	maxTargetStd = 1e140
	minTargetStd = 1e-140
)

// checkTargetUnits refuses a regression target whose metrics cannot be
// represented, naming the row farthest from the mean.
func checkTargetUnits(ds *dataset.Dataset, std float64) error {
	if std >= minTargetStd && std <= maxTargetStd {
		return nil
	}
	lo, hi := 0, 0
	for i, y := range ds.Y {
		if y < ds.Y[lo] {
			lo = i
		}
		if y > ds.Y[hi] {
			hi = i
		}
	}
	if std > maxTargetStd {
		return ds.Errorf(ds.Line(hi), ds.Target, "target values from %g (line %d) to %g spread too far for the regression metrics: their squared errors overflow float64; rescale the target (standard deviation %.3g, at most %g)",
			ds.Y[lo], ds.Line(lo), ds.Y[hi], std, maxTargetStd)
	}
	return ds.Errorf(0, ds.Target, "target values from %g to %g are too close together for the regression metrics: their squared errors underflow float64; rescale the target (standard deviation %.3g, at least %g)",
		ds.Y[lo], ds.Y[hi], std, minTargetStd)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func describeMissing(by map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, by[k]))
	}
	return strings.Join(parts, ", ")
}

func writeSplit(path string, s dataset.Split) error {
	b, err := json.Marshal(map[string][]int{"train": s.Train, "val": s.Val, "test": s.Test})
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing split %q: %w", path, err)
	}
	return nil
}
