/*
 * conf.c - the one reader of vmscreend.conf.
 *
 * The file is parsed once, with @include resolved from the file's own
 * directory (not the working directory: under systemd that is /), and
 * every key at every level is checked against one schema: an unknown or
 * misspelt key is an error naming the file, the line and, when one is
 * close, the key that was meant (issue 10: `wrokers`, `hold_severty` and
 * `mood` were accepted and ignored).  The daemon, `vmscreen check` and the
 * review commands all read through here and then hand each module its
 * part: the top level to the daemon, `spools` and `audit_log` to the spool
 * module, `screening` to the core, `webhooks` to the alert hub (which
 * checks the keys of each webhook itself: they are its schema).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

#ifndef VMS_SYSCONFDIR
#define VMS_SYSCONFDIR "/etc/vmscreen"
#endif

enum conf_type { CONF_INT, CONF_NUM, CONF_BOOL, CONF_STR, CONF_GROUP, CONF_GROUPS, CONF_OWNED };

struct conf_key {
	const char *name;
	enum conf_type type;
	const struct conf_key *sub; /* CONF_GROUP / CONF_GROUPS: the members' schema */
};

static const struct conf_key conf_screening[] = {
        {"hmm", CONF_STR, NULL},
        {"lm", CONF_STR, NULL},
        {"dict", CONF_STR, NULL},
        {"models_dir", CONF_STR, NULL},
        {"hold_severity", CONF_STR, NULL},
        {"max_duration_s", CONF_NUM, NULL},
        {"min_duration_s", CONF_NUM, NULL},
        {"max_file_mb", CONF_INT, NULL},
        {"vocabulary_words", CONF_INT, NULL},
        {"transcribe_all_channels", CONF_BOOL, NULL},
        {"learned", CONF_BOOL, NULL},
        {"phone_adapt", CONF_BOOL, NULL},
        {"learned_report", CONF_NUM, NULL},
        {"learned_hold", CONF_NUM, NULL},
        {"learned_sure", CONF_NUM, NULL},
        {"learned_sure_words", CONF_NUM, NULL},
        {"agent_lm_weight", CONF_NUM, NULL},
        {NULL, 0, NULL},
};

static const struct conf_key conf_spool[] = {
        {"name", CONF_STR, NULL},      {"path", CONF_STR, NULL}, {"mode", CONF_STR, NULL},
        {"keep_days", CONF_NUM, NULL}, {NULL, 0, NULL},
};

static const struct conf_key conf_http[] = {
        {"listen", CONF_STR, NULL},      {"users_file", CONF_STR, NULL},
        {"console_dir", CONF_STR, NULL}, {"session_minutes", CONF_NUM, NULL},
        {"tls_cert", CONF_STR, NULL},    {"tls_key", CONF_STR, NULL},
        {"public_name", CONF_STR, NULL}, {NULL, 0, NULL},
};

/* issue 13: cluster mode (daemon/cluster.c checks the values) */
static const struct conf_key conf_cluster[] = {
        {"redis", CONF_STR, NULL},
        {"node", CONF_STR, NULL},
        {"stream", CONF_STR, NULL},
        {"group", CONF_STR, NULL},
        {"claim_idle_s", CONF_NUM, NULL},
        {"password_file", CONF_STR, NULL},
        {NULL, 0, NULL},
};

static const struct conf_key conf_top[] = {
        {"workers", CONF_INT, NULL},
        {"queue_size", CONF_INT, NULL},
        {"settle_ms", CONF_INT, NULL},
        {"rescan_interval_s", CONF_NUM, NULL},
        {"retry_interval_s", CONF_NUM, NULL},
        {"min_free_mb", CONF_INT, NULL},
        {"max_attempts", CONF_INT, NULL},
        {"metrics_file", CONF_STR, NULL},
        {"metrics_interval_s", CONF_NUM, NULL},
        {"stop_timeout_s", CONF_NUM, NULL},
        {"allow_root", CONF_BOOL, NULL},
        {"run_as_root", CONF_BOOL, NULL},
        {"audit_log", CONF_STR, NULL},
        {"outbox_dir", CONF_STR, NULL},
        {"spools", CONF_GROUPS, conf_spool},
        {"webhooks", CONF_OWNED, NULL}, /* each webhook: alert_hub_new's schema */
        {"screening", CONF_GROUP, conf_screening},
        {"http", CONF_GROUP, conf_http},
        {"cluster", CONF_GROUP, conf_cluster},
        {NULL, 0, NULL},
};

/* Levenshtein distance of two short keys, capped at 3 (enough to suggest). */
static int conf_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	int prev[64], cur[64];

	if (n >= 63 || m >= 63)
		return 3;
	for (size_t j = 0; j <= m; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = (int)i;
		for (size_t j = 1; j <= m; j++) {
			int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			int del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(int) * (m + 1));
	}
	return prev[m] < 3 ? prev[m] : 3;
}

/* "FILE:LINE" of a setting (the included file when it came from one). */
static void conf_where(const config_setting_t *s, const char *path, char *buf, size_t len)
{
	const char *f = config_setting_source_file(s);
	snprintf(buf, len, "%s:%d", f ? f : path, config_setting_source_line(s));
}

/* 1 when a setting has the schema's type (integers count as numbers). */
static int conf_type_ok(const config_setting_t *s, enum conf_type t)
{
	int st = config_setting_type(s);

	switch (t) {
	case CONF_INT:
		return st == CONFIG_TYPE_INT || st == CONFIG_TYPE_INT64;
	case CONF_NUM:
		return st == CONFIG_TYPE_INT || st == CONFIG_TYPE_INT64 || st == CONFIG_TYPE_FLOAT;
	case CONF_BOOL:
		return st == CONFIG_TYPE_BOOL;
	case CONF_STR:
		return st == CONFIG_TYPE_STRING;
	case CONF_GROUP:
		return st == CONFIG_TYPE_GROUP;
	case CONF_GROUPS:
	case CONF_OWNED:
		return st == CONFIG_TYPE_LIST;
	}
	return 0;
}

static const char *const conf_type_names[] = {"an integer",
                                              "a number",
                                              "true or false",
                                              "a string",
                                              "a group { ... }",
                                              "a list ( { ... }, ... )",
                                              "a list ( { ... }, ... )"};

static int conf_check_group(const config_setting_t *g, const struct conf_key *schema,
                            const char *prefix, const char *path, char *err, size_t errlen);

/* Check one member against its schema entry (recursing into groups). */
static int conf_check_member(const config_setting_t *s, const struct conf_key *k, const char *qual,
                             const char *path, char *err, size_t errlen)
{
	char where[PATH_MAX + 32], sub[256];

	if (!conf_type_ok(s, k->type)) {
		conf_where(s, path, where, sizeof where);
		snprintf(err, errlen, "%s: %s must be %s", where, qual, conf_type_names[k->type]);
		return -1;
	}
	if (k->type == CONF_GROUP)
		return conf_check_group(s, k->sub, qual, path, err, errlen);
	if (k->type != CONF_GROUPS)
		return 0;
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		snprintf(sub, sizeof sub, "%.200s[%d]", qual, i);
		if (!config_setting_is_group(e)) {
			conf_where(e, path, where, sizeof where);
			snprintf(err, errlen, "%s: %s must be a group { ... }", where, sub);
			return -1;
		}
		if (conf_check_group(e, k->sub, sub, path, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* Every member of group g must be in schema, with its type. */
static int conf_check_group(const config_setting_t *g, const struct conf_key *schema,
                            const char *prefix, const char *path, char *err, size_t errlen)
{
	char where[PATH_MAX + 32], qual[256];

	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct conf_key *k, *near = NULL;

		for (k = schema; k->name != NULL; k++) {
			if (strcmp(k->name, name) == 0)
				break;
			if (near == NULL && conf_distance(k->name, name) <= 2)
				near = k;
		}
		snprintf(qual, sizeof qual, "%.120s%s%.120s", prefix, *prefix ? "." : "", name);
		if (k->name == NULL) {
			conf_where(s, path, where, sizeof where);
			snprintf(err, errlen, "%s: unknown setting '%s'%s%s%s", where, qual,
			         near ? " (did you mean '" : "", near ? near->name : "",
			         near ? "'?)" : "");
			return -1;
		}
		if (conf_check_member(s, k, qual, path, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* The file must be a readable regular file; say why in words when not
 * (libconfig says only "file I/O error"). */
static int conf_readable(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot read: %s (uid %u; owner %u, mode %04o%s)", path,
		         strerror(e), (unsigned)geteuid(), (unsigned)st.st_uid,
		         (unsigned)(st.st_mode & 07777),
		         e == EACCES ? ": the service user must be able to read it, e.g. "
		                       "root:vmscreen 0640"
		                     : "");
		return -1;
	}
	close(fd);
	return 0;
}

/* Could an account other than root and ours write st (a file or, with
 * dir, its directory)?  A writable configuration is a gate whose mode
 * anyone can turn to monitor (issue 18, attack round 4): refused, naming
 * who and how.  Group write is fine for a group only the owner is in; a
 * sticky directory (/tmp) protects what others put beside. */
static int conf_writable_by_others(const char *path, const struct stat *st, int dir, char *err,
                                   size_t errlen)
{
	char who[128] = "";

	if (st->st_uid != 0 && st->st_uid != geteuid())
		snprintf(who, sizeof who, "it belongs to uid %u", (unsigned)st->st_uid);
	else if ((st->st_mode & S_IWOTH) && !(dir && (st->st_mode & S_ISVTX)))
		snprintf(who, sizeof who, "every account can write it");
	else if ((st->st_mode & S_IWGRP) && !vms_group_private(st->st_gid, st->st_uid, NULL, 0))
		snprintf(who, sizeof who, "its group (gid %u) can write it", (unsigned)st->st_gid);
	if (who[0] == '\0')
		return 0;
	snprintf(err, errlen,
	         "%s: %s %s: the configuration must be writable by root or the service alone "
	         "(chown root, chmod go-w)",
	         path, dir ? "directory of the configuration:" : "configuration:", who);
	return -1;
}

/* The configuration file, its directory and every file it @includes
 * (libconfig 1.5 has no include hook, so the lines are read here; depth
 * bounded as libconfig bounds it) must be safe from other accounts. */
static int conf_trusted(const char *abs, const char *incdir, int depth, char *err, size_t errlen)
{
	char dir[PATH_MAX], line[PATH_MAX + 64], inc[PATH_MAX * 2 + 2];
	struct stat st;
	FILE *f;
	int rc = 0;

	snprintf(dir, sizeof dir, "%s", abs);
	if (stat(abs, &st) < 0)
		return 0; /* a missing include: libconfig says so, in its words */
	if (conf_writable_by_others(abs, &st, 0, err, errlen) < 0)
		return -1;
	if (stat(dirname(dir), &st) == 0 && conf_writable_by_others(dir, &st, 1, err, errlen) < 0)
		return -1;
	if (depth >= 10 || (f = fopen(abs, "re")) == NULL)
		return 0;
	while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
		char *p = line + strspn(line, " \t"), *q;
		if (strncmp(p, "@include", 8) != 0 || (p = strchr(p, '"')) == NULL ||
		    (q = strchr(p + 1, '"')) == NULL)
			continue;
		*q = '\0';
		snprintf(inc, sizeof inc, "%s%s%s", p[1] == '/' ? "" : incdir,
		         p[1] == '/' ? "" : "/", p + 1);
		rc = conf_trusted(inc, incdir, depth + 1, err, errlen);
	}
	fclose(f);
	return rc;
}

/* See conf.h. */
int vms_conf_read(config_t *cfg, const char *path, char *err, size_t errlen)
{
	char abs[PATH_MAX], dir[PATH_MAX];

	if (conf_readable(path, err, errlen) < 0)
		return -1;
	/* includes resolve against the file's own directory, absolute */
	if (realpath(path, abs) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof dir, "%s", abs);
	if (conf_trusted(abs, dirname(dir), 0, err, errlen) < 0)
		return -1;
	snprintf(dir, sizeof dir, "%s", abs);
	config_init(cfg);
	config_set_include_dir(cfg, dirname(dir));
	if (config_read_file(cfg, abs) != CONFIG_TRUE) {
		const char *f = config_error_file(cfg);
		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read an @include'd file (%s)",
			         f ? f : path, config_error_text(cfg));
		else
			snprintf(err, errlen, "%s:%d: %s", f ? f : path, config_error_line(cfg),
			         config_error_text(cfg));
		config_destroy(cfg);
		return -1;
	}
	if (conf_check_group(config_root_setting(cfg), conf_top, "", abs, err, errlen) < 0) {
		config_destroy(cfg);
		return -1;
	}
	return 0;
}

/* See conf.h. */
const char *vms_conf_path(const char *given, int env_ok)
{
	const char *env = env_ok ? getenv("VMSCREEN_CONFIG") : NULL;

	if (given != NULL && given[0] != '\0')
		return given;
	if (env != NULL && env[0] != '\0')
		return env;
	return VMS_SYSCONFDIR "/vmscreend.conf";
}
