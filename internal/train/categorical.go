package train

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mlship/mlship/internal/category"
	"github.com/mlship/mlship/internal/dataset"
	"github.com/mlship/mlship/internal/model"
)

// checkCategorical refuses categorical features for a cnn, whose inputs are
// the pixels of an image: it names the first text cell.
func checkCategorical(cfg Config, ds *dataset.Dataset) error {
	if cfg.Kind != model.KindCNN {
		return nil
	}
	for j, col := range ds.Text {
		if col != nil {
			ti := ds.TextInfo[j]
			return ds.Errorf(ti.Line, ds.Features[j], "%s is not a number: a cnn takes numbers only (its inputs are an image's pixels); fix the cell or drop the column", strconv.Quote(ti.Cell))
		}
	}
	return nil
}

// logCategorical reports the categorical features and their categories, and
// warns about a column of numbers with a few text cells (likely a typo, which
// makes the whole column categorical), and likewise about the target.
func logCategorical(w io.Writer, ds *dataset.Dataset, cats map[string][]string) {
	if ti := ds.TargetText; ti != nil && ti.Numbers > 0 {
		fmt.Fprintf(w, "warning: the target %q holds numbers and text (line %d: %s; %d text and %d number cells): its classes are labels, numbers among them\n",
			ds.Target, ti.Line, strconv.Quote(ti.Cell), ti.Texts, ti.Numbers)
	}
	for j, col := range ds.Text {
		if col == nil {
			continue
		}
		f := ds.Features[j]
		ti := ds.TextInfo[j]
		if ti.Numbers > 0 {
			fmt.Fprintf(w, "warning: column %q holds numbers and text (line %d: %s; %d text and %d number cells), so it is categorical, each number a category; if it is numeric, fix those cells\n",
				f, ti.Line, strconv.Quote(ti.Cell), ti.Texts, ti.Numbers)
		}
		c := cats[f]
		shown := c
		if len(shown) > 6 {
			shown = shown[:6]
		}
		q := make([]string, len(shown))
		for i, l := range shown {
			q[i] = strconv.Quote(l)
		}
		more := ""
		if len(c) > len(shown) {
			more = fmt.Sprintf(", ... (%d in all)", len(c))
		}
		miss := ""
		if n := ds.MissingBy[f]; n > 0 {
			miss = fmt.Sprintf("; %d missing, which set none of its inputs", n)
		}
		fmt.Fprintf(w, "categorical %s: %d %s one-hot (%s%s) and %s%s\n", f, len(c), pluralCategory(len(c)), strings.Join(q, ", "), more, category.Other, miss)
	}
}

func pluralCategory(n int) string {
	if n == 1 {
		return "category"
	}
	return "categories"
}
