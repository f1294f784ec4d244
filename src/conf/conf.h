/*
 * conf.h - the one reader of vmscreend.conf (see conf.c): parse once,
 * @include from the file's own directory, every key checked against one
 * schema.  Callers then take their parts from the config_t.
 */
#ifndef VMS_CONF_H
#define VMS_CONF_H

#include <stddef.h>
#include <libconfig.h>

/* Parse and check path into cfg.  0, or -1 with err naming the file, the
 * line and the problem (cfg then holds nothing to destroy). */
int vms_conf_read(config_t *cfg, const char *path, char *err, size_t errlen);

/* Which configuration the commands read: given (--config) when not NULL
 * or empty, else $VMSCREEN_CONFIG when env_ok and set, else the installed
 * VMS_SYSCONFDIR/vmscreend.conf.  The one place that order is written. */
const char *vms_conf_path(const char *given, int env_ok);

#endif
