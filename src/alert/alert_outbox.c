/*
 * alert_outbox.c - the durable outbox: one file per (alert, webhook).
 *
 * Layout:
 *   OUTBOX/<id>.json          pending; <id> is the webhook-id
 *   OUTBOX/.tmp-PID-N-<id>.json.tmp   a write in progress (removed at start-up)
 *   OUTBOX/parked/<id>.json   given up on; logged at LOG_ERR, kept for a human
 *
 * Every write is vms_write_atomic (temp O_EXCL -> fsync -> rename -> fsync dir),
 * so after a crash or kill -9 each entry is either the old or the new
 * version, never a torn one, and a stray temp file is never an entry.
 * Entries are JSON (jansson) holding the exact body that is signed and
 * sent, so every retry carries the same bytes and the same webhook-id.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert/alert_int.h"
#include "core/internal.h" /* vms_write_atomic */

static int outbox_fsync_dir(const char *dir);
static void outbox_copy(char *dst, size_t dstlen, const char *src);

/* The retry steps in units of the base (5 s by default): 5s 30s 2m 10m 30m
 * 1h 2h 4h 8h 8h.  Documented in docs/webhooks.md; keep them in step. */
static const int outbox_retry_steps[] = {1, 6, 24, 120, 360, 720, 1440, 2880, 5760, 5760};
#define OUTBOX_NSTEPS (sizeof(outbox_retry_steps) / sizeof(outbox_retry_steps[0]))

/* Milliseconds since the epoch; wall clock because next-attempt times are
 * persisted and must mean the same thing after a restart. */
int64_t alert_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds dir/name.  The one place paths are made: an overflow is logged
 * and refused rather than silently truncated into another file's name. */
int outbox_path(char *buf, size_t buflen, const char *dir, const char *name)
{
	int n = snprintf(buf, buflen, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= buflen) {
		alert_log(LOG_ERR, "outbox: path too long: %s/%s", dir, name);
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Copies a string that must fit (the caller checked or it is bounded). */
static void outbox_copy(char *dst, size_t dstlen, const char *src)
{
	snprintf(dst, dstlen, "%s", src ? src : "");
}

/* fsync a directory so a rename or unlink in it survives a power cut. */
static int outbox_fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Creates one directory level with mode 0700; an existing one is fine. */
int outbox_mkdir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (errno == EEXIST)
		errno = ENOTDIR;
	return -1;
}

/* Writes dir/name atomically and durably with the one helper
 * (vms_write_atomic: temp, fsync, rename, fsync dir), text plus a newline.
 * On failure errno tells why; ENOSPC and EDQUOT are temporary: the caller
 * keeps the previous state and tries later. */
int outbox_write_atomic(const char *dir, const char *name, const char *text)
{
	char dst[4096];
	char *line;
	int rc, saved;

	if (outbox_path(dst, sizeof(dst), dir, name) == -1)
		return -1;
	if ((line = malloc(strlen(text) + 2)) == NULL)
		return -1;
	snprintf(line, strlen(text) + 2, "%s\n", text);
	rc = vms_write_atomic(dst, line, strlen(line), 0600);
	saved = errno;
	free(line);
	errno = saved;
	return rc;
}

/* Serialises an entry and writes it as dir/<id>.json. */
int outbox_entry_save(const char *dir, const outbox_entry *e)
{
	char name[ALERT_ID_MAX + 8];
	json_t *o;
	char *text;
	int rc;

	snprintf(name, sizeof(name), "%s.json", e->id);
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:s}", "v", 1, "id",
	              e->id, "hook", e->hook, "type", e->type, "spool", e->spool, "item", e->item,
	              "attempts", e->attempts, "created_ms", (json_int_t)e->created_ms,
	              "next_attempt_ms", (json_int_t)e->next_ms, "last_status",
	              (json_int_t)e->last_status, "last_error", e->last_error, "body",
	              e->body ? e->body : "");
	if (o == NULL) {
		errno = EINVAL;
		return -1;
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = outbox_write_atomic(dir, name, text);
	free(text);
	return rc;
}

/* Reads dir/<name> back into e.  Malformed files are reported by name so
 * an operator can look at them; the caller parks or skips them. */
int outbox_entry_load(const char *dir, const char *name, outbox_entry *e, char *err, size_t errlen)
{
	char path[4096];
	json_error_t jerr;
	json_t *o = NULL;
	const char *id, *hook, *type, *spool = "", *item = "", *last_error = "", *body;
	json_int_t attempts, created, next, last_status = 0;

	memset(e, 0, sizeof(*e));
	if (outbox_path(path, sizeof(path), dir, name) == -1) {
		snprintf(err, errlen, "%s/%s: path too long", dir, name);
		return -1;
	}
	if ((o = json_load_file(path, 0, &jerr)) == NULL) {
		snprintf(err, errlen, "%s: not a valid outbox entry: %s (line %d)", path, jerr.text,
		         jerr.line);
		return -1;
	}
	if (json_unpack_ex(o, &jerr, 0, "{s:s, s:s, s:s, s?s, s?s, s:I, s:I, s:I, s?I, s?s, s:s}",
	                   "id", &id, "hook", &hook, "type", &type, "spool", &spool, "item", &item,
	                   "attempts", &attempts, "created_ms", &created, "next_attempt_ms", &next,
	                   "last_status", &last_status, "last_error", &last_error, "body",
	                   &body) == -1) {
		snprintf(err, errlen, "%s: not a valid outbox entry: %s", path, jerr.text);
		goto fail;
	}
	if (strlen(id) >= sizeof(e->id) || strlen(hook) >= sizeof(e->hook) ||
	    strlen(type) >= sizeof(e->type) || attempts < 0 || attempts > 1000) {
		snprintf(err, errlen,
		         "%s: not a valid outbox entry: bad id, hook, type or attempts", path);
		goto fail;
	}
	outbox_copy(e->id, sizeof(e->id), id);
	outbox_copy(e->hook, sizeof(e->hook), hook);
	outbox_copy(e->type, sizeof(e->type), type);
	outbox_copy(e->spool, sizeof(e->spool), spool);
	outbox_copy(e->item, sizeof(e->item), item);
	outbox_copy(e->last_error, sizeof(e->last_error), last_error);
	e->attempts = (int)attempts;
	e->created_ms = created;
	e->next_ms = next;
	e->last_status = (long)last_status;
	if ((e->body = strdup(body)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	return -1;
}

/* Frees what outbox_entry_load allocated. */
void outbox_entry_clear(outbox_entry *e)
{
	free(e->body);
	e->body = NULL;
}

/* Removes ".tmp-*" files: writes that never reached their rename.  The
 * entry they were meant to create or update is either absent (the submit
 * returned -1) or still there in its previous version, so deleting them
 * loses nothing. */
int outbox_clean_temps(const char *dir)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp-", 5) != 0)
			continue;
		if (outbox_path(path, sizeof(path), dir, de->d_name) == 0 && unlink(path) == 0)
			n++;
	}
	closedir(d);
	if (n > 0)
		outbox_fsync_dir(dir);
	return n;
}

/* Moves an entry to parked/: it will not be tried again until a human moves
 * it back into the outbox directory (then it is picked up at next start). */
int outbox_park(const char *dir, const char *id)
{
	char parked[4096], src[4096], dst[4096], name[ALERT_ID_MAX + 8];

	snprintf(name, sizeof(name), "%s.json", id);
	if (outbox_path(parked, sizeof(parked), dir, "parked") == -1 ||
	    outbox_path(src, sizeof(src), dir, name) == -1 ||
	    outbox_path(dst, sizeof(dst), parked, name) == -1)
		return -1;
	if (outbox_mkdir(parked) == -1)
		return -1;
	if (rename(src, dst) == -1)
		return -1;
	if (outbox_fsync_dir(parked) == -1 || outbox_fsync_dir(dir) == -1)
		return -1;
	return 0;
}

/* Deletes a delivered entry; the directory is synced so a restart does not
 * resurrect it (which would only cause a duplicate, never a loss). */
int outbox_remove(const char *dir, const char *id)
{
	char path[4096], name[ALERT_ID_MAX + 8];

	snprintf(name, sizeof(name), "%s.json", id);
	if (outbox_path(path, sizeof(path), dir, name) == -1)
		return -1;
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	return outbox_fsync_dir(dir);
}

/* The retry schedule (see alert_int.h).  Pure, so the unit test pins it. */
int64_t outbox_retry_delay_ms(int failed_attempts, int max_attempts, double base_s, double rnd)
{
	size_t step;
	double ms;

	if (failed_attempts < 1)
		failed_attempts = 1;
	if (failed_attempts >= max_attempts)
		return -1;
	step = (size_t)failed_attempts - 1;
	if (step >= OUTBOX_NSTEPS)
		step = OUTBOX_NSTEPS - 1;
	if (rnd < 0)
		rnd = 0;
	if (rnd >= 1)
		rnd = 0.999999;
	ms = base_s * 1000.0 * outbox_retry_steps[step] * (0.8 + 0.4 * rnd);
	if (ms < 1)
		ms = 1;
	return (int64_t)ms;
}
