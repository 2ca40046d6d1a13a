package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlship/mlship/internal/config"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/train"
	"github.com/mlship/mlship/internal/version"
)

// trainFlags are the train command's flags; their defaults are the reference recipe.
type trainFlags struct {
	configPath string
	cfg        train.Config
	image      string
	conv       []string
	jsonOut    bool
	quiet      bool
}

func addTrainFlags(fs *pflag.FlagSet, f *trainFlags) {
	d := train.DefaultConfig()
	c := &f.cfg
	fs.StringVar(&c.DataPath, "data", "", "training CSV (header row, numeric cells; missing: empty, ?, NA, NaN)")
	fs.StringVar(&c.Target, "target", "", "column to predict")
	fs.StringVar(&c.Task, "task", "", "binary, multiclass or regression (default: inferred from the target)")
	fs.StringVar(&c.Binarize, "binarize", "", `make a binary target: positive where "target OP NUMBER" holds, e.g. ">0"`)
	fs.StringSliceVar(&c.Drop, "drop", nil, "columns to ignore (comma separated)")
	fs.StringSliceVar(&c.Features, "features", nil, "input columns in order (default: all but target and --drop)")
	fs.StringVar(&c.Name, "name", "", "model name (default: the data file's base name)")
	fs.StringVar(&c.Kind, "kind", d.Kind, "network: mlp or cnn")
	fs.IntSliceVar(&c.Hidden, "hidden", d.Hidden, "dense hidden layer sizes")
	fs.StringVar(&c.Activation, "activation", d.Activation, "hidden activation: relu or tanh")
	fs.StringVar(&f.image, "image", "", "cnn: how a row forms an image, CHANNELSxHEIGHTxWIDTH (e.g. 1x8x8)")
	fs.StringSliceVar(&f.conv, "conv", nil, "cnn: conv blocks FILTERSxKERNEL[pPOOL], e.g. 16x3p2,32x3p2")
	fs.IntVar(&c.BatchSize, "batch-size", d.BatchSize, "rows per training step")
	fs.IntVar(&c.Epochs, "epochs", d.Epochs, "maximum epochs")
	fs.IntVar(&c.Patience, "patience", d.Patience, "early stopping: epochs without a better validation loss (0: off)")
	fs.Float64Var(&c.LearningRate, "learning-rate", d.LearningRate, "Adam learning rate")
	fs.Float64Var(&c.TestFrac, "test-size", d.TestFrac, "fraction of rows held out for the test metrics")
	fs.Float64Var(&c.ValFrac, "val-size", d.ValFrac, "fraction of the remaining rows used for early stopping")
	fs.Int64Var(&c.Seed, "seed", d.Seed, "seed of the split, the initial weights and the shuffling")
	fs.StringVar(&c.OutDir, "out", d.OutDir, "model directory to write")
	fs.StringVar(&c.SplitOut, "split-out", "", `write the split as JSON {"train","val","test"} of 0-based data row indices`)
	fs.StringVar(&c.GitSHA, "git-sha", "", "commit recorded in the model card (default: $GITHUB_SHA or $CI_COMMIT_SHA)")
}

func newTrainCmd(stdout, stderr io.Writer) *cobra.Command {
	f := &trainFlags{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a model from a CSV and write a model directory",
		Long: `Train reads a CSV, imputes missing values with the training means, standardises the features,
splits the rows (seeded, stratified for classes: test 20%, validation 20% of the rest), trains an
MLP or CNN with gorgonia (Adam, early stopping on validation loss, best weights restored) and writes
a model directory: model.json (the model card), model.safetensors (weights) and metrics.json
(test-split metrics). Same data, config and seed give a byte-identical directory.`,
		Example: `  mlship train --data heart.csv --target target --binarize '>0' --out model
  mlship train --config examples/digits/mlship.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			if !f.quiet {
				cfg.Log = stderr
			}
			res, err := train.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			mj, _ := json.Marshal(res.Metrics)
			if err := publish(cmd, map[string]string{"model-dir": res.ModelDir, "task": res.Card.Task, "metrics": string(mj)}); err != nil {
				return err
			}
			if f.jsonOut {
				return writeTrainJSON(stdout, res)
			}
			return writeTrainText(stdout, res)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.configPath, "config", "", "mlship.yaml (or a directory holding one); flags override it")
	addTrainFlags(fs, f)
	fs.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

// resolve merges defaults, the config file and the flags given (flags win).
func (f *trainFlags) resolve(fs *pflag.FlagSet) (train.Config, error) {
	cfg := f.cfg
	if f.configPath != "" {
		file, err := config.Load(f.configPath)
		if err != nil {
			return cfg, err
		}
		if err := applyTrainFile(&cfg, fs, file); err != nil {
			return cfg, err
		}
	}
	if changed(fs, "image") {
		im, err := parseImage(f.image)
		if err != nil {
			return cfg, usageError{err}
		}
		cfg.Image = im
	}
	if changed(fs, "conv") {
		cfg.Conv = nil
		for _, s := range f.conv {
			l, err := parseConv(s)
			if err != nil {
				return cfg, usageError{err}
			}
			cfg.Conv = append(cfg.Conv, l)
		}
	}
	if cfg.GitSHA == "" {
		cfg.GitSHA = firstEnv("GITHUB_SHA", "CI_COMMIT_SHA")
	}
	cfg.Version = version.Version
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// applyTrainFile copies settings from the config file into cfg where no flag was given.
func applyTrainFile(cfg *train.Config, fs *pflag.FlagSet, file *config.File) error {
	set := func(flag string, apply func()) {
		if !changed(fs, flag) {
			apply()
		}
	}
	str := func(flag string, dst *string, v string) {
		if v != "" {
			set(flag, func() { *dst = v })
		}
	}
	str("data", &cfg.DataPath, file.Resolve(file.Data))
	str("target", &cfg.Target, file.Target)
	str("task", &cfg.Task, file.Task)
	str("binarize", &cfg.Binarize, file.Binarize)
	str("name", &cfg.Name, file.Name)
	if file.Drop != nil {
		set("drop", func() { cfg.Drop = file.Drop })
	}
	if file.Features != nil {
		set("features", func() { cfg.Features = file.Features })
	}
	m := file.Model
	str("kind", &cfg.Kind, m.Kind)
	str("activation", &cfg.Activation, m.Activation)
	if m.Hidden != nil {
		set("hidden", func() { cfg.Hidden = m.Hidden })
	}
	if m.Image != nil {
		set("image", func() {
			cfg.Image = &model.Image{Channels: m.Image.Channels, Height: m.Image.Height, Width: m.Image.Width}
		})
	}
	if m.Conv != nil {
		set("conv", func() {
			cfg.Conv = nil
			for _, c := range m.Conv {
				cfg.Conv = append(cfg.Conv, model.ConvLayer{Filters: c.Filters, Kernel: c.Kernel, Pool: c.Pool})
			}
		})
	}
	t := file.Train
	if t.BatchSize != nil {
		set("batch-size", func() { cfg.BatchSize = *t.BatchSize })
	}
	if t.Epochs != nil {
		set("epochs", func() { cfg.Epochs = *t.Epochs })
	}
	if t.Patience != nil {
		set("patience", func() { cfg.Patience = *t.Patience })
	}
	if t.LearningRate != nil {
		set("learning-rate", func() { cfg.LearningRate = *t.LearningRate })
	}
	if t.TestSize != nil {
		set("test-size", func() { cfg.TestFrac = *t.TestSize })
	}
	if t.ValSize != nil {
		set("val-size", func() { cfg.ValFrac = *t.ValSize })
	}
	if t.Seed != nil {
		set("seed", func() { cfg.Seed = *t.Seed })
	}
	str("out", &cfg.OutDir, file.Resolve(t.Out))
	return nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

type trainJSON struct {
	ModelDir         string             `json:"model_dir"`
	Name             string             `json:"name"`
	Task             string             `json:"task"`
	EpochsRun        int                `json:"epochs_run"`
	BestEpoch        int                `json:"best_epoch"`
	TrainRows        int                `json:"train_rows"`
	TrainSeconds     float64            `json:"train_seconds"`
	SamplesPerSecond float64            `json:"samples_per_second"`
	MissingFilled    int                `json:"missing_filled"`
	DataSHA256       string             `json:"data_sha256"`
	Metrics          map[string]float64 `json:"metrics"`
}

func writeTrainJSON(w io.Writer, r *train.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(trainJSON{
		ModelDir: r.ModelDir, Name: r.Card.Name, Task: r.Card.Task,
		EpochsRun: r.Card.Training.EpochsRun, BestEpoch: r.Card.Training.BestEpoch,
		TrainRows: r.TrainRows, TrainSeconds: r.TrainSeconds, SamplesPerSecond: r.SamplesPerSecond,
		MissingFilled: r.Card.Data.Missing, DataSHA256: r.Card.Data.SHA256, Metrics: r.Metrics,
	})
}

func writeTrainText(w io.Writer, r *train.Result) error {
	c := r.Card
	fmt.Fprintf(w, "model     %s (%s, %s)\n", r.ModelDir, c.Task, c.Network.String())
	fmt.Fprintf(w, "data      %s sha256:%s, %d rows, %d missing values imputed\n", c.Data.File, short(c.Data.SHA256), c.Data.Rows, c.Data.Missing)
	fmt.Fprintf(w, "training  best epoch %d of %d, %.0f samples/s\n", c.Training.BestEpoch, c.Training.EpochsRun, r.SamplesPerSecond)
	fmt.Fprintf(w, "metrics   (test split, %d rows)\n", c.Data.Split.Test)
	return writeMetrics(w, r.Metrics, c.Task)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
