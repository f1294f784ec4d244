/*
 * retention.c - how long delivered and rejected recordings stay (issue
 * 12): a spool with `keep_days` loses the items of released/ and
 * rejected/ that have not changed for that long.  hold/ is never touched:
 * a held item waits for a person however old it is.  Each removal is
 * audited before it happens, so the log never shows an item that simply
 * vanished.  An item the caller says to keep (an alert that links to it
 * still waits in the outbox: issue 18) stays until it is not.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "spool/spool.h"

#define RETENTION_VERDICT_MAX (64L * 1024 * 1024)

struct retention_walk {
	const char *audit_log;
	time_t now;
	int removed;
	int kept; /* due, but kept for the caller */
	int failed;
	spool_keep_fn keep;
	void *keep_arg;
	spool_item *due; /* collected first: removing while walking a directory is not safe */
	size_t n_due, cap_due;
};

/* An ISO 8601 UTC time ("2026-12-01T12:04:20.970Z") as time_t, or -1. */
static time_t retention_parse_time(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return -1;
	return timegm(&tm);
}

/* When the item last changed: its last review decision, else its
 * screening, else its audio file's mtime. */
static time_t retention_changed_at(const spool *sp, const spool_item *it)
{
	char path[SPOOL_PATH_MAX], err[SPOOL_PATH_MAX + 128];
	json_t *v = NULL, *hist;
	time_t t = -1;
	struct stat st;

	if (it->has_verdict) {
		spool_item_verdict(sp, it, path, sizeof path);
		char *text = spool_read_file(path, RETENTION_VERDICT_MAX, err, sizeof err);
		v = text ? json_loads(text, 0, NULL) : NULL;
		free(text);
	}
	hist = json_object_get(v, "review");
	t = retention_parse_time(json_string_value(
	        json_object_get(json_array_get(hist, json_array_size(hist) - 1), "at")));
	if (t < 0)
		t = retention_parse_time(json_string_value(json_object_get(v, "screened_at")));
	json_decref(v);
	spool_item_path(sp, it, path, sizeof path);
	if (t < 0 && lstat(path, &st) == 0)
		t = st.st_mtime;
	return t;
}

/* spool_walk callback: note the items past their time. */
static int retention_due_cb(const spool *sp, const spool_item *it, void *arg)
{
	struct retention_walk *w = arg;
	time_t t = retention_changed_at(sp, it);

	if (t < 0 || (double)(w->now - t) < sp->keep_days * 86400.0)
		return 0;
	if (w->n_due == w->cap_due) {
		size_t cap = w->cap_due ? 2 * w->cap_due : 64;
		spool_item *n = realloc(w->due, cap * sizeof *n);
		if (n == NULL)
			return -1;
		w->due = n;
		w->cap_due = cap;
	}
	w->due[w->n_due++] = *it;
	return 0;
}

/* Remove one file of an item; 0, or -1 (logged) unless it is already gone. */
static int retention_unlink(const char *path)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	spool_log(LOG_ERR, "retention: cannot remove %s: %s", path, strerror(errno));
	return -1;
}

/* Audit, then remove every file of one item: companions first, the audio
 * last (a removal cut short leaves an item the next sweep finishes). */
static int retention_remove(const spool *sp, const spool_item *it, const char *audit_log,
                            time_t now)
{
	char p[SPOOL_PATH_MAX], ts[40], dir[SPOOL_PATH_MAX];
	struct timespec t = {now, 0};
	int rc = 0;

	spool_iso_time(&t, ts, sizeof ts);
	json_t *l = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s}", "ts", ts, "event",
	                      "expired", "spool", sp->name, "id", it->id, "name", it->name, "state",
	                      spool_state_name(it->state), "keep_days", sp->keep_days, "by",
	                      "vmscreend");
	char *line = l ? json_dumps(l, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(l);
	if (line == NULL || spool_audit_append(audit_log, line) < 0) {
		free(line);
		return -1; /* not audited: not removed */
	}
	free(line);
	spool_item_sidecar(sp, it, p, sizeof p);
	rc |= retention_unlink(p);
	spool_item_claim(sp, it, p, sizeof p);
	rc |= retention_unlink(p);
	spool_item_verdict(sp, it, p, sizeof p);
	rc |= retention_unlink(p);
	spool_item_path(sp, it, p, sizeof p);
	rc |= retention_unlink(p);
	spool_path(sp, it->state, NULL, dir, sizeof dir);
	spool_fsync_dir(dir);
	return rc;
}

/* Remove what is due in one state; adds to w's counts. */
static void retention_sweep(const spool *sp, spool_state st, struct retention_walk *w)
{
	w->n_due = 0;
	if (spool_walk(sp, st, retention_due_cb, w) < 0)
		w->failed = 1;
	for (size_t i = 0; i < w->n_due; i++) {
		spool_item it;
		int lk = spool_lock(sp, "review", 1);
		/* found again under the lock: a reviewer may have moved it */
		if (lk >= 0 && spool_item_find(sp, w->due[i].id, &it) == 0 && it.state == st) {
			if (w->keep != NULL && w->keep(sp, &it, w->keep_arg))
				w->kept++;
			else if (retention_remove(sp, &it, w->audit_log, w->now) == 0)
				w->removed++;
			else
				w->failed = 1;
		}
		spool_unlock(lk);
	}
}

/* See spool.h. */
int spool_expire(const spool *sp, const char *audit_log, time_t now, spool_keep_fn keep,
                 void *keep_arg)
{
	struct retention_walk w = {
	        .audit_log = audit_log, .now = now, .keep = keep, .keep_arg = keep_arg};

	if (sp->keep_days <= 0)
		return 0;
	retention_sweep(sp, SPOOL_RELEASED, &w);
	retention_sweep(sp, SPOOL_REJECTED, &w);
	free(w.due);
	if (w.removed > 0)
		spool_log(LOG_NOTICE, "spool %s: %d item(s) older than %g day(s) removed", sp->name,
		          w.removed, sp->keep_days);
	if (w.kept > 0)
		spool_log(LOG_INFO,
		          "spool %s: %d item(s) past keep_days kept: an alert that links to them "
		          "waits in the outbox",
		          sp->name, w.kept);
	return w.failed ? -1 : w.removed;
}
