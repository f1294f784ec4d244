/*
 * alert_hub.c - configuration, submit, and one delivery thread per webhook.
 *
 * Submit runs on the screening path, so it only decides, builds the body,
 * writes the outbox entry (fsync'd) and signals; it never waits on the
 * network.  Each webhook has its own thread and queue, so a dead Teams hook
 * does not delay the Slack one.  A thread sleeps on its condition variable
 * until the earliest next-attempt time or a new entry, makes one attempt at
 * a time through its own curl multi handle (which alert_hub_stop() can wake
 * and abort at once), and records the outcome in the entry's file.
 *
 * Identity: the webhook-id is msg_ + SHA-256(hook, spool, item, alert
 * type), so an item screened twice (a daemon restarted between screening
 * and bookkeeping, or a cluster node that died and another that screened
 * it again: issue 13) queues its alert under one id, whatever the second
 * verdict's times and attempt say, and receivers can dedupe on it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "alert/alert_int.h"
#include "conf/conf.h" /* vms_private_file */
#include "vmscreen.h"  /* vms_verdict_dumps */

#define HUB_DEFAULT_OUTBOX "/var/spool/vmscreen/outbox"

static int hub_parse_hook(alert_hub *h, const config_setting_t *s, int idx, char *err,
                          size_t errlen);
static int hub_num(const config_setting_t *s, const char *name, double dflt, double lo, double hi,
                   double *out, const char *where, char *err, size_t errlen);
static void hub_where(const config_setting_t *s, int idx, char *buf, size_t buflen);
static int hub_hook_name(alert_hub *h, const config_setting_t *s, int idx, const char *where,
                         char *err, size_t errlen);
static void hub_hex(const unsigned char *in, size_t n, char *out);
static void hub_sha_hex(const char *const *parts, size_t nparts, char *out, size_t nhex);
static int hub_open_outbox(alert_hub *h, char *err, size_t errlen);
static int hub_ensure_outbox(alert_hub *h);
static int hub_load_outbox(alert_hub *h);
static int hub_scan_outbox(alert_hub *h);
static int hub_queue_has(alert_hook *k, const char *id);
static alert_hook *hub_hook_by_key(alert_hub *h, const char *key);
static int hub_queue_push(alert_hook *k, const char *id, int attempts, int64_t created_ms,
                          int64_t next_ms);
static int hub_wants(const alert_hook *k, const char *spool, int hold, int max_sev);
static int hub_queue_one(alert_hook *k, const char *spool, const char *item_id,
                         const json_t *verdict, int hold);
static void *hook_run(void *arg);
static void hook_attempt(alert_hook *k, const hook_item *it);
static void hook_finish(alert_hook *k, const char *id, int remove, int attempts, int64_t next_ms,
                        int delivered);
static void hook_free(alert_hook *k);

/* The hook's name: `name` ([A-Za-z0-9_.-], unique) or "webhook-N" (N
 * from 1 in the order of the list).  0 or -1 with err. */
static int hub_hook_name(alert_hub *h, const config_setting_t *s, int idx, const char *where,
                         char *err, size_t errlen)
{
	alert_hook *k = &h->hooks[idx];
	const char *name = NULL;

	if (config_setting_get_member(s, "name") == NULL) {
		snprintf(k->name, sizeof k->name, "webhook-%d", idx + 1);
		return 0;
	}
	if (!config_setting_lookup_string(s, "name", &name) || name[0] == '\0' ||
	    strlen(name) >= sizeof k->name ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
	            strlen(name)) {
		snprintf(err, errlen, "%s: name must be 1-%zu of A-Z a-z 0-9 _ . -", where,
		         sizeof k->name - 1);
		return -1;
	}
	for (int i = 0; i < idx; i++)
		if (strcmp(h->hooks[i].name, name) == 0) {
			snprintf(err, errlen, "%s: name \"%s\" is also webhooks[%d]'s", where, name,
			         i);
			return -1;
		}
	snprintf(k->name, sizeof k->name, "%s", name);
	return 0;
}

/* "file:line: webhooks[i]" for error messages, so a bad setting is found by
 * reading the message alone. */
static void hub_where(const config_setting_t *s, int idx, char *buf, size_t buflen)
{
	const char *file = config_setting_source_file(s);

	snprintf(buf, buflen, "%s:%d: webhooks[%d]", file ? file : "config",
	         config_setting_source_line(s), idx);
}

/* Optional number (int or float) with a default and a range. */
static int hub_num(const config_setting_t *s, const char *name, double dflt, double lo, double hi,
                   double *out, const char *where, char *err, size_t errlen)
{
	config_setting_t *m = config_setting_get_member(s, name);

	*out = dflt;
	if (m == NULL)
		return 0;
	if (config_setting_type(m) == CONFIG_TYPE_INT)
		*out = config_setting_get_int(m);
	else if (config_setting_type(m) == CONFIG_TYPE_INT64)
		*out = (double)config_setting_get_int64(m);
	else if (config_setting_type(m) == CONFIG_TYPE_FLOAT)
		*out = config_setting_get_float(m);
	else {
		snprintf(err, errlen, "%s: %s must be a number", where, name);
		return -1;
	}
	if (*out < lo || *out > hi) {
		snprintf(err, errlen, "%s: %s = %g is out of range [%g, %g]", where, name, *out, lo,
		         hi);
		return -1;
	}
	return 0;
}

/* Lower-case hex. */
static void hub_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* First nhex hex digits of SHA-256 over parts joined by "\n". */
static void hub_sha_hex(const char *const *parts, size_t nparts, char *out, size_t nhex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
		for (size_t i = 0; i < nparts; i++) {
			EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
			EVP_DigestUpdate(ctx, "\n", 1);
		}
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	}
	EVP_MD_CTX_free(ctx);
	hub_hex(md, 32, hex);
	memcpy(out, hex, nhex);
	out[nhex] = '\0';
}

/* issue 18: a Slack or Teams incoming-webhook URL is the credential
 * itself (whoever has it can post), so the file that holds it (the
 * configuration, or the file it @includes) must be as private as a
 * secret_file.  0, or -1 with err. */
static int hub_url_private(const config_setting_t *s, alert_format fmt, const char *where,
                           char *err, size_t errlen)
{
	const char *file = config_setting_source_file(config_setting_get_member(s, "url"));
	char why[ALERT_ERR_MAX];

	if (fmt == ALERT_FMT_STANDARD || file == NULL)
		return 0; /* a standard hook's credential is its secret_file */
	if (vms_private_file("the configuration holding its Slack/Teams URL", file, why,
	                     sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", where, why);
		return -1;
	}
	return 0;
}

/* Reads one `webhooks` group into h->hooks[idx]. */
static int hub_parse_hook(alert_hub *h, const config_setting_t *s, int idx, char *err,
                          size_t errlen)
{
	static const char *known[] = {
	        "url",           "secret_file",       "format",    "min_severity", "spools",
	        "every_verdict", "connect_timeout_s", "timeout_s", "retry_base_s", "max_attempts",
	        "name"};
	alert_hook *k = &h->hooks[idx];
	const char *url = NULL, *secret_file = NULL, *format = "standard", *sev = "low";
	char where[VMS_ALERT_PATH_MAX + 64], why[ALERT_ERR_MAX];
	config_setting_t *sp;
	double attempts;
	int every = 0;

	k->hub = h;
	k->index = idx;
	hub_where(s, idx, where, sizeof(where));
	if (!config_setting_is_group(s)) {
		snprintf(err, errlen, "%s: must be a group { url = ...; ... }", where);
		return -1;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const char *name = config_setting_name(config_setting_get_elem(s, i));
		size_t j;

		for (j = 0; j < sizeof(known) / sizeof(known[0]); j++)
			if (strcmp(name, known[j]) == 0)
				break;
		if (j == sizeof(known) / sizeof(known[0])) {
			snprintf(err, errlen, "%s: unknown setting '%s'", where, name);
			return -1;
		}
	}
	if (!config_setting_lookup_string(s, "url", &url)) {
		snprintf(err, errlen, "%s: url is missing or not a string", where);
		return -1;
	}
	if (webhook_url_check(url, k->display, sizeof(k->display), why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", where, why);
		return -1;
	}
	if ((k->url = strdup(url)) == NULL)
		goto oom;
	if (hub_hook_name(h, s, idx, where, err, errlen) < 0)
		return -1;
	if (config_setting_get_member(s, "format") &&
	    !config_setting_lookup_string(s, "format", &format)) {
		snprintf(err, errlen, "%s: format must be a string", where);
		return -1;
	}
	if (alert_format_parse(format, &k->format) == -1) {
		snprintf(err, errlen, "%s: format \"%s\" is not one of standard, slack, teams",
		         where, format);
		return -1;
	}
	if (hub_url_private(s, k->format, where, err, errlen) < 0)
		return -1;
	if (config_setting_get_member(s, "min_severity") &&
	    !config_setting_lookup_string(s, "min_severity", &sev)) {
		snprintf(err, errlen, "%s: min_severity must be a string", where);
		return -1;
	}
	if ((k->min_severity = alert_severity_parse(sev)) == 0) {
		snprintf(err, errlen, "%s: min_severity \"%s\" is not one of low, medium, high",
		         where, sev);
		return -1;
	}
	if (config_setting_get_member(s, "every_verdict") &&
	    !config_setting_lookup_bool(s, "every_verdict", &every)) {
		snprintf(err, errlen, "%s: every_verdict must be true or false", where);
		return -1;
	}
	k->every_verdict = every;
	if ((sp = config_setting_get_member(s, "spools")) != NULL) {
		if (!config_setting_is_aggregate(sp)) {
			snprintf(err, errlen, "%s: spools must be a list of names", where);
			return -1;
		}
		k->nspools = (size_t)config_setting_length(sp);
		if (k->nspools > 0 && (k->spools = calloc(k->nspools, sizeof(char *))) == NULL)
			goto oom;
		for (size_t i = 0; i < k->nspools; i++) {
			const char *name = config_setting_get_string_elem(sp, (int)i);
			if (name == NULL) {
				snprintf(err, errlen, "%s: spools[%zu] is not a string", where, i);
				return -1;
			}
			if ((k->spools[i] = strdup(name)) == NULL)
				goto oom;
		}
	}
	if (hub_num(s, "connect_timeout_s", 5, 0.1, 300, &k->connect_timeout_s, where, err,
	            errlen) == -1 ||
	    hub_num(s, "timeout_s", 15, 0.1, 600, &k->timeout_s, where, err, errlen) == -1 ||
	    hub_num(s, "retry_base_s", 5, 0.001, 3600, &k->retry_base_s, where, err, errlen) ==
	            -1 ||
	    hub_num(s, "max_attempts", ALERT_DEFAULT_MAX_ATTEMPTS, 1, 100, &attempts, where, err,
	            errlen) == -1)
		return -1;
	k->max_attempts = (int)attempts;
	if (config_setting_get_member(s, "secret_file") &&
	    !config_setting_lookup_string(s, "secret_file", &secret_file)) {
		snprintf(err, errlen, "%s: secret_file must be a string", where);
		return -1;
	}
	if (secret_file == NULL && k->format == ALERT_FMT_STANDARD) {
		snprintf(err, errlen, "%s: secret_file is required for format \"standard\"", where);
		return -1;
	}
	if (secret_file != NULL &&
	    webhook_secret_load(secret_file, &k->key, &k->keylen, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", where, why);
		return -1;
	}
	{
		const char *parts[] = {k->url, alert_format_name(k->format)};
		hub_sha_hex(parts, 2, k->key_id, 16);
	}
	if (strncmp(url, "http://", 7) == 0 && strstr(k->display, "://127.0.0.1") == NULL &&
	    strstr(k->display, "://localhost") == NULL && strstr(k->display, "://[::1]") == NULL)
		alert_log(LOG_WARNING,
		          "%s: %s is plain http: alerts (with transcript evidence) travel "
		          "unencrypted",
		          where, k->display);
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", where);
	return -1;
}

/* Creates the outbox directories, takes the lock that keeps a second
 * daemon from delivering the same entries, and removes stray temp files. */
static int hub_open_outbox(alert_hub *h, char *err, size_t errlen)
{
	char path[VMS_ALERT_PATH_MAX];
	int n;

	if (outbox_mkdir(h->outbox) == -1) {
		snprintf(err, errlen, "outbox_dir %s: %s", h->outbox, strerror(errno));
		return -1;
	}
	if (outbox_path(path, sizeof(path), h->outbox, "parked") == -1 ||
	    outbox_mkdir(path) == -1) {
		snprintf(err, errlen, "outbox_dir %s/parked: %s", h->outbox, strerror(errno));
		return -1;
	}
	if (outbox_path(path, sizeof(path), h->outbox, ".lock") == -1 ||
	    (h->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "outbox_dir %s: cannot open .lock: %s", h->outbox,
		         strerror(errno));
		return -1;
	}
	if (flock(h->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "outbox_dir %s: in use by another process (%s)", h->outbox,
		         strerror(errno));
		return -1;
	}
	if ((n = outbox_clean_temps(h->outbox)) > 0)
		alert_log(LOG_NOTICE, "outbox %s: removed %d unfinished write(s) from a crash",
		          h->outbox, n);
	return 0;
}

/* Opens the outbox once, on first use (start or submit), so that
 * alert_hub_new() alone only validates: `vmscreend --check` can build and
 * free a hub while the running daemon holds the outbox. */
static int hub_ensure_outbox(alert_hub *h)
{
	char err[VMS_ALERT_PATH_MAX + 256];
	int rc = 0;

	pthread_mutex_lock(&h->open_mu);
	if (h->producer) { /* the daemon owns the outbox; its directory must be there */
		struct stat st;
		if (stat(h->outbox, &st) < 0 || !S_ISDIR(st.st_mode)) {
			alert_log(LOG_ERR, "outbox_dir %s: %s", h->outbox,
			          errno ? strerror(errno) : "not a directory");
			rc = -1;
		}
	} else if (h->lock_fd == -1 && hub_open_outbox(h, err, sizeof(err)) == -1) {
		alert_log(LOG_ERR, "%s", err);
		if (h->lock_fd != -1) {
			close(h->lock_fd);
			h->lock_fd = -1;
		}
		rc = -1;
	}
	pthread_mutex_unlock(&h->open_mu);
	return rc;
}

/* Builds a hub from the libconfig root (see alert.h for the settings). */
alert_hub *alert_hub_new(const config_t *cfg, char *err, size_t errlen)
{
	const config_setting_t *list;
	const char *outbox = HUB_DEFAULT_OUTBOX;
	alert_hub *h;
	int n;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->lock_fd = -1;
	pthread_mutex_init(&h->open_mu, NULL);
	atomic_init(&h->stop, 0);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (config_lookup(cfg, "outbox_dir") != NULL &&
	    !config_lookup_string(cfg, "outbox_dir", &outbox)) {
		snprintf(err, errlen, "outbox_dir must be a string");
		goto fail;
	}
	if ((size_t)snprintf(h->outbox, sizeof(h->outbox), "%s", outbox) >=
	    sizeof(h->outbox) - 64) {
		snprintf(err, errlen, "outbox_dir %s: path too long", outbox);
		goto fail;
	}
	if ((list = config_lookup(cfg, "webhooks")) == NULL)
		return h; /* no webhooks: a valid hub that does nothing */
	if (!config_setting_is_aggregate(list)) {
		snprintf(err, errlen, "webhooks must be a list: webhooks = ( { url = ...; } );");
		goto fail;
	}
	n = config_setting_length(list);
	if (n == 0)
		return h;
	if ((h->hooks = calloc((size_t)n, sizeof(*h->hooks))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		h->nhooks = (size_t)i + 1; /* so hub_free frees what was parsed */
		if (hub_parse_hook(h, config_setting_get_elem(list, (unsigned)i), i, err, errlen) ==
		    -1)
			goto fail;
		for (int j = 0; j < i; j++)
			if (strcmp(h->hooks[j].key_id, h->hooks[i].key_id) == 0) {
				snprintf(err, errlen,
				         "webhooks[%d] and webhooks[%d] have the same url and "
				         "format",
				         j, i);
				goto fail;
			}
	}
	for (size_t i = 0; i < h->nhooks; i++) {
		alert_hook *k = &h->hooks[i];
		pthread_mutex_init(&k->mu, NULL);
		pthread_cond_init(&k->cv, NULL);
		if ((k->multi = curl_multi_init()) == NULL) {
			snprintf(err, errlen, "out of memory (curl)");
			goto fail;
		}
	}
	return h;
fail:
	alert_hub_free(h);
	return NULL;
}

/* The hook a stored entry belongs to, by its url+format key. */
static alert_hook *hub_hook_by_key(alert_hub *h, const char *key)
{
	for (size_t i = 0; i < h->nhooks; i++)
		if (strcmp(h->hooks[i].key_id, key) == 0)
			return &h->hooks[i];
	return NULL;
}

/* Adds an entry to a hook's queue and wakes its thread. */
static int hub_queue_push(alert_hook *k, const char *id, int attempts, int64_t created_ms,
                          int64_t next_ms)
{
	hook_item *grown;
	int rc = 0;

	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->nq; i++)
		if (strcmp(k->q[i].id, id) == 0)
			goto out; /* already queued */
	if (k->nq == k->capq) {
		size_t cap = k->capq ? 2 * k->capq : 16;
		if ((grown = realloc(k->q, cap * sizeof(*grown))) == NULL) {
			rc = -1;
			goto out;
		}
		k->q = grown;
		k->capq = cap;
	}
	snprintf(k->q[k->nq].id, sizeof(k->q[k->nq].id), "%s", id);
	k->q[k->nq].attempts = attempts;
	k->q[k->nq].created_ms = created_ms;
	k->q[k->nq].next_ms = next_ms;
	k->nq++;
	pthread_cond_signal(&k->cv);
out:
	pthread_mutex_unlock(&k->mu);
	return rc;
}

/* Loads every entry a previous run left in the outbox.  Entries for a
 * webhook that is no longer configured, and unreadable files, are parked
 * (never deleted) and logged at LOG_ERR. */
static int hub_load_outbox(alert_hub *h)
{
	int n = hub_scan_outbox(h);

	if (n > 0)
		alert_log(LOG_NOTICE, "outbox %s: %d undelivered alert(s) from a previous run",
		          h->outbox, n);
	return n < 0 ? -1 : 0;
}

/* Queue every entry of the outbox not queued yet (parking what is
 * unreadable or belongs to no configured hook); how many, or -1. */
static int hub_scan_outbox(alert_hub *h)
{
	char err[ALERT_ERR_MAX], id[ALERT_ID_MAX + 8];
	struct dirent *de;
	outbox_entry e;
	alert_hook *k;
	DIR *d;
	size_t len, loaded = 0;

	if ((d = opendir(h->outbox)) == NULL) {
		alert_log(LOG_ERR, "outbox %s: %s", h->outbox, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || len - 5 >= sizeof(id) ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		memcpy(id, de->d_name, len - 5);
		id[len - 5] = '\0';
		if (outbox_entry_load(h->outbox, de->d_name, &e, err, sizeof(err)) == -1) {
			alert_log(LOG_ERR, "%s; parking it", err);
			outbox_park(h->outbox, id);
			continue;
		}
		outbox_entry_clear(&e);
		if ((k = hub_hook_by_key(h, e.hook)) == NULL || strcmp(e.id, id) != 0) {
			alert_log(LOG_ERR,
			          "outbox %s/%s: its webhook is no longer configured; parked "
			          "(alert for %s/%s)",
			          h->outbox, de->d_name, e.spool, e.item);
			outbox_park(h->outbox, id);
			continue;
		}
		if (hub_queue_has(k, e.id))
			continue;
		if (hub_queue_push(k, e.id, e.attempts, e.created_ms, e.next_ms) == 0)
			loaded++;
	}
	closedir(d);
	return (int)loaded;
}

/* 1 when id is in k's queue. */
static int hub_queue_has(alert_hook *k, const char *id)
{
	int has = 0;

	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->nq && !has; i++)
		has = strcmp(k->q[i].id, id) == 0;
	pthread_mutex_unlock(&k->mu);
	return has;
}

/* See alert.h. */
int alert_hub_rescan(alert_hub *h)
{
	int n;

	if (h == NULL || h->nhooks == 0 || !h->started)
		return 0;
	if ((n = hub_scan_outbox(h)) > 0) {
		alert_log(LOG_INFO, "outbox %s: %d alert(s) queued by another process", h->outbox,
		          n);
		for (size_t i = 0; i < h->nhooks; i++) {
			pthread_mutex_lock(&h->hooks[i].mu);
			pthread_cond_signal(&h->hooks[i].cv);
			pthread_mutex_unlock(&h->hooks[i].mu);
		}
	}
	return n;
}

/* See alert.h. */
void alert_hub_producer(alert_hub *h)
{
	if (h != NULL)
		h->producer = 1;
}

/* See alert.h.  The event is the verdict's last review action; the
 * verdict (with that entry) makes the alert's id, so a retry of the same
 * decision queues nothing new. */
int alert_hub_submit_decision(alert_hub *h, const char *spool, const char *item_id,
                              const json_t *verdict)
{
	const json_t *hist = json_object_get(verdict, "review");
	const char *action = json_string_value(
	        json_object_get(json_array_get(hist, json_array_size(hist) - 1), "action"));
	json_t *v;
	int rc;

	if (action == NULL || (strcmp(action, "release") && strcmp(action, "reject"))) {
		errno = EINVAL;
		return -1;
	}
	if ((v = json_deep_copy(verdict)) == NULL)
		return -1;
	json_object_set_new(v, "event",
	                    json_string(strcmp(action, "release") == 0 ? "released" : "rejected"));
	rc = alert_hub_submit(h, spool, item_id, v);
	json_decref(v);
	return rc;
}

/* Loads the outbox and starts one delivery thread per webhook, with all
 * signals blocked in them so the daemon's signal handling is unaffected. */
int alert_hub_start(alert_hub *h)
{
	sigset_t all, old;
	int rc = 0;

	if (h->nhooks == 0 || h->started)
		return 0;
	if (hub_ensure_outbox(h) == -1 || hub_load_outbox(h) == -1)
		return -1;
	atomic_store(&h->stop, 0);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (size_t i = 0; i < h->nhooks; i++) {
		alert_hook *k = &h->hooks[i];
		if (getrandom(&k->seed, sizeof(k->seed), GRND_NONBLOCK) != sizeof(k->seed))
			k->seed = (unsigned)getpid() ^ (unsigned)alert_now_ms() ^ (unsigned)i;
		if (pthread_create(&k->thread, NULL, hook_run, k) != 0) {
			alert_log(LOG_ERR, "cannot start delivery thread for %s", k->display);
			rc = -1;
			break;
		}
		k->running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	h->started = 1;
	if (rc == -1)
		alert_hub_stop(h);
	return rc;
}

/* Whether this hook wants an alert for this verdict. */
static int hub_wants(const alert_hook *k, const char *spool, int hold, int max_sev)
{
	if (k->spools != NULL) {
		size_t i;
		for (i = 0; i < k->nspools; i++)
			if (strcmp(k->spools[i], spool) == 0)
				break;
		if (i == k->nspools)
			return 0;
	}
	if (k->every_verdict)
		return 1;
	return hold && max_sev >= k->min_severity;
}

/* A producer running as root gives the entry it wrote to the outbox's
 * owner, or the daemon could not read it (and would park it). */
static void hub_give_to_owner(const alert_hub *h, const char *id)
{
	char name[ALERT_ID_MAX + 8], path[VMS_ALERT_PATH_MAX];
	struct stat st;

	snprintf(name, sizeof name, "%s.json", id);
	if (geteuid() != 0 || stat(h->outbox, &st) < 0 ||
	    outbox_path(path, sizeof path, h->outbox, name) == -1)
		return;
	if (chown(path, st.st_uid, st.st_gid) < 0)
		alert_log(LOG_WARNING, "outbox %s: cannot give to its owner: %s", path,
		          strerror(errno));
}

/* Builds, persists and enqueues one alert for one hook.  0 when it is on
 * disk (or was already), -1 with errno when it could not be written.  The
 * id hashes the hook, spool, item and alert type (not the verdict text,
 * which changes with every screening of the same item). */
static int hub_queue_one(alert_hook *k, const char *spool, const char *item_id,
                         const json_t *verdict, int hold)
{
	char err[ALERT_ERR_MAX], path[VMS_ALERT_PATH_MAX], name[ALERT_ID_MAX + 16];
	const char *parts[] = {k->key_id, spool, item_id, alert_event_type(verdict)};
	outbox_entry e;
	struct stat st;
	int saved;

	memset(&e, 0, sizeof(e));
	memcpy(e.id, "msg_", 4);
	hub_sha_hex(parts, 4, e.id + 4, 32);
	snprintf(name, sizeof(name), "%s.json", e.id);
	if (outbox_path(path, sizeof(path), k->hub->outbox, name) == -1)
		return -1;
	if (stat(path, &st) == 0)
		return 0; /* this alert of this item was queued before and is pending */
	snprintf(name, sizeof(name), "parked/%s.json", e.id);
	if (outbox_path(path, sizeof(path), k->hub->outbox, name) == 0 && stat(path, &st) == 0)
		return 0;
	if ((e.body = alert_payload_build(k->format, verdict, spool, item_id, err, sizeof(err))) ==
	    NULL) {
		alert_log(LOG_ERR, "alert for %s/%s to %s: %s", spool, item_id, k->display, err);
		errno = EINVAL;
		return -1;
	}
	snprintf(e.hook, sizeof(e.hook), "%s", k->key_id);
	snprintf(e.type, sizeof(e.type), "%s", alert_event_type(verdict));
	(void)hold;
	snprintf(e.spool, sizeof(e.spool), "%s", spool);
	snprintf(e.item, sizeof(e.item), "%s", item_id);
	e.created_ms = e.next_ms = alert_now_ms();
	if (outbox_entry_save(k->hub->outbox, &e) == -1) {
		saved = errno;
		outbox_entry_clear(&e);
		if (saved == EEXIST)
			return 0; /* another worker is queueing this very verdict */
		alert_log(LOG_ERR, "outbox %s: cannot queue alert for %s/%s to %s: %s%s",
		          k->hub->outbox, spool, item_id, k->display, strerror(saved),
		          saved == ENOSPC || saved == EDQUOT ? " (temporary; retry later)" : "");
		errno = saved;
		return -1;
	}
	outbox_entry_clear(&e);
	if (k->hub->producer)
		hub_give_to_owner(k->hub, e.id);
	alert_log(LOG_INFO, "queued %s %s for %s/%s to %s", e.type, e.id, spool, item_id,
	          k->display);
	if (hub_queue_push(k, e.id, 0, e.created_ms, e.next_ms) == -1) {
		/* on disk, so the next start delivers it */
		alert_log(LOG_ERR, "out of memory queueing %s; it stays in the outbox", e.id);
	}
	return 0;
}

/* See alert.h.  Queues one alert per hook that wants the verdict; tries
 * every hook even if one fails. */
int alert_hub_submit(alert_hub *h, const char *spool, const char *item_id, const json_t *v)
{
	const char *verdict;
	int hold, max_sev, rc = 0, saved = 0;

	if (h == NULL || h->nhooks == 0)
		return 0;
	if (spool == NULL || item_id == NULL || !json_is_object(v)) {
		alert_log(LOG_ERR, "verdict of %s/%s is not a JSON object", spool ? spool : "?",
		          item_id ? item_id : "?");
		errno = EINVAL;
		return -1;
	}
	if (hub_ensure_outbox(h) == -1) {
		errno = EAGAIN;
		return -1;
	}
	verdict = json_string_value(json_object_get(v, "verdict"));
	hold = verdict == NULL || strcmp(verdict, "pass") != 0; /* unknown: treat as hold */
	max_sev = alert_verdict_max_severity(v);
	for (size_t i = 0; i < h->nhooks; i++) {
		if (!hub_wants(&h->hooks[i], spool, hold, max_sev))
			continue;
		if (hub_queue_one(&h->hooks[i], spool, item_id, v, hold) == -1) {
			saved = errno;
			rc = -1;
		}
	}
	if (rc == -1)
		errno = saved;
	return rc;
}

/* Records the outcome of an attempt in the in-memory queue.  After a
 * delivery, entries that were waiting out a backoff are made due now: the
 * endpoint is evidently back, so the backlog drains at once instead of
 * waiting hours. */
static void hook_finish(alert_hook *k, const char *id, int remove, int attempts, int64_t next_ms,
                        int delivered)
{
	int64_t now = alert_now_ms();

	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->nq; i++) {
		if (strcmp(k->q[i].id, id) != 0)
			continue;
		if (remove) {
			k->q[i] = k->q[k->nq - 1];
			k->nq--;
		} else {
			k->q[i].attempts = attempts;
			k->q[i].next_ms = next_ms;
		}
		break;
	}
	if (delivered)
		for (size_t i = 0; i < k->nq; i++)
			if (k->q[i].next_ms > now)
				k->q[i].next_ms = now;
	pthread_mutex_unlock(&k->mu);
}

/* One delivery attempt for one entry, and what follows from its outcome:
 * remove (2xx), reschedule (persisted), or park (logged at LOG_ERR). */
static void hook_attempt(alert_hook *k, const hook_item *it)
{
	char err[ALERT_ERR_MAX], name[ALERT_ID_MAX + 8], what[256];
	webhook_result r;
	outbox_entry e;
	int64_t delay;
	int permanent, park;

	snprintf(name, sizeof(name), "%s.json", it->id);
	if (outbox_entry_load(k->hub->outbox, name, &e, err, sizeof(err)) == -1) {
		if (errno == ENOENT || strstr(err, "No such file") != NULL) {
			hook_finish(k, it->id, 1, 0, 0, 0); /* removed by hand */
			return;
		}
		alert_log(LOG_ERR, "%s; parking it", err);
		outbox_park(k->hub->outbox, it->id);
		hook_finish(k, it->id, 1, 0, 0, 0);
		return;
	}
	webhook_post(k->multi, k->url, k->connect_timeout_s, k->timeout_s, k->key, k->keylen, e.id,
	             e.body, &k->hub->stop, &r);
	if (r.aborted) {
		outbox_entry_clear(&e);
		return; /* stopping: the entry stays as it was */
	}
	e.attempts++;
	if (r.status >= 200 && r.status < 300) {
		if (outbox_remove(k->hub->outbox, e.id) == -1)
			alert_log(LOG_WARNING, "delivered %s but cannot remove it: %s (may repeat)",
			          e.id, strerror(errno));
		alert_log(LOG_INFO, "delivered %s (%s/%s) to %s: HTTP %ld, attempt %d", e.id,
		          e.spool, e.item, k->display, r.status, e.attempts);
		atomic_fetch_add(&k->n_delivered, 1);
		hook_finish(k, e.id, 1, 0, 0, 1);
		outbox_entry_clear(&e);
		return;
	}
	atomic_fetch_add(&k->n_failed, 1);
	if (r.status != 0)
		snprintf(what, sizeof(what), "HTTP %ld", r.status);
	else
		snprintf(what, sizeof(what), "%s", r.error);
	permanent = r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429;
	delay = outbox_retry_delay_ms(e.attempts, k->max_attempts, k->retry_base_s,
	                              (double)rand_r(&k->seed) / ((double)RAND_MAX + 1));
	if (r.retry_after_s > 0 && (r.status == 429 || r.status == 503) && delay != -1) {
		/* the endpoint asked for quiet: this entry and every other one wait */
		delay = (int64_t)r.retry_after_s * 1000;
		pthread_mutex_lock(&k->mu);
		k->quiet_until_ms = alert_now_ms() + delay;
		pthread_mutex_unlock(&k->mu);
	}
	park = delay == -1 || (permanent && e.attempts >= ALERT_PERMANENT_MAX_ATTEMPTS);
	e.last_status = r.status;
	snprintf(e.last_error, sizeof(e.last_error), "%s", what);
	e.next_ms = park ? 0 : alert_now_ms() + delay;
	if (outbox_entry_save(k->hub->outbox, &e) == -1)
		alert_log(LOG_WARNING, "outbox: cannot record attempt %d of %s: %s (temporary)",
		          e.attempts, e.id, strerror(errno));
	if (park) {
		atomic_fetch_add(&k->n_parked, 1);
		if (outbox_park(k->hub->outbox, e.id) == -1)
			alert_log(LOG_ERR, "cannot park %s: %s", e.id, strerror(errno));
		alert_log(LOG_ERR,
		          "PARKED alert %s (%s %s/%s) for %s after %d attempt(s), last: %s; it "
		          "is in %s/parked/, move it back to %s/ and restart to retry",
		          e.id, e.type, e.spool, e.item, k->display, e.attempts, what,
		          k->hub->outbox, k->hub->outbox);
		hook_finish(k, e.id, 1, 0, 0, 0);
	} else {
		alert_log(LOG_WARNING, "attempt %d of %s (%s/%s) to %s failed: %s; next in %.2fs%s",
		          e.attempts, e.id, e.spool, e.item, k->display, what, delay / 1000.0,
		          r.retry_after_s > 0 ? " (Retry-After)" : "");
		hook_finish(k, e.id, 0, e.attempts, e.next_ms, 0);
	}
	outbox_entry_clear(&e);
}

/* The delivery thread of one hook: wait for the earliest due entry, make
 * one attempt, repeat until alert_hub_stop(). */
/*
 * The longest any entry can rightly wait: the last backoff step with its
 * jitter, or the longest Retry-After honoured (a day).  A next-attempt
 * time further away than that was computed under a wrong clock (issue 10:
 * an entry saved while the clock was a year ahead waited a year).
 */
static int64_t hook_longest_wait_ms(const alert_hook *k)
{
	int64_t step = outbox_retry_delay_ms(k->max_attempts - 1, k->max_attempts, k->retry_base_s,
	                                     0.999999);
	return step > 86400000 ? step : 86400000;
}

/* Make times that lie beyond any rightful wait due now (under k->mu). */
static void hook_clamp_times(alert_hook *k, int64_t now)
{
	int64_t cap = now + hook_longest_wait_ms(k);

	if (k->quiet_until_ms > cap)
		k->quiet_until_ms = now;
	for (size_t i = 0; i < k->nq; i++)
		if (k->q[i].next_ms > cap) {
			alert_log(LOG_WARNING,
			          "outbox: %s (%s) was not due for %.0f days: the clock must have "
			          "been "
			          "wrong; trying it now",
			          k->q[i].id, k->display,
			          (double)(k->q[i].next_ms - now) / 86400000.0);
			k->q[i].next_ms = now;
		}
}

static void *hook_run(void *arg)
{
	alert_hook *k = arg;
	alert_hub *h = k->hub;
	hook_item it;
	struct timespec ts;
	int64_t now, due;

	pthread_mutex_lock(&k->mu);
	while (!atomic_load(&h->stop)) {
		size_t best = k->nq;
		for (size_t i = 0; i < k->nq; i++)
			if (best == k->nq || k->q[i].next_ms < k->q[best].next_ms ||
			    (k->q[i].next_ms == k->q[best].next_ms &&
			     k->q[i].created_ms < k->q[best].created_ms))
				best = i;
		if (best == k->nq) {
			pthread_cond_wait(&k->cv, &k->mu);
			continue;
		}
		now = alert_now_ms();
		hook_clamp_times(k, now);
		due = k->q[best].next_ms > k->quiet_until_ms ? k->q[best].next_ms
		                                             : k->quiet_until_ms;
		if (due > now) {
			ts.tv_sec = (time_t)(due / 1000);
			ts.tv_nsec = (long)(due % 1000) * 1000000;
			pthread_cond_timedwait(&k->cv, &k->mu, &ts);
			continue;
		}
		it = k->q[best];
		pthread_mutex_unlock(&k->mu);
		hook_attempt(k, &it);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* See alert.h. */
const char *alert_hub_outbox(const alert_hub *h)
{
	return h != NULL && h->nhooks > 0 ? h->outbox : NULL;
}

/* See alert.h.  Wakes every thread (condition variable and curl poll) and
 * joins them; an attempt in flight is abandoned and its entry kept. */
void alert_hub_stop(alert_hub *h)
{
	if (h == NULL || !h->started)
		return;
	atomic_store(&h->stop, 1);
	for (size_t i = 0; i < h->nhooks; i++) {
		alert_hook *k = &h->hooks[i];
		pthread_mutex_lock(&k->mu);
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
		if (k->multi)
			curl_multi_wakeup(k->multi);
	}
	for (size_t i = 0; i < h->nhooks; i++)
		if (h->hooks[i].running) {
			pthread_join(h->hooks[i].thread, NULL);
			h->hooks[i].running = 0;
		}
	h->started = 0;
}

/* Frees one hook's memory; the key is wiped first. */
static void hook_free(alert_hook *k)
{
	if (k->key) {
		OPENSSL_cleanse(k->key, k->keylen);
		free(k->key);
	}
	for (size_t i = 0; i < k->nspools; i++)
		free(k->spools ? k->spools[i] : NULL);
	free(k->spools);
	free(k->url);
	free(k->q);
	if (k->multi) {
		curl_multi_cleanup(k->multi);
		pthread_mutex_destroy(&k->mu);
		pthread_cond_destroy(&k->cv);
	}
}

/* See alert.h. */
void alert_hub_free(alert_hub *h)
{
	if (h == NULL)
		return;
	alert_hub_stop(h);
	for (size_t i = 0; i < h->nhooks; i++)
		hook_free(&h->hooks[i]);
	free(h->hooks);
	if (h->lock_fd != -1)
		close(h->lock_fd);
	pthread_mutex_destroy(&h->open_mu);
	free(h);
	curl_global_cleanup();
}

/* See alert.h.  Takes each hook's queue lock for a moment to count. */
void alert_hub_metrics(alert_hub *h, FILE *o)
{
	static const char *const help[][3] = {
	        {"vmscreen_webhook_delivered_total", "counter", "Alerts a webhook accepted (2xx)."},
	        {"vmscreen_webhook_failed_attempts_total", "counter",
	         "Delivery attempts that failed (to be retried or parked)."},
	        {"vmscreen_webhook_parked_total", "counter",
	         "Alerts given up on, kept in parked/."},
	        {"vmscreen_webhook_pending", "gauge", "Alerts waiting for this webhook."},
	};

	if (h == NULL || h->nhooks == 0)
		return;
	for (size_t m = 0; m < sizeof help / sizeof *help; m++) {
		fprintf(o, "# HELP %s %s\n# TYPE %s %s\n", help[m][0], help[m][2], help[m][0],
		        help[m][1]);
		for (size_t i = 0; i < h->nhooks; i++) {
			alert_hook *k = &h->hooks[i];
			long v;
			if (m == 0)
				v = atomic_load(&k->n_delivered);
			else if (m == 1)
				v = atomic_load(&k->n_failed);
			else if (m == 2)
				v = atomic_load(&k->n_parked);
			else {
				pthread_mutex_lock(&k->mu);
				v = (long)k->nq;
				pthread_mutex_unlock(&k->mu);
			}
			fprintf(o, "%s{hook=\"%s\"} %ld\n", help[m][0], k->name, v);
		}
	}
}
