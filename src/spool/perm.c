/*
 * perm.c - who may read which state of a spool (issue 18).
 *
 * The accounts (vmscreend(8), ACCOUNTS): the service account owns every
 * state directory; producers may write incoming/; the delivery account is
 * in the group vmscreen-delivery, never in the service's group, and that
 * group is released/'s: it can read and list what is released and nothing
 * else.  So active/, hold/ and rejected/ (held recordings, transcripts,
 * verdicts) must be closed to others, and their group must hold no account
 * but the service's (the old recipe put the delivery account in the group
 * vmscreen, which could then read every held recording).  A file keeps its
 * group through rename(2), so what is placed in released/ is first given
 * released/'s group; the service account must be in that group to do so.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conf/conf.h"
#include "spool/spool.h"

/* 1 when this process may give files group gid (its own, a supplementary
 * one, or any as root). */
static int perm_in_group(gid_t gid)
{
	gid_t groups[256];
	int n;

	if (geteuid() == 0 || gid == getegid())
		return 1;
	n = getgroups((int)(sizeof groups / sizeof *groups), groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

/* released/: its group must be one the service can give files. */
static int perm_released(const spool *sp, const char *path, const struct stat *st, char *err,
                         size_t errlen)
{
	char grp[256];

	if (perm_in_group(st->st_gid))
		return 0;
	vms_group_name(st->st_gid, grp, sizeof grp);
	snprintf(err, errlen,
	         "spool %s: %s belongs to group %s, which vmscreend (uid %u) is not in: it could "
	         "not give released items that group (add the service account to it: "
	         "vmscreend(8), ACCOUNTS)",
	         sp->name, path, grp, (unsigned)geteuid());
	return -1;
}

/* See spool.h. */
int spool_state_perm(const spool *sp, spool_state st, const char *path, int full, char *err,
                     size_t errlen)
{
	char who[256] = "", grp[256];
	struct stat sb;

	if (st == SPOOL_INCOMING || lstat(path, &sb) < 0)
		return 0; /* producers' / spool_dir_trusted said it */
	if (st == SPOOL_RELEASED)
		return full ? perm_released(sp, path, &sb, err, errlen) : 0;
	if (sb.st_mode & 0007) {
		snprintf(err, errlen,
		         "spool %s: %s: mode %04o lets every account in: held and rejected "
		         "recordings are for the service account alone (chmod o=)",
		         sp->name, path, (unsigned)(sb.st_mode & 07777));
		return -1;
	}
	if (!full || !(sb.st_mode & 0070) ||
	    vms_group_private(sb.st_gid, sb.st_uid, who, sizeof who))
		return 0;
	vms_group_name(sb.st_gid, grp, sizeof grp);
	snprintf(err, errlen,
	         "spool %s: %s: group %s can read it and %s is in that group: held and rejected "
	         "recordings are for the service account alone; put the delivery account in "
	         "the delivery group instead (gpasswd -d %s %s; vmscreend(8), ACCOUNTS)",
	         sp->name, path, grp, who, who, grp);
	return -1;
}

/* See spool.h.  A stat of released/ and an lchown per file whose group
 * differs (none when released/ has the service's group). */
void spool_give_released(const spool *sp, const spool_item *it, spool_state from)
{
	char dir[SPOOL_PATH_MAX], p[SPOOL_PATH_MAX], f[SPOOL_FILE_MAX + 64];
	const char *suffix[] = {".json", ".claim.json", ".verdict.json"};
	char stem[SPOOL_FILE_MAX + 1];
	struct stat rel, st;

	spool_path(sp, SPOOL_RELEASED, NULL, dir, sizeof dir);
	if (lstat(dir, &rel) < 0)
		return; /* the move fails and says why */
	spool_name_stem(it->file, stem, sizeof stem);
	for (int i = 0; i <= 3; i++) {
		if (i < 3)
			snprintf(f, sizeof f, "%s%s", stem, suffix[i]);
		else
			snprintf(f, sizeof f, "%s", it->file);
		spool_path(sp, from, f, p, sizeof p);
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode) || st.st_gid == rel.st_gid)
			continue;
		if (lchown(p, (uid_t)-1, rel.st_gid) < 0)
			spool_log(LOG_ERR,
			          "spool %s: cannot give %s the group of released/ (%s): delivery "
			          "may not read it",
			          sp->name, p, strerror(errno));
	}
}
