package registry

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// HtpasswdCost is the bcrypt cost of the lines Htpasswd writes: 4 keeps each
// authenticated request fast (cost 12 costs about 1.5 s a request).
const HtpasswdCost = 4

var htpasswdCache sync.Map // "user\x00password" -> line

// pythons are the Pythons tried for crypt, in order (a variable for tests).
var pythons = []string{"/usr/bin/python3", "python3"}

// Htpasswd returns an htpasswd line "user:$2b$04$..." (bcrypt, cost 4), the
// only format distribution's htpasswd auth reads. It asks /usr/bin/python3's
// crypt module (Debian 12), else `htpasswd` from apache2-utils; hack/setup.sh
// makes sure one of them is there. Lines are cached per user and password.
func Htpasswd(user, password string) (string, error) {
	if strings.ContainsAny(user, ":\n") || strings.Contains(password, "\n") {
		return "", fmt.Errorf("htpasswd for %q: user must not contain ':' or newlines, password no newlines", user)
	}
	key := user + "\x00" + password
	if v, ok := htpasswdCache.Load(key); ok {
		return v.(string), nil
	}
	hash, err := bcryptHash(user, password)
	if err != nil {
		return "", fmt.Errorf("htpasswd for %q: %w", user, err)
	}
	line := user + ":" + hash
	htpasswdCache.Store(key, line)
	return line, nil
}

func bcryptHash(user, password string) (string, error) {
	var errs []error
	for _, py := range pythons {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		script := fmt.Sprintf("import crypt, sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=%d)))", 1<<HtpasswdCost)
		out, err := run(path, []string{"-W", "ignore", "-c", script}, password)
		if err == nil && strings.HasPrefix(out, "$2") {
			return out, nil
		}
		errs = append(errs, fmt.Errorf("%s crypt: %v %q", path, err, out))
	}
	if path, err := exec.LookPath("htpasswd"); err == nil {
		// -n: print, -i: password on stdin, -B: bcrypt, -C: cost.
		out, err := run(path, []string{"-niB", "-C", fmt.Sprint(HtpasswdCost), user}, password)
		if h, ok := strings.CutPrefix(out, user+":"); err == nil && ok && strings.HasPrefix(h, "$2") {
			return h, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v %q", path, err, out))
	}
	if len(errs) == 0 {
		return "", errors.New("no bcrypt generator: need /usr/bin/python3 with crypt or htpasswd (apache2-utils); run hack/setup.sh")
	}
	return "", errors.Join(errs...)
}

func run(path string, args []string, stdin string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(out.String() + errb.String()), err
	}
	return strings.TrimSpace(out.String()), nil
}
