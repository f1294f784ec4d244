/*
 * review.h - what a reviewer's decision is, whoever asks for it: the
 * `vmscreen release|reject` commands and the daemon's console both call
 * decision_make(), so a decision is the same verdict entry, the same audit
 * line and the same move either way.  Also the reviewer accounts of the
 * console (users_file: NAME:ARGON2ID-HASH lines, libsodium).
 *
 * Nothing here knows about HTTP or terminals: messages come back in a
 * buffer for the caller to show.
 */
#ifndef VMS_REVIEW_H
#define VMS_REVIEW_H

#include <jansson.h>
#include <stddef.h>

#include "spool/spool.h"

typedef enum {
	DECISION_OK = 0,
	DECISION_ALREADY,     /* the same decision was carried out before (a retry) */
	DECISION_NOT_FOUND,   /* no such item (errno EACCES: not allowed to look) */
	DECISION_WRONG_STATE, /* not in hold/ (or rejected/ for a release) */
	DECISION_BAD_VERDICT, /* the verdict file is unreadable */
	DECISION_FAILED,      /* lock, verdict write, audit or move failed */
	DECISION_CONFLICT,    /* the item changed since the version the decider saw */
	DECISION_BAD_REASON   /* the reason is not UTF-8 text */
} decision_rc;

/* An item version as text: DECISION_VERSION_LEN hex digits and a NUL. */
#define DECISION_VERSION_LEN 32

/* Who decides and why. `by` is what the audit log names ("alice
 * (console)", "bob (as vmscreen)"); uid is the process's, login_uid the
 * kernel's login uid (-1 when unknown or not asked). */
typedef struct decision_who {
	const char *by;
	const char *via; /* "cli" or "console" */
	long uid;
	long login_uid;
} decision_who;

/*
 * Release (to = SPOOL_RELEASED) or reject (SPOOL_REJECTED) item `id` of
 * the spool named spool_name (NULL: any spool of sc).  Under the spool's
 * review lock: find the item again, check the move is allowed, write the
 * decision into its verdict, append the audit line, move it; a failed move
 * is audited as ACTION_failed.  msg gets a one-line account either way;
 * *where (if not NULL) the spool it was found in.
 */
decision_rc decision_make(const spool_conf *sc, const char *spool_name, const char *id,
                          spool_state to, const decision_who *who, const char *reason,
                          const spool **where, char *msg, size_t msglen);

/* decision_make for a decider who saw the item at version `seen` (from
 * decision_version): when the item has changed since (another decision,
 * a move), nothing is done and the answer is DECISION_CONFLICT, with msg
 * saying what happened in words.  A repeat of a decision already carried
 * out is still DECISION_ALREADY.  seen NULL: no check (the CLI, which
 * reads the state and decides in one step). */
decision_rc decision_make_seen(const spool_conf *sc, const char *spool_name, const char *id,
                               spool_state to, const decision_who *who, const char *reason,
                               const char *seen, const spool **where, char *msg, size_t msglen);

/* The item's version: a digest of its state and its verdict file, which
 * every decision rewrites.  0, or -1 (the verdict is unreadable). */
int decision_version(const spool *sp, const spool_item *it, char out[DECISION_VERSION_LEN + 1]);

/* 1 when text is valid UTF-8 (what the verdict and the audit log, both
 * JSON, can hold); a reason or note that is not is refused. */
int decision_text_ok(const char *text);

/* Record that finding number `index` of an item's verdict is a false
 * alarm: one audit line with the finding and the transcript words it
 * covers.  The item stays where it is.  0, or -1 with msg. */
int decision_false_alarm(const spool_conf *sc, const char *spool_name, const char *id, size_t index,
                         const decision_who *who, const char *note, char *msg, size_t msglen);

/* Find an item by id in the named spool or in any; 0 or -1 (errno ENOENT,
 * or EACCES when a spool could not be read). */
int decision_find(const spool_conf *sc, const char *spool_name, const char *id, const spool **sp,
                  spool_item *it);

/* An item's verdict object (new reference), or NULL with err. */
json_t *decision_verdict(const spool *sp, const spool_item *it, char *err, size_t errlen);

/* Reviewer accounts (reviewers.c). */
#define REVIEWERS_NAME_MAX 64
#define REVIEWERS_PASSWORD_MIN 10
/* 1 when `name` is a valid account name ([A-Za-z0-9._-], 1-64, not
 * starting with '.' or '-'). */
int reviewers_name_ok(const char *name);
/* Add or replace (password != NULL) or remove (password == NULL) an
 * account in file, atomically; a new file is 0640. 0, or -1 with err. */
int reviewers_set(const char *file, const char *name, const char *password, char *err,
                  size_t errlen);
/* The stored hash string for name in file: 1 found (copied to hash), 0 no
 * such account, -1 unreadable (err). */
int reviewers_lookup(const char *file, const char *name, char *hash, size_t hashlen, char *err,
                     size_t errlen);
/* 1 when password matches the Argon2id hash string, else 0.  Costs one
 * Argon2id computation (about 0.1-0.5 s and 64 MiB at the interactive
 * limits): callers rate-limit. */
int reviewers_check(const char *hash, const char *password);

#endif
