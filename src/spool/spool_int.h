/*
 * spool_int.h - what the files of the spool module share with each other
 * and with nobody else: the fs backend's operations that live outside
 * fs.c, its file primitives, and the item namers the backend needs.  The
 * module's interface is spool.h; nothing outside src/spool/ includes this.
 *
 *   spool.c    the front end and, for now, the rest (being split up)
 *   name.c     names: states, producer file names, item ids, paths
 *   log.c      the module's log lines
 */
#ifndef VMS_SPOOL_INT_H
#define VMS_SPOOL_INT_H

#include <stddef.h>

#include "spool/spool.h"

#define SPOOL_NCOMP 3 /* companions: sidecar, claim record, verdict */

/* name.c */
/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0. */
size_t spool_utf8_len(const unsigned char *p);
/* The one namer of companions: ID_STEM plus suffix (".json",
 * ".verdict.json", ".claim.json"). */
void spool_companion_name(const spool_item *it, const char *suffix, char *buf, size_t len);
/* The item's companion file names, in move order (the audio goes last). */
void spool_item_companions(const spool_item *it, char names[SPOOL_NCOMP][SPOOL_FILE_MAX + 64]);

#endif
