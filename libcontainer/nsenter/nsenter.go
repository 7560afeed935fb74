// Package nsenter joins namespaces before the Go runtime starts. Importing it installs a C
// constructor that, when the process was started as a husk init with namespace fds to join,
// calls setns(2) on each while the process is still single-threaded: the kernel refuses to move
// a multi-threaded process into a mount or user namespace, and Go starts threads early.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void husk_nsenter(void);
void __attribute__((constructor)) husk_nsenter_init(void) { husk_nsenter(); }
*/
import "C"
