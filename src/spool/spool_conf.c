/*
 * spool_conf.c - the configuration the daemon and the review commands
 * both read (spool_conf_load): the `spools` list, each a unique name and
 * an absolute path of its own (no spool inside another), a mode and
 * keep_days, and the path of the audit log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool/spool.h"

#define SPOOL_AUDIT_DEFAULT "/var/log/vmscreen/audit.jsonl"

/* A spool's keep_days (0 when absent): 0 or -1 when out of range. */
static int spool_conf_keep_days(const config_setting_t *g, double *out)
{
	config_setting_t *k = config_setting_get_member(g, "keep_days");

	*out = 0;
	if (k == NULL)
		return 0;
	if (config_setting_type(k) == CONFIG_TYPE_INT ||
	    config_setting_type(k) == CONFIG_TYPE_INT64)
		*out = (double)config_setting_get_int64(k);
	else if (config_setting_type(k) == CONFIG_TYPE_FLOAT)
		*out = config_setting_get_float(k);
	else
		return -1;
	return *out >= 0 && *out <= 36500 ? 0 : -1;
}

/*
 * Read the `spools` list and `audit_log`.  Every spool needs a valid name
 * and an absolute path; names and paths must be unique; mode is "gate"
 * (default) or "monitor".
 */
int spool_conf_load(const config_t *cfg, spool_conf *out, char *err, size_t errlen)
{
	const char *s = NULL;
	config_setting_t *list;
	int n;

	memset(out, 0, sizeof *out);
	snprintf(out->audit_log, sizeof out->audit_log, "%s", SPOOL_AUDIT_DEFAULT);
	if (config_lookup_string(cfg, "audit_log", &s) == CONFIG_TRUE) {
		if (s[0] != '/') {
			snprintf(err, errlen, "audit_log \"%s\": must be an absolute path", s);
			return -1;
		}
		snprintf(out->audit_log, sizeof out->audit_log, "%s", s);
	} else if (config_lookup(cfg, "audit_log") != NULL) {
		snprintf(err, errlen, "audit_log: must be a string");
		return -1;
	}
	list = config_lookup(cfg, "spools");
	if (list == NULL || (!config_setting_is_list(list) && !config_setting_is_array(list)) ||
	    (n = config_setting_length(list)) == 0) {
		snprintf(err, errlen,
		         "spools: a non-empty list of spools is required, e.g. "
		         "spools = ({ name = \"voicemail\"; path = \"/var/spool/vmscreen/"
		         "voicemail\"; mode = \"gate\"; });");
		return -1;
	}
	if ((out->spools = calloc((size_t)n, sizeof *out->spools)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		const char *name = NULL, *path = NULL, *mode = "gate";
		spool_mode m;
		char why[512];
		int line = config_setting_source_line(g);

		if (!config_setting_is_group(g)) {
			snprintf(err, errlen, "spools[%d] (line %d): must be a group { ... }", i,
			         line);
			goto fail;
		}
		if (!config_setting_lookup_string(g, "name", &name) ||
		    !config_setting_lookup_string(g, "path", &path)) {
			snprintf(err, errlen,
			         "spools[%d] (line %d): name and path (strings) are required", i,
			         line);
			goto fail;
		}
		if (config_setting_get_member(g, "mode") != NULL &&
		    !config_setting_lookup_string(g, "mode", &mode)) {
			snprintf(err, errlen, "spools[%d] (line %d): mode must be a string", i,
			         line);
			goto fail;
		}
		if (strcmp(mode, "gate") == 0)
			m = SPOOL_GATE;
		else if (strcmp(mode, "monitor") == 0)
			m = SPOOL_MONITOR;
		else {
			snprintf(err, errlen,
			         "spools[%d] (line %d): mode \"%s\": must be \"gate\" or "
			         "\"monitor\"",
			         i, line, mode);
			goto fail;
		}
		if (spool_open(&out->spools[i], name, path, m, why, sizeof why) < 0) {
			snprintf(err, errlen, "spools[%d] (line %d): %s", i, line, why);
			goto fail;
		}
		if (spool_conf_keep_days(g, &out->spools[i].keep_days) < 0) {
			snprintf(err, errlen,
			         "spools[%d] (line %d): keep_days must be a number of days, 0 "
			         "(keep forever) to 36500",
			         i, line);
			goto fail;
		}
		for (int j = 0; j < i; j++) {
			const char *a = out->spools[j].path, *b = out->spools[i].path;
			size_t la = strlen(a), lb = strlen(b);
			if (strcmp(out->spools[j].name, out->spools[i].name) == 0 ||
			    strcmp(a, b) == 0) {
				snprintf(err, errlen,
				         "spools[%d] (line %d): name or path repeats spools[%d]", i,
				         line, j);
				goto fail;
			}
			/* issue 10: one spool inside another: its state directories
			 * would be the other's files (the daemon refused them later) */
			if ((la < lb && strncmp(a, b, la) == 0 && (b[la] == '/' || la == 1)) ||
			    (lb < la && strncmp(a, b, lb) == 0 && (a[lb] == '/' || lb == 1))) {
				snprintf(err, errlen,
				         "spools[%d] (line %d): path %s and spools[%d]'s %s are "
				         "nested; "
				         "each spool needs a directory of its own",
				         i, line, b, j, a);
				goto fail;
			}
		}
		out->n_spools++;
	}
	return 0;
fail:
	spool_conf_free(out);
	return -1;
}

/* Free what spool_conf_load allocated. */
void spool_conf_free(spool_conf *c)
{
	free(c->spools);
	c->spools = NULL;
	c->n_spools = 0;
}
