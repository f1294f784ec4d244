/*
 * reviewers.c - the console's reviewer accounts: a users_file of
 * "NAME:HASH" lines, HASH an Argon2id string from libsodium's
 * crypto_pwhash_str (salted, memory-hard, self-describing: the cost
 * parameters travel in the string, so they can be raised later without
 * breaking old lines).  Written with `vmscreen passwd`, read by the
 * daemon at each login (the file is small; a changed file needs no
 * reload).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "review/review.h"
#include "core/internal.h" /* vms_write_atomic */
#include "vmscreen.h"

#ifndef VMS_SERVICE_GROUP
#define VMS_SERVICE_GROUP "vmscreen"
#endif

#define REVIEWERS_FILE_MAX (1024L * 1024)

/* See review.h. */
int reviewers_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > REVIEWERS_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

/* The file's text ("" when it does not exist), or NULL with err. */
static char *reviewers_read(const char *file, char *err, size_t errlen)
{
	char why[SPOOL_PATH_MAX + 128];
	char *text = spool_read_file(file, REVIEWERS_FILE_MAX, why, sizeof why);

	if (text == NULL && errno == ENOENT)
		return strdup("");
	if (text == NULL)
		snprintf(err, errlen, "users file %s", why);
	return text;
}

/* See review.h. */
int reviewers_lookup(const char *file, const char *name, char *hash, size_t hashlen, char *err,
                     size_t errlen)
{
	char *text = reviewers_read(file, err, errlen);
	size_t nl = strlen(name);
	int found = 0;

	if (text == NULL)
		return -1;
	for (char *line = strtok(text, "\n"); line != NULL && !found; line = strtok(NULL, "\n"))
		if (strncmp(line, name, nl) == 0 && line[nl] == ':' &&
		    strlen(line + nl + 1) < hashlen) {
			snprintf(hash, hashlen, "%s", line + nl + 1);
			found = 1;
		}
	sodium_memzero(text, strlen(text));
	free(text);
	return found;
}

/* See review.h. */
int reviewers_check(const char *hash, const char *password)
{
	if (sodium_init() < 0)
		return 0;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

/* Give the file the group it had (gid >= 0); a new one the group of its
 * directory, which ops gave the service (root:vmscreen 0750 in the
 * manual), or else the service group when that exists, so the daemon can
 * read it.  Best effort: a user who cannot chgrp keeps the file's default
 * group. */
static void reviewers_group(const char *file, long gid)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *slash = strrchr(file, '/');

	if (gid < 0 && slash != NULL && (size_t)(slash - file) < sizeof dir) {
		snprintf(dir, sizeof dir, "%.*s", slash == file ? 1 : (int)(slash - file), file);
		if (stat(dir, &st) == 0 && st.st_gid != 0)
			gid = (long)st.st_gid;
	}
	struct group *gr = gid < 0 ? getgrnam(VMS_SERVICE_GROUP) : NULL;

	if (gid < 0 && gr != NULL)
		gid = (long)gr->gr_gid;
	if (gid >= 0 && chown(file, (uid_t)-1, (gid_t)gid) < 0)
		return;
}

/* The new file's text: every line of old but name's, plus name's new line
 * (when hash != NULL). */
static char *reviewers_rewrite(char *old, const char *name, const char *hash)
{
	char *buf = NULL;
	size_t len = 0, nl = strlen(name);
	FILE *o = open_memstream(&buf, &len);

	if (o == NULL)
		return NULL;
	for (char *line = strtok(old, "\n"); line != NULL; line = strtok(NULL, "\n"))
		if (!(strncmp(line, name, nl) == 0 && line[nl] == ':'))
			fprintf(o, "%s\n", line);
	if (hash != NULL)
		fprintf(o, "%s:%s\n", name, hash);
	if (fclose(o) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* See review.h.  The file keeps its mode and group when it exists (the
 * daemon's group must go on reading it); a new one is 0640. */
int reviewers_set(const char *file, const char *name, const char *password, char *err,
                  size_t errlen)
{
	char hash[crypto_pwhash_STRBYTES], *old, *text;
	struct stat st;
	int rc;

	if (!reviewers_name_ok(name)) {
		snprintf(err, errlen, "\"%s\": an account name is 1-64 of A-Z a-z 0-9 . _ -", name);
		return -1;
	}
	if (password != NULL &&
	    (sodium_init() < 0 ||
	     crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                       crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)) {
		snprintf(err, errlen, "cannot hash the password (out of memory?)");
		return -1;
	}
	if ((old = reviewers_read(file, err, errlen)) == NULL)
		return -1;
	text = reviewers_rewrite(old, name, password ? hash : NULL);
	free(old);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int had = stat(file, &st) == 0;
	rc = vms_write_atomic(file, text, strlen(text), had ? (st.st_mode & 0770) : 0640);
	if (rc == 0)
		reviewers_group(file, had ? (long)st.st_gid : -1);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write: %s", file, strerror(errno));
	free(text);
	return rc;
}
