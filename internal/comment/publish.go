package comment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mlship/mlship/internal/fault"
	"github.com/mlship/mlship/internal/fsutil"
)

// Target says where a report goes.
type Target string

// Targets.
const (
	ToGitHub   Target = "github"
	ToGitLab   Target = "gitlab"
	ToTerminal Target = "terminal"
)

// PublishConfig is what Publish needs.
type PublishConfig struct {
	// Markdown is the rendered report; ID its sticky-comment id.
	Markdown string
	ID       string
	// Target is the platform the job runs on.
	Target Target
	// Repo and Number name the GitHub pull request when the event does not
	// (or to override it).
	Repo   string
	Number int
	// GitHubToken and GitLabToken override the tokens in the environment.
	GitHubToken, GitLabToken string
	// Artifact is where the report is saved when the token may not comment
	// (pull requests from forks), with Artifact.json naming the pull request.
	Artifact string
	// Getenv reads the CI's variables (the event, the API URL, the tokens).
	Getenv  func(string) string
	Options Options
}

// Published says what Publish did.
type Published struct {
	// Result is the comment created or updated; nil when none was.
	*Result
	Where string
	// Saved is the artifact written when the token may not comment, and
	// Forbidden the service's refusal.
	Saved     string
	Forbidden *ForbiddenError
	// NotPullRequest says why nothing was posted on a job that runs for no
	// pull or merge request.
	NotPullRequest string
}

// Saved is the sidecar of a report saved for later posting: Artifact.json.
type Saved struct {
	ID     string `json:"id"`
	Repo   string `json:"repo,omitempty"`
	Number int    `json:"number,omitempty"`
}

// Publish posts the report as the sticky comment of its id on the pull or
// merge request the job runs for. A refused token (a fork's) is not an error:
// the report is saved to Artifact for a workflow_run workflow to post with
// LoadSaved. Failures of the service after retries are environment errors
// (exit 3).
func Publish(ctx context.Context, c PublishConfig) (*Published, error) {
	if err := ValidID(c.ID); err != nil {
		return nil, fault.Input(err)
	}
	getenv := c.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var poster Poster
	var err error
	switch c.Target {
	case ToGitHub:
		if c.Number > 0 {
			gh := &GitHub{APIURL: getenv("GITHUB_API_URL"), Token: getenv("GITHUB_TOKEN"), Repo: c.Repo, Number: c.Number, Opts: c.Options}
			if gh.APIURL == "" {
				gh.APIURL = DefaultGitHubAPI
			}
			if gh.Repo == "" {
				gh.Repo = getenv("GITHUB_REPOSITORY")
			}
			if c.GitHubToken != "" {
				gh.Token = c.GitHubToken
			}
			poster = gh
		} else {
			var gh *GitHub
			gh, err = GitHubFromEnv(withToken(getenv, "GITHUB_TOKEN", c.GitHubToken), c.Options)
			if gh != nil {
				poster = gh
			}
		}
	case ToGitLab:
		var gl *GitLab
		gl, err = GitLabFromEnv(withToken(getenv, "MLSHIP_GITLAB_TOKEN", c.GitLabToken), c.Options)
		if gl != nil {
			poster = gl
		}
	default:
		return &Published{NotPullRequest: "not a CI job"}, nil
	}
	if errors.Is(err, ErrNotPullRequest) {
		return &Published{NotPullRequest: err.Error()}, nil
	}
	if err != nil {
		return nil, fault.Input(err)
	}
	res, err := poster.Upsert(ctx, c.ID, c.Markdown)
	var forbidden *ForbiddenError
	if errors.As(err, &forbidden) {
		p := &Published{Where: poster.Where(), Forbidden: forbidden, Saved: c.Artifact}
		if p.Saved == "" {
			p.Saved = "mlship-report.md"
		}
		side := Saved{ID: c.ID, Repo: c.Repo, Number: c.Number}
		if gh, ok := poster.(*GitHub); ok {
			side.Repo, side.Number = gh.Repo, gh.Number
		}
		if err := Save(p.Saved, c.Markdown, side); err != nil {
			return nil, err
		}
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	return &Published{Result: res, Where: poster.Where()}, nil
}

// withToken makes getenv answer token for name when token is set.
func withToken(getenv func(string) string, name, token string) func(string) string {
	if token == "" {
		return getenv
	}
	return func(k string) string {
		if k == name {
			return token
		}
		return getenv(k)
	}
}

// Save writes a report and its sidecar (path + ".json") for later posting.
func Save(path, md string, side Saved) error {
	sb, err := json.MarshalIndent(side, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing report %q: %w", path, err)
	}
	if err := fsutil.WriteFileAtomic(path+".json", append(sb, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %q: %w", path+".json", err)
	}
	return nil
}

// LoadSaved reads a report saved by Save; the sidecar is optional.
func LoadSaved(path string) (string, Saved, error) {
	var side Saved
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", side, fault.Inputf("reading report %q: %w", path, err)
	}
	sb, err := os.ReadFile(path + ".json")
	if err == nil {
		if err := json.Unmarshal(sb, &side); err != nil {
			return "", side, fault.Inputf("reading %q: %w", filepath.Clean(path+".json"), err)
		}
	}
	return string(b), side, nil
}
