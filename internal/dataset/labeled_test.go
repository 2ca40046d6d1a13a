package dataset

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLabeled(t *testing.T) {
	csv := "b,a,y,extra\n1,2,0,9\n3,?,2,9\n5,6,1,9\n"
	tests := []struct {
		name    string
		schema  Schema
		wantX   [][]float64
		wantY   []float64
		wantErr string
	}{
		{
			name:   "multiclass in schema order",
			schema: Schema{Features: []string{"a", "b"}, Target: "y", Task: Multiclass, Classes: []string{"0", "1", "2"}},
			wantX:  [][]float64{{2, 1}, {math.NaN(), 3}, {6, 5}},
			wantY:  []float64{0, 2, 1},
		},
		{
			name:   "binarized",
			schema: Schema{Features: []string{"a"}, Target: "y", Task: Binary, Binarize: ">0", Classes: []string{"0", "1"}},
			wantX:  [][]float64{{2}, {math.NaN()}, {6}},
			wantY:  []float64{0, 1, 1},
		},
		{
			name:   "regression",
			schema: Schema{Features: []string{"b"}, Target: "y", Task: Regression},
			wantX:  [][]float64{{1}, {3}, {5}},
			wantY:  []float64{0, 2, 1},
		},
		{
			name:    "unknown label",
			schema:  Schema{Features: []string{"a"}, Target: "y", Task: Binary, Classes: []string{"0", "1"}},
			wantErr: `reading dataset "t.csv": line 3, column "y": label 2 is not one of the model's classes (0, 1)`,
		},
		{
			name:    "missing feature",
			schema:  Schema{Features: []string{"a", "zz"}, Target: "y", Task: Regression},
			wantErr: `the model's feature columns`,
		},
		{
			name:    "missing target",
			schema:  Schema{Features: []string{"a"}, Target: "label", Task: Regression},
			wantErr: `target column "label" not found`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadCSVFrom("t.csv", strings.NewReader(csv))
			require.NoError(t, err)
			x, y, err := Labeled(f, tc.schema)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, x, len(tc.wantX))
			for i := range x {
				for j := range x[i] {
					if math.IsNaN(tc.wantX[i][j]) {
						assert.True(t, math.IsNaN(x[i][j]))
					} else {
						assert.Equal(t, tc.wantX[i][j], x[i][j])
					}
				}
			}
			assert.Equal(t, tc.wantY, y)
		})
	}
}
