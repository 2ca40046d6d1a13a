package main

// A fake Dagger engine: an HTTP server answering the GraphQL queries that the
// module's functions send, which records them. The generated package
// (internal/dagger) connects at init to 127.0.0.1:$DAGGER_SESSION_PORT with
// $DAGGER_SESSION_TOKEN and panics when they are not set, so `go test` runs
// with DAGGER_SESSION_PORT=0 DAGGER_SESSION_TOKEN=test (the Makefile sets
// them); TestMain then listens on a free port and runs the tests again in a
// child process that is handed that listener and told its port.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

const (
	engineToken = "test"
	listenerFD  = "MLSHIP_FAKE_ENGINE_FD"
)

var engine = &fakeEngine{}

func TestMain(m *testing.M) {
	if os.Getenv(listenerFD) == "" {
		os.Exit(reexec())
	}
	ln, err := net.FileListener(os.NewFile(3, "fake-engine"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake engine:", err)
		os.Exit(2)
	}
	srv := &http.Server{Handler: engine}
	go srv.Serve(ln) //nolint:errcheck // closed at exit
	os.Exit(m.Run())
}

// reexec runs this test binary again with a listener on a free port.
func reexec() int {
	if os.Getenv("DAGGER_SESSION_TOKEN") != engineToken {
		fmt.Fprintln(os.Stderr, "run with DAGGER_SESSION_PORT=0 DAGGER_SESSION_TOKEN="+engineToken+" (as make test does)")
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake engine:", err)
		return 2
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake engine:", err)
		return 2
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(),
		"DAGGER_SESSION_PORT="+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), listenerFD+"=3")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "fake engine:", err)
		return 2
	}
	return 0
}

// call is one field of a query's chain with its arguments.
type call struct {
	name string
	args map[string]any
}

// fakeEngine answers a query chain by chain: an object's id is a new ID
// (remembered with the chain that made it), node(id:) loads one, and the
// leaves a function reads (exitCode, stdout, stderr, a file's contents, a
// file's name, the platform) come from the scenario.
type fakeEngine struct {
	mu      sync.Mutex
	queries []string
	objects map[string][]call // by ID
	// the scenario
	exitCode       int
	stdout, stderr string
	files          map[string]string // contents by path in the container
	// the function call the engine hands the module (dispatch), and what
	// the module returned: a JSON value, or the ID of an error
	fn                    functionCall
	returned, returnedErr string
}

// functionCall is what currentFunctionCall answers: the function, its
// parent object as JSON and its arguments as JSON, by name.
type functionCall struct {
	parentName, name, parent string
	args                     map[string]string
}

func (e *fakeEngine) reset(code int, stdout, stderr string, files map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queries, e.objects = nil, map[string][]call{}
	e.exitCode, e.stdout, e.stderr, e.files = code, stdout, stderr, files
	e.fn, e.returned, e.returnedErr = functionCall{}, "", ""
}

func (e *fakeEngine) setCall(fn functionCall) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fn = fn
}

func (e *fakeEngine) result() (value, errID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.returned, e.returnedErr
}

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if user, _, ok := r.BasicAuth(); !ok || user != engineToken || r.URL.Path != "/query" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var req struct {
		Query string `json:"query"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queries = append(e.queries, req.Query)
	doc, gerr := parser.ParseQuery(&ast.Source{Input: req.Query})
	w.Header().Set("Content-Type", "application/json")
	if gerr != nil {
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"message": gerr.Error()}}})
		return
	}
	data, err := e.resolve(doc.Operations[0].SelectionSet, nil)
	if err != nil {
		msg := map[string]any{"message": err.Error()}
		if ge, ok := err.(*gqlError); ok {
			msg["extensions"] = ge.ext
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{msg}})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}

func (e *fakeEngine) resolve(set ast.SelectionSet, chain []call) (map[string]any, error) {
	out := map[string]any{}
	for _, s := range set {
		switch x := s.(type) {
		case *ast.Field:
			c := call{name: x.Name, args: map[string]any{}}
			for _, a := range x.Arguments {
				v, err := a.Value.Value(nil)
				if err != nil {
					return nil, err
				}
				c.args[a.Name] = v
			}
			ch := append(append([]call(nil), chain...), c)
			key := x.Alias
			if key == "" {
				key = x.Name
			}
			var err error
			if x.Name == "inputArgs" && len(chain) == 1 && chain[0].name == "currentFunctionCall" {
				var list []any
				for name := range e.fn.args {
					list = append(list, map[string]any{"id": "arg:" + name})
				}
				out[key] = list
				continue
			}
			if len(x.SelectionSet) > 0 {
				out[key], err = e.resolve(x.SelectionSet, ch)
			} else {
				out[key], err = e.leaf(ch)
			}
			if err != nil {
				return nil, err
			}
		case *ast.InlineFragment:
			sub, err := e.resolve(x.SelectionSet, chain)
			if err != nil {
				return nil, err
			}
			for k, v := range sub {
				out[k] = v
			}
		}
	}
	return out, nil
}

func (e *fakeEngine) leaf(chain []call) (any, error) {
	last, prev := chain[len(chain)-1], chain[:len(chain)-1]
	if len(prev) == 1 && prev[0].name == "currentFunctionCall" {
		switch last.name {
		case "parentName":
			return e.fn.parentName, nil
		case "name":
			return e.fn.name, nil
		case "parent":
			return e.fn.parent, nil
		case "returnValue":
			e.returned, _ = last.args["value"].(string)
			return nil, nil
		case "returnError":
			e.returnedErr, _ = last.args["error"].(string)
			return nil, nil
		}
	}
	if len(prev) == 1 && prev[0].name == "node" && last.name == "value" {
		id, _ := prev[0].args["id"].(string)
		if name, ok := strings.CutPrefix(id, "arg:"); ok {
			return e.fn.args[name], nil
		}
	}
	switch last.name {
	case "id":
		if len(prev) == 1 && prev[0].name == "node" {
			return prev[0].args["id"], nil
		}
		id := fmt.Sprintf("obj:%d", len(e.objects)+1)
		e.objects[id] = prev
		return id, nil
	case "name":
		if len(prev) == 1 && prev[0].name == "node" {
			id, _ := prev[0].args["id"].(string)
			if _, n, ok := strings.Cut(id, ":"); ok {
				return n, nil
			}
		}
	case "exitCode":
		if e.exitCode >= 128 && e.exitCode < 192 {
			// Outside Expect ANY: the exec itself fails, as the engine says.
			var cmd []any
			for _, c := range calls(prev, "withExec") {
				cmd = c.args["args"].([]any)
			}
			return nil, &gqlError{msg: fmt.Sprintf("process %q did not complete successfully: exit code: %d", cmd, e.exitCode),
				ext: map[string]any{"_type": "EXEC_ERROR", "exitCode": e.exitCode, "cmd": cmd, "stdout": e.stdout, "stderr": e.stderr}}
		}
		return e.exitCode, nil
	case "stdout":
		return e.stdout, nil
	case "stderr":
		return e.stderr, nil
	case "contents":
		if len(prev) > 0 && prev[len(prev)-1].name == "file" {
			p, _ := prev[len(prev)-1].args["path"].(string)
			if c, ok := e.files[p]; ok {
				return c, nil
			}
			return nil, fmt.Errorf("%s: no such file or directory", p)
		}
	case "defaultPlatform":
		return "linux/amd64", nil
	}
	return nil, fmt.Errorf("fake engine: no answer for %s", chainString(chain))
}

// gqlError is a GraphQL error with extensions (the engine's exec errors).
type gqlError struct {
	msg string
	ext map[string]any
}

func (e *gqlError) Error() string { return e.msg }

func chainString(chain []call) string {
	var parts []string
	for _, c := range chain {
		parts = append(parts, fmt.Sprintf("%s%v", c.name, c.args))
	}
	return strings.Join(parts, ".")
}

// chains are the recorded queries parsed into chains, one per leaf.
func (e *fakeEngine) chains() [][]call {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out [][]call
	for _, q := range e.queries {
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			continue
		}
		var walk func(ast.SelectionSet, []call)
		walk = func(set ast.SelectionSet, chain []call) {
			for _, s := range set {
				switch x := s.(type) {
				case *ast.Field:
					c := call{name: x.Name, args: map[string]any{}}
					for _, a := range x.Arguments {
						c.args[a.Name], _ = a.Value.Value(nil)
					}
					ch := append(append([]call(nil), chain...), c)
					if len(x.SelectionSet) == 0 {
						out = append(out, ch)
					}
					walk(x.SelectionSet, ch)
				case *ast.InlineFragment:
					walk(x.SelectionSet, chain)
				}
			}
		}
		walk(doc.Operations[0].SelectionSet, nil)
	}
	return out
}

// object is the chain that made an ID (node(id:) for those given in).
func (e *fakeEngine) object(id string) []call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.objects[id]
}

// rawQueries are the queries as sent.
func (e *fakeEngine) rawQueries() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.queries...)
}
