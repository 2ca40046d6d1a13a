// Package fault classifies errors by what the person or pipeline that ran a
// command can do about them, which decides the exit code (part of mlship's
// public API):
//
//	0    success
//	1    a check failed: the gate, a rollout, a smoke test (do not retry)
//	2    usage, configuration or input error; nothing was written (fix the input)
//	3    the environment failed: a registry, cluster or API unreachable or
//	     answering 5xx after retries, a timeout, a full disk (safe to retry)
//	130  interrupted (SIGINT or SIGTERM); nothing half-written
//
// Steps mark their errors with Check, Env or Input (or return a *FieldError for
// a bad setting, or a type with an ExitCode method); Code finds the mark with
// errors.As. Errors that carry none are classified by their cause: network
// errors, timeouts and a full disk are 3, everything else 2.
package fault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Exit codes.
const (
	OK          = 0
	Failed      = 1
	Usage       = 2
	Environment = 3
	Interrupted = 130
)

// Coder is an error that knows its exit code.
type Coder interface {
	ExitCode() int
}

type marked struct {
	code int
	err  error
}

func (e *marked) Error() string { return e.err.Error() }
func (e *marked) Unwrap() error { return e.err }
func (e *marked) ExitCode() int { return e.code }

func mark(code int, err error) error {
	if err == nil {
		return nil
	}
	return &marked{code: code, err: err}
}

// Check marks err as a failed check (exit 1).
func Check(err error) error { return mark(Failed, err) }

// Input marks err as a usage, configuration or input error (exit 2).
func Input(err error) error { return mark(Usage, err) }

// Env marks err as a failure of the environment (exit 3): safe to retry.
func Env(err error) error { return mark(Environment, err) }

// Inputf is fmt.Errorf marked as an input error.
func Inputf(format string, a ...any) error { return Input(fmt.Errorf(format, a...)) }

// Envf is fmt.Errorf marked as an environment failure.
func Envf(format string, a ...any) error { return Env(fmt.Errorf(format, a...)) }

// FieldError is a bad or missing setting, keyed by the name of the input in
// mlship's spec (internal/spec), e.g. "test-size". Msg is a predicate that
// follows the input's spelling: "must be between 0 and 1, got 1.5", "is
// required". Each front end names the input its own way (a flag, an
// mlship.yaml key with the file and line, an action input); Error() uses the
// plain name. Msg may name other inputs as {name}, which front ends spell too.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + " " + PlainNames(e.Msg) }
func (e *FieldError) ExitCode() int { return Usage }

// Field returns a *FieldError.
func Field(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// PlainNames replaces {name} references in a field message by name.
func PlainNames(msg string) string {
	return SpellNames(msg, func(n string) string { return n })
}

// SpellNames replaces each {name} in msg (name: lower case letters, digits and
// dashes) by spell(name).
func SpellNames(msg string, spell func(string) string) string {
	if !strings.Contains(msg, "{") {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(msg[i:], '}')
		if j < 0 || !isName(msg[i+1:i+j]) {
			b.WriteString(msg[:i+1])
			msg = msg[i+1:]
			continue
		}
		b.WriteString(msg[:i])
		b.WriteString(spell(msg[i+1 : i+j]))
		msg = msg[i+j+1:]
	}
	b.WriteString(msg)
	return b.String()
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Fields returns the *FieldErrors in err (joined errors are walked), in order.
func Fields(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// Code is the exit code for err: 0 for nil; 130 when ctx was cancelled (a
// signal); else the first mark found (an ExitCode method; an outer mark wins
// over one it wraps); else 3 for network failures, timeouts and a full
// disk; else 2.
func Code(ctx context.Context, err error) int {
	if err != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Interrupted
	}
	return CodeOf(err)
}

// CodeOf is Code for an error alone: its mark, else its cause.
func CodeOf(err error) int {
	if err == nil {
		return OK
	}
	var c Coder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	if IsEnvironment(err) {
		return Environment
	}
	return Usage
}

// IsEnvironment reports whether err is caused by the environment: a network
// error (refused, reset, unreachable, DNS), a timeout, or a full disk or quota.
func IsEnvironment(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, syscall.ENETDOWN, syscall.ETIMEDOUT, syscall.EPIPE, syscall.ENOSPC, syscall.EDQUOT} {
		if errors.Is(err, e) {
			return true
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
