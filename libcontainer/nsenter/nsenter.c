#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Reports a failure to the parent on the sync socket in the JSON-line protocol the Go side
 * speaks, then exits: the parent turns it into the user's error. */
static void fail(int syncfd, const char *what, int fd, int err)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf),
			 "{\"type\":\"error\",\"message\":\"join namespace: %s (fd %d): %s\"}\n",
			 what, fd, strerror(err));
	if (syncfd >= 0 && n > 0)
		(void)!write(syncfd, buf, (size_t)n);
	_exit(1);
}

static void join_list(const char *list, int syncfd)
{
	char *end;

	while (list && *list) {
		long fd = strtol(list, &end, 10);
		if (end == list)
			fail(syncfd, "bad namespace list", -1, EINVAL);
		if (setns((int)fd, 0) < 0)
			fail(syncfd, "setns", (int)fd, errno);
		close((int)fd);
		list = *end == ',' ? end + 1 : end;
	}
}

/* _HUSK_EXECFAST: the process is an exec the constructor sets up and execs itself (execfast.c),
 * after the namespaces are joined. _HUSK_CREATEFAST: the same for a new container's init, whose
 * rootfs husk builds (createfast.go).
 * _HUSK_NSFDS: comma-separated fds, already ordered by the parent (user namespace first, so the
 * others are joined with the capabilities it grants). _HUSK_NSFDS_FORK: pid and time namespace
 * fds, which apply to children only: after joining them we fork, the child goes on to become
 * the process, and this intermediate reports the child's pid and exits. */
void husk_execfast(int syncfd);
void husk_createfast(int syncfd);

void husk_nsenter(void)
{
	const char *list = getenv("_HUSK_NSFDS");
	const char *forklist = getenv("_HUSK_NSFDS_FORK");
	const char *sync = getenv("_HUSK_SYNCFD");
	const char *fast = getenv("_HUSK_EXECFAST");
	const char *create = getenv("_HUSK_CREATEFAST");
	int syncfd = sync ? atoi(sync) : -1;

	if ((!list || !*list) && (!forklist || !*forklist)) {
		if (fast)
			husk_execfast(syncfd);
		if (create)
			husk_createfast(syncfd);
		return;
	}
	join_list(list, syncfd);
	unsetenv("_HUSK_NSFDS");
	if (forklist && *forklist) {
		pid_t child;
		char buf[64];
		int n;

		join_list(forklist, syncfd);
		unsetenv("_HUSK_NSFDS_FORK");
		child = fork();
		if (child < 0)
			fail(syncfd, "fork into pid namespace", -1, errno);
		if (child > 0) {
			n = snprintf(buf, sizeof(buf), "{\"type\":\"pid\",\"pid\":%d}\n", (int)child);
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
