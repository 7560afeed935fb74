#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <linux/nsfs.h>
#include <unistd.h>

#include "hx.h"
#include "proto.h"

/* Up to husk_nsenter, nothing here uses the C library (hx.h): the entry point runs it before
 * the library has started (early.c). */

/* Reports a failure to the parent on the sync socket in the JSON-line protocol the Go side
 * speaks, then exits: the parent turns it into the user's error. */
static void fail(int syncfd, const char *what, int fd, long err)
{
	char buf[256];
	size_t n = hx_fmt(buf, sizeof(buf),
			  "{\"type\":\"" HUSK_MSG_ERROR "\",\"message\":\"join namespace: %s (fd %d): %s\"}\n",
			  what, fd, hx_strerror(err));
	if (syncfd >= 0 && n > 0)
		(void)hx_write(syncfd, buf, n);
	hx_exit(1);
}

/* nstype_name names the namespace an fd refers to, for the error. */
static const char *nstype_name(int fd)
{
	switch (hx_ioctl(fd, NS_GET_NSTYPE)) {
	case CLONE_NEWUSER:
		return "setns user";
	case CLONE_NEWIPC:
		return "setns ipc";
	case CLONE_NEWUTS:
		return "setns uts";
	case CLONE_NEWNET:
		return "setns network";
	case CLONE_NEWCGROUP:
		return "setns cgroup";
	case CLONE_NEWNS:
		return "setns mount";
	case CLONE_NEWPID:
		return "setns pid";
	case CLONE_NEWTIME:
		return "setns time";
	}
	return "setns";
}

/* husk_join_list joins the comma-separated namespace fds in list. As runc does, in two passes: a
 * namespace owned by an ancestor of the user namespace being joined (a host-network pod shares
 * the host's UTS and network namespaces) can only be joined before the user namespace, one owned
 * by it only after; so every other namespace is tried first, the user namespace joined, and what
 * refused (EPERM) joined then. */
void husk_join_list(const char *list, int syncfd)
{
	int fds[16], n = 0, later[16], nlater = 0, i;
	const char *end;
	long r;

	while (list && *list) {
		unsigned long long fd = hx_strtoull(list, &end, 10);
		if (end == list || n == 16 || fd > 0x7fffffff)
			fail(syncfd, "bad namespace list", -1, EINVAL);
		fds[n++] = (int)fd;
		list = *end == ',' ? end + 1 : end;
	}
	for (i = 0; i < n; i++) {
		if (hx_ioctl(fds[i], NS_GET_NSTYPE) == CLONE_NEWUSER)
			continue;
		if ((r = hx_setns(fds[i])) < 0) {
			if (r != -EPERM)
				fail(syncfd, nstype_name(fds[i]), fds[i], r);
			later[nlater++] = fds[i];
			continue;
		}
		hx_close(fds[i]);
	}
	for (i = 0; i < n; i++) {
		if (hx_ioctl(fds[i], NS_GET_NSTYPE) != CLONE_NEWUSER)
			continue;
		if ((r = hx_setns(fds[i])) < 0)
			fail(syncfd, nstype_name(fds[i]), fds[i], r);
		hx_close(fds[i]);
		/* Become the namespace's root, as runc does: husk's ids are not mapped in it, and an
		 * unmapped owner cannot create files (EOVERFLOW). */
		if ((r = HX_SYS(SYS_setresgid, 0, 0, 0, 0, 0, 0)) < 0 || (r = HX_SYS(SYS_setresuid, 0, 0, 0, 0, 0, 0)) < 0)
			fail(syncfd, "become root in the joined user namespace", -1, r);
		(void)HX_SYS(SYS_setgroups, 0, NULL, 0, 0, 0, 0);
	}
	for (i = 0; i < nlater; i++) {
		if ((r = hx_setns(later[i])) < 0)
			fail(syncfd, nstype_name(later[i]), later[i], r);
		hx_close(later[i]);
	}
}

/* The boot environment (initproto/boot.go says what each variable holds): the namespaces to
 * join (HUSK_ENV_NS_FDS) and to join and fork into (HUSK_ENV_NS_FDS_FORK: the child goes on to
 * become the process, this intermediate reports its pid and exits), then the fast paths:
 * HUSK_ENV_EXEC_FAST, an exec set up and exec'd here (execfast.c); HUSK_ENV_CREATE_FAST, the
 * same for a new container's init, whose rootfs husk builds (createfast.go). */
void husk_execfast(int syncfd);
void husk_createfast(int syncfd);

/* HUSK_ENV_UNSHARE: CLONE_NEW* flags (hex) of the namespaces to make after joining a user
 * namespace by path, so that they belong to it (made at clone, they would belong to husk's, and
 * the init could not use them once in the joined one). A new pid namespace applies to children:
 * we fork, as for a joined one. */
void husk_nsenter(void)
{
	const char *list = getenv(HUSK_ENV_NS_FDS);
	const char *forklist = getenv(HUSK_ENV_NS_FDS_FORK);
	const char *unshare_hex = getenv(HUSK_ENV_UNSHARE);
	const char *sync = getenv(HUSK_ENV_SYNC_FD);
	const char *fast = getenv(HUSK_ENV_EXEC_FAST);
	const char *create = getenv(HUSK_ENV_CREATE_FAST);
	int syncfd = sync ? atoi(sync) : -1;
	unsigned long unshare_flags = unshare_hex ? strtoul(unshare_hex, NULL, 16) : 0;

	if ((!list || !*list) && (!forklist || !*forklist) && !unshare_flags) {
		if (fast)
			husk_execfast(syncfd);
		if (create)
			husk_createfast(syncfd);
		return;
	}
	husk_join_list(list, syncfd);
	unsetenv(HUSK_ENV_NS_FDS);
	unsetenv(HUSK_ENV_UNSHARE);
	if (unshare_flags & ~(unsigned long)CLONE_NEWPID) {
		if (unshare((int)(unshare_flags & ~(unsigned long)CLONE_NEWPID)) < 0)
			fail(syncfd, "unshare", -1, -errno);
	}
	if (unshare_flags & CLONE_NEWPID) {
		if (unshare(CLONE_NEWPID) < 0)
			fail(syncfd, "unshare pid namespace", -1, -errno);
	}
	if ((forklist && *forklist) || (unshare_flags & CLONE_NEWPID)) {
		pid_t child;
		char buf[64];
		int n;

		husk_join_list(forklist, syncfd);
		unsetenv(HUSK_ENV_NS_FDS_FORK);
		child = fork();
		if (child < 0)
			fail(syncfd, "fork into pid namespace", -1, -errno);
		if (child > 0) {
			n = snprintf(buf, sizeof(buf), "{\"type\":\"" HUSK_MSG_PID "\",\"pid\":%d}\n", (int)child);
			if (write(syncfd, buf, (size_t)n) != n)
				_exit(1);
			_exit(0);
		}
	}
	if (fast)
		husk_execfast(syncfd);
	if (create)
		husk_createfast(syncfd);
}
