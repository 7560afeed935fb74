/* hx: the little of a C library that husk-init's setup in C (nsenter.c, execfast.c) needs,
 * without one. That code runs at the binary's entry point (early.c), before the static C
 * library has started: a start that costs a static binary ~0.25 ms of CPU on a VM (dozens of
 * CPUID instructions to size the caches, each a trap to the hypervisor), and the fast paths
 * exec the container's process before they would need any of it. So nothing here may use the
 * C library: no errno (thread-local storage is not set up yet), no string functions (they are
 * resolved by CPU at the C library's start), no stdio, no malloc. System calls return the
 * negated errno. The same code serves the constructor (nsenter.go) when the entry point is the
 * C library's. */
#ifndef HUSK_HX_H
#define HUSK_HX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "errtext.h"

/* gcc turns some byte loops into memset and memcpy calls, which are the C library's: no. */
#pragma GCC optimize("no-tree-loop-distribute-patterns")

static inline long hx_syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
#else
#error "hx.h: no system call convention for this architecture"
#endif
}

#define HX_SYS(n, a, b, c, d, e, f) hx_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define hx_read(fd, buf, n) HX_SYS(SYS_read, fd, buf, n, 0, 0, 0)
#define hx_write(fd, buf, n) HX_SYS(SYS_write, fd, buf, n, 0, 0, 0)
#define hx_close(fd) HX_SYS(SYS_close, fd, 0, 0, 0, 0, 0)
#define hx_open(path, flags) HX_SYS(SYS_openat, AT_FDCWD, path, flags, 0, 0, 0)
#define hx_stat(path, st) HX_SYS(SYS_newfstatat, AT_FDCWD, path, st, 0, 0, 0)
#define hx_fstat(fd, st) HX_SYS(SYS_fstat, fd, st, 0, 0, 0, 0)
#define hx_dup3(fd, to) HX_SYS(SYS_dup3, fd, to, 0, 0, 0, 0)
#define hx_setns(fd) HX_SYS(SYS_setns, fd, 0, 0, 0, 0, 0)
#define hx_ioctl(fd, req) HX_SYS(SYS_ioctl, fd, req, 0, 0, 0, 0)
#define hx_prctl(op, a) HX_SYS(SYS_prctl, op, a, 0, 0, 0, 0)
#define hx_prctl3(op, a, b) HX_SYS(SYS_prctl, op, a, b, 0, 0, 0)
#define hx_chdir(path) HX_SYS(SYS_chdir, path, 0, 0, 0, 0, 0)
#define hx_getcwd(buf, n) HX_SYS(SYS_getcwd, buf, n, 0, 0, 0, 0)
#define hx_prlimit(res, lim) HX_SYS(SYS_prlimit64, 0, res, lim, 0, 0, 0)
#define hx_setsid() HX_SYS(SYS_setsid, 0, 0, 0, 0, 0, 0)
#define hx_umask(m) HX_SYS(SYS_umask, m, 0, 0, 0, 0, 0)
#define hx_unshare(flags) HX_SYS(SYS_unshare, flags, 0, 0, 0, 0, 0)
#define hx_execve(path, argv, envp) HX_SYS(SYS_execve, path, argv, envp, 0, 0, 0)
#define hx_mmap_anon(n) HX_SYS(SYS_mmap, 0, n, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0)

#ifndef AT_FDCWD
#define AT_FDCWD -100
#endif

static inline __attribute__((noreturn)) void hx_exit(int code)
{
	for (;;)
		HX_SYS(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

static inline size_t hx_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static inline int hx_strncmp(const char *a, const char *b, size_t n)
{
	for (; n > 0; a++, b++, n--) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

static inline int hx_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static inline char *hx_strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

/* hx_digit is c's value as a digit of base (10 or 16), or -1. */
static inline int hx_digit(char c, int base)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (base == 16 && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (base == 16 && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* hx_strtoull parses an unsigned number in base 10 or 16 (no sign, no prefix), as strtoull
 * would: up to the first character that is not a digit, *end pointing there, and a value past
 * 64 bits saturated. */
static inline unsigned long long hx_strtoull(const char *s, const char **end, int base)
{
	unsigned long long v = 0, max = ~0ULL;
	for (int d; (d = hx_digit(*s, base)) >= 0; s++)
		v = v > (max - (unsigned)d) / (unsigned)base ? max : v * (unsigned)base + (unsigned)d;
	if (end)
		*end = s;
	return v;
}

/* hx_atoi: a decimal int with an optional sign, as atoi. */
static inline int hx_atoi(const char *s)
{
	int neg = *s == '-';
	if (*s == '-' || *s == '+')
		s++;
	long long v = (long long)hx_strtoull(s, NULL, 10);
	return (int)(neg ? -v : v);
}

static inline const char *hx_strerror(long err)
{
	if (err < 0)
		err = -err;
	if (err < (long)(sizeof(hx_errtext) / sizeof(hx_errtext[0])) && hx_errtext[err])
		return hx_errtext[err];
	return "Unknown error";
}

/* hx_vfmt formats into buf (always NUL-terminated) what snprintf would for the conversions this
 * code uses: %s %.*s %c %d %i %u %x with the l and ll sizes, a zero-padded width (%02x), and %%.
 * It returns the length written. */
static inline size_t hx_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t o = 0;
	/* ch is evaluated once, written or not: digits[--n] and va_arg must run either way. */
#define HX_PUT(ch)                          \
	do {                                \
		char hx_ch = (char)(ch);    \
		if (o + 1 < size)           \
			buf[o++] = hx_ch;   \
	} while (0)
	if (size == 0)
		return 0;
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			HX_PUT(*fmt);
			continue;
		}
		fmt++;
		int zero = 0, width = 0, prec = -1, longs = 0;
		if (*fmt == '0')
			zero = 1, fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (fmt[0] == '.' && fmt[1] == '*')
			prec = va_arg(ap, int), fmt += 2;
		while (*fmt == 'l')
			longs++, fmt++;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			for (int i = 0; s[i] && (prec < 0 || i < prec); i++)
				HX_PUT(s[i]);
			break;
		}
		case 'c':
			HX_PUT(va_arg(ap, int));
			break;
		case 'd':
		case 'i':
		case 'u':
		case 'x': {
			unsigned long long v;
			int neg = 0;
			if (*fmt == 'd' || *fmt == 'i') {
				long long sv = longs >= 2 ? va_arg(ap, long long) : longs == 1 ? va_arg(ap, long) : va_arg(ap, int);
				neg = sv < 0;
				v = neg ? (unsigned long long)-(sv + 1) + 1 : (unsigned long long)sv;
			} else
				v = longs >= 2 ? va_arg(ap, unsigned long long) : longs == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			unsigned base = *fmt == 'x' ? 16 : 10;
			char digits[24];
			int n = 0;
			do {
				digits[n++] = "0123456789abcdef"[v % base];
				v /= base;
			} while (v);
			if (neg)
				HX_PUT('-');
			for (int i = n; i < width; i++)
				HX_PUT(zero ? '0' : ' ');
			while (n > 0)
				HX_PUT(digits[--n]);
			break;
		}
		case '%':
			HX_PUT('%');
			break;
		default: /* not one of ours: shown as written */
			HX_PUT('%');
			HX_PUT(*fmt);
			if (!*fmt)
				fmt--;
		}
	}
#undef HX_PUT
	buf[o] = 0;
	return o;
}

static inline size_t hx_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline size_t hx_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = hx_vfmt(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* hx_getenv finds key in envp, a NULL-terminated "key=value" list. */
static inline const char *hx_getenv(char **envp, const char *key)
{
	size_t k = hx_strlen(key);
	for (; envp && *envp; envp++)
		if (!hx_strncmp(*envp, key, k) && (*envp)[k] == '=')
			return *envp + k + 1;
	return NULL;
}

#endif
