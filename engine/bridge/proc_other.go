//go:build !unix

package bridge

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// killGroup kills the child only: process groups are a unix notion.
func killGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }
