// Package platform is where a job runs: GitHub Actions, GitLab CI or a terminal.
// The CLI uses it to turn a step's result into outputs, a step summary and
// annotations; the steps themselves never look at CI variables.
package platform

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sethvargo/go-githubactions"
)

// Kind of platform.
type Kind string

// Kinds.
const (
	GitHub   Kind = "github"
	GitLab   Kind = "gitlab"
	Terminal Kind = "terminal"
)

// Platform writes results for the CI system the job runs on.
type Platform struct {
	Kind   Kind
	getenv func(string) string
	out    io.Writer
	gh     *githubactions.Action
}

// Detect finds the platform from the environment: GITHUB_ACTIONS=true, then
// GITLAB_CI=true, else a terminal. Workflow commands (annotations) go to out.
func Detect(getenv func(string) string, out io.Writer) *Platform {
	p := &Platform{Kind: Terminal, getenv: getenv, out: out}
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		p.Kind = GitHub
		p.gh = githubactions.New(githubactions.WithGetenv(githubactions.GetenvFunc(getenv)), githubactions.WithWriter(out))
	case getenv("GITLAB_CI") == "true":
		p.Kind = GitLab
	}
	return p
}

// fileCommand runs a GitHub file command, turning the library's panic on a bad
// file into an error.
func (p *Platform) fileCommand(env string, f func()) (err error) {
	if p.getenv(env) == "" {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("writing $%s: %v", env, r)
		}
	}()
	f()
	return nil
}

// StepSummary appends Markdown to the job's summary page (GitHub's
// GITHUB_STEP_SUMMARY); elsewhere it does nothing and reports false.
func (p *Platform) StepSummary(md string) (bool, error) {
	if p.Kind != GitHub || p.getenv("GITHUB_STEP_SUMMARY") == "" {
		return false, nil
	}
	return true, p.fileCommand("GITHUB_STEP_SUMMARY", func() { p.gh.AddStepSummary(md) })
}

// SetOutputs publishes step outputs: on GitHub to $GITHUB_OUTPUT; and, on any
// platform, to a dotenv file (GitLab's `artifacts: reports: dotenv`) at
// dotenvPath when it is set: KEY=value lines, keys in upper case with
// underscores, appended.
func (p *Platform) SetOutputs(values map[string]string, dotenvPath string) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if p.Kind == GitHub {
		if path := p.getenv("GITHUB_OUTPUT"); path != "" {
			if err := appendFile(path, githubOutputs(keys, values, randomDelimiter)); err != nil {
				return fmt.Errorf("writing $GITHUB_OUTPUT: %w", err)
			}
		}
	}
	if dotenvPath == "" {
		return nil
	}
	var b strings.Builder
	for _, k := range keys {
		v := strings.ReplaceAll(strings.ReplaceAll(values[k], "\r", " "), "\n", " ")
		fmt.Fprintf(&b, "%s=%s\n", strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(k)), v)
	}
	if err := appendFile(dotenvPath, b.String()); err != nil {
		return fmt.Errorf("writing dotenv %q: %w", dotenvPath, err)
	}
	return nil
}

// githubOutputs formats outputs for $GITHUB_OUTPUT in the multi-line form,
// each value with its own random delimiter that does not occur in it, as
// GitHub's documentation asks ("Multiline strings"): a fixed delimiter would
// let a value end the block early and set other outputs.
func githubOutputs(keys []string, values map[string]string, delim func() string) string {
	var b strings.Builder
	for _, k := range keys {
		v := values[k]
		d := delim()
		for strings.Contains(v, d) || strings.Contains(k, d) {
			d = delim()
		}
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", k, d, v, d)
	}
	return b.String()
}

func randomDelimiter() string {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "ghadelimiter_" + hex.EncodeToString(buf[:])
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Warning shows a warning: a GitHub annotation, or a line elsewhere.
func (p *Platform) Warning(msg string) {
	if p.Kind == GitHub {
		p.gh.Warningf("%s", msg)
		return
	}
	fmt.Fprintf(p.out, "warning: %s\n", msg)
}

// Error shows an error annotation on GitHub (the error itself is printed by main).
func (p *Platform) Error(msg string) {
	if p.Kind == GitHub {
		p.gh.Errorf("%s", msg)
	}
}

// ErrorTitled shows an error annotation with a title on GitHub.
func (p *Platform) ErrorTitled(title, msg string) {
	if p.Kind == GitHub {
		p.gh.WithFieldsMap(map[string]string{"title": title}).Errorf("%s", msg)
	}
}

// Group starts a collapsible group of log lines on GitHub.
func (p *Platform) Group(title string) {
	if p.Kind == GitHub {
		p.gh.Group(title)
	}
}

// EndGroup ends the group Group started.
func (p *Platform) EndGroup() {
	if p.Kind == GitHub {
		p.gh.EndGroup()
	}
}

// Mask keeps a secret out of the job's log on GitHub: every line of it, and
// the whole (the runner masks per line).
func (p *Platform) Mask(secret string) {
	if p.Kind != GitHub || strings.TrimSpace(secret) == "" {
		return
	}
	p.gh.AddMask(secret)
	for _, line := range strings.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.TrimSpace(line); len(line) >= 4 && line != secret {
			p.gh.AddMask(line)
		}
	}
}

// RunURL links to the CI run, when known.
func (p *Platform) RunURL() string {
	switch p.Kind {
	case GitHub:
		server, repo, id := p.getenv("GITHUB_SERVER_URL"), p.getenv("GITHUB_REPOSITORY"), p.getenv("GITHUB_RUN_ID")
		if server != "" && repo != "" && id != "" {
			return strings.TrimSuffix(server, "/") + "/" + repo + "/actions/runs/" + id
		}
	case GitLab:
		return p.getenv("CI_PIPELINE_URL")
	}
	return ""
}
