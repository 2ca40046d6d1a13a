package comment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Retraining triggers: what `mlship monitor --trigger` calls when live traffic
// breaches a bound. They share the comment clients' HTTP side (retries, error
// messages, exit codes).

// DispatchEventType is the repository_dispatch event type mlship sends; a
// workflow reacts to it with `on: repository_dispatch: types: [mlship-retrain]`.
const DispatchEventType = "mlship-retrain"

// GitHubDispatchMaxPayload is how many top-level properties GitHub accepts in
// a repository_dispatch client_payload.
const GitHubDispatchMaxPayload = 10

// Triggered says what a trigger started.
type Triggered struct {
	Where string // "github acme/models repository_dispatch mlship-retrain", "gitlab group/proj pipeline 12"
	URL   string // the pipeline's web URL (GitLab); "" for GitHub, which answers 204 without one
	ID    int64  // the pipeline id (GitLab)
}

// GitHubDispatch sends a repository_dispatch event (POST
// /repos/{owner}/{repo}/dispatches), which starts the workflows of the
// repository's default branch that listen for its event type. The token needs
// `contents: write` (GITHUB_TOKEN with that permission may send it, and
// repository_dispatch is one of the events GITHUB_TOKEN can start runs with).
type GitHubDispatch struct {
	APIURL string // "" is DefaultGitHubAPI
	Repo   string // owner/name
	Token  string
	Opts   Options
}

// Send sends event type eventType with payload as client_payload (at most
// GitHubDispatchMaxPayload top-level properties).
func (d *GitHubDispatch) Send(ctx context.Context, eventType string, payload map[string]any) (*Triggered, error) {
	owner, name, ok := strings.Cut(d.Repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("github: repository %q is not OWNER/NAME", d.Repo)
	}
	if d.Token == "" {
		return nil, errors.New("github: no token to send repository_dispatch (GITHUB_TOKEN with `permissions: contents: write`)")
	}
	if eventType == "" || utf8.RuneCountInString(eventType) > 100 {
		return nil, fmt.Errorf("github: event type %q must be 1 to 100 characters", eventType)
	}
	if len(payload) > GitHubDispatchMaxPayload {
		return nil, fmt.Errorf("github: client_payload has %d top-level properties, GitHub allows %d", len(payload), GitHubDispatchMaxPayload)
	}
	a, err := newGitHubAPI(d.APIURL, d.Token, d.Opts, d.Repo)
	if err != nil {
		return nil, err
	}
	body := struct {
		EventType     string         `json:"event_type"`
		ClientPayload map[string]any `json:"client_payload,omitempty"`
	}{eventType, payload}
	path := "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/dispatches"
	// GitHub answers 204; a repeated event only starts the workflow twice,
	// so a POST that failed on the network is not sent again.
	if _, err := a.call(ctx, http.MethodPost, path, body, nil, false); err != nil {
		return nil, err
	}
	return &Triggered{Where: fmt.Sprintf("github %s repository_dispatch %s", d.Repo, eventType)}, nil
}

// GitLabTrigger starts a pipeline with the pipeline triggers API (POST
// /projects/{id}/trigger/pipeline with token, ref and variables). The token
// is a pipeline trigger token, or CI_JOB_TOKEN (a multi-project pipeline).
type GitLabTrigger struct {
	APIURL    string // "" is DefaultGitLabAPI
	ProjectID string // numeric id or path ("group/proj")
	Token     string
	Ref       string // branch or tag
	Opts      Options
}

// Send starts the pipeline with variables.
func (g *GitLabTrigger) Send(ctx context.Context, variables map[string]string) (*Triggered, error) {
	if g.ProjectID == "" {
		return nil, errors.New("gitlab: no project to trigger (CI_PROJECT_ID)")
	}
	if g.Token == "" {
		return nil, errors.New("gitlab: no trigger token (a pipeline trigger token in MLSHIP_GITLAB_TRIGGER_TOKEN, or CI_JOB_TOKEN)")
	}
	if g.Ref == "" {
		return nil, errors.New("gitlab: no ref to run the pipeline on (CI_DEFAULT_BRANCH)")
	}
	base := g.APIURL
	if base == "" {
		base = DefaultGitLabAPI
	}
	h := http.Header{}
	h.Set("Accept", "application/json")
	a, err := newAPI("gitlab", base, h, g.Opts, g.ProjectID)
	if err != nil {
		return nil, err
	}
	body := struct {
		Token     string            `json:"token"`
		Ref       string            `json:"ref"`
		Variables map[string]string `json:"variables,omitempty"`
	}{g.Token, g.Ref, variables}
	var out struct {
		ID     int64  `json:"id"`
		WebURL string `json:"web_url"`
	}
	path := "/projects/" + url.PathEscape(unescape(g.ProjectID)) + "/trigger/pipeline"
	if _, err := a.call(ctx, http.MethodPost, path, body, &out, false); err != nil {
		return nil, err
	}
	return &Triggered{Where: fmt.Sprintf("gitlab %s pipeline %d", unescape(g.ProjectID), out.ID), URL: out.WebURL, ID: out.ID}, nil
}
