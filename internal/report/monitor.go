package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mlship/mlship/internal/monitor"
)

// maxFeatureRows is how many features the monitor report lists in its table of
// all features (the most drifted first); the drifted ones are always listed.
const maxFeatureRows = 50

// Monitor renders `mlship monitor`'s result: the verdict, each check, the
// drifted features (by how much, since when), the predictions' distribution
// against training, and every feature's PSI.
func Monitor(r *monitor.Result, runURL, version string) string {
	var b strings.Builder
	switch {
	case !r.Passed:
		fmt.Fprintf(&b, "### ❌ mlship monitor: %s breached its bounds\n\n**Why:** %s.\n", escape(r.Model), escape(r.Reason))
	default:
		fmt.Fprintf(&b, "### ✅ mlship monitor: %s within bounds\n\n%s.\n", escape(r.Model), capitalize(escape(r.Reason)))
	}
	fmt.Fprintf(&b, "\nLive traffic over the %s to %s from %s: %.0f prediction requests, %.0f rows. Training reference: %s.\n",
		r.Window, r.Time.Format(time.RFC3339), escape(r.Prometheus), r.Requests, r.Rows, referenceWord(r.Reference))
	if r.Triggered != "" {
		fmt.Fprintf(&b, "\n> 🔁 **Retraining started:** %s.\n", escape(r.Triggered))
	}

	b.WriteString("\n#### Checks\n\n| Check | Live | Bound | |\n|---|---:|---:|---|\n")
	for _, c := range r.Checks {
		val, bound := short(c.Value), "≤ "+short(c.Bound)
		if strings.HasPrefix(c.Name, "error rate") {
			val, bound = pct(c.Value), "≤ "+pct(c.Bound)
		}
		mark := "✅"
		switch {
		case c.Skipped != "":
			mark = "➖ not judged: " + escape(c.Skipped)
			if strings.HasPrefix(c.Skipped, "no ") {
				val = "–"
			}
		case !c.Passed:
			mark = "❌"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", escape(c.Name), val, bound, mark)
	}

	if len(r.Drifted) > 0 {
		b.WriteString("\n#### Drifted features\n\n| Feature | PSI | Live mean (training std) | Since |\n|---|---:|---:|---|\n")
		for _, f := range r.Features {
			if !f.Drifted {
				continue
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", escapeCode(f.Name), short(f.PSI), meanZ(f.MeanZ), sinceText(f.Drift, r.Window))
		}
		b.WriteString("\nPSI (population stability index) compares the live share of rows in each z-score bucket with the training rows'; above 0.1 is a moderate, above 0.2 a major shift.\n")
	}

	if p := r.Predictions; p != nil && len(p.Buckets) > 0 {
		what := "class"
		if r.Task == "regression" {
			what = "value ≤"
		}
		fmt.Fprintf(&b, "\n#### Predictions (PSI %s over %.0f rows)\n\n| %s | Live | Training |\n|---|---:|---:|\n", short(p.PSI), p.Rows, capitalize(what))
		for i, l := range p.Buckets {
			live, train := 0.0, 0.0
			if i < len(p.Live) {
				live = p.Live[i]
			}
			if i < len(p.Training) {
				train = p.Training[i]
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", escape(l), pct(live), pct(train))
		}
	}

	if len(r.Features) > 0 {
		fs := append([]monitor.FeatureDrift(nil), r.Features...)
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].PSI > fs[j].PSI })
		shown := min(len(fs), maxFeatureRows)
		fmt.Fprintf(&b, "\n<details><summary>All %d features by PSI</summary>\n\n| Feature | PSI | Live mean (training std) |\n|---|---:|---:|\n", len(fs))
		for _, f := range fs[:shown] {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", escapeCode(f.Name), short(f.PSI), meanZ(f.MeanZ))
		}
		if shown < len(fs) {
			fmt.Fprintf(&b, "\n%d more features, each with a PSI of at most %s.\n", len(fs)-shown, short(fs[shown].PSI))
		}
		b.WriteString("\n</details>\n")
	}
	if runURL != "" {
		fmt.Fprintf(&b, "\n<sub>[CI run](%s) · mlship %s</sub>\n", runURL, escape(version))
	} else {
		fmt.Fprintf(&b, "\n<sub>mlship %s</sub>\n", escape(version))
	}
	return b.String()
}

func referenceWord(src string) string {
	if src == "card" {
		return "the model card"
	}
	return "the model card, as mlship-serve exports it"
}

func meanZ(v *float64) string {
	if v == nil {
		return "–"
	}
	return signed(*v)
}

func sinceText(d monitor.Drift, window string) string {
	switch {
	case d.SinceWindowStart:
		return "the whole " + window + " window"
	case d.Since != nil:
		return d.Since.Format(time.RFC3339)
	}
	return "–"
}

func pct(v float64) string {
	return fmt.Sprintf("%.2f%%", 100*v)
}
