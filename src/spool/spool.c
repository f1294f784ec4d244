/*
 * spool.c - the front end of the spool module (see spool.h for the
 * layout): a spool value (spool_open), and the calls that dispatch through
 * its backend table, by item id or by a state directory's file name
 * (issue 13).  spool_backend_fs is the only backend: fs.c, with its claim
 * in claim.c and its gather and repair in repair.c.  Names and paths are
 * in name.c, the logger in log.c, the locks in lock.c, who may read a
 * state in perm.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spool/spool_int.h"

/* Validate and fill a spool value; no filesystem access. */
int spool_open(spool *sp, const char *name, const char *path, spool_mode mode, char *err,
               size_t errlen)
{
	size_t n = strlen(name);

	memset(sp, 0, sizeof *sp);
	if (n == 0 || n >= SPOOL_NAME_MAX) {
		snprintf(err, errlen, "spool name must be 1 to %d characters", SPOOL_NAME_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-') {
			snprintf(err, errlen, "spool name \"%s\": only letters, digits, _ and -",
			         name);
			return -1;
		}
	if (path[0] != '/' || strlen(path) > 2048 || strstr(path, "/../") != NULL) {
		snprintf(err, errlen,
		         "spool %s: path \"%s\" must be absolute and at most 2048 bytes", name,
		         path);
		return -1;
	}
	snprintf(sp->name, sizeof sp->name, "%s", name);
	snprintf(sp->path, sizeof sp->path, "%s", path);
	n = strlen(sp->path);
	while (n > 1 && sp->path[n - 1] == '/')
		sp->path[--n] = '\0';
	sp->mode = mode;
	sp->backend = &spool_backend_fs;
	return 0;
}

/* Create/check the state directories. */
int spool_init(const spool *sp, int create, char *err, size_t errlen)
{
	return sp->backend->init(sp, create, err, errlen);
}

/* Claim through the backend. */
int spool_claim(const spool *sp, const char *name, spool_item *out)
{
	return sp->backend->claim(sp, name, out);
}

/* Move through the backend. */
int spool_move(const spool *sp, const spool_item *it, spool_state to)
{
	return sp->backend->move(sp, it, to);
}

/* Atomic write through the backend. */
int spool_put(const spool *sp, spool_state st, const char *file, const char *data, size_t len)
{
	return sp->backend->put(sp, st, file, data, len);
}

/* Walk through the backend. */
int spool_walk(const spool *sp, spool_state st,
               int (*fn)(const spool *sp, const spool_item *it, void *arg), void *arg)
{
	return sp->backend->walk(sp, st, fn, arg);
}

/* Free space through the backend. */
int spool_space_ok(const spool *sp, long min_free_mb)
{
	return sp->backend->space_ok(sp, min_free_mb);
}

/* incoming/ walk through the backend. */
int spool_incoming_walk(const spool *sp, spool_incoming_fn fn, void *arg)
{
	return sp->backend->incoming_walk(sp, fn, arg);
}

/* incoming/ watch through the backend. */
int spool_incoming_watch(const spool *sp, int inofd)
{
	return sp->backend->incoming_watch(sp, inofd);
}

/* Find by id through the backend. */
int spool_item_find(const spool *sp, const char *id, spool_item *out)
{
	return sp->backend->find(sp, id, out);
}

/* One item of a state through the backend. */
int spool_item_get(const spool *sp, spool_state st, const char *file, spool_item *out)
{
	return sp->backend->get(sp, st, file, out);
}

/* Gather through the backend. */
int spool_item_gather(const spool *sp, spool_item *it)
{
	return sp->backend->gather(sp, it);
}

/* Repair through the backend. */
int spool_repair(const spool *sp)
{
	return sp->backend->repair(sp);
}

/* Exclusive lock through the backend. */
int spool_lock(const spool *sp, const char *which, int wait)
{
	return sp->backend->lock(sp, which, wait ? SPOOL_LOCK_WAIT : 0);
}

/* Shared lock through the backend (never waits). */
int spool_lock_shared(const spool *sp, const char *which)
{
	return sp->backend->lock(sp, which, SPOOL_LOCK_SHARED);
}

/* Release a spool_lock(). */
void spool_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Item lock through the backend. */
int spool_item_lock(const spool *sp, const spool_item *it)
{
	return sp->backend->item_lock(sp, it);
}

/* Attempts through the backend. */
int spool_attempts(const spool *sp, const char *id, int bump)
{
	return sp->backend->attempts(sp, id, bump);
}

/* Forget attempts through the backend. */
void spool_attempts_clear(const spool *sp, const char *id)
{
	sp->backend->attempts_clear(sp, id);
}
