// Package procenv computes a container process's environment the same way on both sides (the
// Go init and husk's fast paths): KEY=VALUE entries, PATH and HOME defaults, HOME read from the
// image's /etc/passwd.
package procenv

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/rootfs"
)

// ProcessEnv is the environment a container process gets, from the Go init and from the exec
// fast path alike: KEY=VALUE entries only, the last value of a key at its first place (as
// setenv leaves them), HOME set to home when the process has none (home "" leaves it unset,
// for the caller to add), and LISTEN_PID=1 when fds are passed for socket activation.
func ProcessEnv(env []string, preserveFds int, home string) []string {
	var out []string
	at := map[string]int{}
	set := func(k, v string) {
		if i, ok := at[k]; ok {
			out[i] = k + "=" + v
			return
		}
		at[k] = len(out)
		out = append(out, k+"="+v)
	}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			set(k, v)
		}
	}
	// HOME unset or empty takes the user's home from the image, as runc 1.5; with none known
	// yet (the create fast path adds it once the rootfs is built) an empty one goes.
	if i, ok := at["HOME"]; !ok || out[i] == "HOME=" {
		switch {
		case home != "":
			set("HOME", home)
		case ok:
			out = append(out[:i], out[i+1:]...)
			for k, j := range at {
				if j > i {
					at[k] = j - 1
				}
			}
			delete(at, "HOME")
		}
	}
	if i, ok := at["LISTEN_FDS"]; ok && preserveFds > 0 && out[i] != "LISTEN_FDS=" {
		set("LISTEN_PID", "1")
	}
	return out
}

// HasHome reports whether env sets HOME to something (the last setting wins, as in
// ProcessEnv): an empty HOME= is replaced from the image's /etc/passwd, as runc 1.5 does.
func HasHome(env []string) bool {
	home, set := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home, set = v, true
		}
	}
	return set && home != ""
}

// maxPasswdSize bounds the container's /etc/passwd as husk reads it: the file is the image's.
const maxPasswdSize = 4 << 20

// passwdHome is the home directory of uid in an /etc/passwd, or "/" when it has none, as runc
// sets HOME for a process whose environment lacks it.
func passwdHome(passwd io.Reader, uid uint32) string {
	want := strconv.FormatUint(uint64(uid), 10)
	sc := bufio.NewScanner(io.LimitReader(passwd, maxPasswdSize))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 6 && f[2] == want && f[5] != "" {
			return f[5]
		}
	}
	return "/"
}

// ContainerHome is passwdHome for the container pid runs in, read from its root with in-root
// resolution (the image's symlinks never leave it) and bounded: husk reads it from the host.
func ContainerHome(pid int, uid uint32) string {
	root, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "/"
	}
	defer root.Close()
	return HomeInRoot(root, uid)
}

// HomeInRoot reads /etc/passwd below root; "/" when it is missing or not a regular file.
func HomeInRoot(root *os.File, uid uint32) string {
	p, err := rootfs.OpenInRoot(root, "/etc/passwd")
	if err != nil {
		return "/"
	}
	defer p.Close()
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(p.Fd())), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "/"
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "/"
	}
	return passwdHome(f, uid)
}
