#include "hx.h"
#include "proto.h"

/* husk-init's entry point (the Makefile links it with -e husk_entry): the fast paths of exec and
 * create are run from here, before the static C library starts, which on a VM costs more than
 * the rest of an exec's setup (hx.h says why). What they do not cover (joining a user or time
 * namespace, which forks; unsharing after a join; the Go init) goes on to the C library's
 * _start, and so to the constructor (nsenter.go), untouched. */

void husk_join_list(const char *list, int syncfd);
void husk_execfast(int syncfd);
void husk_createfast(int syncfd);

/* husk_early reads the boot environment (initproto/boot.go) off the initial stack: argc, the
 * arguments, a NULL, the environment. It returns only when the process is not a fast path's;
 * a fast path ends in the process's execve or in exit. */
void husk_early(long *sp)
{
	long argc = sp[0];
	char **envp = (char **)(sp + 1 + argc + 1);
	const char *fast = hx_getenv(envp, HUSK_ENV_EXEC_FAST);
	const char *create = hx_getenv(envp, HUSK_ENV_CREATE_FAST);
	const char *forklist = hx_getenv(envp, HUSK_ENV_NS_FDS_FORK);
	const char *unshare_hex = hx_getenv(envp, HUSK_ENV_UNSHARE);
	const char *list, *sync;
	int syncfd;

	if (!fast && !create)
		return;
	if ((forklist && *forklist) || (unshare_hex && hx_strtoull(unshare_hex, NULL, 16) != 0))
		return;
	sync = hx_getenv(envp, HUSK_ENV_SYNC_FD);
	syncfd = sync ? hx_atoi(sync) : -1;
	list = hx_getenv(envp, HUSK_ENV_NS_FDS);
	if (list && *list)
		husk_join_list(list, syncfd);
	if (fast)
		husk_execfast(syncfd);
	husk_createfast(syncfd);
}

#if defined(__x86_64__)
/* The kernel starts the process here with the stack 16-byte aligned at argc and %rdx zero (the
 * C library's _start takes it as the dynamic linker's fini): both are handed on as they came. */
__asm__(".text\n"
	".globl husk_entry\n"
	".type husk_entry,@function\n"
	"husk_entry:\n"
	"	mov %rsp, %r12\n"
	"	mov %rdx, %r13\n"
	"	mov %rsp, %rdi\n"
	"	call husk_early\n"
	"	mov %r12, %rsp\n"
	"	mov %r13, %rdx\n"
	"	jmp _start\n"
	".size husk_entry, .-husk_entry\n");
#endif
