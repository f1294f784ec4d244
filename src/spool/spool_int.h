/*
 * spool_int.h - what the files of the spool module share with each other
 * and with nobody else: the fs backend's operations that live outside
 * fs.c, its file primitives, and the item namers the backend needs.  The
 * module's interface is spool.h; nothing outside src/spool/ includes this.
 *
 *   spool.c    the front end and, for now, the rest (being split up)
 *   log.c      the module's log lines
 */
#ifndef VMS_SPOOL_INT_H
#define VMS_SPOOL_INT_H

#include <stddef.h>

#include "spool/spool.h"

/* name.c */
/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0. */
size_t spool_utf8_len(const unsigned char *p);

#endif
