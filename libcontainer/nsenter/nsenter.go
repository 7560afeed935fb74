// Package nsenter joins namespaces before the Go runtime starts. Importing it installs a C
// constructor that, when the process was started as a husk init with namespace fds to join,
// calls setns(2) on each while the process is still single-threaded: the kernel refuses to move
// a multi-threaded process into a mount or user namespace, and Go starts threads early. On
// x86_64, husk-init's entry point (early.c) runs the fast paths before even the C library starts;
// the constructor handles the rest.
package nsenter

/*
// No stack protector: its canary is read from thread-local storage, which the C library sets
// up, and early.c runs before it (gcc may enable it by default, as Ubuntu's does).
#cgo CFLAGS: -Wall -O2 -fno-stack-protector
extern void husk_nsenter(void);
void __attribute__((constructor)) husk_nsenter_init(void) { husk_nsenter(); }
*/
import "C"
