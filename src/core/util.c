/*
 * util.c - small helpers used across the core: strings, errors, files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* strdup that tolerates NULL. */
char *vms_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A malloc'd formatted string, or NULL on out-of-memory. */
char *vms_strdupf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		out = NULL;
	va_end(ap);
	return out;
}

/* Format an error message into a caller's buffer (which may be NULL). */
void vms_errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/*
 * Read a whole text file of at most max bytes, NUL-terminated.  Refuses
 * anything that is not a regular file, so a FIFO cannot hang us.
 */
char *vms_read_text(const char *path, size_t max, char *why, size_t whylen)
{
	return vms_read_text_flags(path, max, 0, why, whylen);
}

/* The same with extra open(2) flags: the spool reads with O_NOFOLLOW. */
char *vms_read_text_flags(const char *path, size_t max, int extra_flags, char *why, size_t whylen)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | extra_flags);
	if (fd < 0) {
		vms_errf(why, whylen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		vms_errf(why, whylen, "not a regular file");
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		vms_errf(why, whylen, "too large: %lld bytes (limit %zu)", (long long)st.st_size,
		         max);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		vms_errf(why, whylen, "out of memory");
		goto fail;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* half a rule pack or sidecar must not pass for the whole */
			vms_errf(why, whylen, "read error: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* CPU seconds used by this thread, for the real-time factor. */
double vms_cpu_seconds(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0.0;
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A word read out in phone, account and reference numbers ("oh", "double"
 * too).  The learned layer folds a run of them into one token and the
 * open-line logic takes them for a number read out: one list for both. */
int vms_is_number_word(const char *w)
{
	static const char *const nums[] = {"zero", "oh",   "one",    "two",   "three",
	                                   "four", "five", "six",    "seven", "eight",
	                                   "nine", "ten",  "double", "triple"};
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
		if (strcmp(w, nums[i]) == 0)
			return 1;
	return 0;
}

/* strtok_r over typed text, giving words as the recogniser writes them:
 * lower case, punctuation and brackets dropped.  Lower-cases in place. */
char *vms_next_word(char *s, char **save)
{
	char *t = strtok_r(s, " \t\r\n,.!?;:\"()", save);
	for (char *p = t; p && *p; p++)
		*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
	return t;
}

/* The code point of the UTF-8 sequence at p (NUL-terminated) and its
 * length, or 0 when it is not a well-formed one. */
static size_t vms_utf8_decode(const unsigned char *p, uint32_t *cp)
{
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf && (p[1] & 0xc0) == 0x80) {
		*cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
		return 2;
	}
	if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
		*cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
		return *cp >= 0x800 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
	    (p[3] & 0xc0) == 0x80) {
		*cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
		      (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
		return *cp >= 0x10000 && *cp <= 0x10ffff ? 4 : 0;
	}
	return 0;
}

/*
 * Code points that must not reach a terminal or a reviewer's eyes as they
 * are: controls (C0 but newline and tab, DEL, C1); every format (Cf)
 * character of Unicode 15 - the soft hyphen, the bidirectional marks,
 * embeddings, overrides and isolates that make text read in another order
 * than it is stored, the zero-width ones, the invisible operators
 * U+2061-U+2064, the tag characters U+E0000-U+E007F; the line and
 * paragraph separators; variation selectors; the combining grapheme
 * joiner, Mongolian free variation selectors and the Khmer inherent
 * vowels; the Hangul fillers (issue 18: U+00AD, U+2064, U+3164, U+FE0F,
 * U+2028 and tags made "a.wav" twice in a reviewer's list).
 */
static const struct {
	uint32_t lo, hi;
} vms_unsafe_ranges[] = {
        {0x0000, 0x0008},   {0x000b, 0x001f},   {0x007f, 0x009f},   {0x00ad, 0x00ad},
        {0x034f, 0x034f},   {0x0600, 0x0605},   {0x061c, 0x061c},   {0x06dd, 0x06dd},
        {0x070f, 0x070f},   {0x0890, 0x0891},   {0x08e2, 0x08e2},   {0x115f, 0x1160},
        {0x17b4, 0x17b5},   {0x180b, 0x180f},   {0x200b, 0x200f},   {0x2028, 0x202e},
        {0x2060, 0x206f},   {0x3164, 0x3164},   {0xfe00, 0xfe0f},   {0xfeff, 0xfeff},
        {0xffa0, 0xffa0},   {0xfff9, 0xfffb},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd},
        {0x13430, 0x1343f}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0000, 0xe007f},
        {0xe0100, 0xe01ef},
};

/* See internal.h. */
size_t vms_unsafe_char(const unsigned char *p, uint32_t *cp)
{
	uint32_t c = 0;
	size_t len = vms_utf8_decode(p, &c);

	if (len == 0)
		return 0;
	for (size_t i = 0; i < sizeof vms_unsafe_ranges / sizeof vms_unsafe_ranges[0]; i++)
		if (c >= vms_unsafe_ranges[i].lo && c <= vms_unsafe_ranges[i].hi) {
			if (cp != NULL)
				*cp = c;
			return len;
		}
	return 0;
}

/* Byte length of a character at p that must not be shown raw (see
 * vms_unsafe_ranges), else 0. */
size_t vms_unsafe_char_len(const unsigned char *p)
{
	return vms_unsafe_char(p, NULL);
}

/*
 * Issue 18: a file root writes into the service's directories (`sudo
 * vmscreen release` rewriting a verdict) must stay the service's, or the
 * daemon can no longer rewrite or move it: as root, give the new file the
 * owner and group of its directory (a state directory's group is the one
 * its readers need: released/'s is the delivery group).  0 or -1.
 */
static int vms_write_owner(int fd, const char *dir)
{
	struct stat ds;

	if (geteuid() != 0)
		return 0;
	if (stat(dir, &ds) < 0)
		return -1;
	return ds.st_uid == 0 && ds.st_gid == 0 ? 0 : fchown(fd, ds.st_uid, ds.st_gid);
}

/*
 * The one atomic replace (issue 10: the spool, the outbox and the metrics
 * file each had their own, with different durability).  After OpenSMTPD's
 * queue_fs: a temp file created O_EXCL|O_NOFOLLOW beside the destination
 * (".tmp-PID-N-NAME.tmp": the pid tells a dead writer's leftovers, and the
 * suffix keeps a leftover out of globs such as node_exporter's *.prom),
 * written whole, fsync'd, closed, renamed over the destination, and the
 * directory fsync'd.  Returns 0 only when all of that succeeded: a failed
 * directory fsync is a failure too (the rename may not survive a power
 * cut), reported like any other with errno.  On failure the temp file is
 * gone and the destination untouched (or, after the rename, replaced but
 * perhaps not durable).
 */
int vms_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	static unsigned counter;
	char tmp[VMS_PATH_MAX + 64], dir[VMS_PATH_MAX];
	const char *slash = strrchr(path, '/');
	const unsigned char *p = data;
	int fd = -1, e, n;

	if (slash == NULL || slash[1] == '\0' || (size_t)(slash - path) >= sizeof dir) {
		errno = EINVAL;
		return -1;
	}
	snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	n = snprintf(tmp, sizeof tmp, "%s/.tmp-%d-%u-%.160s.tmp", dir, (int)getpid(),
	             __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED), slash + 1);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)) < 0)
		return -1;
	if (vms_write_owner(fd, dir) < 0)
		goto tempfail;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto tempfail;
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto tempfail;
	if (close(fd) < 0) {
		fd = -1;
		goto tempfail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto tempfail;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	n = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return n;
tempfail:
	e = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}
