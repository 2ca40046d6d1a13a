// Package junittest checks JUnit XML files written in tests against the
// Jenkins xunit plugin's junit-10.xsd (vendored in internal/gate/testdata with
// its licence), with xmllint from Debian's libxml2-utils (hack/setup.sh
// installs it). Any test that produces a JUnit file should validate it.
package junittest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SchemaPath is the vendored schema, relative to the module root.
const SchemaPath = "internal/gate/testdata/junit-10.xsd"

// Validate checks the JUnit XML file at path against junit-10.xsd with
// xmllint --schema and fails t with xmllint's message when it is not valid.
// Without xmllint it skips t (so call it in its own subtest, t.Run), unless
// $CI is set, where a missing xmllint fails.
func Validate(t testing.TB, path string) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if inCI() {
			t.Fatalf("xmllint not found and CI=%s: the JUnit schema check must run in CI (install libxml2-utils: bash hack/setup.sh)", os.Getenv("CI"))
		}
		t.Skip("xmllint not found: JUnit schema check skipped (install libxml2-utils: bash hack/setup.sh; CI=true makes this a failure)")
	}
	schema, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", schema, path).CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("%s does not validate against junit-10.xsd: %v\n%s\n--- the file:\n%s", path, err, out, b)
	}
}

// Schema returns the absolute path of the vendored junit-10.xsd, found from
// the working directory (go test runs in the package's directory) up to the
// module root.
func Schema() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, SchemaPath)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("junit schema: %w", err)
			}
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("junit schema: no go.mod above " + wd)
		}
	}
}

func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}
