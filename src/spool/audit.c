/*
 * audit.c - the audit log: JSON Lines, append-only, fsynced, each line
 * chained to the one before by its SHA-256 and numbered (spool_audit_append,
 * spool_sha256_hex).  Where the log is comes from spool_conf.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "spool/spool.h"

#define SPOOL_AUDIT_CHUNK 65536
#define SPOOL_AUDIT_SEQ_PEEK 128 /* {"prev":"HEX","seq":N, fits */
#define SPOOL_AUDIT_SEQ_MAX 1000000000000000LL
static const char spool_audit_zero[SPOOL_SHA256_HEX] =
        "0000000000000000000000000000000000000000000000000000000000000000";

static int spool_audit_write_all(int fd, const char *buf, size_t len);

/* write(2) until done; a short write to a regular file only happens when
 * the disk is full, and then we report the error. */
static int spool_audit_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A SHA-256 digest as lowercase hex. */
static void spool_audit_hexify(const unsigned char *md, char hex[SPOOL_SHA256_HEX])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
}

/* See spool.h: the hash the audit chain uses, for the verifier too. */
int spool_sha256_hex(const void *data, size_t len, char hex[SPOOL_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		errno = ENOMEM;
		return -1;
	}
	spool_audit_hexify(md, hex);
	return 0;
}

/* SHA-256 of the bytes [from, to) of fd, read forwards in chunks (a line
 * can be any length).  0 or -1. */
static int spool_audit_hash_range(int fd, off_t from, off_t to, char hex[SPOOL_SHA256_HEX])
{
	unsigned char buf[SPOOL_AUDIT_CHUNK], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		errno = ENOMEM;
		goto out;
	}
	while (from < to) {
		size_t want = to - from < (off_t)sizeof buf ? (size_t)(to - from) : sizeof buf;
		ssize_t n = pread(fd, buf, want, from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* shorter than fstat said: we hold the lock */
			goto out;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
		from += n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
		spool_audit_hexify(md, hex);
		rc = 0;
	}
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Offset of the last newline in [0, end) of fd, or -1 when there is none:
 * read backwards from end in chunks.  0 or -1 on a read error. */
static int spool_audit_rfind_nl(int fd, off_t end, off_t *nl)
{
	char buf[SPOOL_AUDIT_CHUNK];

	*nl = -1;
	while (end > 0) {
		size_t want = end < (off_t)sizeof buf ? (size_t)end : sizeof buf;
		ssize_t n = pread(fd, buf, want, end - (off_t)want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)want) {
			if (n >= 0)
				errno = EIO;
			return -1;
		}
		const char *p = memrchr(buf, '\n', want);
		if (p != NULL) {
			*nl = end - (off_t)want + (p - buf);
			return 0;
		}
		end -= (off_t)want;
	}
	return 0;
}

/*
 * The seq of the line that starts at off in fd: the writer puts it right
 * after prev ({"prev":"HEX","seq":N,...}), so the first bytes tell.  0 for
 * a line written before lines were numbered (issue 18), -1 on a read error.
 */
static long long spool_audit_seq_at(int fd, off_t off, off_t end)
{
	static const char head[] = "{\"prev\":\"", mid[] = "\",\"seq\":";
	char buf[SPOOL_AUDIT_SEQ_PEEK + 1], *p;
	size_t want = end - off < SPOOL_AUDIT_SEQ_PEEK ? (size_t)(end - off) : SPOOL_AUDIT_SEQ_PEEK;
	ssize_t n = pread(fd, buf, want, off);
	long long seq = 0;

	if (n < 0)
		return -1;
	buf[n] = '\0';
	p = buf + sizeof head - 1 + 64;
	if ((size_t)n < sizeof head - 1 + 64 + sizeof mid || memcmp(buf, head, sizeof head - 1) ||
	    memcmp(p, mid, sizeof mid - 1))
		return 0;
	for (p += sizeof mid - 1; *p >= '0' && *p <= '9' && seq < SPOOL_AUDIT_SEQ_MAX; p++)
		seq = seq * 10 + (*p - '0');
	return *p == ',' || *p == '}' ? seq : 0;
}

/*
 * The hash and seq of the last whole line (its bytes without the newline)
 * of the open file fd of size bytes: 1, hex and *seq (0: an unnumbered
 * line), 0 when the file holds no whole line, -1 on a read error.  *torn:
 * the file ends in a fragment (no final newline), which is skipped.
 */
static int spool_audit_tail(int fd, off_t size, char hex[SPOOL_SHA256_HEX], long long *seq,
                            int *torn)
{
	off_t end = size, nl;
	char last;

	*torn = 0;
	*seq = 0;
	if (size == 0)
		return 0;
	if (pread(fd, &last, 1, size - 1) != 1)
		return -1;
	if (last != '\n') {
		*torn = 1;
		if (spool_audit_rfind_nl(fd, size, &nl) < 0)
			return -1;
		if (nl < 0)
			return 0;
		end = nl + 1;
	}
	/* end is just past the newline that ends the last whole line */
	if (spool_audit_rfind_nl(fd, end - 1, &nl) < 0)
		return -1;
	if ((*seq = spool_audit_seq_at(fd, nl + 1, end - 1)) < 0)
		return -1;
	return spool_audit_hash_range(fd, nl + 1, end - 1, hex) < 0 ? -1 : 1;
}

/*
 * Where the chain continues from when the log holds no whole line: the
 * last line of the rotated predecessor AUDIT_PATH.1 (logrotate's default
 * rename, or copytruncate), read under the writers' lock the caller holds
 * (a writer that opened the log before the rotation finishes first): its
 * hash and seq (the new file's first line carries both on); 64 zeros and
 * seq 0 when there is none.  A
 * predecessor that cannot be read is logged and the chain starts afresh
 * (verify will show the break) rather than stopping every audited action.
 */
static void spool_audit_rotated(const char *audit_path, char hex[SPOOL_SHA256_HEX], long long *seq)
{
	char rot[SPOOL_PATH_MAX + 3];
	struct stat st;
	int fd, torn, r = -1;

	memcpy(hex, spool_audit_zero, SPOOL_SHA256_HEX);
	snprintf(rot, sizeof rot, "%s.1", audit_path);
	fd = open(rot, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			spool_log(LOG_WARNING,
			          "audit log %s: cannot read %s to continue its chain: %s",
			          audit_path, rot, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0)
		r = -1;
	else if (!S_ISREG(st.st_mode))
		errno = EINVAL;
	else
		r = spool_audit_tail(fd, st.st_size, hex, seq, &torn);
	if (r <= 0)
		*seq = 0;
	if (r < 0) {
		spool_log(LOG_WARNING, "audit log %s: cannot read %s to continue its chain: %s",
		          audit_path, rot, strerror(errno));
		memcpy(hex, spool_audit_zero, SPOOL_SHA256_HEX);
	}
	close(fd);
}

/*
 * Open the log for appending (and reading its last line) under its
 * private lock (lock.c, issue 18: a flock on the log itself could be held
 * by anyone who could read the log, and froze every decision).  Every
 * writer holds the lock from before it opens the file until its line is
 * down, so the last line is well defined; logrotate renames without it,
 * and a line written to the renamed file just then is still chained (the
 * new file's first line reads it from AUDIT_PATH.1).  A log root creates
 * (`sudo vmscreen release` on a new log) goes to its directory's owner.
 * The fd and its fstat (and the lock in *lk), or -1.
 */
static int spool_audit_open(const char *audit_path, struct stat *st, int *lk)
{
	char dir[SPOOL_PATH_MAX];
	struct stat ds;
	int fd, e;

	if ((*lk = spool_audit_lock(audit_path, 0, 1)) < 0)
		return -1;
	fd = open(audit_path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd >= 0 && fstat(fd, st) == 0) {
		snprintf(dir, sizeof dir, "%s", audit_path);
		if (st->st_size == 0 && stat(dirname(dir), &ds) == 0)
			spool_own_like(fd, &ds);
		return fd;
	}
	e = errno;
	if (fd >= 0)
		close(fd);
	spool_unlock(*lk);
	*lk = -1;
	errno = e;
	return -1;
}

/*
 * The line as written: "prev":"HEX","seq":N spliced in after the caller's
 * leading '{' (no comma for an empty object), a newline at the end, and
 * one in front when the file ends in a fragment, so that the fragment
 * stays a line of its own for verify to report instead of swallowing this
 * one.  seq numbers every line from 1 across rotations (issue 18: a chain
 * alone cannot show that its oldest lines were cut; a first line whose seq
 * is not 1 can); after unnumbered lines of an older version it starts at 1.
 */
static char *spool_audit_compose(const char *line, const char *prev, long long seq, int torn,
                                 size_t *len)
{
	const char *rest = line + 1;
	int empty = rest[strspn(rest, " \t\r")] == '}';
	char *buf = NULL;
	int n = asprintf(&buf, "%s{\"prev\":\"%s\",\"seq\":%lld%s%s\n", torn ? "\n" : "", prev, seq,
	                 empty ? "" : ",", rest);

	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return buf;
}

/*
 * Append one line, chained to the one before it (tamper evidence: see
 * spool.h).  O_APPEND makes each write land at the end; the lock keeps
 * lines from different processes (daemon, reviewers) whole even if a
 * write is split, and makes "the last line" well defined while we hash it;
 * fsync makes the line durable before the caller goes on.  Cost per
 * append, under the lock: one backward scan from the end to the start of
 * the last line and one forward read of it to hash it and read its seq
 * (from the page cache, as a rule); an empty log reads AUDIT_PATH.1's last
 * line instead.
 */
int spool_audit_append(const char *audit_path, const char *line)
{
	char prev[SPOOL_SHA256_HEX], *buf = NULL;
	long long seq = 0;
	struct stat st;
	size_t len = 0;
	int fd = -1, lk = -1, rc = -1, torn = 0, r;

	if (line[0] != '{' || strchr(line, '\n') != NULL) {
		errno = EINVAL; /* one compact JSON object, as jansson writes it */
		goto fail;
	}
	if ((fd = spool_audit_open(audit_path, &st, &lk)) < 0)
		goto fail;
	if ((r = spool_audit_tail(fd, st.st_size, prev, &seq, &torn)) < 0)
		goto fail;
	if (r == 0)
		spool_audit_rotated(audit_path, prev, &seq);
	if (torn)
		spool_log(LOG_WARNING,
		          "audit log %s: ends in a partial line (a write cut short); the new line "
		          "chains to the last whole one and `vmscreen audit verify` will report it",
		          audit_path);
	if ((buf = spool_audit_compose(line, prev, seq + 1, torn, &len)) == NULL)
		goto fail;
	/* issue 6: on a full disk write(2) can land part of the line and then
	 * fail; the next append would glue a whole line onto that fragment and
	 * leave one line that is not JSON.  Cut a failed write back to where
	 * the line started (every writer holds the lock). */
	if (spool_audit_write_all(fd, buf, len) < 0) {
		int e = errno;
		if (ftruncate(fd, st.st_size) < 0)
			spool_log(LOG_ERR, "audit log %s: cannot remove a partial line: %s",
			          audit_path, strerror(errno));
		errno = e;
		goto fail;
	}
	if (fsync(fd) < 0)
		goto fail;
	rc = 0;
fail:
	if (rc < 0)
		spool_log(LOG_ERR, "audit log %s: %s", audit_path, strerror(errno));
	if (fd >= 0)
		close(fd);
	spool_unlock(lk);
	free(buf);
	return rc;
}
