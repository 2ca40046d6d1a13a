package main

import (
	"fmt"
	"strings"
)

// ExitError is mlship's exit code other than 0, with what it printed.
// mlship's codes: 1 a check failed (the gate, a rollout, the smoke test),
// 2 a usage, configuration or input error, 3 the environment failed (a
// registry, cluster or API: safe to retry).
type ExitError struct {
	Step   string
	Code   int
	Stdout string
	Stderr string
}

func (e *ExitError) Error() string {
	msg := lastError(e.Stderr)
	switch e.Code {
	case 1:
		switch e.Step {
		case "evaluate-gate":
			return fmt.Sprintf("mlship evaluate-gate: the gate failed (exit 1): %s\n%s", msg, strings.TrimRight(e.Stdout, "\n"))
		case "monitor":
			return fmt.Sprintf("mlship monitor: a check failed (exit 1): %s\n%s", msg, strings.TrimRight(e.Stdout, "\n"))
		}
		return fmt.Sprintf("mlship %s: a check failed (exit 1): %s", e.Step, msg)
	case 2:
		return fmt.Sprintf("mlship %s: bad input (exit 2): %s", e.Step, msg)
	case 3:
		return fmt.Sprintf("mlship %s: the environment failed, safe to retry (exit 3): %s", e.Step, msg)
	case 130:
		return fmt.Sprintf("mlship %s: interrupted (exit 130)", e.Step)
	}
	if e.Code > 128 && e.Code < 192 {
		return fmt.Sprintf("mlship %s: killed by signal %d (exit %d; 9 is often the memory limit)", e.Step, e.Code-128, e.Code)
	}
	return fmt.Sprintf("mlship %s: exit %d: %s", e.Step, e.Code, msg)
}

// ExitCode is mlship's exit code.
func (e *ExitError) ExitCode() int { return e.Code }

// lastError is mlship's error line (the last "mlship: ..." line on stderr,
// which is not a warning), else the last line.
func lastError(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if rest, ok := strings.CutPrefix(l, "mlship: "); ok && !strings.HasPrefix(rest, "warning:") {
			return rest
		}
	}
	if s := strings.TrimSpace(lines[len(lines)-1]); s != "" {
		return s
	}
	return "no message"
}

// InputError is a bad argument of a function, found before mlship runs.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

// ExitCode is 2, as mlship's input errors.
func (e *InputError) ExitCode() int { return 2 }

func inputErrorf(format string, a ...any) error {
	return &InputError{msg: fmt.Sprintf(format, a...)}
}
