// Package gate is the evaluate-gate step: it checks a model's metrics
// against absolute bounds and against a baseline model, and reports the
// verdict as a Result, a text table and JUnit XML.
package gate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model"
)

// MetricsFile is the name of the metrics file in a model directory.
const MetricsFile = "metrics.json"

// dropEpsilon absorbs floating-point noise in drop comparisons, so that a
// drop of exactly the allowed amount (0.82 -> 0.80 with max-drop 0.02) passes.
const dropEpsilon = 1e-12

// Check kinds, in the order checks are reported.
const (
	KindMin        = "min"
	KindMax        = "max"
	KindMaxDrop    = "max-drop"
	KindMaxDropRel = "max-drop-rel"
)

// Config says what to check. Defaults and environment are applied by the
// adapters (CLI, action, CI template); Run uses the fields as they are.
type Config struct {
	// ModelDir is the model directory; required. Without DataPath its
	// metrics.json holds the metrics to check, trusted only once the
	// directory is verified against its card (model.ReadCard).
	ModelDir string `mlship:"model"`
	// DataPath, when set, is a CSV the model is evaluated on through
	// Evaluate instead of reading metrics.json.
	DataPath string `mlship:"data"`
	// Min and Max are absolute bounds per metric name; a value equal to
	// its bound passes.
	Min map[string]float64 `mlship:"min"`
	Max map[string]float64 `mlship:"max"`
	// Baseline is a model directory, or a metrics file (or a directory
	// holding only metrics.json); optional. A model directory must be a model
	// of the same task, target and classes; of a metrics file only the metric
	// names can be checked (they must be ones the model's task reports).
	Baseline string `mlship:"baseline"`
	// MaxDrop and MaxDropRel bound how much worse than the baseline a
	// metric may be, in the metric's direction (for log_loss, mse, rmse
	// and mae an increase is a drop). MaxDrop is absolute, MaxDropRel a
	// fraction of the baseline value (0.05 = 5%).
	MaxDrop    map[string]float64 `mlship:"max-drop"`
	MaxDropRel map[string]float64 `mlship:"max-drop-rel"`
	// AllowUnmeasured makes a check on a metric the model does not report
	// a skip instead of a failure.
	AllowUnmeasured bool `mlship:"allow-unmeasured"`
	// AllowMissingBaseline makes baseline checks skip when no baseline is
	// given, the given path does not exist, or the baseline lacks the
	// metric; otherwise those checks fail.
	AllowMissingBaseline bool `mlship:"allow-missing-baseline"`
	// JUnitPath, when set, is where the JUnit XML report is written.
	JUnitPath string `mlship:"junit"`
	// BaselineImage names a baseline read by LoadBaseline (the image in the
	// registry that production runs) instead of a file; LoadBaseline is injected
	// by the CLI and returns an error wrapping fs.ErrNotExist when there is none.
	BaselineImage string `mlship:"baseline-image"`
	LoadBaseline  func(ctx context.Context) (metrics.Values, error)
	// Evaluate computes metrics of the model in modelDir on the CSV at
	// dataPath. It is injected by the CLI and required when DataPath is set.
	Evaluate func(ctx context.Context, modelDir, dataPath string) (metrics.Values, error)
}

// DefaultConfig has no checks: every bound is opt-in.
func DefaultConfig() Config { return Config{} }

// Validate checks the configuration without touching the file system. Its
// errors are *fault.FieldError keyed by input name (internal/spec), joined.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fault.Field(field, format, a...)) }
	if c.ModelDir == "" {
		add("model", "is required (the model directory)")
	}
	if c.Baseline != "" && c.BaselineImage != "" {
		add("baseline", "and {baseline-image} cannot both be given")
	}
	if c.BaselineImage != "" && c.LoadBaseline == nil {
		add("baseline-image", "is set but no loader is (a bug in the adapter)")
	}
	if c.DataPath != "" && c.Evaluate == nil {
		add("data", "is set but no evaluator is (a bug in the adapter)")
	}
	for _, b := range []struct {
		kind        string
		m           map[string]float64
		nonNegative bool
	}{
		{KindMin, c.Min, false},
		{KindMax, c.Max, false},
		{KindMaxDrop, c.MaxDrop, true},
		{KindMaxDropRel, c.MaxDropRel, true},
	} {
		for _, name := range slices.Sorted(maps.Keys(b.m)) {
			v := b.m[name]
			switch {
			case !metrics.Known(name):
				add(b.kind, "names an unknown metric %q (known: %s)", name, strings.Join(metrics.All(), ", "))
			case math.IsNaN(v) || math.IsInf(v, 0):
				add(b.kind, "%s is %v, want a finite number", name, v)
			case b.nonNegative && v < 0:
				add(b.kind, "%s is %s, want 0 or more", name, num(v))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Min)) {
		if hi, ok := c.Max[name]; ok && c.Min[name] > hi {
			add(KindMin, "%s %s is above {max} %s", name, num(c.Min[name]), num(hi))
		}
	}
	return errors.Join(errs...)
}

// Verdict is the outcome of one check.
type Verdict string

// Verdicts.
const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	Skip Verdict = "skip"
)

// Check is one bound applied to one metric.
type Check struct {
	Metric string `json:"metric"`
	Kind   string `json:"kind"` // "min", "max", "max-drop" or "max-drop-rel"
	// Value is the model's value of Metric; 0 when Measured is false.
	Value    float64 `json:"value"`
	Measured bool    `json:"measured"`
	// Bound is the configured bound: the minimum, the maximum, or the
	// allowed drop (absolute, or a fraction of Baseline for max-drop-rel).
	Bound float64 `json:"bound"`
	// Baseline is the baseline's value of Metric; HasBaseline says whether
	// there is one (it is filled for every kind of check when available).
	Baseline    float64 `json:"baseline"`
	HasBaseline bool    `json:"has_baseline"`
	Verdict     Verdict `json:"verdict"`
	Reason      string  `json:"reason"` // one line, e.g. "accuracy 0.71 < min 0.8"
}

// Result is the outcome of Run.
type Result struct {
	Metrics  metrics.Values `json:"metrics"`
	Source   string         `json:"source"`             // "metrics.json", or the data path evaluated on
	Baseline metrics.Values `json:"baseline,omitempty"` // nil when there is no baseline
	// BaselineSource is the baseline file or image given, even when none was found.
	BaselineSource string `json:"baseline_source,omitempty"`
	// BaselineNote says what could not be checked about a baseline that is
	// only metrics (a metrics file, an image's annotations): empty when the
	// baseline is a model directory or there is none.
	BaselineNote string  `json:"baseline_note,omitempty"`
	Checks       []Check `json:"checks"`
	Passed       bool    `json:"passed"`
	Reason       string  `json:"reason"` // one line: the failures, or a summary when passed
}

// FailedError is returned by Run, together with the Result, when a check
// fails.
type FailedError struct {
	Result *Result
}

// ExitCode is 1: a check failed.
func (e *FailedError) ExitCode() int { return 1 }

func (e *FailedError) Error() string {
	if e.Result == nil || e.Result.Reason == "" {
		return "gate failed"
	}
	return "gate failed: " + e.Result.Reason
}

// Run validates cfg, reads (or evaluates) the model's metrics and the
// baseline, and applies the checks. Input errors (invalid config, missing
// model dir, unreadable metrics or baseline) are returned as plain errors
// with a nil Result. When a check fails, Run returns the Result and a
// *FailedError. The JUnit report, when asked for, is written in both cases.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	info, err := os.Stat(cfg.ModelDir)
	if err != nil {
		return nil, fmt.Errorf("reading model dir %q: %w", cfg.ModelDir, unwrapPath(err))
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("reading model dir %q: not a directory", cfg.ModelDir)
	}

	res := &Result{}
	var card *model.Card // the model's card, read and verified once
	if cfg.DataPath != "" {
		res.Source = cfg.DataPath
		res.Metrics, err = cfg.Evaluate(ctx, cfg.ModelDir, cfg.DataPath)
		if err != nil {
			return nil, fmt.Errorf("evaluating model %q on %q: %w", cfg.ModelDir, cfg.DataPath, err)
		}
		if res.Metrics == nil {
			res.Metrics = metrics.Values{}
		}
	} else {
		res.Source = MetricsFile
		res.Metrics, err = metrics.ReadFile(filepath.Join(cfg.ModelDir, MetricsFile))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading model dir %q: no %s in it (train writes one; or give a data path to evaluate on)", cfg.ModelDir, MetricsFile)
		}
		if err != nil {
			return nil, err
		}
		// The card says what the model measured; the directory is verified
		// against it (weights sha256, metrics.json the card's metrics).
		if card, err = model.ReadCard(cfg.ModelDir); err != nil {
			return nil, err
		}
	}

	var baseCard *model.Card // when the baseline is a model directory
	switch {
	case cfg.Baseline != "":
		res.BaselineSource = cfg.Baseline
		res.Baseline, baseCard, err = readBaseline(cfg.Baseline)
	case cfg.BaselineImage != "":
		res.BaselineSource = cfg.BaselineImage
		res.Baseline, err = cfg.LoadBaseline(ctx)
	}
	if errors.Is(err, fs.ErrNotExist) && cfg.AllowMissingBaseline {
		res.Baseline, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if res.Baseline != nil {
		if card == nil { // evaluated on DataPath: Evaluate verified the directory
			if card, err = model.ReadCard(cfg.ModelDir); err != nil {
				return nil, err
			}
		}
		what := fmt.Sprintf("baseline %q", cfg.Baseline)
		if cfg.Baseline == "" {
			what = fmt.Sprintf("baseline image %q", cfg.BaselineImage)
		}
		if res.BaselineNote, err = comparable(what, card, baseCard, res.Baseline); err != nil {
			return nil, err
		}
	}

	res.Checks = checks(cfg, res.Metrics, res.Baseline)
	res.Passed, res.Reason = summarize(res.Checks)

	if cfg.JUnitPath != "" {
		if err := WriteJUnit(cfg.JUnitPath, res); err != nil {
			return res, err
		}
	}
	if !res.Passed {
		return res, &FailedError{Result: res}
	}
	return res, nil
}

// readBaseline reads a baseline given as a model directory (verified like
// the model: its card is returned), a directory holding only metrics.json, or
// a metrics file. A missing path (or a directory without either file) gives an
// error that wraps fs.ErrNotExist.
func readBaseline(path string) (metrics.Values, *model.Card, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading baseline %q: %w", path, unwrapPath(err))
	}
	file := path
	if info.IsDir() {
		if _, err := os.Stat(filepath.Join(path, model.CardFile)); err == nil {
			card, err := model.ReadCard(path)
			var de *model.DamagedError
			if errors.As(err, &de) {
				return nil, nil, fault.Inputf("reading baseline %q: %s: %s", path, de.File, de.Problem)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("reading baseline %q: %w", path, err)
			}
			return metrics.Values(maps.Clone(card.Metrics)), card, nil
		}
		file = filepath.Join(path, MetricsFile)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("reading baseline %q: no %s in it: %w", path, MetricsFile, fs.ErrNotExist)
		}
	}
	v, err := metrics.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("reading baseline %q: %w", path, err)
	}
	return v, nil, nil
}

// comparable checks that a baseline measures the same thing as the model of
// card. A baseline model directory (baseCard set) must have the same task,
// target, binarize rule and classes. Of a baseline that is only metrics, every
// metric name must be one the model's task reports; the returned note says
// that the rest could not be checked. Mismatches are input errors (exit 2).
func comparable(what string, card, baseCard *model.Card, base metrics.Values) (string, error) {
	if baseCard != nil {
		if baseCard.Task != card.Task || baseCard.Target != card.Target || baseCard.Binarize != card.Binarize ||
			!slices.Equal(baseCard.Classes, card.Classes) {
			return "", fault.Inputf("comparing with %s: it is %s, the model is %s; a baseline must predict the same target the same way",
				what, describe(baseCard), describe(card))
		}
		return "", nil
	}
	names := metrics.Names(string(card.Task))
	var foreign []string
	for _, n := range slices.Sorted(maps.Keys(base)) {
		if !slices.Contains(names, n) {
			foreign = append(foreign, strconv.Quote(n))
		}
	}
	if len(foreign) > 0 {
		return "", fault.Inputf("comparing with %s: it has %s, which a %s model does not report (it reports %s); is it the baseline of another task?",
			what, strings.Join(foreign, ", "), card.Task, strings.Join(names, ", "))
	}
	return fmt.Sprintf("%s holds metrics only: their names fit a %s model, but its target and classes are unknown and were not checked", what, card.Task), nil
}

// describe says what a model predicts, for a mismatch message.
func describe(c *model.Card) string {
	s := fmt.Sprintf("a %s model of %q", c.Task, c.Target)
	if c.Binarize != "" {
		s += " " + c.Binarize
	}
	if len(c.Classes) > 0 {
		shown := c.Classes
		if len(shown) > 5 {
			shown = append(slices.Clone(shown[:5]), "...")
		}
		s += fmt.Sprintf(" with %d classes (%s)", len(c.Classes), strings.Join(shown, ", "))
	}
	return s
}

// checks builds the checks in report order: min, max, max-drop,
// max-drop-rel, each sorted by metric.
func checks(cfg Config, cur, base metrics.Values) []Check {
	var out []Check
	for _, k := range []struct {
		kind   string
		bounds map[string]float64
	}{
		{KindMin, cfg.Min},
		{KindMax, cfg.Max},
		{KindMaxDrop, cfg.MaxDrop},
		{KindMaxDropRel, cfg.MaxDropRel},
	} {
		for _, name := range slices.Sorted(maps.Keys(k.bounds)) {
			c := Check{Metric: name, Kind: k.kind, Bound: k.bounds[name]}
			c.Value, c.Measured = cur[name]
			c.Baseline, c.HasBaseline = base[name]
			judge(&c, cfg, base != nil)
			out = append(out, c)
		}
	}
	return out
}

// judge sets the verdict and reason of c. haveBaseline says whether a
// baseline file was read at all.
func judge(c *Check, cfg Config, haveBaseline bool) {
	if !c.Measured {
		c.Reason = "not measured"
		c.Verdict = Fail
		if cfg.AllowUnmeasured {
			c.Verdict, c.Reason = Skip, "not measured (allowed)"
		}
		return
	}
	if math.IsNaN(c.Value) {
		c.Verdict, c.Reason = Fail, c.Metric+" is NaN"
		return
	}
	switch c.Kind {
	case KindMin:
		v := numNear(c.Value, c.Bound)
		if c.Value >= c.Bound {
			c.Verdict, c.Reason = Pass, fmt.Sprintf("%s %s >= min %s", c.Metric, v, num(c.Bound))
		} else {
			c.Verdict, c.Reason = Fail, fmt.Sprintf("%s %s < min %s", c.Metric, v, num(c.Bound))
		}
		return
	case KindMax:
		v := numNear(c.Value, c.Bound)
		if c.Value <= c.Bound {
			c.Verdict, c.Reason = Pass, fmt.Sprintf("%s %s <= max %s", c.Metric, v, num(c.Bound))
		} else {
			c.Verdict, c.Reason = Fail, fmt.Sprintf("%s %s > max %s", c.Metric, v, num(c.Bound))
		}
		return
	}

	// Baseline checks.
	if !c.HasBaseline {
		c.Reason = "no baseline"
		if haveBaseline {
			c.Reason = "baseline has no " + c.Metric
		}
		c.Verdict = Fail
		if cfg.AllowMissingBaseline {
			c.Verdict, c.Reason = Skip, c.Reason+" (allowed)"
		}
		return
	}
	drop := c.Baseline - c.Value // how much worse, in the metric's direction
	if !metrics.HigherIsBetter(c.Metric) {
		drop = -drop
	}
	worse := "dropped"
	if !metrics.HigherIsBetter(c.Metric) {
		worse = "rose"
	}
	change := fmt.Sprintf("(baseline %s, now %s)", numNear(c.Baseline, c.Value), numNear(c.Value, c.Baseline))
	if drop <= 0 {
		what := "improved by " + short(-drop)
		if drop == 0 {
			what = "unchanged"
		}
		c.Verdict, c.Reason = Pass, fmt.Sprintf("%s %s %s", c.Metric, what, change)
		return
	}
	if c.Kind == KindMaxDrop {
		if drop <= c.Bound+dropEpsilon {
			c.Verdict, c.Reason = Pass, fmt.Sprintf("%s %s by %s %s, within max-drop %s", c.Metric, worse, short(drop), change, num(c.Bound))
		} else {
			c.Verdict, c.Reason = Fail, fmt.Sprintf("%s %s by %s %s, more than max-drop %s", c.Metric, worse, short(drop), change, num(c.Bound))
		}
		return
	}
	// KindMaxDropRel
	rel := math.Inf(1)
	if c.Baseline != 0 {
		rel = drop / math.Abs(c.Baseline)
	}
	if rel <= c.Bound+dropEpsilon {
		c.Verdict, c.Reason = Pass, fmt.Sprintf("%s %s by %s %s, within max-drop-rel %s", c.Metric, worse, percent(rel), change, percent(c.Bound))
	} else {
		c.Verdict, c.Reason = Fail, fmt.Sprintf("%s %s by %s %s, more than max-drop-rel %s", c.Metric, worse, percent(rel), change, percent(c.Bound))
	}
}

// summarize returns whether all checks passed (skips count as passes) and
// the one-line reason.
func summarize(cs []Check) (bool, string) {
	var failed []string
	skipped := 0
	for _, c := range cs {
		switch c.Verdict {
		case Fail:
			failed = append(failed, failureLine(c))
		case Skip:
			skipped++
		}
	}
	if len(failed) > 0 {
		return false, strings.Join(failed, "; ")
	}
	if len(cs) == 0 {
		return true, "no checks configured"
	}
	switch {
	case skipped > 0:
		return true, fmt.Sprintf("%d passed, %d skipped", len(cs)-skipped, skipped)
	case len(cs) == 1:
		return true, "1 check passed"
	}
	return true, fmt.Sprintf("all %d checks passed", len(cs))
}

// failureLine is a check's reason with the metric and kind in front when
// the reason does not name the metric itself ("no baseline").
func failureLine(c Check) string {
	if strings.HasPrefix(c.Reason, c.Metric+" ") {
		return c.Reason
	}
	return fmt.Sprintf("%s %s %s: %s", c.Metric, c.Kind, num(c.Bound), c.Reason)
}

// unwrapPath drops the *fs.PathError wrapper, whose message repeats the
// path already named by the caller.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// num formats a number as written by a user: shortest exact form.
func num(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// short formats a computed number to 4 significant digits.
func short(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// numNear formats v with 6 significant digits, or more when needed to tell
// it apart from ref (so a failing 0.7999999 is not shown as 0.8 next to a
// bound of 0.8).
func numNear(v, ref float64) string {
	r := num(ref)
	for prec := 6; prec < 17; prec++ {
		s := strconv.FormatFloat(v, 'g', prec, 64)
		if v == ref || s != r {
			return s
		}
	}
	return num(v)
}

func percent(frac float64) string {
	return strconv.FormatFloat(frac*100, 'g', 4, 64) + "%"
}
