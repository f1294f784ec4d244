/*
 * review.c - `vmscreen list|show|release|reject`: what a compliance
 * reviewer does with held recordings.
 *
 * A decision is a spool move (companions first, audio last, never
 * replacing) made under the spool's "review" lock, after the verdict file
 * has been rewritten atomically with the decision in it; then one line goes
 * to the audit log (what, who, when, why).  The daemon never touches hold/
 * or rejected/ while running, so this is safe beside it.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cli/review.h"
#include "conf/conf.h"
#include "core/internal.h" /* vms_unsafe_char_len */
#include "alert/alert.h"
#include "review/review.h"
#include "spool/spool.h"

#ifndef VMS_SYSCONFDIR
#define VMS_SYSCONFDIR "/etc/vmscreen"
#endif
#ifndef VMS_SERVICE_USER
#define VMS_SERVICE_USER "vmscreen"
#endif

struct review_opts {
	const char *config;
	const char *spool;
	const char *state;
	const char *reason;
	int json;
	const char *arg;  /* the one positional argument (ID) */
	int config_given; /* --config was on the command line */
	int deciding;     /* release/reject: set by the caller before parsing */
};

static void review_log(int prio, const char *msg);
static int review_parse(int argc, char **argv, struct review_opts *o, int want_arg,
                        const char *usage);
static int review_load(struct review_opts *o, config_t *cfg, spool_conf *sc);
static int review_may_choose_config(void);
static json_t *review_verdict(const spool *sp, const spool_item *it);
static int review_decide(int argc, char **argv, const char *action, spool_state to);
static void review_who(char *buf, size_t len, decision_who *dw);
static void review_not_found(const char *id, const char *spool_name);
static void review_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Everything the review commands print goes through here (issue 10: a
 * reason or a transcript carrying escape sequences was printed raw, and a
 * terminal obeyed them).  Control characters (C0 but newline, DEL, C1) and
 * the bidirectional overrides that reorder what a reviewer reads
 * (U+200E/F, U+202A-E, U+2066-9, U+061C) are shown as '?'.
 */
static void review_printf(const char *fmt, ...)
{
	va_list ap;
	char *buf = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	for (unsigned char *p = (unsigned char *)buf; *p;) {
		size_t len = vms_unsafe_char_len(p);
		if (len > 0) {
			*p = '?';
			memmove(p + 1, p + len, strlen((char *)p + len) + 1);
		}
		p++;
	}
	fputs(buf, stdout);
	free(buf);
}

/* Log lines of the spool module, as plain messages for a terminal. */
static void review_log(int prio, const char *msg)
{
	if (prio <= LOG_NOTICE)
		fprintf(stderr, "vmscreen: %s\n", msg);
}

/*
 * Options shared by the commands.  getopt state is reset first: main() may
 * have used it already.
 */
static int review_parse(int argc, char **argv, struct review_opts *o, int want_arg,
                        const char *usage)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"spool", required_argument, NULL, 's'},
	                                     {"state", required_argument, NULL, 't'},
	                                     {"reason", required_argument, NULL, 'r'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof *o);
	optind = 0;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "c:s:t:r:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			o->config_given = 1;
			break;
		case 's':
			o->spool = optarg;
			break;
		case 't':
			o->state = optarg;
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			review_printf("usage: vmscreen %s\n", usage);
			return 1;
		default:
			fprintf(stderr, "usage: vmscreen %s\n", usage);
			return 2;
		}
	}
	if (want_arg) {
		if (optind + 1 != argc) {
			fprintf(stderr, "usage: vmscreen %s\n", usage);
			return 2;
		}
		o->arg = argv[optind];
	} else if (optind != argc) {
		fprintf(stderr, "usage: vmscreen %s\n", usage);
		return 2;
	}
	spool_set_logger(review_log);
	return 0;
}

/* Read the daemon's configuration: spools and audit log.  The file is
 * --config, else $VMSCREEN_CONFIG (for a decision only when this user may
 * choose), else the installed one. */
static int review_load(struct review_opts *o, config_t *cfg, spool_conf *sc)
{
	char err[8192];

	o->config = vms_conf_path(o->config, !o->deciding || review_may_choose_config());

	if (vms_conf_read(cfg, o->config, err, sizeof err) < 0) {
		fprintf(stderr, "vmscreen: %s\n", err);
		return -1;
	}
	if (spool_conf_load(cfg, sc, err, sizeof err) < 0) {
		fprintf(stderr, "vmscreen: %s: %s\n", o->config, err);
		config_destroy(cfg);
		return -1;
	}
	if (o->spool != NULL) {
		for (size_t i = 0; i < sc->n_spools; i++)
			if (strcmp(sc->spools[i].name, o->spool) == 0)
				return 0;
		fprintf(stderr, "vmscreen: %s: no spool named \"%s\"\n", o->config, o->spool);
		spool_conf_free(sc);
		config_destroy(cfg);
		return -1;
	}
	return 0;
}

/* The item's verdict object, or NULL (with a message) when unreadable. */
static json_t *review_verdict(const spool *sp, const spool_item *it)
{
	char err[SPOOL_PATH_MAX + 256];
	json_t *v = decision_verdict(sp, it, err, sizeof err);

	if (v == NULL)
		fprintf(stderr, "vmscreen: %s\n", err);
	return v;
}

/* The "not found" message: permission denied is said as such (issue 10). */
static void review_not_found(const char *id, const char *spool_name)
{
	if (errno == EACCES || errno == EPERM)
		fprintf(stderr,
		        "vmscreen: %s: permission denied reading spool %s (review as the vmscreen "
		        "user or a member of its group)\n",
		        id, spool_name ? spool_name : "directories");
	else
		fprintf(stderr, "vmscreen: %s: no such item in %s\n", id,
		        spool_name ? spool_name : "any spool");
}

/* The kernel's login uid of this process (pam_loginuid sets it at login;
 * sudo and su keep it, and a process cannot change its own without
 * CAP_AUDIT_CONTROL), or -1 when there is none (no login session). */
static long review_login_uid(void)
{
	FILE *f = fopen("/proc/self/loginuid", "re");
	unsigned long v = 4294967295UL;

	if (f != NULL) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 4294967295UL;
		fclose(f);
	}
	return v >= 4294967295UL ? -1 : (long)v;
}

/* An account's name, or "uid N". */
static void review_user_name(long uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid((uid_t)uid);

	if (pw != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %ld", uid);
}

/*
 * Who is deciding, from the kernel and never from the environment (issue
 * 11: SUDO_USER=anyone wrote anyone into the audit log).  The account is
 * getuid()'s; the person behind a sudo or su to it is the login uid.
 * Without a login session the record says so rather than naming the
 * service account alone.
 */
static void review_who(char *buf, size_t len, decision_who *dw)
{
	char acct[64], person[64];

	dw->uid = (long)getuid();
	dw->login_uid = review_login_uid();
	dw->via = "cli";
	dw->by = buf;
	review_user_name(dw->uid, acct, sizeof acct);
	if (dw->login_uid < 0) {
		snprintf(buf, len, "%s (no login session)", acct);
		return;
	}
	review_user_name(dw->login_uid, person, sizeof person);
	if (dw->login_uid == dw->uid)
		snprintf(buf, len, "%s", acct);
	else
		snprintf(buf, len, "%s (as %s)", person, acct);
}

/*
 * 1 when this process may choose its configuration (--config,
 * $VMSCREEN_CONFIG) for a decision: root and the service account (tests,
 * staging).  Anyone else decides with the installed configuration, so a
 * reviewer cannot point the audit log elsewhere (issue 11).
 */
static int review_may_choose_config(void)
{
	struct passwd *pw = getpwnam(VMS_SERVICE_USER);

	return getuid() == 0 || (pw != NULL && pw->pw_uid == getuid());
}

struct list_row {
	char *line;
	char id[SPOOL_ID_LEN + 1];
};

struct list_ctx {
	struct list_row *rows;
	size_t n, cap;
	int json;
	json_t *arr;
};

/* spool_walk callback of `list`: one row per item. */
static int review_list_cb(const spool *sp, const spool_item *it, void *arg)
{
	struct list_ctx *c = arg;
	json_t *v = it->has_verdict ? review_verdict(sp, it) : NULL;
	const char *verdict = v ? json_string_value(json_object_get(v, "verdict")) : NULL;
	const char *when = v ? json_string_value(json_object_get(v, "screened_at")) : NULL;
	char cats[256] = "";
	json_t *a;
	size_t i;

	json_array_foreach(v ? json_object_get(v, "alerts") : NULL, i, a)
	{
		const char *t = json_string_value(json_object_get(a, "type"));
		const char *cat = json_string_value(json_object_get(a, "category"));
		size_t l = strlen(cats);
		snprintf(cats + l, sizeof cats - l, "%s%s", l ? "," : "",
		         t && strcmp(t, "phrasing") == 0 && cat ? cat : (t ? t : "?"));
	}
	if (c->json) {
		json_array_append_new(
		        c->arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", it->id,
		                          "spool", sp->name, "state", spool_state_name(it->state),
		                          "name", it->name, "verdict", verdict ? verdict : "",
		                          "findings", cats, "screened_at", when ? when : ""));
	} else {
		if (c->n == c->cap) {
			size_t nc = c->cap ? c->cap * 2 : 64;
			struct list_row *nr = realloc(c->rows, nc * sizeof *nr);
			if (nr == NULL) {
				json_decref(v);
				return -1;
			}
			c->rows = nr;
			c->cap = nc;
		}
		struct list_row *r = &c->rows[c->n];
		memcpy(r->id, it->id, sizeof r->id);
		if (asprintf(&r->line, "%-25s  %-12s  %-8s  %-7s  %-24s  %s", it->id, sp->name,
		             spool_state_name(it->state), verdict ? verdict : "-",
		             cats[0] ? cats : "-", it->name) < 0) {
			json_decref(v);
			return -1;
		}
		c->n++;
	}
	json_decref(v);
	return 0;
}

/* Rows ordered by id (which is claim time). */
static int review_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_row *)a)->id, ((const struct list_row *)b)->id);
}

/* vmscreen list [--config FILE] [--spool S] [--state STATE|all] [--json] */
int review_cmd_list(int argc, char **argv)
{
	struct review_opts o;
	struct list_ctx c;
	spool_conf sc;
	config_t cfg;
	spool_state st = SPOOL_HOLD;
	int all = 0, rc;

	if ((rc = review_parse(argc, argv, &o, 0,
	                       "list [--config FILE] [--spool S] [--state "
	                       "hold|released|rejected|active|all] [--json]")) != 0)
		return rc == 1 ? 0 : rc;
	if (o.state != NULL) {
		if (strcmp(o.state, "all") == 0)
			all = 1;
		else if (spool_state_parse(o.state, &st) < 0 || st == SPOOL_INCOMING) {
			fprintf(stderr,
			        "vmscreen: --state %s: one of hold, released, rejected, "
			        "active, all\n",
			        o.state);
			return 2;
		}
	}
	if (review_load(&o, &cfg, &sc) < 0)
		return 1;
	memset(&c, 0, sizeof c);
	c.json = o.json;
	c.arr = o.json ? json_array() : NULL;
	rc = 0;
	for (size_t i = 0; i < sc.n_spools; i++) {
		if (o.spool != NULL && strcmp(sc.spools[i].name, o.spool) != 0)
			continue;
		for (int s = SPOOL_ACTIVE; s < SPOOL_NSTATES; s++)
			if ((all || s == (int)st) &&
			    spool_walk(&sc.spools[i], (spool_state)s, review_list_cb, &c) < 0)
				rc = 1;
	}
	if (o.json) {
		char *t =
		        json_dumps(c.arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
		if (t != NULL)
			review_printf("%s\n", t);
		free(t);
		json_decref(c.arr);
	} else {
		if (c.n > 0)
			qsort(c.rows, c.n, sizeof *c.rows, review_row_cmp);
		if (c.n > 0)
			review_printf("%-25s  %-12s  %-8s  %-7s  %-24s  %s\n", "ID", "SPOOL",
			              "STATE", "VERDICT", "FINDINGS", "NAME");
		for (size_t i = 0; i < c.n; i++) {
			puts(c.rows[i].line);
			free(c.rows[i].line);
		}
		free(c.rows);
	}
	spool_conf_free(&sc);
	config_destroy(&cfg);
	return rc;
}

/* vmscreen show ID [--config FILE] [--spool S] [--json] */
int review_cmd_show(int argc, char **argv)
{
	struct review_opts o;
	spool_conf sc;
	config_t cfg;
	const spool *sp;
	spool_item it;
	char path[SPOOL_PATH_MAX];
	json_t *v = NULL, *a;
	size_t i;
	int rc;

	if ((rc = review_parse(argc, argv, &o, 1,
	                       "show ID [--config FILE] [--spool S] [--json]")) != 0)
		return rc == 1 ? 0 : rc;
	if (review_load(&o, &cfg, &sc) < 0)
		return 1;
	rc = 1;
	if (decision_find(&sc, o.spool, o.arg, &sp, &it) < 0) {
		review_not_found(o.arg, o.spool);
		goto out;
	}
	if (!it.has_verdict) {
		spool_item_path(sp, &it, path, sizeof path);
		review_printf(
		        "id:       %s\nspool:    %s\nstate:    %s\nname:     %s\nfile:     %s\n"
		        "verdict:  (none yet)\n",
		        it.id, sp->name, spool_state_name(it.state), it.name, path);
		rc = 0;
		goto out;
	}
	if ((v = review_verdict(sp, &it)) == NULL)
		goto out;
	if (o.json) {
		/* ASCII: bidirectional overrides become \u escapes, not reordering */
		char *t = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
		if (t != NULL)
			review_printf("%s\n", t);
		free(t);
		rc = 0;
		goto out;
	}
	spool_item_path(sp, &it, path, sizeof path);
#define S(k)                                                                                       \
	(json_string_value(json_object_get(v, k)) ? json_string_value(json_object_get(v, k)) : "-")
	review_printf("id:       %s\nspool:    %s\nstate:    %s\nname:     %s\nfile:     %s\n",
	              it.id, sp->name, spool_state_name(it.state), it.name, path);
	review_printf("verdict:  %s\nscreened: %s\nduration: %.2f s\n", S("verdict"),
	              S("screened_at"), json_number_value(json_object_get(v, "duration_s")));
	json_t *al = json_object_get(v, "alerts");
	review_printf("findings: %zu\n", json_array_size(al));
	json_array_foreach(al, i, a)
	{
		const char *rule = json_string_value(json_object_get(a, "rule"));
		review_printf("  [%7.2f - %7.2f s] %s/%s %s: \"%s\"%s%s%s\n",
		              json_number_value(json_object_get(a, "start_s")),
		              json_number_value(json_object_get(a, "end_s")),
		              json_string_value(json_object_get(a, "type")) ?: "?",
		              json_string_value(json_object_get(a, "category")) ?: "?",
		              json_string_value(json_object_get(a, "severity")) ?: "?",
		              json_string_value(json_object_get(a, "evidence")) ?: "",
		              rule && *rule ? " (rule " : "", rule && *rule ? rule : "",
		              rule && *rule ? ")" : "");
	}
	json_t *tr = json_object_get(v, "transcript");
	json_t *chs = json_object_get(tr, "channels");
	if (json_array_size(chs) == 1)
		review_printf("transcript (channel %lld only: the agent's):\n",
		              (long long)json_integer_value(json_array_get(chs, 0)));
	else
		review_printf("transcript:\n");
	review_printf("  %s\n", json_string_value(json_object_get(tr, "text"))
	                                ? json_string_value(json_object_get(tr, "text"))
	                                : "(none)");
	json_array_foreach(json_object_get(v, "review"), i, a)
	{
		review_printf("review:   %s by %s at %s: %s\n",
		              json_string_value(json_object_get(a, "action")) ?: "?",
		              json_string_value(json_object_get(a, "by")) ?: "?",
		              json_string_value(json_object_get(a, "at")) ?: "?",
		              json_string_value(json_object_get(a, "reason")) ?: "");
	}
#undef S
	rc = 0;
out:
	json_decref(v);
	spool_conf_free(&sc);
	config_destroy(&cfg);
	return rc;
}

/*
 * Queue the decision's alert in the daemon's outbox, for the daemon to
 * deliver (this process has no delivery thread: alert_hub_producer).  A
 * failure is said, and the decision stands.
 */
static void review_alert(const config_t *cfg, const spool *sp, const char *id)
{
	char err[4096];
	spool_item it;
	alert_hub *h = alert_hub_new(cfg, err, sizeof err);
	json_t *v = NULL;

	if (h == NULL) {
		fprintf(stderr, "vmscreen: %s: decided; no alert was queued: webhooks: %s\n", id,
		        err);
		return;
	}
	alert_hub_producer(h);
	if (sp != NULL && spool_item_find(sp, id, &it) == 0)
		v = decision_verdict(sp, &it, err, sizeof err);
	if (v == NULL || alert_hub_submit_decision(h, sp->name, it.id, v) < 0)
		fprintf(stderr,
		        "vmscreen: %s: decided; its alert could not be queued (see above)\n", id);
	json_decref(v);
	alert_hub_free(h);
}

/*
 * release/reject: decision_make() does the work (the console makes the same
 * call); here, who is asking and what to print.
 */
static int review_decide(int argc, char **argv, const char *action, spool_state to)
{
	struct review_opts o;
	spool_conf sc;
	config_t cfg;
	char who[256], usage[128], msg[SPOOL_PATH_MAX + 512];
	decision_who dw;
	int rc;

	snprintf(usage, sizeof usage, "%s ID --reason TEXT [--config FILE] [--spool S]", action);
	if ((rc = review_parse(argc, argv, &o, 1, usage)) != 0)
		return rc == 1 ? 0 : rc;
	if (o.config_given && !review_may_choose_config()) {
		fprintf(stderr,
		        "vmscreen: %s: --config is only for root and the %s account; reviewers "
		        "decide with the installed configuration (%s)\n",
		        action, VMS_SERVICE_USER, VMS_SYSCONFDIR "/vmscreend.conf");
		return 2;
	}
	if (o.reason == NULL || o.reason[0] == '\0') {
		fprintf(stderr,
		        "vmscreen: %s: --reason TEXT is required (it goes to the audit log)\n",
		        action);
		return 2;
	}
	if (!decision_text_ok(o.reason)) { /* issue 18: it went unrecorded */
		fprintf(stderr,
		        "vmscreen: %s: --reason is not valid UTF-8 text; nothing was done (check "
		        "the terminal's or the script's character encoding)\n",
		        action);
		return 2;
	}
	o.deciding = 1;
	if (review_load(&o, &cfg, &sc) < 0)
		return 1;
	review_who(who, sizeof who, &dw);
	const spool *where = NULL;
	switch (decision_make(&sc, o.spool, o.arg, to, &dw, o.reason, &where, msg, sizeof msg)) {
	case DECISION_OK:
		review_printf("%s\n", msg);
		review_alert(&cfg, where, o.arg);
		rc = 0;
		break;
	case DECISION_ALREADY:
		review_printf("%s\n", msg);
		rc = 0;
		break;
	case DECISION_NOT_FOUND:
		review_not_found(o.arg, o.spool);
		rc = 1;
		break;
	default:
		fprintf(stderr, "vmscreen: %s\n", msg);
		rc = 1;
	}
	spool_conf_free(&sc);
	config_destroy(&cfg);
	return rc;
}

/* vmscreen release ID --reason TEXT */
int review_cmd_release(int argc, char **argv)
{
	return review_decide(argc, argv, "release", SPOOL_RELEASED);
}

/* vmscreen reject ID --reason TEXT */
int review_cmd_reject(int argc, char **argv)
{
	return review_decide(argc, argv, "reject", SPOOL_REJECTED);
}
