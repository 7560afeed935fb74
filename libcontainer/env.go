package libcontainer

import "strings"

// processEnv is the environment a container process gets, from the Go init and from the exec
// fast path alike: KEY=VALUE entries only, the last value of a key at its first place (as
// setenv leaves them), HOME defaulting to /, and LISTEN_PID=1 when fds are passed for socket
// activation.
func processEnv(env []string, preserveFds int) []string {
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
	if _, ok := at["HOME"]; !ok {
		set("HOME", "/")
	}
	if i, ok := at["LISTEN_FDS"]; ok && preserveFds > 0 && out[i] != "LISTEN_FDS=" {
		set("LISTEN_PID", "1")
	}
	return out
}
