package goinit

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/procenv"
	"github.com/husk-runtime/husk/specs"
)

// prepareProcess applies everything about the process (console, limits, credentials,
// capabilities, cwd, fds) and returns the resolved path of the program to exec.
func prepareProcess(cfg *initConfig, pipe *initproto.Conn, sc *initSeccomp) (string, error) {
	p := cfg.Process
	if cfg.ConsoleFd > 0 {
		if err := setupConsole(cfg.ConsoleFd, p.ConsoleSize, p.User.UID); err != nil {
			return "", err
		}
	}
	for _, r := range p.Rlimits {
		res := specs.Rlimits[r.Type]
		if err := unix.Prlimit(0, res, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}, nil); err != nil {
			return "", fmt.Errorf("setrlimit %s: %w", r.Type, err)
		}
	}
	// process.oomScoreAdj: written by the parent (initProcess.start).
	// Before the capabilities are dropped: a real-time policy or class needs CAP_SYS_NICE.
	if err := applyProcessAttrs(p, cfg.Spec.Linux); err != nil {
		return "", err
	}
	if err := applyLabels(p); err != nil {
		return "", err
	}
	setProcessEnv(p, cfg.PreserveFds)
	// As runc: chdir first with husk's own access (a cwd the container user cannot reach
	// but root can), and again as the user only if that was refused (a volume owned by
	// the user that root may not enter, e.g. on NFS with root squash).
	chdirAgain := false
	if err := unix.Chdir(p.Cwd); err != nil {
		if err != unix.EACCES && err != unix.EPERM {
			return "", fmt.Errorf("chdir to cwd %q: %w", p.Cwd, err)
		}
		chdirAgain = true
	}
	// CVE-2024-21626: a cwd reached through a leaked fd lies outside the root, which getcwd
	// reports as unreachable.
	if wd, err := unix.Getwd(); !chdirAgain && (err != nil || !strings.HasPrefix(wd, "/")) {
		return "", fmt.Errorf("cwd %q is outside the container root", p.Cwd)
	}
	name, err := exec.LookPath(p.Args[0])
	if err != nil {
		return "", fmt.Errorf("exec: %q: executable file not found in $PATH", p.Args[0])
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	// Nothing of husk's may reach the user process: mark every fd past stdio and the preserved
	// ones close-on-exec (CVE-2024-21626). Before any filter is loaded: husk's own setup must
	// not depend on what the container's profile allows (a profile that denies close_range by
	// default would otherwise fail every container).
	if err := unix.CloseRange(uint(3+cfg.PreserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return "", fmt.Errorf("close fds: %w", err)
	}
	if cfg.Spec.Linux.Seccomp != nil && !p.NoNewPrivileges {
		// Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: do it now.
		if err := loadSeccomp(cfg, pipe, sc); err != nil {
			return "", err
		}
	}
	if err := setupUser(p); err != nil {
		return "", err
	}
	if chdirAgain {
		if err := unix.Chdir(p.Cwd); err != nil {
			return "", fmt.Errorf("chdir to cwd %q as uid %d: %w", p.Cwd, p.User.UID, err)
		}
		if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
			return "", fmt.Errorf("cwd %q is outside the container root", p.Cwd)
		}
	}
	return name, nil
}

// setProcessEnv makes the process's environment the init's, with HOME from the container's
// /etc/passwd when the spec sets none.
func setProcessEnv(p *rspec.Process, preserveFds int) {
	os.Clearenv()
	home := ""
	if !procenv.HasHome(p.Env) {
		home = "/"
		// The init's root is the container's now: /etc/passwd is the image's.
		if root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			home = procenv.HomeInRoot(root, p.User.UID)
			root.Close()
		}
	}
	for _, kv := range procenv.ProcessEnv(p.Env, preserveFds, home) {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
}
