/*
 * alert_admin.c - what an operator does with alerts (`vmscreen alerts`,
 * issue 12): see what waits in the outbox and what was parked, put a
 * parked alert back in line, and send a signed test alert to one hook;
 * and which items the alerts still waiting name, so that retention keeps
 * them (issue 18).
 *
 * These run in the review command's process, beside a running daemon that
 * owns the outbox: list only reads; retry rewrites the parked entry in
 * place (attempts 0, due now) and renames it back, and the daemon's
 * alert_hub_rescan() queues it; test posts directly and touches no file.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert/alert_int.h"

/* The name of the hook whose key is key, or "(no longer configured)". */
static const char *admin_hook_name(const alert_hub *h, const char *key)
{
	for (size_t i = 0; i < h->nhooks; i++)
		if (strcmp(h->hooks[i].key_id, key) == 0)
			return h->hooks[i].name;
	return "(no longer configured)";
}

/* Call fn for every entry of dir (parked or not); count, or -1. */
static int admin_walk_dir(const alert_hub *h, const char *dir, int parked,
                          int (*fn)(const alert_entry_info *, void *), void *arg)
{
	char err[ALERT_ERR_MAX];
	struct dirent *de;
	outbox_entry e;
	int n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		alert_entry_info info = {.id = de->d_name, .parked = parked};
		if (outbox_entry_load(dir, de->d_name, &e, err, sizeof err) == 0) {
			info = (alert_entry_info){e.id,          admin_hook_name(h, e.hook),
			                          e.type,        e.spool,
			                          e.item,        e.last_error,
			                          parked,        e.attempts,
			                          e.last_status, e.created_ms,
			                          e.next_ms};
		} else
			info.last_error = err;
		int stop = fn(&info, arg);
		outbox_entry_clear(&e);
		n++;
		if (stop)
			break;
	}
	closedir(d);
	return n;
}

/* See alert.h. */
int alert_hub_list(alert_hub *h, int (*fn)(const alert_entry_info *, void *), void *arg)
{
	char parked[VMS_ALERT_PATH_MAX];
	int a, b;

	if (outbox_path(parked, sizeof parked, h->outbox, "parked") == -1)
		return -1;
	if ((a = admin_walk_dir(h, h->outbox, 0, fn, arg)) < 0 ||
	    (b = admin_walk_dir(h, parked, 1, fn, arg)) < 0)
		return -1;
	return a + b;
}

/* See alert.h. */
int alert_hub_retry(alert_hub *h, const char *id, char *err, size_t errlen)
{
	char parked[VMS_ALERT_PATH_MAX], name[ALERT_ID_MAX + 8], src[VMS_ALERT_PATH_MAX],
	        dst[VMS_ALERT_PATH_MAX];
	outbox_entry e;

	if (strlen(id) >= ALERT_ID_MAX || strspn(id, "msg_0123456789abcdef") != strlen(id)) {
		snprintf(err, errlen, "%s: not an alert id (msg_ and 32 hex digits)", id);
		return -1;
	}
	snprintf(name, sizeof name, "%s.json", id);
	if (outbox_path(parked, sizeof parked, h->outbox, "parked") == -1 ||
	    outbox_path(src, sizeof src, parked, name) == -1 ||
	    outbox_path(dst, sizeof dst, h->outbox, name) == -1)
		return -1;
	if (outbox_entry_load(parked, name, &e, err, errlen) == -1)
		return -1;
	e.attempts = 0;
	e.next_ms = alert_now_ms();
	e.last_status = 0;
	snprintf(e.last_error, sizeof e.last_error, "re-queued by hand");
	int rc = outbox_entry_save(parked, &e);
	outbox_entry_clear(&e);
	if (rc == -1 || rename(src, dst) == -1) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		return -1;
	}
	return 0;
}

/* A fresh random message id "msg_" + 32 hex. */
static void admin_test_id(char id[ALERT_ID_MAX])
{
	unsigned char b[16];

	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
		memset(b, 0, sizeof b);
	memcpy(id, "msg_", 4);
	for (size_t i = 0; i < sizeof b; i++)
		snprintf(id + 4 + 2 * i, 3, "%02x", b[i]);
}

/* The test alert's body in the hook's format: a standard "vmscreen.test"
 * object, or a Slack/Teams text saying it is a test. */
static char *admin_test_body(const alert_hook *k)
{
	json_t *j;
	const char *text = "vmscreen test alert: this webhook is configured and reachable";
	char *s;

	if (k->format == ALERT_FMT_SLACK)
		j = json_pack("{s:s}", "text", text);
	else if (k->format == ALERT_FMT_TEAMS)
		j = json_pack("{s:s, s:[{s:s, s:n, s:{s:s, s:s, s:s, s:[{s:s, s:s, s:b}]}}]}",
		              "type", "message", "attachments", "contentType",
		              "application/vnd.microsoft.card.adaptive", "contentUrl", "content",
		              "$schema", "http://adaptivecards.io/schemas/adaptive-card.json",
		              "type", "AdaptiveCard", "version", "1.4", "body", "type", "TextBlock",
		              "text", text, "wrap", 1);
	else
		j = json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "vmscreen.test", "timestamp",
		              "now", "data", "hook", k->name, "text", text);
	s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	return s;
}

/* See alert.h. */
int alert_hub_test(alert_hub *h, const char *hook_name, char *msg, size_t msglen)
{
	char id[ALERT_ID_MAX];
	atomic_int never = 0;
	webhook_result r;
	alert_hook *k = NULL;
	char *body;

	for (size_t i = 0; i < h->nhooks; i++)
		if (strcmp(h->hooks[i].name, hook_name) == 0)
			k = &h->hooks[i];
	if (k == NULL) {
		snprintf(msg, msglen, "no webhook named \"%s\"", hook_name);
		return -1;
	}
	if ((body = admin_test_body(k)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	admin_test_id(id);
	webhook_post(k->multi, k->url, k->connect_timeout_s, k->timeout_s, k->key, k->keylen, id,
	             body, &never, &r);
	free(body);
	if (r.status >= 200 && r.status < 300) {
		snprintf(msg, msglen, "%s (%s): HTTP %ld, test alert %s delivered%s", k->name,
		         k->display, r.status, id, k->key ? ", signed" : "");
		return 0;
	}
	if (r.status != 0)
		snprintf(msg, msglen, "%s (%s): HTTP %ld", k->name, k->display, r.status);
	else
		snprintf(msg, msglen, "%s (%s): %s", k->name, k->display, r.error);
	return -1;
}

/* What alert_hub_refs collects: "spool\x1fitem" of every waiting entry;
 * all: an entry could not be read, so nothing may go. */
struct alert_refs {
	char **keys;
	size_t n, cap;
	int all;
};

/* alert_hub_list callback: note one entry's item. */
static int admin_ref_cb(const alert_entry_info *info, void *arg)
{
	alert_refs *r = arg;
	char *key = NULL;

	if (info->spool == NULL || info->item == NULL || !*info->item) {
		r->all = 1; /* unreadable: it could name anything */
		return 1;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		char **k = reallocarray(r->keys, cap, sizeof *k);
		if (k == NULL) {
			r->all = 1;
			return 1;
		}
		r->keys = k;
		r->cap = cap;
	}
	if (asprintf(&key, "%s\x1f%s", info->spool, info->item) < 0) {
		r->all = 1;
		return 1;
	}
	r->keys[r->n++] = key;
	return 0;
}

/* See alert.h. */
alert_refs *alert_hub_refs(alert_hub *h)
{
	alert_refs *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	if (h != NULL && h->outbox[0] && alert_hub_list(h, admin_ref_cb, r) < 0)
		r->all = 1;
	if (r->all)
		alert_log(LOG_WARNING,
		          "outbox %s: cannot read every entry; retention keeps every item until "
		          "it can",
		          h != NULL ? h->outbox : "");
	return r;
}

/* See alert.h. */
int alert_refs_has(const alert_refs *r, const char *spool, const char *item)
{
	size_t ls = strlen(spool);

	if (r == NULL || r->all)
		return 1;
	for (size_t i = 0; i < r->n; i++)
		if (strncmp(r->keys[i], spool, ls) == 0 && r->keys[i][ls] == '\x1f' &&
		    strcmp(r->keys[i] + ls + 1, item) == 0)
			return 1;
	return 0;
}

/* See alert.h. */
void alert_refs_free(alert_refs *r)
{
	for (size_t i = 0; r != NULL && i < r->n; i++)
		free(r->keys[i]);
	if (r != NULL)
		free(r->keys);
	free(r);
}
