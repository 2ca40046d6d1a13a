package registry

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// Without Python's crypt, htpasswd from apache2-utils writes the line ($2y$),
// and distribution accepts it.
func TestHtpasswdFallback(t *testing.T) {
	if _, err := exec.LookPath("htpasswd"); err != nil {
		t.Skip("htpasswd (apache2-utils) not installed")
	}
	saved := pythons
	pythons = nil
	defer func() { pythons = saved }()
	line, err := Htpasswd("fallback", "pw:with spaces")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "fallback:$2y$04$") {
		t.Fatalf("line %q, want fallback:$2y$04$...", line)
	}
	s := StartDistribution(t, Options{Username: "fallback", Password: "pw:with spaces"})
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v2/", nil)
	req.SetBasicAuth(s.Username, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ with credentials: %s, want 200", resp.Status)
	}
}
