/* crunwrap runs crun 1.8 (Debian 12's) under containerd 2.x, which writes specs of a newer
 * ociVersion than crun 1.8 accepts ("unknown version specified"): on `create`, the bundle's
 * config.json gets ociVersion 1.0.2, overwritten in place when the version has that length;
 * everything is then crun's (execv, no fork). Built by make bench-node; only the crun handler
 * of integration/nodebench pays its exec (~0.3 ms, a create's only). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CRUN
#define CRUN "/usr/bin/crun"
#endif

static void lower_version(const char *bundle)
{
	char path[4096], *buf, *v;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/config.json", bundle);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	buf = malloc((size_t)st.st_size + 1);
	if (buf && read(fd, buf, (size_t)st.st_size) == st.st_size) {
		buf[st.st_size] = 0;
		v = strstr(buf, "\"ociVersion\"");
		if (v && (v = strchr(v + 12, '"')) && strlen(v) > 7 && v[6] == '"')
			(void)!pwrite(fd, "1.0.2", 5, (off_t)(v + 1 - buf));
	}
	free(buf);
	close(fd);
}

int main(int argc, char **argv)
{
	int create = 0;
	const char *bundle = ".";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "create"))
			create = 1;
		else if ((!strcmp(argv[i], "--bundle") || !strcmp(argv[i], "-b")) && i + 1 < argc)
			bundle = argv[i + 1];
	}
	if (create)
		lower_version(bundle);
	argv[0] = CRUN;
	execv(CRUN, argv);
	perror("crunwrap: exec " CRUN);
	return 127;
}
