#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "hx.h"
#include "proto.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The exec fast path: `husk exec` of a plain process (no terminal, no LSM label; a seccomp
 * filter comes compiled, from the create) is set up here, before the Go runtime of husk-init
 * ever starts (that start is most of an exec's cost), and from the binary's entry point, before
 * the C library's too (early.c): so no C library here, only hx.h. The steps and their order are
 * those of prepareProcess and setupUser in goinit/process.go and goinit/user_linux.go, which
 * handle every other case; keep the two in step.
 *
 * The parent sends, once the process is in its cgroup, a 4-byte length and then NUL-separated
 * "key=value" records, computed and checked on the Go side. */

/* The request's records and limits are initproto's (proto.h); ExecRequest.Check keeps the Go
 * side within them. */
#define MAX_ITEMS HUSK_MAX_ITEMS
/* The kernel's NGROUPS_MAX: setgroups(2) takes no more. */
#define MAX_GROUPS 65536

struct execfast {
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	long umask_val; /* -1: leave alone */
	uint64_t bounding, effective, permitted, inheritable;
	int ambient[HUSK_MAX_AMBIENT];
	int nambient;
	int last_cap;
	int nnp;
	struct sock_filter *seccomp; /* the container's compiled filter, or NULL */
	unsigned short seccomp_len;
	unsigned long seccomp_flags; /* seccomp(2) filter flags (linux.seccomp.flags) */
	const char *cwd;
	struct {
		int res;
		struct rlimit lim;
	} rlimits[HUSK_MAX_RLIMITS];
	int nrlimits;
	int preserve;
	int setsid;    /* create: a session of its own, as the Go init */
	int fifo;      /* create: the exec fifo (O_PATH) to open once ready; -1 for an exec */
	char *argv[MAX_ITEMS + 1];
	int argc;
	char *envp[MAX_ITEMS + 1];
	int envc;
};

static int fast_syncfd = -1;
static int fast_ready; /* create: msgReady sent, nobody reads the sync socket any more */

/* Reports the failure as the Go init would: one JSON line on the sync socket, or once the
 * create is over, a line on the container's stderr and exit status 127. */
static void xfail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void xfail(const char *fmt, ...)
{
	char msg[512], line[1200];
	size_t i, o;
	va_list ap;

	va_start(ap, fmt);
	o = hx_vfmt(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (fast_ready) {
		msg[o++] = '\n'; /* the one line runc's init prints there too */
		(void)hx_write(2, msg, o);
		hx_exit(127);
	}
	o = hx_fmt(line, sizeof(line), "{\"type\":\"" HUSK_MSG_ERROR "\",\"message\":\"");
	/* Room left for the longest escape (6), the closing "}\n (3) and the NUL. */
	for (i = 0; msg[i] && o < sizeof(line) - 16; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c == '"' || c == '\\')
			line[o++] = '\\', line[o++] = (char)c;
		else if (c < 0x20)
			o += hx_fmt(line + o, sizeof(line) - o, "\\u%04x", c);
		else
			line[o++] = (char)c;
	}
	o += hx_fmt(line + o, sizeof(line) - o, "\"}\n");
	if (fast_syncfd >= 0)
		(void)hx_write(fast_syncfd, line, o);
	hx_exit(1);
}

static void read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		long r = hx_read(fd, p, n);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			hx_exit(1); /* the parent is gone: it reports, or has aborted, the exec */
		p += r;
		n -= (size_t)r;
	}
}

static uint64_t hex64(const char *s)
{
	return hx_strtoull(s, NULL, 16);
}

static unsigned long dec(const char *s)
{
	return (unsigned long)hx_strtoull(s, NULL, 10);
}

/* Splits the next "key=value" record of a request at *p (up to end) in place; 0 at the end. */
static int next_record(char **p, char *end, char **key, char **val)
{
	char *v;

	if (*p >= end)
		return 0;
	*key = *p;
	*p += hx_strlen(*p) + 1;
	v = hx_strchr(*key, '=');
	if (!v)
		xfail("init: malformed request");
	*v = 0;
	*val = v + 1;
	return 1;
}

static void parse(char *blob, size_t len, struct execfast *x)
{
	char *p = blob, *end = blob + len, *rec, *v;

	x->umask_val = -1;
	x->last_cap = -1;
	x->fifo = -1;
	while (next_record(&p, end, &rec, &v)) {
		if (hx_streq(rec, HUSK_KEY_UID))
			x->uid = (uid_t)dec(v);
		else if (hx_streq(rec, HUSK_KEY_GID))
			x->gid = (gid_t)dec(v);
		else if (hx_streq(rec, HUSK_KEY_GROUP)) {
			if (x->ngroups == MAX_GROUPS)
				xfail("exec: more than %d additional groups", MAX_GROUPS);
			x->groups[x->ngroups++] = (gid_t)dec(v);
		} else if (hx_streq(rec, HUSK_KEY_UMASK))
			x->umask_val = (long)dec(v);
		else if (hx_streq(rec, HUSK_KEY_BOUNDING))
			x->bounding = hex64(v);
		else if (hx_streq(rec, HUSK_KEY_EFFECTIVE))
			x->effective = hex64(v);
		else if (hx_streq(rec, HUSK_KEY_PERMITTED))
			x->permitted = hex64(v);
		else if (hx_streq(rec, HUSK_KEY_INHERITABLE))
			x->inheritable = hex64(v);
		else if (hx_streq(rec, HUSK_KEY_AMBIENT)) {
			if (x->nambient == HUSK_MAX_AMBIENT)
				xfail("exec: too many ambient capabilities");
			x->ambient[x->nambient++] = hx_atoi(v);
		} else if (hx_streq(rec, HUSK_KEY_LAST_CAP))
			x->last_cap = hx_atoi(v);
		else if (hx_streq(rec, HUSK_KEY_NO_NEW_PRIVS))
			x->nnp = hx_atoi(v);
		else if (hx_streq(rec, HUSK_KEY_SECCOMP)) {
			size_t n = hx_strlen(v), i;
			unsigned char *b = (unsigned char *)v; /* decoded in place: byte i from chars 2i, 2i+1 */
			if (n == 0 || n % 16 != 0 || n / 16 > 0xffff)
				xfail("exec: malformed seccomp filter");
			for (i = 0; i < n / 2; i++) {
				int hi = hx_digit(v[2 * i], 16), lo = hx_digit(v[2 * i + 1], 16);
				if (hi < 0 || lo < 0)
					xfail("exec: malformed seccomp filter");
				b[i] = (unsigned char)(hi << 4 | lo);
			}
			x->seccomp = (struct sock_filter *)b;
			x->seccomp_len = (unsigned short)(n / 16);
		} else if (hx_streq(rec, HUSK_KEY_SECCOMP_FLAGS))
			x->seccomp_flags = (unsigned long)hex64(v);
		else if (hx_streq(rec, HUSK_KEY_CWD))
			x->cwd = v;
		else if (hx_streq(rec, HUSK_KEY_PRESERVE))
			x->preserve = hx_atoi(v);
		else if (hx_streq(rec, HUSK_KEY_SETSID))
			x->setsid = hx_atoi(v);
		else if (hx_streq(rec, HUSK_KEY_FIFO))
			x->fifo = hx_atoi(v);
		else if (hx_streq(rec, HUSK_KEY_RLIMIT)) {
			char *s1 = hx_strchr(v, ','), *s2 = s1 ? hx_strchr(s1 + 1, ',') : NULL;
			if (!s2)
				xfail("exec: malformed rlimit");
			if (x->nrlimits == HUSK_MAX_RLIMITS)
				xfail("exec: too many rlimits");
			x->rlimits[x->nrlimits].res = hx_atoi(v);
			x->rlimits[x->nrlimits].lim.rlim_cur = hx_strtoull(s1 + 1, NULL, 10);
			x->rlimits[x->nrlimits].lim.rlim_max = hx_strtoull(s2 + 1, NULL, 10);
			x->nrlimits++;
		} else if (hx_streq(rec, HUSK_KEY_ARG)) {
			if (x->argc == MAX_ITEMS)
				xfail("exec: more than %d arguments", MAX_ITEMS);
			x->argv[x->argc++] = v;
		} else if (hx_streq(rec, HUSK_KEY_ENV)) {
			if (x->envc == MAX_ITEMS)
				xfail("exec: more than %d environment variables", MAX_ITEMS);
			x->envp[x->envc++] = v;
		} else
			xfail("exec: unknown request field %s", rec);
	}
	if (x->argc == 0 || !x->cwd || x->last_cap < 0)
		xfail("exec: incomplete request");
}

static const char *getenv_in(struct execfast *x, const char *key)
{
	size_t k = hx_strlen(key);
	for (int i = 0; i < x->envc; i++)
		if (!hx_strncmp(x->envp[i], key, k) && x->envp[i][k] == '=')
			return x->envp[i] + k + 1;
	return NULL;
}

/* As Go's exec.LookPath: a name with a slash is taken as is, else searched in the process's
 * PATH; a candidate must be a file with an execute bit, and a first match through a relative
 * PATH entry is refused (Go's ErrDot). */
static int executable(const char *path)
{
	struct stat st;
	return hx_stat(path, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111);
}

static const char *lookpath(struct execfast *x, char *buf, size_t size)
{
	const char *name = x->argv[0], *path, *p;

	if (hx_strchr(name, '/'))
		return executable(name) ? name : NULL;
	path = getenv_in(x, "PATH");
	for (p = path; p && *p;) {
		const char *colon = hx_strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : hx_strlen(p);
		if (n == 0)
			hx_fmt(buf, size, "./%s", name);
		else
			hx_fmt(buf, size, "%.*s/%s", (int)n, p, name);
		if (executable(buf))
			return buf[0] == '/' ? buf : NULL;
		p = colon ? colon + 1 : p + n;
	}
	return NULL;
}

/* As libseccomp loads it with husk's attributes: the spec's flags, no_new_privs left to the
 * caller. */
static void load_seccomp(struct execfast *x)
{
	struct sock_fprog prog = {x->seccomp_len, x->seccomp};
	long r = HX_SYS(SYS_seccomp, SECCOMP_SET_MODE_FILTER, x->seccomp_flags, &prog, 0, 0, 0);
	if (r < 0)
		xfail("load seccomp filter: %s", hx_strerror(r));
}

/* reopen_dev_null points the init's stdio that is the host's /dev/null at the container's
 * /dev/null, as runc's init does: the host's is a file of another mount namespace, which CRIU
 * cannot checkpoint ("Can't lookup mount"), and it keeps a host inode open in the container. */
static void reopen_dev_null(void)
{
	struct stat null, st;
	long fd = hx_open("/dev/null", O_RDWR | O_CLOEXEC), r;

	if (fd < 0)
		return; /* a rootfs without /dev/null: nothing to point at */
	if (hx_fstat(fd, &null) < 0 || !S_ISCHR(null.st_mode)) {
		hx_close(fd);
		return;
	}
	for (int i = 0; i < 3; i++)
		if (hx_fstat(i, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev && (r = hx_dup3(fd, i)) < 0)
			xfail("reopen /dev/null as fd %d: %s", i, hx_strerror(r));
	hx_close(fd);
}

/* cwd_inside: the working directory, as the kernel names it, is under the root: a cwd reached
 * through a leaked fd lies outside it and the kernel says "(unreachable)" (CVE-2024-21626). */
static int cwd_inside(void)
{
	char cwd[4096];
	return hx_getcwd(cwd, sizeof(cwd)) > 0 && cwd[0] == '/';
}

static void apply(struct execfast *x)
{
	char pathbuf[4096];
	const char *prog;
	int chdir_again = 0;
	long r;
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	if (x->setsid && (r = hx_setsid()) < 0)
		xfail("setsid: %s", hx_strerror(r));
	if (x->fifo >= 0)
		reopen_dev_null();
	for (int i = 0; i < x->nrlimits; i++)
		if ((r = hx_prlimit(x->rlimits[i].res, &x->rlimits[i].lim)) < 0)
			xfail("setrlimit %d: %s", x->rlimits[i].res, hx_strerror(r));
	/* process.oomScoreAdj: written by the parent before the request is sent. */
	x->envp[x->envc] = NULL; /* complete as sent: HOME and LISTEN_PID are the parent's job */
	x->argv[x->argc] = NULL;

	/* As runc: chdir with husk's own access first, and again as the user only if refused. */
	if ((r = hx_chdir(x->cwd)) < 0) {
		if (r != -EACCES && r != -EPERM)
			xfail("chdir to cwd \"%s\": %s", x->cwd, hx_strerror(r));
		chdir_again = 1;
	}
	if (!chdir_again && !cwd_inside())
		xfail("cwd \"%s\" is outside the container root", x->cwd);
	prog = lookpath(x, pathbuf, sizeof(pathbuf));
	if (!prog)
		xfail("exec: \"%s\": executable file not found in $PATH", x->argv[0]);
	if (x->nnp && (r = hx_prctl(PR_SET_NO_NEW_PRIVS, 1)) < 0)
		xfail("set no_new_privs: %s", hx_strerror(r));
	/* Nothing of husk's may reach the user process (CVE-2024-21626). Before any filter: husk's
	 * own setup must not depend on what the container's profile allows. */
	if ((r = HX_SYS(SYS_close_range, 3 + x->preserve, ~0U, CLOSE_RANGE_CLOEXEC, 0, 0, 0)) < 0)
		xfail("close fds: %s", hx_strerror(r));
	/* Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: do it now. */
	if (x->seccomp && !x->nnp)
		load_seccomp(x);

	for (int c = 0; c <= x->last_cap; c++)
		if (!(x->bounding & (1ULL << c)) && (r = hx_prctl(PR_CAPBSET_DROP, c)) < 0 && r != -EINVAL)
			xfail("drop bounding capability %d: %s", c, hx_strerror(r));
	if ((r = hx_prctl(PR_SET_KEEPCAPS, 1)) < 0)
		xfail("keepcaps: %s", hx_strerror(r));
	if ((r = HX_SYS(SYS_setgroups, x->ngroups, x->groups, 0, 0, 0, 0)) < 0 && !(r == -EPERM && x->ngroups == 0))
		xfail("setgroups: %s", hx_strerror(r));
	if ((r = HX_SYS(SYS_setresgid, x->gid, x->gid, x->gid, 0, 0, 0)) < 0)
		xfail("setgid %u: %s", (unsigned)x->gid, hx_strerror(r));
	if ((r = HX_SYS(SYS_setresuid, x->uid, x->uid, x->uid, 0, 0, 0)) < 0)
		xfail("setuid %u: %s", (unsigned)x->uid, hx_strerror(r));
	if ((r = hx_prctl(PR_SET_KEEPCAPS, 0)) < 0)
		xfail("keepcaps: %s", hx_strerror(r));
	if (x->umask_val >= 0)
		hx_umask(x->umask_val);
	data[0].effective = (uint32_t)x->effective;
	data[0].permitted = (uint32_t)x->permitted;
	data[0].inheritable = (uint32_t)x->inheritable;
	data[1].effective = (uint32_t)(x->effective >> 32);
	data[1].permitted = (uint32_t)(x->permitted >> 32);
	data[1].inheritable = (uint32_t)(x->inheritable >> 32);
	if ((r = HX_SYS(SYS_capset, &hdr, data, 0, 0, 0, 0)) < 0)
		xfail("capset: %s", hx_strerror(r));
	if ((r = hx_prctl3(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0)) < 0 && r != -EINVAL)
		xfail("clear ambient capabilities: %s", hx_strerror(r));
	/* As runc and crun: an ambient capability that cannot be raised (not both permitted and
	 * inheritable) is skipped; husk warned about it before the create. */
	for (int i = 0; i < x->nambient; i++)
		(void)hx_prctl3(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, x->ambient[i]);
	if (chdir_again) {
		if ((r = hx_chdir(x->cwd)) < 0)
			xfail("chdir to cwd \"%s\" as uid %u: %s", x->cwd, (unsigned)x->uid, hx_strerror(r));
		if (!cwd_inside())
			xfail("cwd \"%s\" is outside the container root", x->cwd);
	}
	if (x->fifo >= 0) {
		/* As the Go init: ready, then blocked until `husk start` opens the fifo's other end. */
		static const char ready[] = "{\"type\":\"" HUSK_MSG_READY "\"}\n";
		char fifo[64];
		long ff;

		if (hx_write(fast_syncfd, ready, sizeof(ready) - 1) != (long)(sizeof(ready) - 1))
			hx_exit(1);
		hx_close(fast_syncfd);
		fast_syncfd = -1;
		fast_ready = 1;
		hx_fmt(fifo, sizeof(fifo), "/proc/self/fd/%d", x->fifo);
		ff = hx_open(fifo, O_WRONLY | O_CLOEXEC);
		if (ff < 0)
			xfail("open exec fifo: %s", hx_strerror(ff));
		if ((r = hx_write(ff, "0", 1)) != 1)
			xfail("write exec fifo: %s", hx_strerror(r < 0 ? r : -EIO));
		hx_close(ff);
		hx_close(x->fifo);
	}
	/* With no_new_privs, as late as possible: the filter need not allow husk's own calls. */
	if (x->seccomp && x->nnp)
		load_seccomp(x);
	r = hx_execve(prog, x->argv, x->envp);
	{
		/* In Go's (and so runc's) words: strerror's, first letter lowercase. */
		char err[128];
		hx_fmt(err, sizeof(err), "%s", hx_strerror(r));
		if (err[0] >= 'A' && err[0] <= 'Z')
			err[0] = (char)(err[0] - 'A' + 'a');
		xfail("exec %s: %s", x->argv[0], err);
	}
}

/* One request: a 4-byte little-endian length, then NUL-separated "key=value" records. */
static char *read_request(int syncfd, uint32_t *lenp)
{
	unsigned char hdr[4];
	uint32_t len;
	long blob;

	read_full(syncfd, hdr, sizeof(hdr));
	len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	if (len > (uint32_t)HUSK_MAX_REQUEST)
		xfail("init: bad request size %u", len);
	blob = hx_mmap_anon((size_t)len + 1);
	if (blob < 0)
		xfail("init: out of memory");
	read_full(syncfd, (char *)blob, len);
	((char *)blob)[len] = 0;
	*lenp = len;
	return (char *)blob;
}

/* Called after the namespaces are joined (from the entry point or the constructor) when
 * _HUSK_EXECFAST is set. */
void husk_execfast(int syncfd)
{
	static struct execfast x;
	uint32_t len;
	char *blob;

	fast_syncfd = syncfd;
	if (syncfd < 0)
		hx_exit(1);
	blob = read_request(syncfd, &len);
	if (len == 0)
		xfail("exec: empty request");
	parse(blob, len, &x);
	apply(&x);
}

/* The create fast path's first request (initproto.CreateRequest). */
struct createfast {
	int cgroupns;
	const char *keyring; /* NULL: keep the inherited session keyring */
	int proc;
};

static void parse_create(char *blob, size_t len, struct createfast *c)
{
	char *p = blob, *rec, *v;

	while (next_record(&p, blob + len, &rec, &v)) {
		if (hx_streq(rec, HUSK_KEY_CGROUP_NS))
			c->cgroupns = hx_atoi(v);
		else if (hx_streq(rec, HUSK_KEY_KEYRING))
			c->keyring = v;
		else if (hx_streq(rec, HUSK_KEY_PROC))
			c->proc = hx_atoi(v);
		else
			xfail("init: unknown request field %s", rec);
	}
}

/* The create fast path (createfast.go), when HUSK_ENV_CREATE_FAST is set: this code is the
 * container's whole init. First what only the init can do, in its cgroup already: a cgroup
 * namespace, the session keyring, and a procfs context in its pid namespace for husk to mount.
 * husk then builds the rootfs from a thread in our namespaces and sends the process, which is
 * set up as an exec's, with the exec fifo to wait on before execve. */
void husk_createfast(int syncfd)
{
	static struct execfast x;
	struct createfast c = {0};
	uint32_t len;
	char *blob;
	long procfd = -1, r;
	char line[64];
	size_t n;

	fast_syncfd = syncfd;
	if (syncfd < 0)
		hx_exit(1);
	blob = read_request(syncfd, &len);
	parse_create(blob, len, &c);
	if (c.cgroupns && (r = hx_unshare(CLONE_NEWCGROUP)) < 0)
		xfail("new cgroup namespace: %s", hx_strerror(r));
	if (c.keyring && (r = HX_SYS(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.keyring, 0, 0, 0, 0)) < 0 && r != -ENOSYS)
		xfail("join session keyring: %s", hx_strerror(r));
	if (c.proc) {
		procfd = HX_SYS(SYS_fsopen, "proc", FSOPEN_CLOEXEC, 0, 0, 0, 0);
		if (procfd < 0)
			xfail("open a procfs context: %s", hx_strerror(procfd));
	}
	HX_SYS(SYS_munmap, blob, (size_t)len + 1, 0, 0, 0, 0);
	n = hx_fmt(line, sizeof(line), "{\"type\":\"" HUSK_MSG_NS_READY "\",\"pid\":%d}\n", (int)procfd);
	if (hx_write(syncfd, line, n) != (long)n)
		hx_exit(1);
	blob = read_request(syncfd, &len);
	if (procfd >= 0)
		hx_close(procfd); /* husk has its own copy (pidfd_getfd) by now */
	if (len == 0)
		xfail("init: empty request");
	parse(blob, len, &x);
	apply(&x);
}

#ifdef HUSK_PARSE_TEST
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* For the parsers' test (nsenter/parsetest): what a request was read as, written to fd as
 * records in the request's own form, so the Go side can compare them with what it encoded. */
static void put(int fd, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(int fd, const char *key, const char *fmt, ...)
{
	va_list ap;

	dprintf(fd, "%s=", key);
	va_start(ap, fmt);
	vdprintf(fd, fmt, ap);
	va_end(ap);
	(void)!write(fd, "", 1);
}

static void dump_exec(int fd, struct execfast *x)
{
	int i;

	put(fd, HUSK_KEY_UID, "%u", (unsigned)x->uid);
	put(fd, HUSK_KEY_GID, "%u", (unsigned)x->gid);
	for (i = 0; i < x->ngroups; i++)
		put(fd, HUSK_KEY_GROUP, "%u", (unsigned)x->groups[i]);
	if (x->umask_val >= 0)
		put(fd, HUSK_KEY_UMASK, "%ld", x->umask_val);
	put(fd, HUSK_KEY_BOUNDING, "%llx", (unsigned long long)x->bounding);
	put(fd, HUSK_KEY_EFFECTIVE, "%llx", (unsigned long long)x->effective);
	put(fd, HUSK_KEY_PERMITTED, "%llx", (unsigned long long)x->permitted);
	put(fd, HUSK_KEY_INHERITABLE, "%llx", (unsigned long long)x->inheritable);
	for (i = 0; i < x->nambient; i++)
		put(fd, HUSK_KEY_AMBIENT, "%d", x->ambient[i]);
	put(fd, HUSK_KEY_LAST_CAP, "%d", x->last_cap);
	if (x->nnp)
		put(fd, HUSK_KEY_NO_NEW_PRIVS, "%d", x->nnp);
	if (x->seccomp) {
		const unsigned char *b = (const unsigned char *)x->seccomp;
		dprintf(fd, "%s=", HUSK_KEY_SECCOMP);
		for (i = 0; i < x->seccomp_len * 8; i++)
			dprintf(fd, "%02x", b[i]);
		(void)!write(fd, "", 1);
	}
	if (x->seccomp_flags)
		put(fd, HUSK_KEY_SECCOMP_FLAGS, "%lx", x->seccomp_flags);
	put(fd, HUSK_KEY_CWD, "%s", x->cwd);
	put(fd, HUSK_KEY_PRESERVE, "%d", x->preserve);
	for (i = 0; i < x->nrlimits; i++)
		put(fd, HUSK_KEY_RLIMIT, "%d,%llu,%llu", x->rlimits[i].res, (unsigned long long)x->rlimits[i].lim.rlim_cur,
		    (unsigned long long)x->rlimits[i].lim.rlim_max);
	for (i = 0; i < x->argc; i++)
		put(fd, HUSK_KEY_ARG, "%s", x->argv[i]);
	for (i = 0; i < x->envc; i++)
		put(fd, HUSK_KEY_ENV, "%s", x->envp[i]);
	if (x->setsid)
		put(fd, HUSK_KEY_SETSID, "%d", x->setsid);
	if (x->fifo >= 0)
		put(fd, HUSK_KEY_FIFO, "%d", x->fifo);
}

/* Parses req (an ExecRequest, or a CreateRequest if create) in a child, as the constructor
 * would, and writes what it read to fd; a refusal is the constructor's error line on fd and
 * exit status 1. Returns the child's wait status. */
int husk_parse_check(const char *req, size_t len, int create, int fd)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		static struct execfast x;
		struct createfast c = {0};
		char *blob = malloc(len + 1);

		fast_syncfd = fd;
		memcpy(blob, req, len);
		blob[len] = 0;
		if (create) {
			parse_create(blob, len, &c);
			if (c.cgroupns)
				put(fd, HUSK_KEY_CGROUP_NS, "%d", c.cgroupns);
			if (c.keyring)
				put(fd, HUSK_KEY_KEYRING, "%s", c.keyring);
			if (c.proc)
				put(fd, HUSK_KEY_PROC, "%d", c.proc);
		} else {
			parse(blob, len, &x);
			dump_exec(fd, &x);
		}
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}
#endif
