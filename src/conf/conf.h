/*
 * conf.h - the one reader of vmscreend.conf (see conf.c): parse once,
 * @include from the file's own directory, every key checked against one
 * schema.  Callers then take their parts from the config_t.
 */
#ifndef VMS_CONF_H
#define VMS_CONF_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <libconfig.h>

/* Parse and check path into cfg.  0, or -1 with err naming the file, the
 * line and the problem (cfg then holds nothing to destroy). */
int vms_conf_read(config_t *cfg, const char *path, char *err, size_t errlen);

/* Which configuration the commands read: given (--config) when not NULL
 * or empty, else $VMSCREEN_CONFIG when env_ok and set, else the installed
 * VMS_SYSCONFDIR/vmscreend.conf.  The one place that order is written. */
const char *vms_conf_path(const char *given, int env_ok);

/* private.c (issue 18): only the service account and root may read a
 * secret.  1 when group gid holds no account but root, owner, this
 * process's account and the account named like the group; else 0 with the
 * first other account's name in who.  Walks the group and the password
 * database (NSS): for start-up and --check, not for every request. */
int vms_group_private(gid_t gid, uid_t owner, char *who, size_t wholen);
/* The name of gid for messages ("vmscreen", or the number), into buf. */
void vms_group_name(gid_t gid, char *buf, size_t len);
/* 0 when the file whose stat is st (fd open on it, or -1) is readable by
 * the service account and root alone: owned by either, nothing for others,
 * group bits only for a private group, no access ACL.  Else -1 with err
 * naming what (e.g. "secret_file"), the path, who else can read it and the
 * command that fixes it. */
int vms_private_stat(const char *what, const char *path, const struct stat *st, int fd, char *err,
                     size_t errlen);
/* vms_private_stat of a path (stat follows a symlink: the file read). */
int vms_private_file(const char *what, const char *path, char *err, size_t errlen);

#endif
