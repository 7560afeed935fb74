package initproto

// MsgType names a sync socket message.
type MsgType string

// The messages, by direction.
const (
	Config    MsgType = "config"     // parent -> Go init: the InitConfig
	Hooks     MsgType = "hooks"      // init -> parent: namespaces and mounts are ready, run createRuntime hooks
	HooksDone MsgType = "hooks-done" // parent -> init
	Ready     MsgType = "ready"      // child -> parent: blocked on exec.fifo (create)
	Error     MsgType = "error"      // child -> parent: setup failed; Message says why
	Pid       MsgType = "pid"        // constructor -> parent: the pid of the process forked into a pid namespace
	NsReady   MsgType = "nsready"    // constructor -> parent, create fast path: Pid is its fd of a procfs context (-1: none)
	Seccomp   MsgType = "seccomp"    // Go init -> parent: the compiled seccomp filter (Data), kept for exec
	// init -> parent: a filter with SCMP_ACT_NOTIFY is loaded; Pid is the listener's fd number
	// in the child, which the parent takes with pidfd_getfd and sends to linux.seccomp.listenerPath.
	SeccompFd     MsgType = "seccomp-fd"
	SeccompFdDone MsgType = "seccomp-fd-done" // parent -> init: the agent has the listener
	// init -> parent: Pid is the index of a bind mount whose source lies in the rootfs, which
	// the parent clones now, in the init's mount namespace, so the earlier mounts are in it.
	MountSource MsgType = "mount-source"
	// parent -> init: the clone, as an SCM_RIGHTS fd with this message; Message says why not.
	MountSourceFd MsgType = "mount-source-fd"
)

// Msg is one message. Config is sent as the sender's InitConfig and decoded into the
// receiver's (Conn.WaitConfig), with no intermediate copy of the spec it carries.
type Msg struct {
	Type    MsgType `json:"type"`
	Message string  `json:"message,omitempty"`
	Config  any     `json:"config,omitempty"`
	Pid     int     `json:"pid,omitempty"`
	Data    []byte  `json:"data,omitempty"`
}
