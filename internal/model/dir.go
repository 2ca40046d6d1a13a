package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/fsutil"
)

// A model directory holds exactly the files mlship wrote: the card, the weights
// and metrics.json. Readers trust none of them alone: the card names the sha256
// of the weights, and metrics.json must say what the card's metrics say, so a
// truncated weights file or a metrics.json edited by hand is refused (exit 2)
// wherever the directory is read (gate, report, image, server), not just used.

// knownFiles is the set of files WriteDir writes; a directory holding anything
// else is not replaced.
var knownFiles = []string{CardFile, MetricsFile, WeightsFile}

// maxMetricsFile bounds the metrics.json read (it holds a few numbers).
const maxMetricsFile = 1 << 20

// DamagedError is a model directory whose file disagrees with its card: the
// weights' sha256, or metrics.json. It is an input error (exit 2).
type DamagedError struct {
	Dir     string // the model directory
	File    string // the path of the file that disagrees
	Problem string // what is wrong, one line
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("reading model %q: %s: %s", e.Dir, e.File, e.Problem)
}

// ExitCode is 2: the model given is not usable as it is.
func (e *DamagedError) ExitCode() int { return fault.Usage }

// ReadCard reads dir/model.json and verifies the directory against it: the
// sha256 of the weights file and the metrics in metrics.json must be the
// card's (a *DamagedError otherwise). Load does the same and also decodes the
// weights; each reads the weights once.
func ReadCard(dir string) (*Card, error) {
	card, err := readCard(dir)
	if err != nil {
		return nil, err
	}
	wp := filepath.Join(dir, card.Weights.File)
	f, err := os.Open(wp)
	if err != nil {
		return nil, weightsOpenError(dir, wp, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("reading model %q: %w", dir, err)
	}
	if err := checkWeightsSum(dir, wp, card, h.Sum(nil)); err != nil {
		return nil, err
	}
	if err := checkMetricsFile(dir, card); err != nil {
		return nil, err
	}
	return card, nil
}

// readCard reads and checks dir/model.json on its own.
func readCard(dir string) (*Card, error) {
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
	_, width, err := c.Layout()
	if err != nil {
		return nil, fmt.Errorf("reading model card %q: %w", p, err)
	}
	if width != c.Network.Inputs {
		if len(c.Categories) == 0 {
			return nil, fmt.Errorf("reading model card %q: %d features but the network takes %d inputs", p, len(c.Features), c.Network.Inputs)
		}
		return nil, fmt.Errorf("reading model card %q: %d features make %d inputs (categorical ones one-hot) but the network takes %d", p, len(c.Features), width, c.Network.Inputs)
	}
	if err := c.Preprocess.Validate(width); err != nil {
		return nil, fmt.Errorf("reading model card %q: preprocess: %w", p, err)
	}
	if err := c.validateReference(); err != nil {
		return nil, fmt.Errorf("reading model card %q: %w", p, err)
	}
	if c.Weights.File != WeightsFile {
		return nil, fmt.Errorf("reading model card %q: weights.file is %q, want %q", p, c.Weights.File, WeightsFile)
	}
	if s := c.Weights.SHA256; len(s) != 2*sha256.Size || strings.ToLower(s) != s || !isHex(s) {
		return nil, fmt.Errorf("reading model card %q: weights.sha256 %q is not a sha256 (64 lower-case hex digits)", p, short(s, 70))
	}
	return &c, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func weightsOpenError(dir, wp string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &DamagedError{Dir: dir, File: wp, Problem: "missing (the card names it)"}
	}
	return fmt.Errorf("reading model %q: weights: %w", dir, err)
}

// checkWeightsSum compares the sha256 of the weights file wp with the card's.
func checkWeightsSum(dir, wp string, card *Card, sum []byte) error {
	got := hex.EncodeToString(sum)
	if got == card.Weights.SHA256 {
		return nil
	}
	return &DamagedError{Dir: dir, File: wp, Problem: fmt.Sprintf(
		"sha256 %s does not match the card's %s: the file is damaged or was changed after training",
		got[:12], card.Weights.SHA256[:12])}
}

// checkMetricsFile checks that dir/metrics.json holds exactly the card's metrics.
func checkMetricsFile(dir string, card *Card) error {
	p := filepath.Join(dir, MetricsFile)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &DamagedError{Dir: dir, File: p, Problem: "missing (train writes it next to the card)"}
		}
		return fmt.Errorf("reading model %q: %w", dir, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetricsFile+1))
	if err != nil {
		return fmt.Errorf("reading model %q: %w", dir, err)
	}
	if len(b) > maxMetricsFile {
		return &DamagedError{Dir: dir, File: p, Problem: fmt.Sprintf("larger than %d bytes; it holds a few numbers", maxMetricsFile)}
	}
	got, err := parseMetrics(b)
	if err != nil {
		return &DamagedError{Dir: dir, File: p, Problem: err.Error()}
	}
	if problem := metricsDisagree(got, card.Metrics); problem != "" {
		return &DamagedError{Dir: dir, File: p, Problem: problem + " (was it edited by hand?)"}
	}
	return nil
}

// parseMetrics reads a JSON object of numbers.
func parseMetrics(b []byte) (map[string]float64, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of numbers: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON object")
	}
	if raw == nil {
		return nil, fmt.Errorf("not a JSON object of numbers: null")
	}
	out := make(map[string]float64, len(raw))
	for k, msg := range raw {
		var v *float64
		if err := json.Unmarshal(msg, &v); err != nil || v == nil {
			return nil, fmt.Errorf("%s is %s, want a number", strconv.Quote(short(k, 40)), short(string(msg), 40))
		}
		out[k] = *v
	}
	return out, nil
}

// metricsDisagree says how file differs from card, or "" when they are the same.
func metricsDisagree(file, card map[string]float64) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(card)) {
		v, ok := file[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s is missing, the card says %s", k, fnum(card[k])))
		case v != card[k]:
			diffs = append(diffs, fmt.Sprintf("%s is %s, the card says %s", k, fnum(v), fnum(card[k])))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(file)) {
		if _, ok := card[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s is %s, the card has no %s", short(k, 40), fnum(file[k]), short(k, 40)))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	if len(diffs) > 3 {
		diffs = append(diffs[:3], fmt.Sprintf("and %d more", len(diffs)-3))
	}
	return "disagrees with " + CardFile + ": " + strings.Join(diffs, "; ")
}

func fnum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// short cuts s to at most n bytes, marking the cut.
func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// WriteDir writes a complete model directory (card, weights, metrics.json) to dir
// without ever leaving a partial one: files go to a temporary sibling directory that
// is renamed into place at the end. An existing dir is replaced only when
// CheckReplaceable allows it. metricsJSON is the content of metrics.json; nil
// writes the card's metrics, and anything else must hold exactly those.
func WriteDir(dir string, card *Card, tensors map[string]Tensor, metricsJSON []byte) error {
	if err := CheckReplaceable(dir); err != nil {
		return err
	}
	if metricsJSON == nil {
		m := card.Metrics
		if m == nil {
			m = map[string]float64{}
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("writing model %q: metrics: %w", dir, err)
		}
		metricsJSON = append(b, '\n')
	} else {
		got, err := parseMetrics(metricsJSON)
		if err != nil {
			return fmt.Errorf("writing model %q: %s: %w", dir, MetricsFile, err)
		}
		if problem := metricsDisagree(got, card.Metrics); problem != "" {
			return fmt.Errorf("writing model %q: %s %s", dir, MetricsFile, problem)
		}
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
	dtype := "F64"
	if card.Training.DType == "float32" {
		dtype = "F32"
	}
	if err := WriteSafetensorsAs(&wbuf, tensors, map[string]string{"format": Format, "network": card.Network.String()}, dtype); err != nil {
		return fmt.Errorf("writing model %q: weights: %w", dir, err)
	}
	sum := sha256.Sum256(wbuf.Bytes())
	card.Weights = WeightsInfo{File: WeightsFile, Format: "safetensors", DType: dtype, SHA256: hex.EncodeToString(sum[:])}
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

// CheckReplaceable reports whether WriteDir may write dir, so that train can
// refuse before any work: dir does not exist (and can be created), is empty, or
// is a model directory mlship wrote: its model.json is an mlship model card and
// it holds nothing but model.json, model.safetensors and metrics.json. It is
// never the working directory or one of its parents, a mount point or a
// symbolic link, and its parent must be writable (probed with a temporary
// directory, removed at once). Its errors are input errors (exit 2) unless the
// cause says otherwise (a full disk: 3); nothing is changed either way.
func CheckReplaceable(dir string) error {
	refuse := func(format string, a ...any) error {
		return fault.Input(fmt.Errorf("writing model %q: "+format, append([]any{dir}, a...)...))
	}
	if dir == "" {
		return refuse("no directory given")
	}
	clean := filepath.Clean(dir)
	holds, err := fsutil.HoldsWorkingDir(clean)
	if err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	if holds {
		what := "it holds the working directory"
		if wd, err := os.Getwd(); err == nil {
			if st, err := os.Stat(clean); err == nil {
				if wst, err := os.Stat(wd); err == nil && os.SameFile(st, wst) {
					what = "it is the working directory"
				}
			}
		}
		return refuse("%s, which cannot be replaced; give a directory inside it (e.g. model)", what)
	}
	st, err := os.Lstat(clean)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// created below, after the probe
	case err != nil:
		// ENOTDIR (a parent is a file) is reported by the probe below.
		if !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("writing model %q: %w", dir, unwrapPath(err))
		}
	case st.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(clean)
		return refuse("it is a symbolic link (to %q), which would be replaced by a directory; give the directory itself", target)
	case !st.IsDir():
		return refuse("it exists and is not a directory")
	default:
		if fsutil.IsMountPoint(clean) {
			return refuse("it is a mount point, which cannot be replaced by renaming; give a directory inside it")
		}
		if err := checkOwnFiles(clean); err != nil {
			return refuse("%w", err)
		}
	}
	if err := fsutil.CheckCreatable(clean); err != nil {
		return fmt.Errorf("writing model %q: %w", dir, err)
	}
	return nil
}

// checkOwnFiles returns nil when dir is empty or is a model directory mlship
// wrote (by its card's format and its file set), else why it is not.
func checkOwnFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return unwrapPath(err)
	}
	if len(ents) == 0 {
		return nil
	}
	var foreign []string
	hasCard := false
	for _, e := range ents {
		switch {
		case e.Name() == CardFile && e.Type().IsRegular():
			hasCard = true
		case slices.Contains(knownFiles, e.Name()) && e.Type().IsRegular():
		case e.IsDir():
			foreign = append(foreign, e.Name()+"/")
		default:
			foreign = append(foreign, e.Name())
		}
	}
	if !hasCard {
		return fmt.Errorf("the directory is not empty and holds no %s; refusing to replace it", CardFile)
	}
	if format, ok := cardFormat(filepath.Join(dir, CardFile)); !ok {
		return fmt.Errorf("its %s is not an mlship model card (format %s, want %q); refusing to replace the directory", CardFile, format, Format)
	}
	if len(foreign) > 0 {
		list := foreign
		if len(list) > 5 {
			list = append(slices.Clone(list[:5]), fmt.Sprintf("and %d more", len(foreign)-5))
		}
		return fmt.Errorf("it holds %s, which mlship did not write; refusing to replace the directory (move them out, or write the model elsewhere)", strings.Join(list, ", "))
	}
	return nil
}

// cardFormat reads the format field of a model.json, quoted for a message, and
// whether it is mlship's.
func cardFormat(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable", false
	}
	var c struct {
		Format *string `json:"format"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "unreadable: not a JSON object", false
	}
	if c.Format == nil {
		return "missing", false
	}
	return strconv.Quote(short(*c.Format, 40)), *c.Format == Format
}

// unwrapPath drops the *fs.PathError wrapper, whose message repeats the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
