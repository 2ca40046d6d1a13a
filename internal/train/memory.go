package train

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
)

// Training memory is planned before anything of the network is allocated: a
// network or batch that cannot fit is refused, naming the input to change,
// instead of dying in the Go runtime's out-of-memory crash (a stack trace, after
// minutes of swapping). The estimate is deliberately on the high side; its
// coefficients were measured as peak RSS (GOGC=100) against the sizes below for
// MLPs up to 4M parameters and batches up to 3200 rows, and for CNNs on 8x8
// images with up to 128 filters of kernel 5 and batches up to 1150 rows.
const (
	bytesPerValue = 8
	// Weights (the graph's values), gradients, Adam's two moments, the initial
	// values, the copies exported each epoch (the current and the best), the
	// predictor's copy for validation and the encoded safetensors file.
	copiesPerParam = 10
	// A dense unit per batch row: the product, the bias sum and the activation,
	// each with its gradient (the tape machine shares some registers).
	copiesPerDenseUnit = 6
	// An input value per batch row: the input buffer, the graph's tensor and a
	// padding copy.
	copiesPerInput = 3
	// A convolution per batch row: the im2col patches (value, gradient and their
	// reshaped views), the output map through product, bias, activation,
	// reshape and transpose with their gradients, and the pooled map with its
	// argmax indices and gradient.
	copiesPerPatch     = 5
	copiesPerConvOut   = 16
	copiesPerPooledOut = 5
	// The runtime, the binary and the frame already read; each layer's graph
	// nodes, tape instructions and registers.
	baseBytes     = 64 << 20
	bytesPerLayer = 64 << 10
	// The preprocessed training and validation rows, and the frame's copy.
	copiesPerDataValue = 2
)

// memoryPlan is the bytes a network needs to train, as a function of the batch.
type memoryPlan struct {
	fixed  float64 // runtime, graph nodes, the preprocessed data
	params float64 // weights and everything kept per weight
	perRow float64 // graph buffers of one batch row

	paramsInput string // the input that most of params is due to
	rowInput    string // the input that most of perRow is due to
}

func (p memoryPlan) total(batch int) float64 {
	return p.fixed + p.params + float64(p.perRow*float64(batch))
}

// planMemory estimates what training n on rows rows needs. Sizes are computed
// in float64, so no network, however large its layers, overflows them, with each
// product rounded before it is added (float64(x*y)) so that the plan, and a
// refusal, is the same on every GOARCH. n must have passed Validate (positive
// sizes, a consistent image).
func planMemory(n model.Network, rows int) memoryPlan {
	// (rows*inputs)*2 is compiled as x + x: the product is rounded first.
	p := memoryPlan{fixed: baseBytes + float64(float64(float64(rows)*float64(n.Inputs))*copiesPerDataValue*bytesPerValue)}
	p.fixed += float64(float64(len(n.Conv)+len(n.Hidden)+1) * bytesPerLayer)
	p.perRow = float64(n.Inputs) * copiesPerInput * bytesPerValue

	var maxParam, maxRow float64 // the largest single contribution, and to whom
	param := func(size float64, input string) {
		p.params += float64(size * copiesPerParam * bytesPerValue)
		if size > maxParam {
			maxParam, p.paramsInput = size, input
		}
	}
	row := func(values, copies float64, input string) {
		b := float64(values * copies * bytesPerValue)
		p.perRow += b
		if b > maxRow {
			maxRow, p.rowInput = b, input
		}
	}

	// Convolutions: same padding, stride 1, then an optional pool.
	flat := float64(n.Inputs)
	if n.Image != nil {
		c, h, w := float64(n.Image.Channels), float64(n.Image.Height), float64(n.Image.Width)
		for _, l := range n.Conv {
			f, k := float64(l.Filters), float64(l.Kernel)
			param(f*c*k*k, "conv")
			param(f, "conv")
			row(h*w*c*k*k, copiesPerPatch, "conv")
			row(h*w*f, copiesPerConvOut, "conv")
			if l.Pool > 1 {
				h, w = math.Floor(h/float64(l.Pool)), math.Floor(w/float64(l.Pool))
				row(h*w*f, copiesPerPooledOut, "conv")
			}
			c = f
		}
		flat = c * h * w
	}

	// Dense layers: the hidden ones, then the output layer.
	in, inInput := flat, "hidden"
	if n.Image != nil {
		inInput = "conv"
	}
	for j := 0; j <= len(n.Hidden); j++ {
		out, outInput := float64(n.Outputs), "task"
		if j < len(n.Hidden) {
			out, outInput = float64(n.Hidden[j]), "hidden"
		}
		// The larger side of a weight matrix is what to shrink.
		blame := outInput
		if in > out {
			blame = inInput
		}
		if blame == "task" && len(n.Hidden) > 0 {
			blame = "hidden"
		}
		param(in*out, blame)
		param(out, blame)
		row(out, copiesPerDenseUnit, outInput)
		in, inInput = out, outInput
	}
	if p.rowInput == "task" && len(n.Hidden) > 0 {
		p.rowInput = "hidden"
	}
	return p
}

// memoryBudget is the most memory training plans to use, and what it is half of.
type memoryBudget struct {
	limit float64 // bytes
	total float64 // bytes of the machine or the cgroup
	what  string  // "this machine has 24 GiB" or "this container is limited to 2 GiB"
}

func (b memoryBudget) String() string {
	return b.what + ", at most half of it is used"
}

// systemBudget reads the physical memory and the memory cgroup's limit (v1 or
// v2, the lowest of the cgroup and its ancestors) and takes half of the lower:
// training shares the machine with the page cache, the CI runner and whatever
// else the job runs. It is a variable so that tests can set another.
var systemBudget = func() memoryBudget { return readBudget("/") }

// unknownMemory is assumed when /proc/meminfo cannot be read (not Linux).
const unknownMemory = 16 << 30

func readBudget(root string) memoryBudget {
	total, what := float64(unknownMemory), "this machine's memory is unknown (no /proc/meminfo), taken as "+formatBytes(unknownMemory)
	if mem, ok := readMemTotal(filepath.Join(root, "proc/meminfo")); ok {
		total, what = mem, "this machine has "+formatBytes(mem)
	}
	if lim, ok := cgroupLimit(root); ok && lim < total {
		total, what = lim, "this container is limited to "+formatBytes(lim)+" (memory cgroup)"
	}
	return memoryBudget{limit: total / 2, total: total, what: what}
}

// readMemTotal reads MemTotal from a /proc/meminfo.
func readMemTotal(path string) (float64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb == 0 {
			return 0, false
		}
		return float64(kb) * 1024, true
	}
	return 0, false
}

// cgroupLimit returns the lowest memory limit of this process's cgroup and its
// ancestors, in cgroup v2 (memory.max) and v1 (memory.limit_in_bytes), found
// through /proc/self/cgroup and the mounts in /proc/self/mountinfo. Unset
// limits ("max", or v1's huge page-rounded maximum) are no limit.
func cgroupLimit(root string) (float64, bool) {
	cg, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, false
	}
	mi, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return 0, false
	}
	// Mounts: the v2 hierarchy, and the v1 hierarchy with the memory controller.
	type mount struct{ root, point string }
	var v1, v2 *mount
	sc := bufio.NewScanner(bytes.NewReader(mi))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := &mount{root: unescapeMount(f[3]), point: unescapeMount(f[4])}
		switch {
		case g[0] == "cgroup2" && v2 == nil:
			v2 = m
		case g[0] == "cgroup" && len(g) >= 3 && v1 == nil && hasOption(g[2], "memory"):
			v1 = m
		}
	}
	best, found := math.Inf(1), false
	for line := range strings.SplitSeq(strings.TrimSpace(string(cg)), "\n") {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var m *mount
		var file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			m, file = v2, "memory.max"
		case hasOption(parts[1], "memory"):
			m, file = v1, "memory.limit_in_bytes"
		}
		if m == nil {
			continue
		}
		rel, ok := strings.CutPrefix(parts[2], m.root)
		if !ok {
			rel = parts[2] // a cgroup outside the mount's root: try it as it is
		}
		base := filepath.Join(root, m.point)
		for dir := filepath.Join(base, rel); ; dir = filepath.Dir(dir) {
			if lim, ok := readLimit(filepath.Join(dir, file)); ok && lim < best {
				best, found = lim, true
			}
			if dir == base || !strings.HasPrefix(dir, base) {
				break
			}
		}
	}
	return best, found
}

// readLimit reads a cgroup memory limit; "max" and v1's unlimited value (about
// 2^63 rounded down to a page) are no limit.
func readLimit(path string) (float64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n >= 1<<62 {
		return 0, false
	}
	return float64(n), true
}

func hasOption(list, opt string) bool {
	for o := range strings.SplitSeq(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// formatBytes writes a size with binary units, e.g. "9.6 GiB".
func formatBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	switch {
	case i == 0:
		return fmt.Sprintf("%.0f B", b)
	case b >= 1e5:
		return fmt.Sprintf("%.3g %s", b, units[i])
	case b >= 100:
		return fmt.Sprintf("%.0f %s", b, units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// softMemoryLimit sets the Go runtime's soft memory limit to limit bytes, unless
// one is set already (GOMEMLIMIT), and returns a function that restores it.
// Garbage then cannot take the heap past the budget that checkMemory planned
// the live memory against: without a limit the heap grows to twice the live
// data before a collection (GOGC=100).
func softMemoryLimit(limit float64) (restore func()) {
	prev := debug.SetMemoryLimit(-1)
	if prev != math.MaxInt64 || limit >= math.MaxInt64 {
		return func() {}
	}
	debug.SetMemoryLimit(int64(limit))
	return func() { debug.SetMemoryLimit(prev) }
}

// checkMemory plans training net with batches of batch rows on rows rows (train
// and validation) and refuses a plan over the budget: naming the layer input
// when even one row does not fit, else batch-size with the most rows that do.
func checkMemory(cfg Config, net model.Network, batch, rows int, budget memoryBudget) error {
	p := planMemory(net, rows)
	if p.total(batch) <= budget.limit {
		return nil
	}
	if one := p.total(1); one > budget.limit {
		if p.fixed >= p.params && p.fixed >= p.perRow {
			return fault.Field("data", "%q needs about %s to train on its %d rows of %d features, whatever the network; %s",
				cfg.DataPath, formatBytes(one), rows, net.Inputs, budget)
		}
		if p.params >= p.perRow {
			in := p.paramsInput
			return fault.Field(in, "%s needs about %s for the network and its Adam state; %s", inputValue(cfg, net, in), formatBytes(one), budget)
		}
		in := p.rowInput
		return fault.Field(in, "%s needs about %s for the network's intermediate values of even one row (%s a row); %s",
			inputValue(cfg, net, in), formatBytes(one), formatBytes(p.perRow), budget)
	}
	fit := int(math.Floor((budget.limit - p.fixed - p.params) / p.perRow))
	asked := strconv.Itoa(batch)
	if batch < cfg.BatchSize {
		asked = fmt.Sprintf("%d (the training rows; %d was asked)", batch, cfg.BatchSize)
	}
	return fault.Field("batch-size", "%s needs about %s for the network's intermediate values (%s a row); %s: use at most %d",
		asked, formatBytes(p.total(batch)), formatBytes(p.perRow), budget, fit)
}

// inputValue writes an input's value as a user gives it, for a message.
func inputValue(cfg Config, net model.Network, input string) string {
	switch input {
	case "hidden":
		parts := make([]string, len(cfg.Hidden))
		for i, h := range cfg.Hidden {
			parts[i] = strconv.Itoa(h)
		}
		return strings.Join(parts, ",")
	case "conv":
		parts := make([]string, len(cfg.Conv))
		for i, c := range cfg.Conv {
			parts[i] = fmt.Sprintf("%dx%d", c.Filters, c.Kernel)
			if c.Pool > 1 {
				parts[i] += fmt.Sprintf("p%d", c.Pool)
			}
		}
		return strings.Join(parts, ",")
	case "task":
		return fmt.Sprintf("%s with %d classes", cfg.Task, net.Outputs)
	}
	return ""
}
