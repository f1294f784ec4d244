/*
 * decision.c - a reviewer's decision on a held item, the one way it is
 * made: `vmscreen release|reject` and the console's POST
 * /api/items/ID/release|reject both end here (issue 11).
 *
 * Under the spool's "review" lock: the item is found again (it may have
 * moved), the move checked, the decision written into its verdict
 * (atomically), the audit line appended (before the move: a kill between
 * them leaves a retry that audits again, never a delivered item the log
 * calls held), then the item moves.  The daemon never touches hold/ or
 * rejected/ itself, so this is safe beside it.
 *
 * A console decision names the version of the item it was made on
 * (issue 18): a reviewer on a stale page must not release what a
 * colleague has just rejected.  The version is checked under the lock.
 * A reason must be UTF-8: the verdict and the audit log are JSON, and a
 * reason they cannot hold would leave a move with no review entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "review/review.h"
#include "vmscreen.h"

#define DECISION_VERDICT_MAX (64L * 1024 * 1024)

/* See review.h. */
int decision_find(const spool_conf *sc, const char *spool_name, const char *id, const spool **sp,
                  spool_item *it)
{
	int denied = 0;

	for (size_t i = 0; i < sc->n_spools; i++) {
		if (spool_name != NULL && strcmp(sc->spools[i].name, spool_name) != 0)
			continue;
		if (spool_item_find(&sc->spools[i], id, it) == 0) {
			*sp = &sc->spools[i];
			return 0;
		}
		if (errno == EACCES || errno == EPERM)
			denied = errno;
	}
	errno = denied ? denied : ENOENT;
	return -1;
}

/* See review.h. */
json_t *decision_verdict(const spool *sp, const spool_item *it, char *err, size_t errlen)
{
	char path[SPOOL_PATH_MAX], why[SPOOL_PATH_MAX + 128];
	json_error_t jerr;
	char *text;
	json_t *v;

	spool_item_verdict(sp, it, path, sizeof path);
	if ((text = spool_read_file(path, DECISION_VERDICT_MAX, why, sizeof why)) == NULL) {
		snprintf(err, errlen, "verdict %s", why);
		return NULL;
	}
	v = json_loads(text, 0, &jerr);
	free(text);
	if (v == NULL || !json_is_object(v)) {
		snprintf(err, errlen, "%s: line %d: %s", path, jerr.line,
		         v ? "not a JSON object" : jerr.text);
		json_decref(v);
		return NULL;
	}
	return v;
}

/* See review.h. */
int decision_text_ok(const char *text)
{
	json_t *j = json_string(text); /* jansson refuses what is not UTF-8 */

	json_decref(j);
	return j != NULL;
}

/* See review.h. */
int decision_version(const spool *sp, const spool_item *it, char out[DECISION_VERSION_LEN + 1])
{
	char path[SPOOL_PATH_MAX], why[SPOOL_PATH_MAX + 128];
	unsigned char d[DECISION_VERSION_LEN / 2];
	crypto_generichash_state h;
	const char *state = spool_state_name(it->state);
	char *text = NULL;

	if (it->has_verdict) {
		spool_item_verdict(sp, it, path, sizeof path);
		if ((text = spool_read_file(path, DECISION_VERDICT_MAX, why, sizeof why)) == NULL)
			return -1;
	}
	crypto_generichash_init(&h, NULL, 0, sizeof d);
	crypto_generichash_update(&h, (const unsigned char *)state, strlen(state) + 1);
	if (text != NULL)
		crypto_generichash_update(&h, (const unsigned char *)text, strlen(text));
	crypto_generichash_final(&h, d, sizeof d);
	free(text);
	sodium_bin2hex(out, DECISION_VERSION_LEN + 1, d, sizeof d);
	return 0;
}

/* 1 when the item's verdict ends with a review entry for action: the
 * decision was taken (and audited before its move). */
static int decision_already(const spool *sp, const spool_item *it, const char *action)
{
	char err[64];
	json_t *v = it->has_verdict ? decision_verdict(sp, it, err, sizeof err) : NULL;
	json_t *hist = json_object_get(v, "review");
	const char *last = json_string_value(
	        json_object_get(json_array_get(hist, json_array_size(hist) - 1), "action"));
	int done = last != NULL && strcmp(last, action) == 0;

	json_decref(v);
	return done;
}

/* The audit line of a decision (or of a false alarm: to == NULL). */
static json_t *decision_audit_line(const char *event, const spool *sp, const spool_item *it,
                                   const char *to, const decision_who *who, const char *now,
                                   const char *reason)
{
	json_t *l = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ts", now, "event", event, "spool",
	                      sp->name, "id", it->id, "name", it->name, "from",
	                      spool_state_name(it->state));
	if (l == NULL)
		return NULL;
	if (to != NULL)
		json_object_set_new(l, "to", json_string(to));
	json_object_set_new(l, "by", json_string(who->by));
	json_object_set_new(l, "via", json_string(who->via));
	json_object_set_new(l, "uid", json_integer(who->uid));
	if (who->login_uid >= 0)
		json_object_set_new(l, "login_uid", json_integer(who->login_uid));
	json_object_set_new(l, reason == NULL ? "note" : "reason",
	                    json_string(reason ? reason : ""));
	return l;
}

/* Append l to the audit log; 0 or -1. */
static int decision_audit(const spool_conf *sc, json_t *l)
{
	char *text = l ? json_dumps(l, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	int rc = text != NULL ? spool_audit_append(sc->audit_log, text) : -1;

	free(text);
	return rc;
}

/* Write the review entry into the verdict file of it; 0 or -1. */
static int decision_record(const spool *sp, const spool_item *it, json_t *v, const char *action,
                           spool_state to, const decision_who *who, const char *now,
                           const char *reason)
{
	char vfile[SPOOL_PATH_MAX];
	json_t *hist = json_object_get(v, "review");
	char *text;
	int rc;

	if (!json_is_array(hist)) {
		hist = json_array();
		json_object_set_new(v, "review", hist);
	}
	json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "action", action, "from",
	                      spool_state_name(it->state), "to", spool_state_name(to), "by",
	                      who->by, "via", who->via, "at", now, "reason", reason);
	if (e == NULL || json_array_append_new(hist, e) < 0) {
		errno = EINVAL; /* no review entry: no decision */
		return -1;
	}
	json_object_set_new(v, "state", json_string(spool_state_name(to)));
	if ((text = vms_verdict_dumps(v, JSON_INDENT(2))) == NULL)
		return -1;
	spool_item_verdict_file(it, vfile, sizeof vfile);
	rc = spool_put(sp, it->state, vfile, text, strlen(text)) == SPOOL_OK ? 0 : -1;
	free(text);
	return rc;
}

/* Now as an ISO 8601 UTC string. */
static void decision_now(char *buf, size_t len)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	spool_iso_time(&now, buf, len);
}

/* The words for an item that changed since the decider saw it: what its
 * last review entry says, or where it is now. */
static void decision_conflict_msg(const spool *sp, const spool_item *it, char *msg, size_t msglen)
{
	char err[64];
	json_t *v = it->has_verdict ? decision_verdict(sp, it, err, sizeof err) : NULL;
	json_t *hist = json_object_get(v, "review");
	json_t *last = json_array_get(hist, json_array_size(hist) - 1);
	const char *action = json_string_value(json_object_get(last, "action"));
	const char *by = json_string_value(json_object_get(last, "by"));
	const char *at = json_string_value(json_object_get(last, "at"));

	if (action != NULL && by != NULL && at != NULL)
		snprintf(msg, msglen,
		         "%s: changed since you looked at it: %s %s it at %s and it is now in "
		         "%s/; nothing was done",
		         it->id, by, strcmp(action, "reject") == 0 ? "rejected" : "released", at,
		         spool_state_name(it->state));
	else
		snprintf(msg, msglen,
		         "%s: changed since you looked at it: it is now in %s/; nothing was done",
		         it->id, spool_state_name(it->state));
	json_decref(v);
}

/* The checks under the lock; DECISION_OK to go on, else the answer. */
static decision_rc decision_allowed(const spool *sp, spool_item *it, spool_state to,
                                    const char *action, const char *seen, char *msg, size_t msglen)
{
	char now[DECISION_VERSION_LEN + 1];

	if (spool_item_find(sp, it->id, it) < 0) {
		snprintf(msg, msglen, "%s: gone from spool %s", it->id, sp->name);
		return DECISION_NOT_FOUND;
	}
	if (it->state == to && decision_already(sp, it, action)) {
		snprintf(msg, msglen, "%s: already %s (%s/%s)", it->id, spool_state_name(to),
		         sp->name, it->name);
		return DECISION_ALREADY;
	}
	if (seen != NULL && (decision_version(sp, it, now) < 0 || strcmp(now, seen) != 0)) {
		decision_conflict_msg(sp, it, msg, msglen);
		return DECISION_CONFLICT;
	}
	if (!(it->state == SPOOL_HOLD || (to == SPOOL_RELEASED && it->state == SPOOL_REJECTED))) {
		snprintf(msg, msglen, "%s: is in %s/; only items in hold/%s can be %s", it->id,
		         spool_state_name(it->state), to == SPOOL_RELEASED ? " or rejected/" : "",
		         spool_state_name(to));
		return DECISION_WRONG_STATE;
	}
	return DECISION_OK;
}

/* The decision proper, under the lock, on an allowed item. */
static decision_rc decision_carry_out(const spool_conf *sc, const spool *sp, const spool_item *it,
                                      spool_state to, const decision_who *who, const char *reason,
                                      char *msg, size_t msglen)
{
	const char *action = to == SPOOL_RELEASED ? "release" : "reject";
	char now[40], err[SPOOL_PATH_MAX + 256];
	json_t *v, *line = NULL;
	decision_rc rc = DECISION_FAILED;

	if ((v = it->has_verdict ? decision_verdict(sp, it, err, sizeof err) : json_object()) ==
	    NULL) {
		snprintf(msg, msglen,
		         "%s: the verdict file is unreadable (%s); fix or remove it first", it->id,
		         err);
		return DECISION_BAD_VERDICT;
	}
	decision_now(now, sizeof now);
	if (decision_record(sp, it, v, action, to, who, now, reason) < 0) {
		snprintf(msg, msglen, "%s: cannot update the verdict file: %s", it->id,
		         strerror(errno));
		goto out;
	}
	line = decision_audit_line(action, sp, it, spool_state_name(to), who, now, reason);
	if (decision_audit(sc, line) < 0) {
		snprintf(msg, msglen, "%s: the audit log %s cannot be written: nothing was moved",
		         it->id, sc->audit_log);
		goto out;
	}
	if (spool_move(sp, it, to) != SPOOL_OK) {
		int e = errno;
		json_object_set_new(line, "event", json_sprintf("%s_failed", action));
		json_object_set_new(line, "error", json_string(strerror(e)));
		decision_audit(sc, line);
		snprintf(msg, msglen, "%s: cannot move to %s/: %s", it->id, spool_state_name(to),
		         strerror(e));
		goto out;
	}
	snprintf(msg, msglen, "%s %s: %s/%s -> %s/", it->id, spool_state_name(to), sp->name,
	         it->name, spool_state_name(to));
	rc = DECISION_OK;
out:
	json_decref(line);
	json_decref(v);
	return rc;
}

/* See review.h. */
decision_rc decision_make(const spool_conf *sc, const char *spool_name, const char *id,
                          spool_state to, const decision_who *who, const char *reason,
                          const spool **where, char *msg, size_t msglen)
{
	return decision_make_seen(sc, spool_name, id, to, who, reason, NULL, where, msg, msglen);
}

/* See review.h. */
decision_rc decision_make_seen(const spool_conf *sc, const char *spool_name, const char *id,
                               spool_state to, const decision_who *who, const char *reason,
                               const char *seen, const spool **where, char *msg, size_t msglen)
{
	const char *action = to == SPOOL_RELEASED ? "release" : "reject";
	const spool *sp;
	spool_item it;
	decision_rc rc;
	int lk;

	if (!decision_text_ok(reason) || !decision_text_ok(who->by)) {
		snprintf(msg, msglen, "%s: the reason is not UTF-8 text: nothing was done", id);
		return DECISION_BAD_REASON;
	}
	if (decision_find(sc, spool_name, id, &sp, &it) < 0) {
		int e = errno;
		snprintf(msg, msglen, "%s: %s", id,
		         e == ENOENT ? "no such item" : "permission denied reading the spool");
		errno = e;
		return DECISION_NOT_FOUND;
	}
	if (where != NULL)
		*where = sp;
	if ((lk = spool_lock(sp, "review", 1)) < 0) {
		snprintf(msg, msglen, "spool %s: cannot lock: %s", sp->name, strerror(errno));
		return DECISION_FAILED;
	}
	rc = decision_allowed(sp, &it, to, action, seen, msg, msglen);
	if (rc == DECISION_OK)
		rc = decision_carry_out(sc, sp, &it, to, who, reason, msg, msglen);
	spool_unlock(lk);
	return rc;
}

/* The transcript words that overlap [start, end] (a false alarm's
 * context), as one string. */
static json_t *decision_words(const json_t *v, double start, double end)
{
	json_t *words = json_object_get(json_object_get(v, "transcript"), "words"), *w;
	size_t i;
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);
	json_t *s;

	if (o == NULL)
		return json_string("");
	json_array_foreach(words, i, w)
	{
		double ws = json_number_value(json_object_get(w, "start_s"));
		double we = json_number_value(json_object_get(w, "end_s"));
		const char *t = json_string_value(json_object_get(w, "w"));
		if (t != NULL && we >= start && ws <= end)
			fprintf(o, "%s%s", len ? " " : "", t);
		fflush(o);
	}
	fclose(o);
	s = json_string(buf ? buf : "");
	free(buf);
	return s;
}

/* See review.h. */
int decision_false_alarm(const spool_conf *sc, const char *spool_name, const char *id, size_t index,
                         const decision_who *who, const char *note, char *msg, size_t msglen)
{
	char now[40], err[SPOOL_PATH_MAX + 256];
	const spool *sp;
	spool_item it;
	json_t *v, *f, *line;
	int rc = -1;

	if (!decision_text_ok(note)) {
		snprintf(msg, msglen, "%s: the note is not UTF-8 text", id);
		return -1;
	}
	if (decision_find(sc, spool_name, id, &sp, &it) < 0) {
		snprintf(msg, msglen, "%s: no such item", id);
		return -1;
	}
	if ((v = decision_verdict(sp, &it, err, sizeof err)) == NULL) {
		snprintf(msg, msglen, "%s: %s", id, err);
		return -1;
	}
	if ((f = json_array_get(json_object_get(v, "alerts"), index)) == NULL) {
		snprintf(msg, msglen, "%s: no finding number %zu", id, index);
		json_decref(v);
		return -1;
	}
	decision_now(now, sizeof now);
	line = decision_audit_line("false_alarm", sp, &it, NULL, who, now, NULL);
	json_object_set_new(line, "note", json_string(note));
	json_object_set_new(line, "finding", json_integer((json_int_t)index));
	const char *keys[] = {"type",     "category", "severity", "rule",
	                      "evidence", "start_s",  "end_s"};
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
		if (json_object_get(f, keys[k]) != NULL)
			json_object_set(line, keys[k], json_object_get(f, keys[k]));
	json_object_set_new(line, "words",
	                    decision_words(v, json_number_value(json_object_get(f, "start_s")),
	                                   json_number_value(json_object_get(f, "end_s"))));
	if (decision_audit(sc, line) == 0) {
		snprintf(msg, msglen, "%s: finding %zu recorded as a false alarm", id, index);
		rc = 0;
	} else
		snprintf(msg, msglen, "%s: the audit log %s cannot be written", id, sc->audit_log);
	json_decref(line);
	json_decref(v);
	return rc;
}
