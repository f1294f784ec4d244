/*
 * spool_int.h - what the files of the spool module share with each other
 * and with nobody else: the fs backend's operations that live outside
 * fs.c, its file primitives, and the item namers the backend needs.  The
 * module's interface is spool.h; nothing outside src/spool/ includes this.
 *
 *   spool.c    the front end: a spool value, and the calls that dispatch
 *              through its backend table
 *   fs.c       the fs backend: its table and state directories, moves,
 *              atomic writes, walks, item locks and attempt counters
 *   claim.c    the claim protocol (incoming/NAME to active/ID_NAME)
 *   repair.c   repair after a crash: companions gathered, claims finished
 *              or undone, leftovers removed
 *   name.c     names: states, producer file names, item ids, paths
 *   log.c      the module's log lines
 */
#ifndef VMS_SPOOL_INT_H
#define VMS_SPOOL_INT_H

#include <stddef.h>

#include "spool/spool.h"

#define SPOOL_NCOMP 3                /* companions: sidecar, claim record, verdict */
#define SPOOL_TMP_PREFIX ".tmp-"     /* temp files: a claim's copy, vms_write_atomic's */
#define SPOOL_CLAIM_PREFIX ".claim-" /* incoming/.claim-ID_NAME: a claim in progress */

/* name.c */
/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0. */
size_t spool_utf8_len(const unsigned char *p);
/* The one namer of companions: ID_STEM plus suffix (".json",
 * ".verdict.json", ".claim.json"). */
void spool_companion_name(const spool_item *it, const char *suffix, char *buf, size_t len);
/* The item's companion file names, in move order (the audio goes last). */
void spool_item_companions(const spool_item *it, char names[SPOOL_NCOMP][SPOOL_FILE_MAX + 64]);

/* fs.c: the backend's file primitives, and operations the others use */
/* Errors that go away by themselves (ENOSPC, EIO, EMFILE...) are
 * SPOOL_TEMPFAIL; ENOENT is SPOOL_GONE, EEXIST SPOOL_EXISTS, the rest
 * SPOOL_ERR. */
int spool_errno_class(int e);
/* rename(2) that fails with EEXIST instead of replacing. */
int spool_rename_noreplace(const char *from, const char *to);
/* Fill an item from a state-directory file name (a regular file, never
 * following symlinks): 0, or -1. */
int spool_item_fill(const spool *sp, spool_state st, const char *file, spool_item *it);
/* The backend's find (spool_item_find in spool.h). */
int spool_fs_find(const spool *sp, const char *idarg, spool_item *out);
/* The backend's put: atomic write of STATE/FILE. */
int spool_fs_put(const spool *sp, spool_state st, const char *file, const char *data, size_t len);

/* claim.c */
/* The backend's claim (spool_claim in spool.h). */
int spool_fs_claim(const spool *sp, const char *name, spool_item *out);
/* Step 5 of a claim, also run by repair: the producer's sidecar (when it
 * was copied) and then the hidden incoming/.claim-ID_NAME go. */
void spool_claim_finish(const spool *sp, const spool_item *it, int sidecar_copied);

/* repair.c */
/* The backend's gather and repair (spool_item_gather, spool_repair). */
int spool_fs_gather(const spool *sp, spool_item *it);
int spool_fs_repair(const spool *sp);

#endif
