package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/model"
)

func mlpNet(inputs int, hidden ...int) model.Network {
	return model.Network{Kind: model.KindMLP, Inputs: inputs, Outputs: 1, Hidden: hidden, Activation: "relu", Output: model.OutputSigmoid}
}

func cnnNet(conv ...model.ConvLayer) model.Network {
	return model.Network{Kind: model.KindCNN, Inputs: 64, Outputs: 10, Hidden: []int{64}, Activation: "relu", Output: model.OutputSoftmax,
		Image: &model.Image{Channels: 1, Height: 8, Width: 8}, Conv: conv}
}

// TestPlanMemoryMeasured: the plan stays within the peak RSS measured for a few
// networks (see the comment on the coefficients), from about 0.8 to 1.4 times.
func TestPlanMemoryMeasured(t *testing.T) {
	tests := []struct {
		name     string
		net      model.Network
		rows     int
		batch    int
		measured float64 // MiB of peak RSS, /usr/bin/time -v
	}{
		{"mlp 50-2000-2000 batch 32", mlpNet(50, 2000, 2000), 4000, 32, 331},
		{"mlp 50-2000-2000 batch 3200", mlpNet(50, 2000, 2000), 4000, 3200, 790},
		{"mlp 50-1000 batch 3200", mlpNet(50, 1000), 4000, 3200, 176},
		{"cnn 128x5 batch 1150", cnnNet(model.ConvLayer{Filters: 128, Kernel: 5}), 1437, 1150, 1124},
		{"cnn 128x5 batch 32", cnnNet(model.ConvLayer{Filters: 128, Kernel: 5}), 1437, 32, 129},
		{"cnn 32x3,32x3p2 batch 1150", cnnNet(model.ConvLayer{Filters: 32, Kernel: 3}, model.ConvLayer{Filters: 32, Kernel: 3, Pool: 2}), 1437, 1150, 1243},
		{"cnn 16x3p2 batch 1150", cnnNet(model.ConvLayer{Filters: 16, Kernel: 3, Pool: 2}), 1437, 1150, 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planMemory(tt.net, tt.rows).total(tt.batch) / (1 << 20)
			assert.InDelta(t, 1.1, got/tt.measured, 0.3, "planned %.0f MiB, measured %.0f MiB", got, tt.measured)
		})
	}
}

// TestPlanMemoryNoOverflow: sizes beyond int64 give a huge, finite plan, never a
// wrapped-around small one.
func TestPlanMemoryNoOverflow(t *testing.T) {
	for _, n := range []model.Network{
		mlpNet(13, math.MaxInt, math.MaxInt),
		mlpNet(13, 1<<32, 1<<32, 1<<32),
		cnnNet(model.ConvLayer{Filters: math.MaxInt, Kernel: math.MaxInt}),
		cnnNet(model.ConvLayer{Filters: 1, Kernel: 3037000501}, model.ConvLayer{Filters: 1 << 40, Kernel: 3, Pool: 2}),
	} {
		p := planMemory(n, 100)
		total := p.total(math.MaxInt)
		assert.False(t, math.IsNaN(total) || math.IsInf(total, 0), "%v", total)
		assert.Greater(t, p.total(1), float64(1<<50))
	}
}

func TestCheckMemory(t *testing.T) {
	budget := memoryBudget{limit: 1 << 30, total: 2 << 30, what: "this machine has 2.0 GiB"}
	heart := func(mod func(*Config)) Config {
		c := DefaultConfig()
		mod(&c)
		return c
	}
	tests := []struct {
		name  string
		cfg   Config
		net   model.Network
		batch int
		field string
		msg   string // a regular expression
	}{
		{"fits", heart(func(*Config) {}), mlpNet(13, 64, 32), 32, "", ""},
		{"data", heart(func(c *Config) { c.DataPath = "big.csv" }), mlpNet(100000, 64, 32), 32, "data",
			`^"big.csv" needs about 2\.0 GiB to train on its 1000 rows of 100000 features, whatever the network; this machine`},
		{"hidden", heart(func(c *Config) { c.Hidden = []int{64, 100000000} }), mlpNet(13, 64, 100000000), 32, "hidden",
			`^64,100000000 needs about 496 GiB for the network and its Adam state; this machine has 2\.0 GiB, at most half of it is used$`},
		{"many classes", heart(func(c *Config) { c.Task, c.Hidden = "multiclass", nil }),
			model.Network{Kind: model.KindMLP, Inputs: 13, Outputs: 2000000, Activation: "relu", Output: model.OutputSoftmax}, 32, "task",
			`^multiclass with 2000000 classes needs about 2\.2 GiB for the network and its Adam state`},
		{"conv weights", heart(func(c *Config) { c.Conv = []model.ConvLayer{{Filters: 1000000, Kernel: 3}} }),
			cnnNet(model.ConvLayer{Filters: 1000000, Kernel: 3}), 32, "conv",
			`^1000000x3 needs about \d+ GiB for the network and its Adam state`},
		{"conv activations", heart(func(c *Config) { c.Conv = []model.ConvLayer{{Filters: 1, Kernel: 1001, Pool: 8}} }),
			cnnNet(model.ConvLayer{Filters: 1, Kernel: 1001, Pool: 8}), 32, "conv",
			`^1x1001p8 needs about 2\.5 GiB for the network's intermediate values of even one row \(2\.4 GiB a row\); this machine`},
		{"batch", heart(func(c *Config) { c.BatchSize = 5000 }), mlpNet(13, 4096, 1024), 5000, "batch-size",
			`^5000 needs about \d\.\d GiB for the network's intermediate values \(\d+ KiB a row\); this machine has 2\.0 GiB, at most half of it is used: use at most \d+$`},
		{"batch clamped", heart(func(c *Config) { c.BatchSize = 1 << 40 }), mlpNet(13, 4096, 1024), 5000, "batch-size",
			`^5000 \(the training rows; 1099511627776 was asked\) needs about`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMemory(tt.cfg, tt.net, tt.batch, 1000, budget)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *fault.FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tt.field, fe.Field)
			assert.Regexp(t, regexp.MustCompile(tt.msg), fe.Msg)
			assert.Equal(t, fault.Usage, fault.CodeOf(err))
			if tt.field == "batch-size" {
				// The batch it suggests fits.
				m := regexp.MustCompile(`use at most (\d+)$`).FindStringSubmatch(fe.Msg)
				require.Len(t, m, 2)
				n, _ := strconv.Atoi(m[1])
				require.NoError(t, checkMemory(tt.cfg, tt.net, n, 1000, budget))
				require.Error(t, checkMemory(tt.cfg, tt.net, n+1, 1000, budget))
			}
		})
	}
}

// TestRunRefusesBeforeAllocating: over the budget, Run fails before building
// the network, naming the input, and writes nothing; a batch over the training
// rows is clamped, logged and recorded.
func TestRunRefusesBeforeAllocating(t *testing.T) {
	defer func(f func() memoryBudget) { systemBudget = f }(systemBudget)
	systemBudget = func() memoryBudget {
		return memoryBudget{limit: 200 << 20, total: 400 << 20, what: "this machine has 400 MiB"}
	}

	cfg := heartConfig(t)
	cfg.Hidden = []int{5000, 5000}
	_, err := Run(context.Background(), cfg)
	var fe *fault.FieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "hidden", fe.Field)
	assert.Contains(t, fe.Msg, "5000,5000 needs about 1.9 GiB for the network and its Adam state; this machine has 400 MiB, at most half of it is used")
	ents, _ := os.ReadDir(filepath.Dir(cfg.OutDir))
	assert.Empty(t, ents)

	cfg = heartConfig(t)
	cfg.Hidden, cfg.BatchSize, cfg.Epochs = []int{20000}, 1000, 1
	_, err = Run(context.Background(), cfg)
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "batch-size", fe.Field)
	m := regexp.MustCompile(`^194 \(the training rows; 1000 was asked\) needs about .* use at most (\d+)$`).FindStringSubmatch(fe.Msg)
	require.Len(t, m, 2, fe.Msg)
	cfg.BatchSize, _ = strconv.Atoi(m[1])
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err, "the batch the error suggests fits")
}

func TestBatchClampedToTrainRows(t *testing.T) {
	var log strings.Builder
	big := heartConfig(t)
	big.BatchSize, big.Epochs, big.Log = 100000000, 3, &log
	res, err := Run(context.Background(), big)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "batch size 100000000 is more than the 194 training rows: using 194\n")
	assert.Equal(t, 194, res.Card.Training.BatchSize, "the card records the batch used")

	exact := heartConfig(t)
	exact.BatchSize, exact.Epochs = 194, 3
	_, err = Run(context.Background(), exact)
	require.NoError(t, err)
	for _, f := range []string{model.CardFile, model.WeightsFile, model.MetricsFile} {
		x, _ := os.ReadFile(filepath.Join(big.OutDir, f))
		y, _ := os.ReadFile(filepath.Join(exact.OutDir, f))
		assert.Equal(t, string(x), string(y), "%s: a clamped batch trains as the batch of all training rows", f)
	}
}

func TestReadBudget(t *testing.T) {
	const gib = 1 << 30
	write := func(t *testing.T, root string, files map[string]string) {
		for name, body := range files {
			p := filepath.Join(root, name)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		}
	}
	const meminfo = "MemTotal:       25165824 kB\nMemFree:        1000 kB\n" // 24 GiB
	const mountsV1 = "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
		"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	const mountsV2 = "30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
	tests := []struct {
		name  string
		files map[string]string
		total float64
		what  string
	}{
		{"no proc", nil, 16 * gib, "this machine's memory is unknown (no /proc/meminfo), taken as 16.0 GiB"},
		{"meminfo only", map[string]string{"proc/meminfo": meminfo}, 24 * gib, "this machine has 24.0 GiB"},
		{"v1 unlimited", map[string]string{"proc/meminfo": meminfo, "proc/self/mountinfo": mountsV1,
			"proc/self/cgroup": "9:name=systemd:/\n4:memory:/job/a\n0::/\n",
			"sys/fs/cgroup/memory/job/a/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/memory/job/memory.limit_in_bytes":   "9223372036854771712\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":       "9223372036854771712\n",
			"sys/fs/cgroup/unified/cgroup.procs":               ""},
			24 * gib, "this machine has 24.0 GiB"},
		{"v1 limit on an ancestor", map[string]string{"proc/meminfo": meminfo, "proc/self/mountinfo": mountsV1,
			"proc/self/cgroup": "4:memory:/job/a\n",
			"sys/fs/cgroup/memory/job/a/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/memory/job/memory.limit_in_bytes":   "2147483648\n"},
			2 * gib, "this container is limited to 2.0 GiB (memory cgroup)"},
		{"v2 limit", map[string]string{"proc/meminfo": meminfo, "proc/self/mountinfo": mountsV2,
			"proc/self/cgroup": "0::/user.slice/ci.scope\n",
			"sys/fs/cgroup/user.slice/ci.scope/memory.max": "4294967296\n",
			"sys/fs/cgroup/user.slice/memory.max":          "max\n"},
			4 * gib, "this container is limited to 4.0 GiB (memory cgroup)"},
		{"v2 namespaced root", map[string]string{"proc/meminfo": meminfo, "proc/self/mountinfo": mountsV2,
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "1073741824\n"},
			1 * gib, "this container is limited to 1.0 GiB (memory cgroup)"},
		{"a limit above the machine", map[string]string{"proc/meminfo": meminfo, "proc/self/mountinfo": mountsV2,
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "107374182400\n"},
			24 * gib, "this machine has 24.0 GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, tt.files)
			b := readBudget(root)
			assert.Equal(t, tt.total, b.total)
			assert.Equal(t, tt.total/2, b.limit)
			assert.Equal(t, tt.what+", at most half of it is used", b.String())
		})
	}
	t.Run("this machine", func(t *testing.T) {
		b := systemBudget()
		assert.Greater(t, b.limit, float64(64<<20))
		assert.Equal(t, b.total/2, b.limit)
	})
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0 B", 1000: "1000 B", 1536: "1.5 KiB", 100 << 20: "100 MiB", 9.6 * (1 << 30): "9.6 GiB",
		1 << 60: "1.0 EiB", 1e30: "8.67e+11 EiB",
	} {
		assert.Equal(t, want, formatBytes(in), "%g", in)
	}
}

func TestUnescapeMount(t *testing.T) {
	assert.Equal(t, "/a b/c", unescapeMount(`/a\040b/c`))
	assert.Equal(t, `/a\x`, unescapeMount(`/a\x`))
}
