package commenttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The retraining triggers: GitHub's repository_dispatch and GitLab's pipeline
// triggers API, served by the same fakes.

// Dispatch is a repository_dispatch event FakeGitHub received.
type Dispatch struct {
	Repo          string // owner/name as requested
	EventType     string
	ClientPayload map[string]any
}

// Dispatches returns the repository_dispatch events received, in order.
func (f *FakeGitHub) Dispatches() []Dispatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Dispatch(nil), f.dispatches...)
}

// serveDispatch serves POST /repos/{owner}/{repo}/dispatches as GitHub
// documents it: the usual headers, a JSON body with event_type (1 to 100
// characters) and an optional client_payload object of at most 10 top-level
// properties; 204 No Content. It reports whether rel was that endpoint. Call
// with f.mu held.
func (f *FakeGitHub) serveDispatch(w http.ResponseWriter, r *http.Request, req Request, seg []string) bool {
	if len(seg) != 4 || seg[0] != "repos" || seg[3] != "dispatches" {
		return false
	}
	if r.Method != http.MethodPost {
		f.violate(w, r, http.StatusNotFound, "method %s is not served on this path (POST only)", r.Method)
		return true
	}
	if accept := r.Header.Get("Accept"); accept != "application/vnd.github+json" {
		f.violate(w, r, http.StatusBadRequest, "Accept is %q, want application/vnd.github+json", accept)
		return true
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != GitHubAPIVersion {
		f.violate(w, r, http.StatusBadRequest, "X-GitHub-Api-Version is %q, want %s", v, GitHubAPIVersion)
		return true
	}
	if r.Header.Get("User-Agent") == "" {
		f.violate(w, r, http.StatusForbidden, "no User-Agent (GitHub refuses requests without one)")
		return true
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "token") {
		f.violate(w, r, http.StatusUnauthorized, "Authorization is not \"Bearer TOKEN\"")
		return true
	}
	if token != f.Token {
		writeJSON(w, http.StatusUnauthorized, ghError("Bad credentials"))
		return true
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		f.violate(w, r, http.StatusUnsupportedMediaType, "Content-Type is %q, want application/json", r.Header.Get("Content-Type"))
		return true
	}
	var body struct {
		EventType     *string        `json:"event_type"`
		ClientPayload map[string]any `json:"client_payload"`
	}
	dec := json.NewDecoder(strings.NewReader(req.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		f.violate(w, r, http.StatusBadRequest, "Problems parsing JSON: %v (want {\"event_type\": \"...\", \"client_payload\": {...}})", err)
		return true
	}
	if f.injected(w, r.Method, "/"+strings.Join(seg, "/")) {
		return true
	}
	switch {
	case body.EventType == nil || *body.EventType == "":
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Invalid request.\n\n\"event_type\" wasn't supplied."})
		return true
	case utf8.RuneCountInString(*body.EventType) > 100:
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Invalid request.\n\nevent_type is too long (maximum is 100 characters)."})
		return true
	case len(body.ClientPayload) > 10:
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Invalid request.\n\nNo more than 10 properties are allowed; " + strconv.Itoa(len(body.ClientPayload)) + " were supplied."})
		return true
	}
	f.dispatches = append(f.dispatches, Dispatch{Repo: unesc(seg[1]) + "/" + unesc(seg[2]), EventType: *body.EventType, ClientPayload: body.ClientPayload})
	w.WriteHeader(http.StatusNoContent)
	return true
}

// TriggeredPipeline is a pipeline FakeGitLab's trigger endpoint created.
type TriggeredPipeline struct {
	ID        int64
	Project   string // path
	Ref       string
	Token     string // the token it was triggered with
	Variables map[string]string
}

// Triggered returns the pipelines created through the triggers API, in order.
func (f *FakeGitLab) Triggered() []TriggeredPipeline {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]TriggeredPipeline(nil), f.triggered...)
}

// AddProject makes a project exist (for the triggers API) and returns its id.
func (f *FakeGitLab) AddProject(path string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.project(path).id
}

// serveTrigger serves POST /projects/{id}/trigger/pipeline as GitLab documents
// it: token and ref required, variables a hash of strings, in a JSON or form
// body (variables[KEY]=value); the token is TriggerToken or JobToken, not a
// PRIVATE-TOKEN header; 201 with the pipeline. It reports whether rel was that
// endpoint. Call with f.mu held.
func (f *FakeGitLab) serveTrigger(w http.ResponseWriter, r *http.Request, req Request, seg []string) bool {
	if len(seg) != 4 || seg[0] != "projects" || seg[2] != "trigger" || seg[3] != "pipeline" {
		return false
	}
	if r.Method != http.MethodPost {
		f.violate(w, r, http.StatusMethodNotAllowed, "method %s is not served on this path (POST only)", r.Method)
		return true
	}
	var (
		token, ref string
		vars       = map[string]string{}
	)
	ct := r.Header.Get("Content-Type")
	switch {
	case isJSON(ct):
		var body map[string]json.RawMessage
		if err := json.Unmarshal([]byte(req.Body), &body); err != nil {
			f.violate(w, r, http.StatusBadRequest, "bad JSON: %v", err)
			return true
		}
		for k, raw := range body {
			var err error
			switch k {
			case "token":
				err = json.Unmarshal(raw, &token)
			case "ref":
				err = json.Unmarshal(raw, &ref)
			case "variables":
				dec := json.NewDecoder(bytes.NewReader(raw))
				err = dec.Decode(&vars)
				if err != nil {
					err = fmt.Errorf("variables must be a hash of strings: %w", err)
				}
			case "inputs":
			default:
				err = fmt.Errorf("unknown parameter %q", k)
			}
			if err != nil {
				f.violate(w, r, http.StatusBadRequest, "%s: %v", k, err)
				return true
			}
		}
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		q, err := url.ParseQuery(req.Body)
		if err != nil {
			f.violate(w, r, http.StatusBadRequest, "bad form: %v", err)
			return true
		}
		token, ref = q.Get("token"), q.Get("ref")
		for k, v := range q {
			if name, ok := strings.CutPrefix(k, "variables["); ok && strings.HasSuffix(name, "]") {
				vars[strings.TrimSuffix(name, "]")] = v[0]
			}
		}
	default:
		f.violate(w, r, http.StatusUnsupportedMediaType, "Content-Type is %q, want application/json or a form", ct)
		return true
	}
	if f.injected(w, r.Method, "/"+strings.Join(seg, "/")) {
		return true
	}
	switch {
	case token == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "token is missing"})
		return true
	case ref == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ref is missing"})
		return true
	}
	pid := unesc(seg[1])
	var p *glProject
	for _, x := range f.projects {
		if x.path == pid || strconv.FormatInt(x.id, 10) == pid {
			p = x
		}
	}
	if p == nil || token != f.TriggerToken && (f.JobToken == "" || token != f.JobToken) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
		return true
	}
	id := 5000001 + int64(len(f.triggered))
	f.triggered = append(f.triggered, TriggeredPipeline{ID: id, Project: p.path, Ref: ref, Token: token, Variables: vars})
	web := strings.TrimSuffix(f.Server.URL, "/") + "/" + p.path + "/-/pipelines/" + strconv.FormatInt(id, 10)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": id, "iid": len(f.triggered), "project_id": p.id, "ref": ref, "status": "created",
		"source": "trigger", "web_url": web,
	})
	return true
}
