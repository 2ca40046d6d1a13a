package cli

import (
	"errors"
	"strings"
)

// oneLine joins a multi-line error (errors.Join) into one line.
func oneLine(err error) error {
	s := err.Error()
	if !strings.ContainsAny(s, "\r\n") {
		return err
	}
	return errors.New(flatten(s))
}

// flatten makes a message one line: its non-blank lines, trimmed, joined by
// "; ", or by a space after a line that ends in "?" or ":" (a question or a
// heading, like cobra's "Did you mean this?" before its suggestions).
func flatten(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var b strings.Builder
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if prev := b.String(); strings.HasSuffix(prev, "?") || strings.HasSuffix(prev, ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
