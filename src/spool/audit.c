/*
 * audit.c - the audit log (JSON Lines, append-only, fsynced) and the
 * configuration both the daemon and the review commands read: spools and
 * the audit log path.
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

#include "spool/spool.h"

#define SPOOL_AUDIT_DEFAULT "/var/log/vmscreen/audit.jsonl"

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

/*
 * Append one line.  O_APPEND makes each write land at the end; the flock
 * keeps lines from different processes (daemon, reviewers) whole even if a
 * write is split; fsync makes the line durable before the caller goes on.
 */
int spool_audit_append(const char *audit_path, const char *line)
{
	size_t len = strlen(line);
	char *buf = malloc(len + 2);
	int fd = -1, rc = -1;

	if (buf == NULL)
		return -1;
	memcpy(buf, line, len);
	buf[len] = '\n';
	buf[len + 1] = '\0';
	fd = open(audit_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		goto fail;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			goto fail;
	/* issue 6: on a full disk write(2) can land part of the line and then
	 * fail; the next append would glue a whole line onto that fragment and
	 * leave one line that is not JSON.  Remember where the line starts and
	 * cut a failed write back to it (every writer holds the flock). */
	struct stat st;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (spool_audit_write_all(fd, buf, len + 1) < 0) {
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
	free(buf);
	return rc;
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
