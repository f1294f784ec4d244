/*
 * claim.c - the claim protocol: how incoming/NAME, a producer's file,
 * becomes active/ID_NAME, a copy the daemon owns (issue 10: what is
 * screened and what delivery takes are the same bytes, and no producer
 * can change them).  It owns the fs backend's claim operation
 * (spool_fs_claim, in the backend table) and its steps: the lease, the
 * rename out of sight, the hashed copy, the sidecar, the claim record and
 * the undo of a claim that failed; and spool_claim_finish, which repair.c
 * also runs to finish a claim a crash interrupted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/internal.h" /* vms_read_text_flags */
#include "spool/spool_int.h"

#define SPOOL_SIDECAR_MAX 65536 /* bytes; a larger sidecar is refused */

/* What a claim learnt about the producer's file, for the claim record. */
struct spool_claim_info {
	off_t size;
	char sha256[65];
	uid_t uid;
	int sidecar_copied;
	char sidecar_error[320]; /* non-empty: a sidecar was there but refused */
};

/* write(2) all of buf, through short writes and EINTR; 0 or -1. */
static int spool_write_all(int fd, const unsigned char *buf, ssize_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, (size_t)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		n -= w;
	}
	return 0;
}

/*
 * Can the claim go ahead?  A read lease is refused (EAGAIN) while any
 * descriptor, of any user, has the file open for writing, and once held it
 * is broken by the next open for writing, which the copy then sees.  The
 * kernel grants it only to the file's owner or with CAP_LEASE (the shipped
 * unit grants it); without either we cannot tell, and a gate does not
 * guess (issue 10: EACCES used to read as "not busy").
 */
static int spool_claim_lease(const spool *sp, int fd)
{
	static atomic_int no_leases_logged;

	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0)
		return SPOOL_OK;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return SPOOL_BUSY;
	if (errno == EACCES || errno == EPERM)
		return SPOOL_UNSURE;
	/* a filesystem without leases (NFS): the copy still makes what is
	 * screened what is delivered; only settle_ms tells a file is complete */
	if (!atomic_exchange(&no_leases_logged, 1))
		spool_log(LOG_WARNING,
		          "spool %s: this filesystem grants no leases (%s): a file is claimed once "
		          "it has been unchanged for settle_ms, whether or not a writer still "
		          "holds it",
		          sp->name, strerror(errno));
	return SPOOL_LEASELESS;
}

/*
 * Copy the open producer file into a fresh daemon-owned temp file in
 * active/, computing its SHA-256 on the way, and make it durable.  The temp
 * name goes into tmp.  SPOOL_OK, SPOOL_BUSY (the file changed or a writer
 * opened it during the copy), SPOOL_TEMPFAIL or SPOOL_ERR.
 */
static int spool_claim_copy(const spool *sp, int in, const struct stat *before, int leased,
                            const char *file, char *tmp, size_t tmplen, struct spool_claim_info *ci)
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct stat after;
	int out = -1, rc = SPOOL_ERR, e = 0;
	off_t off = 0;
	ssize_t n;

	snprintf(tmp, tmplen, "%s%s", SPOOL_TMP_PREFIX, file);
	char path[SPOOL_PATH_MAX];
	spool_path(sp, SPOOL_ACTIVE, tmp, path, sizeof path);
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		errno = ENOMEM;
		goto fail;
	}
	if ((out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640)) < 0)
		goto fail;
	while ((n = pread(in, buf, sizeof buf, off)) > 0) {
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1 || spool_write_all(out, buf, n) < 0)
			goto fail;
		off += n;
	}
	if (n < 0 || fsync(out) < 0)
		goto fail;
	if (fstat(in, &after) < 0)
		goto fail;
	if (after.st_size != off || after.st_size != before->st_size ||
	    after.st_mtim.tv_sec != before->st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != before->st_mtim.tv_nsec ||
	    (leased && fcntl(in, F_GETLEASE) != F_RDLCK)) {
		rc = SPOOL_BUSY; /* written to, or opened for writing, meanwhile */
		goto out;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (unsigned i = 0; i < mdlen && i < 32; i++)
		snprintf(ci->sha256 + 2 * i, 3, "%02x", md[i]);
	ci->size = off;
	ci->uid = before->st_uid;
	rc = SPOOL_OK;
	goto out;
fail:
	e = errno;
	spool_log(LOG_ERR, "spool %s: claim: cannot copy into %s: %s", sp->name, path, strerror(e));
	rc = spool_errno_class(e) == SPOOL_TEMPFAIL ? SPOOL_TEMPFAIL : SPOOL_ERR;
out:
	EVP_MD_CTX_free(ctx);
	if (out >= 0 && close(out) < 0 && rc == SPOOL_OK)
		rc = SPOOL_TEMPFAIL;
	if (rc != SPOOL_OK)
		unlink(path);
	return rc;
}

/*
 * The producer's sidecar incoming/STEM.json, copied into active/ as the
 * item's ID_STEM.json.  Absent is fine.  Present but not a regular file
 * (a symlink, FIFO or directory), hard-linked, unreadable, too large or
 * swapped while we read it: the item is claimed with the refusal recorded,
 * and the worker holds it unscreenable (issue 10: such a sidecar was
 * ignored, and the recording passed without its hangup mark).
 */
static int spool_claim_sidecar_copy(const spool *sp, const char *sc, const char *scfile,
                                    struct spool_claim_info *ci)
{
	char src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX], why[256];
	struct stat st;
	char *text;

	spool_path(sp, SPOOL_INCOMING, sc, src, sizeof src);
	if (lstat(src, &st) < 0) {
		if (errno == ENOENT)
			return SPOOL_OK;
		snprintf(ci->sidecar_error, sizeof ci->sidecar_error,
		         "incoming/%s cannot be examined: %s", sc, strerror(errno));
		return SPOOL_OK;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink > 1) {
		snprintf(ci->sidecar_error, sizeof ci->sidecar_error,
		         "incoming/%s is %s, not a regular file", sc,
		         S_ISLNK(st.st_mode)    ? "a symlink"
		         : S_ISDIR(st.st_mode)  ? "a directory"
		         : S_ISFIFO(st.st_mode) ? "a FIFO"
		         : S_ISREG(st.st_mode)  ? "hard-linked"
		                                : "a special file");
		return SPOOL_OK;
	}
	/* O_NOFOLLOW and a regular-file check on what was opened: a sidecar
	 * swapped for a symlink after the lstat is refused, never followed */
	if ((text = vms_read_text_flags(src, SPOOL_SIDECAR_MAX, O_NOFOLLOW, why, sizeof why)) ==
	    NULL) {
		snprintf(ci->sidecar_error, sizeof ci->sidecar_error, "incoming/%.200s: %.100s", sc,
		         why);
		return SPOOL_OK;
	}
	spool_path(sp, SPOOL_ACTIVE, scfile, dst, sizeof dst);
	int rc = spool_write_atomic(dst, text, strlen(text));
	free(text);
	if (rc != SPOOL_OK)
		return rc;
	ci->sidecar_copied = 1;
	return SPOOL_OK;
}

/* Write the claim record ID_STEM.claim.json beside the copy in active/. */
static int spool_claim_record(const spool *sp, const spool_item *it, const char *name,
                              const struct spool_claim_info *ci)
{
	char f[sizeof it->file + 16], iso[64];
	struct timespec now;
	json_t *o;
	char *text;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	spool_iso_time(&now, iso, sizeof iso);
	/* mode: the item is placed under at least this (issue 18) */
	o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:s}", "name", name, "claimed_at", iso,
	              "mode", spool_mode_name(sp->mode), "bytes", (json_int_t)ci->size, "sha256",
	              ci->sha256, "producer_uid", (json_int_t)ci->uid, "sidecar",
	              ci->sidecar_error[0] ? "refused"
	              : ci->sidecar_copied ? "copied"
	                                   : "none",
	              "sidecar_error", ci->sidecar_error);
	text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (text == NULL) {
		errno = ENOMEM;
		return SPOOL_TEMPFAIL;
	}
	spool_item_claim_file(it, f, sizeof f);
	rc = spool_fs_put(sp, SPOOL_ACTIVE, f, text, strlen(text));
	free(text);
	return rc;
}

/* Undo a claim that did not complete: the temp copy and companions go, and
 * the producer's file gets its name back. */
static void spool_claim_undo(const spool *sp, const char *hidden, const char *name, const char *tmp,
                             const spool_item *it)
{
	char a[SPOOL_PATH_MAX], b[SPOOL_PATH_MAX];

	if (tmp != NULL && tmp[0] != '\0') {
		spool_path(sp, SPOOL_ACTIVE, tmp, a, sizeof a);
		unlink(a);
	}
	spool_item_sidecar(sp, it, a, sizeof a);
	unlink(a);
	spool_item_claim(sp, it, a, sizeof a);
	unlink(a);
	spool_path(sp, SPOOL_INCOMING, hidden, a, sizeof a);
	spool_path(sp, SPOOL_INCOMING, name, b, sizeof b);
	if (spool_rename_noreplace(a, b) < 0)
		spool_log(LOG_ERR,
		          "spool %s: claim: cannot give incoming/%s its name back: %s "
		          "(the next start does)",
		          sp->name, name, strerror(errno));
}

/*
 * Before copying: a file over the size limit is not copied at all (second
 * round of attacks: a 1 GiB sparse file, 0 bytes on disk, was copied in
 * full a few times a second into a 3 MB spool, filling it for everyone).
 * A copy that does not fit fails with ENOSPC and is retried, like any
 * other write on a full disk.  SPOOL_OK or SPOOL_TOOBIG.
 */
static int spool_claim_room(const spool *sp, const struct stat *st)
{
	if (sp->claim_max_bytes > 0 && st->st_size > sp->claim_max_bytes)
		return SPOOL_TOOBIG;
	return SPOOL_OK;
}

/* Step 1: open incoming/NAME (never following a link), check it is one
 * regular file, take the lease.  An fd, or a negative SPOOL_ code; *leased
 * says whether the filesystem granted a lease. */
static int spool_claim_open(const spool *sp, const char *name, struct stat *st, int *leased)
{
	char src[SPOOL_PATH_MAX];
	const char *why;
	int fd, rc;

	if (!spool_name_ok(name, &why) || spool_name_is_json(name)) {
		spool_log(LOG_WARNING, "spool %s: incoming/%s: refused: %s", sp->name, name,
		          why ? why : "a sidecar is not a recording");
		return SPOOL_ERR;
	}
	spool_path(sp, SPOOL_INCOMING, name, src, sizeof src);
	fd = open(src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == EWOULDBLOCK)
			return SPOOL_BUSY; /* another holds a write lease */
		rc = spool_errno_class(errno);
		if (rc == SPOOL_ERR)
			spool_log(LOG_WARNING, "spool %s: incoming/%s: cannot open: %s", sp->name,
			          name, strerror(errno));
		return rc == SPOOL_TEMPFAIL ? rc : rc == SPOOL_GONE ? SPOOL_GONE : SPOOL_ERR;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_nlink > 1) {
		spool_log(LOG_WARNING,
		          "spool %s: incoming/%s: not a single regular file (a hard link or "
		          "special file): skipped",
		          sp->name, name);
		close(fd);
		return SPOOL_ERR;
	}
	if ((rc = spool_claim_room(sp, st)) != SPOOL_OK ||
	    ((rc = spool_claim_lease(sp, fd)) != SPOOL_OK && rc != SPOOL_LEASELESS)) {
		close(fd);
		return rc;
	}
	*leased = rc == SPOOL_OK;
	return fd;
}

/* Step 2: a fresh item id, and incoming/NAME renamed out of every scan's
 * sight to .claim-ID_NAME, checked to be the file that was opened (st).
 * Fills it and hidden; SPOOL_OK or an error code. */
static int spool_claim_hide(const spool *sp, const char *name, const struct stat *st,
                            spool_item *it, char *hidden, size_t hlen)
{
	char src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX];
	struct stat hs;

	spool_path(sp, SPOOL_INCOMING, name, src, sizeof src);
	for (int tries = 0; tries < 8; tries++) {
		memset(it, 0, sizeof *it);
		spool_id_new(it->id);
		snprintf(it->file, sizeof it->file, "%s_%s", it->id, name);
		snprintf(it->name, sizeof it->name, "%s", name);
		it->state = SPOOL_ACTIVE;
		snprintf(hidden, hlen, SPOOL_CLAIM_PREFIX "%s", it->file);
		spool_path(sp, SPOOL_INCOMING, hidden, dst, sizeof dst);
		if (spool_rename_noreplace(src, dst) == 0) {
			/* the name may have been swapped between open and rename */
			if (lstat(dst, &hs) == 0 && hs.st_ino == st->st_ino &&
			    hs.st_dev == st->st_dev)
				return SPOOL_OK;
			spool_log(LOG_WARNING,
			          "spool %s: incoming/%s: replaced while being claimed: skipped",
			          sp->name, name);
			spool_claim_undo(sp, hidden, name, NULL, it);
			return SPOOL_BUSY;
		}
		if (errno != EEXIST) {
			int rc = spool_errno_class(errno);
			return rc == SPOOL_EXISTS ? SPOOL_ERR : rc;
		}
	}
	return SPOOL_TEMPFAIL;
}

/* Steps 3 and 4: the copy, the sidecar, the claim record, the copy's final
 * name.  SPOOL_OK or an error code (the caller undoes). */
static int spool_claim_place(const spool *sp, int fd, const struct stat *st, int leased,
                             const spool_item *it, char *tmp, size_t tmplen,
                             struct spool_claim_info *ci)
{
	char stem[SPOOL_FILE_MAX + 1], sc[SPOOL_FILE_MAX + 8], scfile[sizeof it->file + 8];
	char a[SPOOL_PATH_MAX], b[SPOOL_PATH_MAX];
	int rc = spool_claim_copy(sp, fd, st, leased, it->file, tmp, tmplen, ci);

	if (rc != SPOOL_OK)
		return rc;
	spool_name_stem(it->name, stem, sizeof stem);
	snprintf(sc, sizeof sc, "%s.json", stem);
	spool_companion_name(it, ".json", scfile, sizeof scfile);
	if ((rc = spool_claim_sidecar_copy(sp, sc, scfile, ci)) != SPOOL_OK ||
	    (rc = spool_claim_record(sp, it, it->name, ci)) != SPOOL_OK)
		return rc;
	spool_path(sp, SPOOL_ACTIVE, tmp, a, sizeof a);
	spool_path(sp, SPOOL_ACTIVE, it->file, b, sizeof b);
	if (spool_rename_noreplace(a, b) < 0)
		return spool_errno_class(errno) == SPOOL_TEMPFAIL ? SPOOL_TEMPFAIL : SPOOL_ERR;
	spool_path(sp, SPOOL_ACTIVE, NULL, a, sizeof a);
	spool_fsync_dir(a);
	return SPOOL_OK;
}

/*
 * Claim incoming/NAME (issue 10: the daemon owns what it screens and
 * releases).  Steps, each durable before the next:
 *   1. open it (O_NOFOLLOW), check it is one regular file, take a read
 *      lease (no writer, of any user, may hold it open);
 *   2. rename it to incoming/.claim-ID_NAME, out of every scan's sight;
 *   3. copy its bytes into a daemon-owned 0640 temp file in active/,
 *      hashing them, and check the source did not change meanwhile;
 *   4. copy the sidecar, write the claim record (size, SHA-256, sidecar
 *      status), then rename the copy to active/ID_NAME (audio last);
 *   5. remove the producer's sidecar and file.
 * A crash anywhere is finished or undone by spool_repair() at the next
 * start (.claim-ID_NAME: the item exists, or it gets its name back).
 */
int spool_fs_claim(const spool *sp, const char *name, spool_item *out)
{
	char hidden[sizeof out->file + 16], tmp[sizeof out->file + 16] = "";
	struct spool_claim_info ci;
	spool_item it;
	struct stat st;
	int fd, rc, leased = 0;

	if ((fd = spool_claim_open(sp, name, &st, &leased)) < 0)
		return fd;
	memset(&ci, 0, sizeof ci);
	if ((rc = spool_claim_hide(sp, name, &st, &it, hidden, sizeof hidden)) == SPOOL_OK &&
	    (rc = spool_claim_place(sp, fd, &st, leased, &it, tmp, sizeof tmp, &ci)) != SPOOL_OK)
		spool_claim_undo(sp, hidden, name, tmp, &it);
	if (rc == SPOOL_OK)
		spool_claim_finish(sp, &it, ci.sidecar_copied);
	close(fd); /* drops the lease */
	if (rc != SPOOL_OK)
		return rc;
	return spool_item_fill(sp, SPOOL_ACTIVE, it.file, out) == 0 ? SPOOL_OK : SPOOL_GONE;
}

/* Step 5 of a claim, also run by repair: the producer's sidecar (when it
 * was copied) and then the hidden original go from incoming/. */
void spool_claim_finish(const spool *sp, const spool_item *it, int sidecar_copied)
{
	char stem[SPOOL_FILE_MAX + 1], f[SPOOL_FILE_MAX + 16], p[SPOOL_PATH_MAX];

	if (sidecar_copied) {
		spool_name_stem(it->name, stem, sizeof stem);
		snprintf(f, sizeof f, "%s.json", stem);
		spool_path(sp, SPOOL_INCOMING, f, p, sizeof p);
		/* a sidecar left behind would be the next same-named recording's */
		if (unlink(p) < 0 && errno != ENOENT) {
			/* keep .claim-ID_NAME: the next start's repair finishes again */
			spool_log(LOG_ERR,
			          "spool %s: cannot remove incoming/%s after claiming %s: %s (the "
			          "next recording named %s would take it; the next start retries)",
			          sp->name, f, it->file, strerror(errno), it->name);
			return;
		}
	}
	char hidden[sizeof it->file + 16];
	snprintf(hidden, sizeof hidden, SPOOL_CLAIM_PREFIX "%s", it->file);
	spool_path(sp, SPOOL_INCOMING, hidden, p, sizeof p);
	unlink(p);
	spool_path(sp, SPOOL_INCOMING, NULL, p, sizeof p);
	spool_fsync_dir(p);
}
