package gate

import (
	"encoding/xml"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/mlship/mlship/internal/fsutil"
)

// Table renders the checks as an aligned text table with the columns
// metric, kind, value, bound, baseline and verdict. Missing values are "-".
// A note on the baseline (BaselineNote) follows the table as "note: ...".
func (r *Result) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "METRIC\tKIND\tVALUE\tBOUND\tBASELINE\tVERDICT")
	values := valueStrings(r.Checks)
	for _, c := range r.Checks {
		value, baseline := "-", "-"
		if c.Measured {
			value = values[c.Metric]
		}
		if c.HasBaseline {
			baseline = numNear(c.Baseline, c.Value)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Metric, c.Kind, value, num(c.Bound), baseline, c.Verdict)
	}
	w.Flush()
	if r.BaselineNote != "" {
		fmt.Fprintf(&b, "note: %s\n", r.BaselineNote)
	}
	return b.String()
}

// valueStrings formats each measured metric once, so that it reads the same
// in every row: 6 significant digits, or more where needed to tell it apart
// from a min or max bound on the metric.
func valueStrings(cs []Check) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		if !c.Measured {
			continue
		}
		if _, ok := out[c.Metric]; !ok {
			out[c.Metric] = numNear(c.Value, c.Value)
		}
		if c.Kind != KindMin && c.Kind != KindMax {
			continue
		}
		if s := numNear(c.Value, c.Bound); len(s) > len(out[c.Metric]) {
			out[c.Metric] = s
		}
	}
	return out
}

// JUnit XML: the subset GitHub and GitLab test reports read, valid against
// the Jenkins xunit plugin's junit-10.xsd (the strictest published schema;
// internal/gate/testdata holds it). That schema has no skipped attribute on
// <testsuites>, so the skipped count is on the <testsuite> only.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	Property []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

const (
	junitSuiteName = "mlship.evaluate-gate"
	junitClassname = "mlship.gate"
)

// WriteJUnit writes r as JUnit XML: one test suite "mlship.evaluate-gate"
// with a test case per check, named "<metric> <kind> <bound>". Failing
// checks carry a <failure>, skipped ones a <skipped>, each with the check's
// reason as message. The suite's properties name where the metrics and the
// baseline came from. The parent directory is created when missing; the file
// is written to a temporary file and renamed into place.
func WriteJUnit(path string, r *Result) error {
	suite := junitSuite{Name: junitSuiteName, Cases: []junitCase{}}
	var props []junitProperty
	for _, p := range []junitProperty{
		{"source", r.Source}, {"baseline", r.BaselineSource}, {"baseline_note", r.BaselineNote},
	} {
		if p.Value != "" {
			props = append(props, p)
		}
	}
	if len(props) > 0 {
		suite.Properties = &junitProperties{Property: props}
	}
	for _, c := range r.Checks {
		tc := junitCase{
			Classname: junitClassname,
			Name:      fmt.Sprintf("%s %s %s", c.Metric, c.Kind, num(c.Bound)),
		}
		details := checkDetails(c, r.Source)
		switch c.Verdict {
		case Fail:
			suite.Failures++
			tc.Failure = &junitMessage{Message: c.Reason, Text: details}
		case Skip:
			suite.Skipped++
			tc.Skipped = &junitMessage{Message: c.Reason}
		default:
			tc.SystemOut = c.Reason
		}
		suite.Tests++
		suite.Cases = append(suite.Cases, tc)
	}
	doc := junitSuites{
		Name:     junitSuiteName,
		Tests:    suite.Tests,
		Failures: suite.Failures,
		Suites:   []junitSuite{suite},
	}
	data, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("writing junit report %q: %w", path, err)
	}
	data = append([]byte(xml.Header), data...)
	data = append(data, '\n')
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("writing junit report %q: %w", path, unwrapPath(err))
	}
	return nil
}

// checkDetails is the body of a failure element.
func checkDetails(c Check, source string) string {
	value, baseline := "not measured", "none"
	if c.Measured {
		value = num(c.Value)
	}
	if c.HasBaseline {
		baseline = num(c.Baseline)
	}
	return fmt.Sprintf("%s\nmetric: %s\nkind: %s\nvalue: %s\nbound: %s\nbaseline: %s\nsource: %s\n",
		c.Reason, c.Metric, c.Kind, value, num(c.Bound), baseline, source)
}
