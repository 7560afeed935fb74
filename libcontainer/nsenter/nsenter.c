#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* _HUSK_NSFDS is a comma-separated list of fds, already ordered by the parent (user namespace
 * first, so the others are joined with the capabilities it grants). */
void husk_nsenter(void)
{
	const char *list = getenv("_HUSK_NSFDS");
	const char *sync = getenv("_HUSK_SYNCFD");
	int syncfd = sync ? atoi(sync) : -1;
	char *end;

	if (!list || !*list)
		return;
	while (*list) {
		long fd = strtol(list, &end, 10);
		if (end == list)
			fail(syncfd, "bad _HUSK_NSFDS", -1, EINVAL);
		if (setns((int)fd, 0) < 0)
			fail(syncfd, "setns", (int)fd, errno);
		close((int)fd);
		list = *end == ',' ? end + 1 : end;
	}
	unsetenv("_HUSK_NSFDS");
}
