package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mlship/mlship/internal/model/modeltest"
)

// TestRealWorldColumns takes a CSV of the kind real-world data is (a yes/no
// target, a city column, booleans, missing values) through the binaries the
// way a pipeline does: train, the gate on new data, mlship-serve, the report.
func TestRealWorldColumns(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "people.csv")
	require.NoError(t, os.WriteFile(data, []byte(modeltest.PeopleCSV(400, 1)), 0o644))
	// New data: other rows, and a city no training row has.
	fresh := strings.ReplaceAll(modeltest.PeopleCSV(150, 2), ",oslo,", ",madrid,")
	require.Contains(t, fresh, ",madrid,")
	newData := filepath.Join(dir, "new.csv")
	require.NoError(t, os.WriteFile(newData, []byte(fresh), 0o644))
	out := filepath.Join(dir, "model")

	// train
	r := run(t, "train", "--data", data, "--target", "buys", "--max-categories", "4", "--out", out)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "categorical city: 4 categories one-hot (")
	var card struct {
		Task       string
		Features   []string
		Categories map[string][]string
		Inputs     []string
		Classes    []string
	}
	b, err := os.ReadFile(filepath.Join(out, "model.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &card))
	assert.Equal(t, "binary", card.Task)
	assert.Equal(t, []string{"no", "yes"}, card.Classes)
	assert.Equal(t, []string{"age", "city", "member", "income"}, card.Features)
	require.Len(t, card.Categories["city"], 4)
	assert.NotContains(t, card.Categories["city"], "madrid")
	assert.Len(t, card.Inputs, 8)

	// the gate on a CSV of strings
	r = run(t, "evaluate-gate", "--model", out, "--data", newData, "--min", "accuracy=0.75", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var gate struct {
		Passed  bool
		Metrics map[string]float64
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gate))
	assert.True(t, gate.Passed)
	assert.Greater(t, gate.Metrics["accuracy"], 0.75)
	r = run(t, "evaluate-gate", "--model", out, "--data", newData, "--min", "accuracy=0.9999")
	assert.Equal(t, 1, r.code, "a check failed")
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("age,city,member,income,buys\n40,paris,true,50,yes\nold,paris,true,50,no\n"), 0o644))
	r = run(t, "evaluate-gate", "--model", out, "--data", bad, "--min", "accuracy=0.5")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, `evaluating model "`+out+`" on "`+bad+`": reading dataset "`+bad+`": line 3, column "age": "old" is not a number (the model's feature "age" is numeric)`, oneLine(t, r.stderr))

	// mlship-serve
	base, post := serveModel(t, out)
	code, body := post("/predict", `{"inputs":[{"age":70,"city":"paris","member":true,"income":55},{"age":20,"city":"berlin","member":"false","income":null}]}`)
	assert.Equal(t, 400, code, "a string for the numeric member")
	assert.Contains(t, body, `inputs[1].member: is a string, want a number (or null for missing)`)
	code, body = post("/predict", `{"inputs":[{"age":70,"city":"paris","member":true,"income":55},[20,"berlin",false,null],[45,"madrid",false,50]]}`)
	require.Equal(t, 200, code, body)
	var pred struct {
		Outputs       []string
		Probabilities []map[string]float64
	}
	require.NoError(t, json.Unmarshal([]byte(body), &pred))
	assert.Equal(t, []string{"yes", "no"}, pred.Outputs[:2], "old Parisian members buy, young Berliners do not")
	for _, p := range pred.Probabilities {
		assert.Len(t, p, 2)
		assert.InDelta(t, 1, p["no"]+p["yes"], 1e-12)
	}
	code, body = post("/predict", `{"input":{"age":70,"city":"paris","member":true,"income":55}}`)
	require.Equal(t, 200, code, body)
	var one struct {
		Output        string
		Probabilities map[string]float64
	}
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	assert.Equal(t, "yes", one.Output)
	assert.Equal(t, pred.Probabilities[0], one.Probabilities)

	code, body = post("/v2/models/people/infer", `{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"BYTES","data":["70","paris","true","55"]}]}`)
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, `{"name":"output-0","shape":[1],"datatype":"BYTES","data":["yes"]}`)

	res, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	mb, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	metrics := string(mb)
	assert.Contains(t, metrics, `mlship_input_unseen_category_total{feature="city"} 1`+"\n")
	assert.Contains(t, metrics, `mlship_input_category_total{category="paris",feature="city"} 3`+"\n")
	assert.Contains(t, metrics, `mlship_input_missing_total{feature="income"} 1`+"\n")
	assert.Contains(t, metrics, `mlship_predicted_class_total{class="yes"} `)
	assert.NotContains(t, metrics, `mlship_input_feature_zscore_count{feature="city"}`)

	// report
	r = run(t, "report", "--model", out)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "4 features (categorical: `city`; 8 network inputs)")
	assert.Contains(t, r.stdout, "| true \\ predicted | no | yes |")
}

// TestBinarizeLabels: --binarize compares a target of text with == or !=.
func TestBinarizeLabels(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "people.csv")
	require.NoError(t, os.WriteFile(data, []byte(modeltest.PeopleCSV(200, 3)), 0o644))
	r := run(t, "train", "-q", "--data", data, "--target", "buys", "--binarize", "!=no", "--epochs", "2", "--out", filepath.Join(dir, "m"))
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, "train", "-q", "--data", data, "--target", "buys", "--binarize", ">yes", "--epochs", "2", "--out", filepath.Join(dir, "m2"))
	assert.Equal(t, 2, r.code)
	assert.Equal(t, `reading dataset "`+data+`": column "buys": bad binarize expression ">yes": > compares numbers and "yes" is not one; a label is compared with == or != only`, oneLine(t, r.stderr))
}
