package shimapi

import "syscall"

// forkLogger starts a logger; the caller holds the reaper lock, and the logger's exit goes to
// the exit loop like any process the shim does not wait for itself.
func forkLogger(argv, env []string, files []uintptr) (int, error) {
	return syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: env, Files: files})
}
