package gen

import (
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the README's generated blocks")

const readme = "../../README.md"

// TestReadmeIsCurrent fails when the README's reference tables drift from the
// spec: run `mlship gen readme` (or go test ./internal/gen -update).
func TestReadmeIsCurrent(t *testing.T) {
	changed, err := UpdateReadme(readme, !*update)
	require.NoError(t, err)
	assert.False(t, changed && !*update, "README.md is not current: run `go run ./cmd/mlship gen readme`")
}

// TestReadmeExampleConfig: the mlship.yaml example in the README reads
// without error (every key in it is known and well typed).
func TestReadmeExampleConfig(t *testing.T) {
	b, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "### `mlship.yaml`")
	require.GreaterOrEqual(t, i, 0)
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(s[i:])
	require.NotNil(t, m)
	_, err = spec.ParseFile("README.md", []byte(m[1]))
	require.NoError(t, err)
}

func TestReadmeMarkers(t *testing.T) {
	_, err := Readme([]byte("no markers here"))
	assert.ErrorContains(t, err, "README has no markers for")
	out, err := Readme([]byte(strings.Join(func() []string {
		var b []string
		for n := range Sections() {
			b = append(b, beginMarker(n), "stale", endMarker(n))
		}
		return b
	}(), "\n")))
	require.NoError(t, err)
	assert.NotContains(t, string(out), "stale")
	assert.Contains(t, string(out), "| `--batch-size` | `train.batch_size` | integer | `32` |")
}

func TestJSON(t *testing.T) {
	b, err := JSON()
	require.NoError(t, err)
	var steps []struct {
		Name   string
		Inputs []struct {
			Name, Key, Env, Default string
			Secret                  bool
		}
		Outputs []struct{ Name string }
	}
	require.NoError(t, json.Unmarshal(b, &steps))
	require.Len(t, steps, len(spec.Steps()))
	found := false
	for _, s := range steps {
		for _, in := range s.Inputs {
			if s.Name == "train" && in.Name == "batch-size" {
				found = true
				assert.Equal(t, "train.batch_size", in.Key)
				assert.Equal(t, "MLSHIP_BATCH_SIZE", in.Env)
				assert.Equal(t, "32", in.Default)
			}
		}
	}
	assert.True(t, found)
}
