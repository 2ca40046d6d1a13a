//go:build unix

package image

import (
	"os/exec"
	"syscall"
)

// inProcessGroup starts cmd in a process group of its own, so that
// killProcessGroup takes down what it started too.
func inProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func killProcessGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
