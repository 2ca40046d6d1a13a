// Package report renders what a pipeline run produced as Markdown for a pull
// request comment, a merge request note or a step summary: a verdict line, the
// metrics against the baseline, the gate's checks, the confusion matrix, the
// training curve as a Mermaid xychart (GitHub and GitLab render it, no image
// host needed), the lineage, and the image and deployment when those steps ran.
package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mlship/mlship/internal/gate"
	"github.com/mlship/mlship/internal/metrics"
	"github.com/mlship/mlship/internal/model"
)

// MaxChars is GitHub's limit on a comment body (65536 characters), less room for
// the marker the comment step adds.
const MaxChars = 65536 - 200

// Input is what a report shows; everything but Card is optional.
type Input struct {
	Card *model.Card
	// Gate is the gate's result; its metrics and baseline take precedence.
	Gate *gate.Result
	// Baseline metrics when there is no gate result, and what they came from.
	Baseline     metrics.Values
	BaselineName string
	Image        *Image
	Deploy       *Deploy
	// RunURL links to the CI run (GitHub: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID).
	RunURL string
	// Failure names a step after the gate that failed (the image, the
	// deployment), so the report says why the model did not ship.
	Failure *Failure
}

// Failure is a step that failed.
type Failure struct {
	Step  string `json:"step"`
	Error string `json:"error"`
}

// Image is what build-push-image produced.
type Image struct {
	Ref       string   `json:"image"`
	Digest    string   `json:"digest"`
	Tags      []string `json:"tags"`
	Platforms []string `json:"platforms"`
	Size      int64    `json:"size_compressed"`
	Smoke     string   `json:"smoke_test"`
	Pushed    bool     `json:"pushed"`
}

// Deploy is what kubectl-deploy did.
type Deploy struct {
	Namespace  string `json:"namespace"`
	Deployment string `json:"deployment"`
	Service    string `json:"service"`
	Image      string `json:"image"`
	Revision   string `json:"revision"`
	DryRun     bool   `json:"dry_run"`
	Diff       string `json:"diff"`
}

// Markdown renders the report, at most MaxChars characters: when too long, the
// training curve is thinned, then the confusion matrix and the diff are left
// out, then the text is cut, each with a note saying so.
func Markdown(in Input) string {
	r := renderer{in: in, curvePoints: 100, confusion: true, diff: true}
	s := r.render()
	if utf8.RuneCountInString(s) <= MaxChars {
		return s
	}
	r.curvePoints, r.notes = 20, append(r.notes, "training curve thinned to 20 points")
	if s = r.render(); utf8.RuneCountInString(s) <= MaxChars {
		return s
	}
	r.confusion, r.diff = false, false
	r.notes = append(r.notes, "confusion matrix and deployment diff left out")
	if s = r.render(); utf8.RuneCountInString(s) <= MaxChars {
		return s
	}
	const cut = "\n\n> **Report truncated** to fit GitHub's 65536-character comment limit; the full report is in the job's step summary and artifact.\n"
	runes := []rune(s)
	return string(runes[:MaxChars-utf8.RuneCountInString(cut)]) + cut
}

type renderer struct {
	in          Input
	curvePoints int
	confusion   bool
	diff        bool
	notes       []string
}

func (r *renderer) render() string {
	var b strings.Builder
	in := r.in
	c := in.Card
	r.verdict(&b)
	if f := in.Failure; f != nil {
		fmt.Fprintf(&b, "\n> ❌ **%s failed:** %s\n", escape(f.Step), escape(f.Error))
	}
	cur := c.Metrics
	base := in.Baseline
	baseName := in.BaselineName
	baseNote := ""
	if g := in.Gate; g != nil {
		if g.Metrics != nil {
			cur = g.Metrics
		}
		if g.Baseline != nil {
			base, baseName, baseNote = g.Baseline, g.BaselineSource, g.BaselineNote
		}
	}
	r.metricsTable(&b, string(c.Task), cur, base, baseName, baseNote)
	if in.Gate != nil && len(in.Gate.Checks) > 0 {
		r.checks(&b, in.Gate)
	}
	if r.confusion && len(c.Confusion) > 0 {
		r.confusionMatrix(&b, c)
	}
	if len(c.Training.Curve) > 0 {
		r.curve(&b, c)
	}
	r.lineage(&b, c)
	if in.Image != nil {
		r.image(&b, in.Image)
	}
	if in.Deploy != nil {
		r.deploy(&b, in.Deploy)
	}
	if len(r.notes) > 0 {
		fmt.Fprintf(&b, "\n> Shortened to fit the comment limit: %s.\n", strings.Join(r.notes, "; "))
	}
	if in.RunURL != "" {
		fmt.Fprintf(&b, "\n<sub>[CI run](%s) · mlship %s</sub>\n", in.RunURL, escape(c.Version))
	} else {
		fmt.Fprintf(&b, "\n<sub>mlship %s</sub>\n", escape(c.Version))
	}
	return b.String()
}

func (r *renderer) verdict(b *strings.Builder) {
	c := r.in.Card
	g := r.in.Gate
	switch {
	case g == nil:
		fmt.Fprintf(b, "### mlship: %s\n\n", escape(c.Name))
		fmt.Fprintf(b, "Trained %s (%s); no gate ran.\n", c.Task, escape(c.Network.String()))
	case g.Passed:
		fmt.Fprintf(b, "### ✅ mlship: %s passed the gate\n\n%s.\n", escape(c.Name), capitalize(escape(g.Reason)))
	default:
		fmt.Fprintf(b, "### ❌ mlship: %s failed the gate\n\n**Why:** %s.\n", escape(c.Name), escape(g.Reason))
	}
}

// metricsTable shows each metric, its baseline, the change and whether that is better.
// A note says what could not be checked about the baseline (gate.Result.BaselineNote).
func (r *renderer) metricsTable(b *strings.Builder, task string, cur, base metrics.Values, baseName, note string) {
	fmt.Fprintf(b, "\n#### Metrics (test split, %d rows)\n\n", r.in.Card.Data.Split.Test)
	if base != nil {
		name := baseName
		if name == "" {
			name = "baseline"
		}
		fmt.Fprintf(b, "Baseline: `%s`\n\n", strings.ReplaceAll(name, "`", "'"))
		if note != "" {
			fmt.Fprintf(b, "> Note: %s.\n\n", escape(note))
		}
		b.WriteString("| metric | value | baseline | change | |\n|---|---:|---:|---:|---|\n")
	} else {
		b.WriteString("| metric | value |\n|---|---:|\n")
	}
	for _, d := range metrics.Diff(cur, base) {
		if base == nil {
			fmt.Fprintf(b, "| %s | %s |\n", escape(d.Name), num(d.Value))
			continue
		}
		if !d.HasBaseline {
			fmt.Fprintf(b, "| %s | %s | – | | |\n", escape(d.Name), num(d.Value))
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", escape(d.Name), num(d.Value), num(d.Baseline), signed(d.Delta), mark(d))
	}
}

// mark is the direction mark: an arrow for the direction of the change and a
// colour for whether it is better in the metric's direction.
func mark(d metrics.Delta) string {
	switch {
	case d.Delta == 0:
		return "= same"
	case d.Better && d.Delta > 0:
		return "🟢 ▲ better"
	case d.Better:
		return "🟢 ▼ better"
	case d.Delta > 0:
		return "🔴 ▲ worse"
	default:
		return "🔴 ▼ worse"
	}
}

func (r *renderer) checks(b *strings.Builder, g *gate.Result) {
	b.WriteString("\n#### Gate checks\n\n| metric | check | value | bound | baseline | verdict |\n|---|---|---:|---:|---:|---|\n")
	for _, c := range g.Checks {
		val, baseline := "not measured", "–"
		if c.Measured {
			val = num(c.Value)
		}
		if c.HasBaseline {
			baseline = num(c.Baseline)
		}
		bound := num(c.Bound)
		if c.Kind == gate.KindMaxDropRel {
			bound = strconv.FormatFloat(c.Bound*100, 'g', 4, 64) + "%"
		}
		v := map[gate.Verdict]string{gate.Pass: "✅ pass", gate.Fail: "❌ fail", gate.Skip: "⏭️ skip"}[c.Verdict]
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", escape(c.Metric), c.Kind, val, bound, baseline, v)
	}
}

func (r *renderer) confusionMatrix(b *strings.Builder, c *model.Card) {
	labels := c.Classes
	if len(labels) != len(c.Confusion) {
		labels = nil
		for i := range c.Confusion {
			labels = append(labels, strconv.Itoa(i))
		}
	}
	fmt.Fprintf(b, "\n<details><summary>Confusion matrix (rows: true class, columns: predicted)</summary>\n\n| true \\ predicted |")
	for _, l := range labels {
		fmt.Fprintf(b, " %s |", escape(l))
	}
	b.WriteString("\n|---|")
	for range labels {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for i, row := range c.Confusion {
		fmt.Fprintf(b, "| **%s** |", escape(labels[i]))
		for j, v := range row {
			if i == j {
				fmt.Fprintf(b, " **%d** |", v)
			} else {
				fmt.Fprintf(b, " %d |", v)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n</details>\n")
}

// curve draws loss and validation loss per epoch as a Mermaid xychart.
func (r *renderer) curve(b *strings.Builder, c *model.Card) {
	pts := c.Training.Curve
	step := 1
	if len(pts) > r.curvePoints {
		step = int(math.Ceil(float64(len(pts)) / float64(r.curvePoints)))
	}
	var xs, loss, val []string
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := 0; i < len(pts); i += step {
		p := pts[i]
		if i+step >= len(pts) && i != len(pts)-1 { // always end on the last epoch
			p = pts[len(pts)-1]
		}
		xs = append(xs, strconv.Itoa(p.Epoch))
		loss = append(loss, short(p.Loss))
		val = append(val, short(p.ValLoss))
		lo = math.Min(lo, math.Min(p.Loss, p.ValLoss))
		hi = math.Max(hi, math.Max(p.Loss, p.ValLoss))
	}
	t := c.Training
	fmt.Fprintf(b, "\n#### Training curve\n\n%d epochs, best %d (%s), %s loss. Lines: training loss, then validation loss.\n\n",
		t.EpochsRun, t.BestEpoch, map[bool]string{true: "stopped early", false: "ran all epochs"}[t.StoppedEarly], t.Loss)
	b.WriteString("```mermaid\nxychart-beta\n")
	fmt.Fprintf(b, "    title \"Loss per epoch (best: %d)\"\n", t.BestEpoch)
	fmt.Fprintf(b, "    x-axis \"epoch\" [%s]\n", strings.Join(xs, ", "))
	pad := (hi - lo) * 0.05
	fmt.Fprintf(b, "    y-axis \"loss\" %s --> %s\n", short(math.Max(0, lo-pad)), short(hi+pad))
	fmt.Fprintf(b, "    line [%s]\n    line [%s]\n```\n", strings.Join(loss, ", "), strings.Join(val, ", "))
}

func (r *renderer) lineage(b *strings.Builder, c *model.Card) {
	d := c.Data
	t := c.Training
	b.WriteString("\n#### Lineage\n\n| | |\n|---|---|\n")
	fmt.Fprintf(b, "| data | `%s` sha256 `%s`, %d rows (train %d, validation %d, test %d), %d missing values imputed |\n",
		escapeCode(d.File), shortSHA(d.SHA256), d.Rows, d.Split.Train, d.Split.Val, d.Split.Test, d.Missing)
	target := escapeCode(c.Target)
	if c.Binarize != "" {
		target += " " + escapeCode(c.Binarize)
	}
	features := fmt.Sprintf("%d features", len(c.Features))
	if len(c.Categories) > 0 {
		// The categorical features, one-hot: the network takes more inputs.
		var names []string
		for _, f := range c.Features {
			if _, ok := c.Categories[f]; ok {
				names = append(names, "`"+escapeCode(f)+"`")
			}
		}
		features += fmt.Sprintf(" (categorical: %s; %d network inputs)", strings.Join(names, ", "), c.Network.Inputs)
	}
	fmt.Fprintf(b, "| model | %s, %s, target `%s`, %s, %d parameters |\n", c.Task, escape(c.Network.String()), target, features, c.Params)
	arith := "" // float64, the default, goes unsaid
	if t.DType != "" && t.DType != "float64" {
		arith = ", " + escape(t.DType)
	}
	fmt.Fprintf(b, "| training | %s lr %s, batch %d, up to %d epochs, patience %d, seed %d%s |\n",
		t.Optimizer, strconv.FormatFloat(t.LearningRate, 'g', -1, 64), t.BatchSize, t.MaxEpochs, t.Patience, c.Seed, arith)
	fmt.Fprintf(b, "| weights | `%s` sha256 `%s` |\n", escapeCode(c.Weights.File), shortSHA(c.Weights.SHA256))
	if c.GitSHA != "" {
		fmt.Fprintf(b, "| commit | `%s` |\n", shortSHA(c.GitSHA))
	}
}

func (r *renderer) image(b *strings.Builder, im *Image) {
	b.WriteString("\n#### Image\n\n")
	where := "built"
	if im.Pushed {
		where = "pushed"
	}
	fmt.Fprintf(b, "%s `%s`", capitalize(where), escapeCode(im.Ref))
	var extra []string
	if len(im.Tags) > 0 {
		extra = append(extra, "tags "+strings.Join(im.Tags, ", "))
	}
	if len(im.Platforms) > 0 {
		extra = append(extra, strings.Join(im.Platforms, ", "))
	}
	if im.Size > 0 {
		extra = append(extra, fmt.Sprintf("%.1f MB compressed", float64(im.Size)/1e6))
	}
	if im.Smoke != "" {
		extra = append(extra, "smoke test "+im.Smoke)
	}
	if len(extra) > 0 {
		fmt.Fprintf(b, " (%s)", escape(strings.Join(extra, "; ")))
	}
	b.WriteString(".\n")
}

func (r *renderer) deploy(b *strings.Builder, d *Deploy) {
	b.WriteString("\n#### Deployment\n\n")
	if d.DryRun {
		fmt.Fprintf(b, "Dry run against `%s/%s`: nothing changed.\n", escape(d.Namespace), escape(d.Deployment))
		if r.diff && d.Diff != "" && d.Diff != "no changes\n" {
			fmt.Fprintf(b, "\n<details><summary>What would change</summary>\n\n```diff\n%s```\n\n</details>\n", strings.ReplaceAll(d.Diff, "```", "'''"))
		} else if d.Diff == "no changes\n" {
			b.WriteString("No changes.\n")
		}
		return
	}
	fmt.Fprintf(b, "Deployment `%s/%s` at revision %s runs `%s`", escape(d.Namespace), escape(d.Deployment), escape(d.Revision), escapeCode(d.Image))
	if d.Service != "" {
		fmt.Fprintf(b, ", service `%s`", escape(d.Service))
	}
	b.WriteString(".\n")
}

func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

func signed(v float64) string {
	s := strconv.FormatFloat(v, 'f', 4, 64)
	if v > 0 {
		s = "+" + s
	}
	return s
}

func short(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

// escape keeps user-supplied text from breaking the Markdown: table pipes, HTML.
func escape(s string) string {
	return strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;", "\n", " ").Replace(s)
}

// escapeCode keeps text inside a code span: no backticks, and no pipes, which
// would end a table cell even there.
func escapeCode(s string) string {
	return strings.NewReplacer("`", "'", "|", "\\|", "\n", " ").Replace(s)
}
