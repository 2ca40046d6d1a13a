// Package config reads mlship.yaml, the one spec that the CLI, the GitHub action,
// the GitLab template and the Dagger module share. Flags given on the command line
// override it; paths in it are relative to the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is the schema of mlship.yaml. Every field is optional.
type File struct {
	// Name of the model (default: the data file's base name).
	Name string `yaml:"name"`
	// Data is the training CSV, relative to the config file.
	Data string `yaml:"data"`
	// Target is the column to predict.
	Target string `yaml:"target"`
	// Task: binary, multiclass, regression or auto (default: inferred from the target).
	Task string `yaml:"task"`
	// Binarize turns a numeric target into a binary one, e.g. ">0".
	Binarize string `yaml:"binarize"`
	// Drop lists columns to ignore.
	Drop []string `yaml:"drop"`
	// Features lists the input columns in order (default: all but target and drop).
	Features []string `yaml:"features"`
	Model    Model    `yaml:"model"`
	Train    Train    `yaml:"train"`
	Gate     Gate     `yaml:"gate"`
	Image    Image    `yaml:"image"`
	Deploy   Deploy   `yaml:"deploy"`

	// Dir is the directory the file was read from (not part of the YAML).
	Dir string `yaml:"-"`
	// Path is the file's path (not part of the YAML).
	Path string `yaml:"-"`
}

// Model is the network.
type Model struct {
	Kind       string      `yaml:"kind"`       // mlp or cnn
	Hidden     []int       `yaml:"hidden"`     // dense hidden layer sizes
	Activation string      `yaml:"activation"` // relu or tanh
	Image      *ImageShape `yaml:"image"`      // cnn: how a row forms an image
	Conv       []Conv      `yaml:"conv"`       // cnn: convolution blocks
}

// ImageShape is channels x height x width.
type ImageShape struct {
	Channels int `yaml:"channels"`
	Height   int `yaml:"height"`
	Width    int `yaml:"width"`
}

// Conv is one convolution block.
type Conv struct {
	Filters int `yaml:"filters"`
	Kernel  int `yaml:"kernel"`
	Pool    int `yaml:"pool"`
}

// Train holds the training settings.
type Train struct {
	BatchSize    *int     `yaml:"batch_size"`
	Epochs       *int     `yaml:"epochs"`
	Patience     *int     `yaml:"patience"`
	LearningRate *float64 `yaml:"learning_rate"`
	TestSize     *float64 `yaml:"test_size"`
	ValSize      *float64 `yaml:"val_size"`
	Seed         *int64   `yaml:"seed"`
	// Out is the model directory to write, relative to the config file.
	Out string `yaml:"out"`
}

// Image holds the build-push-image settings.
type Image struct {
	Repository string   `yaml:"repository"` // REPO[:TAG]
	Tags       []string `yaml:"tags"`
	Platforms  []string `yaml:"platforms"`
	Base       string   `yaml:"base"`
	Push       bool     `yaml:"push"`
	OCILayout  string   `yaml:"oci_layout"` // relative to the config file
	Tarball    string   `yaml:"tarball"`    // relative to the config file
	Insecure   bool     `yaml:"insecure"`
	SmokeTest  string   `yaml:"smoke_test"` // auto, true or false
}

// Deploy holds the kubectl-deploy settings.
type Deploy struct {
	// Enabled makes `mlship run` deploy to the cluster; without it run only renders
	// the manifests.
	Enabled          bool     `yaml:"enabled"`
	Name             string   `yaml:"name"`
	Namespace        string   `yaml:"namespace"`
	Replicas         *int32   `yaml:"replicas"`
	Manifests        []string `yaml:"manifests"` // relative to the config file
	Container        string   `yaml:"container"`
	Timeout          string   `yaml:"timeout"` // a Go duration, e.g. 5m
	ProgressDeadline *int32   `yaml:"progress_deadline"`
	NoRollback       bool     `yaml:"no_rollback"`
	Kubeconfig       string   `yaml:"kubeconfig"` // relative to the config file
}

// Gate holds the evaluate-gate settings.
type Gate struct {
	Min                  map[string]float64 `yaml:"min"`
	Max                  map[string]float64 `yaml:"max"`
	MaxDrop              map[string]float64 `yaml:"max_drop"`
	MaxDropRel           map[string]float64 `yaml:"max_drop_rel"`
	Baseline             string             `yaml:"baseline"`       // relative to the config file
	JUnit                string             `yaml:"junit"`          // relative to the config file
	BaselineImage        string             `yaml:"baseline_image"` // REPO:TAG of the production image
	AllowUnmeasured      bool               `yaml:"allow_unmeasured"`
	AllowMissingBaseline bool               `yaml:"allow_missing_baseline"`
}

// Name of the config file looked for in a directory.
const Name = "mlship.yaml"

// Load reads a config file, or dir/mlship.yaml when path is a directory. Unknown
// keys are errors (a typo must not be ignored silently).
func Load(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading config %q: no such file", path)
		}
		return nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	if st.IsDir() {
		path = filepath.Join(path, Name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading config %q: no such file", path)
		}
		return nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	f, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Parse decodes config bytes; name is used in errors and to resolve relative paths.
func Parse(name string, b []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading config %q: %s", name, yamlMessage(err))
	}
	f.Path = name
	f.Dir = filepath.Dir(name)
	return &f, nil
}

// yamlMessage turns yaml.v3's errors into one line.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = strings.TrimPrefix(e, "yaml: ")
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// Resolve makes a path from the file relative to the file's directory; absolute
// and empty paths are returned as they are.
func (f *File) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || f == nil || f.Dir == "" {
		return p
	}
	return filepath.Join(f.Dir, p)
}
