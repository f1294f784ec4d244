/*
 * util.c - small helpers used across the core: strings, errors, files.
 */
#include <errno.h>
#include <fcntl.h>
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

/*
 * Byte length of a character at p that must not reach a terminal or a
 * reviewer's eyes as is, else 0: C0 controls but newline and tab, DEL, C1
 * controls (U+0080-U+009F), the bidirectional marks, embeddings,
 * overrides and isolates (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069) that make text read in another order than it is stored,
 * and the invisible ones (U+200B-U+200D, U+2060, U+FEFF) that make two
 * names look alike.
 */
size_t vms_unsafe_char_len(const unsigned char *p)
{
	if ((p[0] < 0x20 && p[0] != '\n' && p[0] != '\t') || p[0] == 0x7f)
		return 1;
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	if (p[0] == 0xd8 && p[1] == 0x9c)
		return 2; /* U+061C */
	if (p[0] == 0xe2 && p[1] == 0x80 &&
	    ((p[2] >= 0x8b && p[2] <= 0x8f) || (p[2] >= 0xaa && p[2] <= 0xae)))
		return 3; /* U+200B-U+200F (zero-width and marks), U+202A-E */
	if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0xa0)
		return 3; /* U+2060 word joiner */
	if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		return 3; /* U+FEFF zero-width no-break space */
	if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
		return 3; /* U+2066-9 */
	return 0;
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
