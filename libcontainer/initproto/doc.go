// Package initproto is the protocol between husk (the parent) and a container's first process,
// husk-init (the child), on both of the child's paths: the C constructor that runs before the
// Go runtime (libcontainer/nsenter) and the Go init (libcontainer's init side). Both sides use
// this package's names; the C side gets them through nsenter/proto.h, generated from it
// (go generate ./libcontainer/initproto).
//
// The child is started with its boot environment (Boot) and one end of a socketpair, the sync
// socket, over which the two sides exchange newline-terminated JSON messages (Msg) and, for the
// constructor, length-prefixed requests of "key=value" records (ExecRequest, CreateRequest).
//
//	create, Go init                        create, fast path (constructor)
//	---------------                        -------------------------------
//	parent            child                parent            child
//	Boot env ------>  joins namespaces     Boot env ------>  joins namespaces
//	      <--------   Pid (if it forked)         <--------   Pid (if it forked)
//	cgroup, oom adj                        cgroup, oom adj
//	Config -------->  builds the rootfs    CreateRequest -> cgroupns, keyring, procfs
//	      <--------   Hooks                      <--------   NsReady (procfs fd)
//	runs hooks                             builds the rootfs from a thread in its namespaces
//	HooksDone ----->                       ExecRequest --->  sets up the process
//	      <--------   Seccomp (filter)           <--------   Ready
//	      <--------   Ready                (waits on the exec fifo, execs)
//	(waits on the exec fifo, execs)
//
//	exec, Go init                          exec, fast path (constructor)
//	-------------                          -----------------------------
//	Boot env ------>  joins namespaces     Boot env ------>  joins namespaces
//	      <--------   Pid (if it forked)         <--------   Pid (if it forked)
//	Config -------->  sets up the process  ExecRequest --->  sets up the process
//	      <--------   EOF at execve              <--------   EOF at execve
//
// On every path the child may instead send Error (its message says why) and exit; a seccomp
// filter with a notify action adds SeccompFd / SeccompFdDone before Ready (or EOF), and a bind
// mount whose source lies in the rootfs adds MountSource / MountSourceFd while the rootfs is
// built.
package initproto

//go:generate go run ./genheader ../nsenter/proto.h
