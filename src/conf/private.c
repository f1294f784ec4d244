/*
 * private.c - who else can read a file: the one test for what only the
 * service account may read (issue 18).
 *
 * Secrets (a webhook's secret_file, the reviewers' users_file, the Redis
 * password_file, the TLS key, a configuration that holds a Slack or Teams
 * URL) and the state directories of held and rejected recordings must be
 * readable by the service account and root alone.  The manual's recipe
 * puts them root:vmscreen 0640 (or vmscreen-owned 0600), which is private
 * only while the group vmscreen holds nobody else: the delivery account
 * belongs to the group vmscreen-delivery, never to vmscreen (vmscreend(8)).
 * So "private" here means: owned by the service account or root, nothing
 * for others, no ACL, and group bits only for a group that holds no
 * account but root, the owner, the service account (this process, or the
 * account named like the group, when root runs the check).
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "conf/conf.h"

#define PRIVATE_BUF 65536 /* NSS records: a group with many members */

/* getpwent is not reentrant across threads: one walk at a time. */
static pthread_mutex_t private_pw_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1 when the account (name, uid) may share the group: root, the file's
 * owner, this process's account, or the account named like the group. */
static int private_allowed(const char *name, uid_t uid, const char *group, uid_t owner)
{
	return uid == 0 || uid == owner || uid == geteuid() || strcmp(name, group) == 0;
}

/* The listed members of a group (/etc/group's fourth field): 1 and the
 * first one not allowed in who, else 0. */
static int private_member_other(const struct group *gr, uid_t owner, char *who, size_t wholen)
{
	char *buf = malloc(PRIVATE_BUF);
	int other = 0;

	if (buf == NULL)
		return 0;
	for (char **m = gr->gr_mem; m != NULL && *m != NULL && !other; m++) {
		struct passwd pw, *res = NULL;
		if (getpwnam_r(*m, &pw, buf, PRIVATE_BUF, &res) != 0 || res == NULL) {
			other = strcmp(*m, gr->gr_name) != 0; /* a name with no account */
		} else
			other = !private_allowed(pw.pw_name, pw.pw_uid, gr->gr_name, owner);
		if (other)
			snprintf(who, wholen, "%s", *m);
	}
	free(buf);
	return other;
}

/* Accounts whose primary group it is: 1 and the first not allowed. */
static int private_primary_other(const struct group *gr, uid_t owner, char *who, size_t wholen)
{
	char *buf = malloc(PRIVATE_BUF);
	struct passwd pw, *res;
	int other = 0;

	if (buf == NULL)
		return 0;
	pthread_mutex_lock(&private_pw_mu);
	setpwent();
	while (!other && getpwent_r(&pw, buf, PRIVATE_BUF, &res) == 0 && res != NULL)
		if (pw.pw_gid == gr->gr_gid &&
		    !private_allowed(pw.pw_name, pw.pw_uid, gr->gr_name, owner)) {
			snprintf(who, wholen, "%s", pw.pw_name);
			other = 1;
		}
	endpwent();
	pthread_mutex_unlock(&private_pw_mu);
	free(buf);
	return other;
}

/* See conf.h. */
int vms_group_private(gid_t gid, uid_t owner, char *who, size_t wholen)
{
	char *buf = malloc(PRIVATE_BUF);
	struct group gr, *res = NULL;
	int priv = 1;

	if (buf == NULL)
		return 0;
	if (getgrgid_r(gid, &gr, buf, PRIVATE_BUF, &res) != 0 || res == NULL) {
		/* a group with no name holds no account we could name */
		free(buf);
		return 1;
	}
	if (private_member_other(&gr, owner, who, wholen) ||
	    private_primary_other(&gr, owner, who, wholen))
		priv = 0;
	free(buf);
	return priv;
}

/* See conf.h. */
void vms_group_name(gid_t gid, char *buf, size_t len)
{
	struct group *gr = getgrgid(gid);

	if (gr != NULL)
		snprintf(buf, len, "%s", gr->gr_name);
	else
		snprintf(buf, len, "%u", (unsigned)gid);
}

/* See conf.h. */
int vms_private_stat(const char *what, const char *path, const struct stat *st, int fd, char *err,
                     size_t errlen)
{
	char who[256] = "", grp[256];
	ssize_t acl;

	if (st->st_uid != geteuid() && st->st_uid != 0) {
		snprintf(err, errlen,
		         "%s %s belongs to uid %u, neither the service account (uid %u) nor root: "
		         "its owner can read it (chown it; vmscreend(8), SECRETS)",
		         what, path, (unsigned)st->st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st->st_mode & 0007) {
		snprintf(err, errlen,
		         "%s %s: mode %04o lets every account read or write it: chmod o= (0600, or "
		         "0640 root:vmscreen; vmscreend(8), SECRETS)",
		         what, path, (unsigned)(st->st_mode & 07777));
		return -1;
	}
	vms_group_name(st->st_gid, grp, sizeof grp);
	if ((st->st_mode & 0070) && !vms_group_private(st->st_gid, st->st_uid, who, sizeof who)) {
		snprintf(err, errlen,
		         "%s %s: mode %04o lets group %s read it, and %s is in that group: take "
		         "other accounts out of it (gpasswd -d %s %s) or chmod g= (vmscreend(8), "
		         "SECRETS)",
		         what, path, (unsigned)(st->st_mode & 07777), grp, who, who, grp);
		return -1;
	}
	acl = fd >= 0 ? fgetxattr(fd, "system.posix_acl_access", NULL, 0)
	              : getxattr(path, "system.posix_acl_access", NULL, 0);
	if (acl > 0) {
		snprintf(err, errlen,
		         "%s %s has an access ACL (getfacl %s): other accounts may read it; "
		         "remove it with setfacl -b",
		         what, path, path);
		return -1;
	}
	return 0;
}

/* See conf.h. */
int vms_private_file(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	return vms_private_stat(what, path, &st, -1, err, errlen);
}
