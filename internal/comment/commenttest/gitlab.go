package commenttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// GitLabMaxBody is GitLab's note body limit in characters.
const GitLabMaxBody = 1000000

// FakeGitLab is a fake GitLab REST API (v4) serving merge requests and
// their notes: GET /projects/{id}/merge_requests/{iid}, list notes (GET
// .../notes with sort, order_by, per_page, page, and X-Page, X-Next-Page,
// X-Total... and Link headers), create (POST .../notes) and edit (PUT
// .../notes/{note_id}, by the note's author only). {id} is the numeric
// project id or its URL-encoded path (group%2Fproj; an unencoded slash is a
// violation). Requests need PRIVATE-TOKEN; writes need Content-Type:
// application/json and a {"body"} object.
type FakeGitLab struct {
	core
	Server     *httptest.Server
	APIURL     string // the API root: the server's URL and /api/v4
	Token      string // the PRIVATE-TOKEN it accepts; "glpat-fake0123456789abc" from NewGitLab
	User       string // username of the token's user, author of the notes it posts; "project_1001_bot"
	MaxPerPage int    // the largest page served; 100 as on GitLab (set it lower to test pagination)
	LinkOnly   bool   // paginate with a Link header only, without X-Page, X-Next-Page, ...
	// TriggerToken is the pipeline trigger token the triggers API accepts
	// ("glptt-fake0123456789abcd" from NewGitLab); JobToken, when set, is a
	// CI_JOB_TOKEN it accepts there too.
	TriggerToken string
	JobToken     string
	triggered    []TriggeredPipeline

	projects map[string]*glProject // by path
	notes    []*Note
	nextID   int64
}

type glProject struct {
	id   int64
	path string
	mrs  map[int]bool
}

// Note is a merge request note held by FakeGitLab.
type Note struct {
	ID      int64
	Project string // path: group/proj
	IID     int    // the merge request
	Author  string // username
	Body    string
	System  bool
	Edits   int    // PUTs it received
	Created string // RFC 3339
	Updated string
}

// NewGitLab starts a fake GitLab API rooted at /api/v4, closed when the test
// ends.
func NewGitLab(t testing.TB) *FakeGitLab {
	t.Helper()
	f := &FakeGitLab{
		Token:        "glpat-fake0123456789abc",
		TriggerToken: "glptt-fake0123456789abcd",
		User:         "project_1001_bot",
		MaxPerPage:   100,
		projects:     map[string]*glProject{},
		nextID:       2000000001,
	}
	f.init(t, "gitlab")
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	f.APIURL = f.Server.URL + "/api/v4"
	return f
}

// AddMR makes merge request iid of project ("group/proj") exist and returns
// the project's numeric id.
func (f *FakeGitLab) AddMR(project string, iid int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.project(project)
	p.mrs[iid] = true
	return p.id
}

// project returns the project, adding it. Call with f.mu held.
func (f *FakeGitLab) project(path string) *glProject {
	p := f.projects[path]
	if p == nil {
		p = &glProject{id: 1001 + int64(len(f.projects)), path: path, mrs: map[int]bool{}}
		f.projects[path] = p
	}
	return p
}

// AddNote adds a note by author to a merge request (added if need be) and
// returns its id. System notes are the ones GitLab writes ("added 1 commit").
func (f *FakeGitLab) AddNote(project string, iid int, author, body string, system bool) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.project(project)
	p.mrs[iid] = true
	return f.add(p, iid, author, body, system).ID
}

// add appends a note. Call with f.mu held.
func (f *FakeGitLab) add(p *glProject, iid int, author, body string, system bool) *Note {
	now := stamp(len(f.notes) + len(f.requests))
	n := &Note{ID: f.nextID, Project: p.path, IID: iid, Author: author, Body: body, System: system, Created: now, Updated: now}
	f.nextID++
	f.notes = append(f.notes, n)
	return n
}

// Notes returns the notes of a merge request, oldest first.
func (f *FakeGitLab) Notes(project string, iid int) []Note {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Note
	for _, n := range f.notes {
		if n.Project == project && n.IID == iid {
			out = append(out, *n)
		}
	}
	return out
}

// Env returns the variables of a GitLab CI merge request pipeline on
// project's merge request iid against this fake, token in
// MLSHIP_GITLAB_TOKEN, and adds the merge request.
func (f *FakeGitLab) Env(project string, iid int) map[string]string {
	id := f.AddMR(project, iid)
	return map[string]string{
		"GITLAB_CI":                     "true",
		"CI_SERVER_URL":                 f.Server.URL,
		"CI_API_V4_URL":                 f.APIURL,
		"CI_PROJECT_ID":                 strconv.FormatInt(id, 10),
		"CI_PROJECT_PATH":               project,
		"CI_PIPELINE_SOURCE":            "merge_request_event",
		"CI_MERGE_REQUEST_IID":          strconv.Itoa(iid),
		"CI_MERGE_REQUEST_PROJECT_ID":   strconv.FormatInt(id, 10),
		"CI_MERGE_REQUEST_PROJECT_PATH": project,
		"CI_JOB_TOKEN":                  "fake-job-token",
		"MLSHIP_GITLAB_TOKEN":           f.Token,
	}
}

func (f *FakeGitLab) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	esc := r.URL.EscapedPath()
	rel, ok := strings.CutPrefix(esc, "/api/v4/")
	rel = "/" + rel
	if !ok {
		rel = esc
	}
	req, err := f.record(r, rel)
	if err != nil {
		f.violate(w, r, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if !ok {
		f.violate(w, r, http.StatusNotFound, "path is not under the API root /api/v4")
		return
	}

	// Routes.
	seg := strings.Split(strings.Trim(rel, "/"), "/")
	if f.serveTrigger(w, r, req, seg) {
		return
	}
	if len(seg) < 4 || seg[0] != "projects" || seg[2] != "merge_requests" || !isNum(seg[3]) ||
		len(seg) > 4 && seg[4] != "notes" || len(seg) == 6 && !isNum(seg[5]) || len(seg) > 6 {
		f.violate(w, r, http.StatusNotFound, "no such endpoint in the fake (GET /projects/{id}/merge_requests/{iid}, GET/POST .../notes, PUT .../notes/{note_id}; a project path must be URL-encoded: group%%2Fproj)")
		return
	}
	iid, _ := strconv.Atoi(seg[3])
	var noteID int64
	write := false
	switch {
	case len(seg) == 4 && r.Method == http.MethodGet:
	case len(seg) == 5 && r.Method == http.MethodGet:
	case len(seg) == 5 && r.Method == http.MethodPost:
		write = true
	case len(seg) == 6 && r.Method == http.MethodPut:
		write = true
		noteID, _ = strconv.ParseInt(seg[5], 10, 64)
	default:
		f.violate(w, r, http.StatusMethodNotAllowed, "method %s is not served on this path", r.Method)
		return
	}

	// Auth.
	switch tok := r.Header.Get("PRIVATE-TOKEN"); {
	case tok == "" && r.Header.Get("JOB-TOKEN") != "":
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "403 Forbidden"}) // job tokens cannot use these endpoints
		return
	case tok == "":
		f.violate(w, r, http.StatusUnauthorized, "no PRIVATE-TOKEN header")
		return
	case tok != f.Token:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}

	// Query and body.
	var (
		body string
		has  bool
	)
	if write {
		if !isJSON(r.Header.Get("Content-Type")) {
			f.violate(w, r, http.StatusUnsupportedMediaType, "Content-Type is %q, want application/json", r.Header.Get("Content-Type"))
			return
		}
		if body, has, err = decodeBody(req.Body); err != nil {
			f.violate(w, r, http.StatusBadRequest, "bad JSON: %v (want {\"body\": \"...\"})", err)
			return
		}
	} else if req.Body != "" {
		f.violate(w, r, http.StatusBadRequest, "GET with a body")
		return
	}
	sortAsc := true
	if len(seg) == 5 && !write {
		switch req.Query.Get("sort") {
		case "asc":
		case "", "desc":
			sortAsc = false
		default:
			f.violate(w, r, http.StatusBadRequest, "sort does not have a valid value (asc, desc)")
			return
		}
		if o := req.Query.Get("order_by"); o != "" && o != "created_at" && o != "updated_at" {
			f.violate(w, r, http.StatusBadRequest, "order_by does not have a valid value (created_at, updated_at)")
			return
		}
	}
	if f.injected(w, r.Method, rel) {
		return
	}

	// Resources.
	pid := unesc(seg[1])
	var p *glProject
	for _, x := range f.projects {
		if x.path == pid || strconv.FormatInt(x.id, 10) == pid {
			p = x
		}
	}
	if p == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Project Not Found"})
		return
	}
	if !p.mrs[iid] {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not found"})
		return
	}
	if write {
		switch {
		case !has || body == "":
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body is missing"})
			return
		case utf8.RuneCountInString(body) > GitLabMaxBody:
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": map[string]any{"note": []string{fmt.Sprintf("is too long (maximum is %d characters)", GitLabMaxBody)}}})
			return
		}
	}

	switch {
	case len(seg) == 4:
		writeJSON(w, http.StatusOK, map[string]any{
			"id":            50000 + p.id*1000 + int64(iid),
			"iid":           iid,
			"project_id":    p.id,
			"title":         fmt.Sprintf("Fake merge request !%d", iid),
			"state":         "opened",
			"web_url":       f.mrURL(p, iid),
			"references":    map[string]string{"short": fmt.Sprintf("!%d", iid), "full": fmt.Sprintf("%s!%d", p.path, iid)},
			"source_branch": "feature",
			"target_branch": "main",
		})
	case r.Method == http.MethodPost:
		writeJSON(w, http.StatusCreated, f.noteJSON(p, f.add(p, iid, f.User, body, false)))
	case r.Method == http.MethodPut:
		var n *Note
		for _, x := range f.notes {
			if x.ID == noteID && x.Project == p.path && x.IID == iid {
				n = x
			}
		}
		switch {
		case n == nil:
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Note Not Found"})
		case n.System || n.Author != f.User:
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "403 Forbidden"})
		default:
			n.Body, n.Edits, n.Updated = body, n.Edits+1, stamp(len(f.notes)+len(f.requests))
			writeJSON(w, http.StatusOK, f.noteJSON(p, n))
		}
	default:
		page, perPage, err := pageParams(req.Query, 20, min(100, max(f.MaxPerPage, 1)))
		if err != nil {
			f.violate(w, r, http.StatusBadRequest, "%v", err)
			return
		}
		var all []*Note
		for _, n := range f.notes {
			if n.Project == p.path && n.IID == iid {
				all = append(all, n)
			}
		}
		if !sortAsc {
			for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
				all[i], all[j] = all[j], all[i]
			}
		}
		items, pages := pageOf(all, page, perPage)
		out := make([]map[string]any, 0, len(items))
		for _, n := range items {
			out = append(out, f.noteJSON(p, n))
		}
		q := url.Values{}
		for _, k := range []string{"sort", "order_by"} {
			if v := req.Query.Get(k); v != "" {
				q.Set(k, v)
			}
		}
		h := w.Header()
		h.Set("Link", linkHeader(fmt.Sprintf("%s/projects/%d/merge_requests/%d/notes", f.APIURL, p.id, iid), q, page, pages, perPage))
		if !f.LinkOnly {
			next, prev := "", ""
			if page < pages {
				next = strconv.Itoa(page + 1)
			}
			if page > 1 {
				prev = strconv.Itoa(page - 1)
			}
			h.Set("X-Page", strconv.Itoa(page))
			h.Set("X-Per-Page", strconv.Itoa(perPage))
			h.Set("X-Next-Page", next)
			h.Set("X-Prev-Page", prev)
			h.Set("X-Total", strconv.Itoa(len(all)))
			h.Set("X-Total-Pages", strconv.Itoa(pages))
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (f *FakeGitLab) mrURL(p *glProject, iid int) string {
	return fmt.Sprintf("%s/%s/-/merge_requests/%d", f.Server.URL, p.path, iid)
}

func (f *FakeGitLab) noteJSON(p *glProject, n *Note) map[string]any {
	return map[string]any{
		"id":            n.ID,
		"type":          nil,
		"body":          n.Body,
		"author":        map[string]any{"username": n.Author, "name": n.Author},
		"created_at":    n.Created,
		"updated_at":    n.Updated,
		"system":        n.System,
		"noteable_id":   50000 + p.id*1000 + int64(n.IID),
		"noteable_type": "MergeRequest",
		"noteable_iid":  n.IID,
		"resolvable":    false,
		"confidential":  false,
		"internal":      false,
	}
}
