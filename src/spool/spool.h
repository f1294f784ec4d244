/*
 * spool.h - the on-disk spool shared by vmscreend and the review commands.
 *
 * A spool is a directory with five state directories:
 *
 *   incoming/   producers drop NAME.ext (and an optional STEM.json sidecar)
 *   active/     claimed by the daemon, being screened
 *   released/   passed (or released by a reviewer): delivery takes from here
 *   hold/       flagged or unscreenable: waits for a reviewer
 *   rejected/   a reviewer said no
 *
 * Claiming copies incoming/NAME.ext into active/ID_NAME.ext, a file the
 * daemon owns (0640), where ID is a fresh item id (see spool_id_new()), and
 * then removes the producer's file: what is screened and what delivery
 * takes are the same bytes, and no producer can change them (issue 10).
 * From then on every file of the item starts with "ID_": the audio
 * ID_NAME.ext, the sidecar ID_STEM.json, the claim record
 * ID_STEM.claim.json (bytes, SHA-256, sidecar status) and the verdict
 * ID_STEM.verdict.json.  The location of the audio file is the item's
 * state; companions go first in a move and follow the audio wherever a
 * crash or a failed rename left them, the next time either program touches
 * the item (spool_item_find(), spool_item_gather()) or at start-up
 * (spool_repair()).  Audio moves are rename(2)s that never replace, and
 * every move is made durable with fsync of the directories.
 *
 * Nothing found in a spool is trusted: names are validated, files are
 * lstat'ed and opened with O_NOFOLLOW, and anything that is not a regular
 * file is logged and skipped.
 */
#ifndef VMS_SPOOL_H
#define VMS_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <time.h>
#include <libconfig.h>

#define SPOOL_NAME_MAX 64   /* spool names: [A-Za-z0-9_-] */
#define SPOOL_ID_LEN 25     /* YYYYMMDDTHHMMSSZ-xxxxxxxx */
#define SPOOL_FILE_MAX 180  /* longest producer file name we accept */
#define SPOOL_PATH_MAX 4096 /* longest path we build */

typedef enum {
	SPOOL_INCOMING = 0,
	SPOOL_ACTIVE,
	SPOOL_RELEASED,
	SPOOL_HOLD,
	SPOOL_REJECTED,
	SPOOL_NSTATES
} spool_state;

typedef enum { SPOOL_GATE = 0, SPOOL_MONITOR = 1 } spool_mode;

/* Results of operations that can fail for a while and succeed later. */
#define SPOOL_OK 0
#define SPOOL_ERR -1       /* permanent for this attempt; errno-style message logged */
#define SPOOL_TEMPFAIL -2  /* ENOSPC, EDQUOT, EIO, EMFILE...: try again later */
#define SPOOL_EXISTS -3    /* the destination name is taken */
#define SPOOL_GONE -4      /* the source vanished */
#define SPOOL_BUSY -5      /* a writer still has it open, or it changed: later */
#define SPOOL_UNSURE -6    /* cannot tell whether a writer has it open (no lease) */
#define SPOOL_LEASELESS -7 /* internal: the filesystem has no leases (NFS) */
#define SPOOL_TOOBIG -8    /* over claim_max_bytes: left in incoming/ (logged once) */

struct spool_backend;

typedef struct spool {
	char name[SPOOL_NAME_MAX];
	char path[SPOOL_PATH_MAX];
	spool_mode mode;
	const struct spool_backend *backend;
	long long claim_max_bytes; /* 0: no limit; larger files are not copied */
	double keep_days;          /* 0: keep forever; else released/rejected expire */
} spool;

/* One item in a state directory, as spool_item_find()/spool_walk() see it. */
typedef struct spool_item {
	char id[SPOOL_ID_LEN + 1];
	char file[SPOOL_FILE_MAX + SPOOL_ID_LEN + 2]; /* ID_NAME.ext */
	char name[SPOOL_FILE_MAX + 1];                /* NAME.ext as the producer gave it */
	spool_state state;
	int has_sidecar;
	int has_verdict;
	int has_claim; /* the claim record ID_STEM.claim.json */
} spool_item;

/* spool_incoming_walk's callback: every entry name; st is its lstat when
 * it is a candidate, else NULL with skip saying why (NULL skip: a sidecar). */
typedef void (*spool_incoming_fn)(const spool *sp, const char *name, const struct stat *st,
                                  const char *skip, void *arg);

#define SPOOL_LOCK_WAIT 1   /* spool_backend.lock: block until granted */
#define SPOOL_LOCK_SHARED 2 /* ... shared with other shared holders */

/*
 * The storage backend (issue 13): one table of every operation on a
 * spool's items, by item id or by a state directory's file name, as
 * OpenSMTPD's queue backends are, so that another store (a database, an
 * object store) could slot in behind the same calls.  The spool_* calls
 * below of the same names dispatch through sp->backend (spool.c).  Only
 * "fs" exists: fs.c, claim.c and repair.c, sharing what they must through
 * the private spool_int.h, everything else static.  Not behind
 * the table: the path builders (spool_path, spool_item_path and the
 * companions' paths), because the screening core and the review commands
 * read files by path (another store would hand them local copies), and
 * the audit log and retention, which work through these calls.
 */
typedef struct spool_backend {
	const char *name;
	int (*init)(const spool *sp, int create, char *err, size_t errlen);
	int (*space_ok)(const spool *sp, long min_free_mb);
	int (*incoming_walk)(const spool *sp, spool_incoming_fn fn, void *arg);
	int (*incoming_watch)(const spool *sp, int inofd);
	int (*claim)(const spool *sp, const char *name, spool_item *out);
	int (*find)(const spool *sp, const char *id, spool_item *out);
	int (*get)(const spool *sp, spool_state st, const char *file, spool_item *out);
	int (*gather)(const spool *sp, spool_item *it);
	int (*move)(const spool *sp, const spool_item *it, spool_state to);
	int (*put)(const spool *sp, spool_state st, const char *file, const char *data, size_t len);
	int (*walk)(const spool *sp, spool_state st,
	            int (*fn)(const spool *sp, const spool_item *it, void *arg), void *arg);
	int (*repair)(const spool *sp);
	int (*lock)(const spool *sp, const char *which, int how); /* SPOOL_LOCK_* */
	int (*item_lock)(const spool *sp, const spool_item *it);
	int (*attempts)(const spool *sp, const char *id, int bump);
	void (*attempts_clear)(const spool *sp, const char *id);
} spool_backend;

extern const spool_backend spool_backend_fs;

/* Logging hook: prio is a syslog priority (LOG_ERR...).  The default writes
 * "<prio>message" to stderr, which journald understands. */
typedef void (*spool_log_fn)(int prio, const char *msg);
void spool_set_logger(spool_log_fn fn);
void spool_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *spool_state_name(spool_state st);
int spool_state_parse(const char *s, spool_state *out);
const char *spool_mode_name(spool_mode m);

/* Set up a spool value (no I/O).  -1 on a bad name/path. */
int spool_open(spool *sp, const char *name, const char *path, spool_mode mode, char *err,
               size_t errlen);
/* Create (create > 0) and check the state directories: each must be ours
 * and not writable by others (incoming/ may be group-writable).  create < 0
 * checks only those that exist (vmscreend --check). */
int spool_init(const spool *sp, int create, char *err, size_t errlen);

/* Build SPOOL/STATE[/FILE] into buf; aborts the process on overflow (a path
 * we cannot build is a bug or an attack, never something to truncate). */
void spool_path(const spool *sp, spool_state st, const char *file, char *buf, size_t len);

/* 1 if a producer file name is acceptable in incoming/, else 0 with why. */
int spool_name_ok(const char *name, const char **why);
/* 1 if name is a sidecar (ends in .json). */
int spool_name_is_json(const char *name);
/* STEM of NAME.ext into buf (NAME.ext without its last extension). */
int spool_name_stem(const char *name, char *buf, size_t len);
/* Parse a state-directory file name "ID_rest": 0 and the id, or -1. */
int spool_file_id(const char *file, char id[SPOOL_ID_LEN + 1]);
/* A fresh item id: UTC time and 32 random bits. */
void spool_id_new(char id[SPOOL_ID_LEN + 1]);
/* 1 if s looks like an item id. */
int spool_id_ok(const char *s);

/* Claim incoming/NAME by copy into active/ID_NAME with its sidecar and a
 * claim record.  SPOOL_OK, SPOOL_GONE (someone else took it), SPOOL_BUSY
 * (still being written: later), SPOOL_UNSURE (no lease: the kernel will
 * not say whether another user is writing it), SPOOL_TEMPFAIL, SPOOL_ERR.
 * The caller must ignore SIGIO (a broken lease signals the holder). */
int spool_claim(const spool *sp, const char *name, spool_item *out);
/* Bring every companion of an item (sidecar, claim record, verdict) that a
 * failed or interrupted move left in another state back beside its audio.
 * Returns how many files moved, or -1 (logged). */
int spool_item_gather(const spool *sp, spool_item *it);
/* Move all files of an item to another state (companions first, audio
 * last; a failure puts moved companions back).  Updates nothing in *it;
 * SPOOL_OK or an error code. */
int spool_move(const spool *sp, const spool_item *it, spool_state to);
/* Atomically create or replace STATE/FILE with data: temp file (O_EXCL),
 * fflush, fsync, fclose, rename, fsync dir. */
int spool_put(const spool *sp, spool_state st, const char *file, const char *data, size_t len);
/* Call fn for every item (audio file) in a state; stops when fn returns
 * nonzero and returns that value. */
int spool_walk(const spool *sp, spool_state st,
               int (*fn)(const spool *sp, const spool_item *it, void *arg), void *arg);

/* Find an item by id (or by its ID_NAME file name) in any state but
 * incoming, with its companions gathered beside it (spool_item_gather).
 * 0 and *out, or -1 when absent. */
int spool_item_find(const spool *sp, const char *id, spool_item *out);
/* The item of a state whose file (ID_NAME.ext) is given, without gathering
 * its companions (another node may be moving it).  0, or -1 when absent. */
int spool_item_get(const spool *sp, spool_state st, const char *file, spool_item *out);
/* Lock an item for one worker while it screens and moves it (cluster mode:
 * two nodes given one item).  A descriptor to close afterwards, or
 * SPOOL_GONE (the item has left it->state), SPOOL_BUSY (another holds it). */
int spool_item_lock(const spool *sp, const spool_item *it);
/* Screening starts of an active item, counted durably first with bump;
 * the count or -1.  spool_attempts_clear forgets them (before the move). */
int spool_attempts(const spool *sp, const char *id, int bump);
void spool_attempts_clear(const spool *sp, const char *id);
/* Paths of an item's files in its state. */
void spool_item_path(const spool *sp, const spool_item *it, char *buf, size_t len);
void spool_item_sidecar(const spool *sp, const spool_item *it, char *buf, size_t len);
void spool_item_verdict(const spool *sp, const spool_item *it, char *buf, size_t len);
/* The verdict file name (in the item's directory) for an item. */
void spool_item_verdict_file(const spool_item *it, char *buf, size_t len);
/* The claim record (ID_STEM.claim.json): what the claim copied (bytes,
 * sha256, producer_uid) and what became of the sidecar (none, copied,
 * refused with sidecar_error). */
void spool_item_claim_file(const spool_item *it, char *buf, size_t len);
void spool_item_claim(const spool *sp, const spool_item *it, char *buf, size_t len);

/*
 * Put stray companions back beside their audio (a crash between the moves
 * of one item leaves them apart) and remove stale temp files.  Returns the
 * number of files repaired, or -1.
 */
int spool_repair(const spool *sp);

/* Free space check before accepting work: 1 if the spool's filesystem has
 * at least min_free_mb megabytes and 1% of inodes free, else 0 (logged). */
int spool_space_ok(const spool *sp, long min_free_mb);

/* Exclusive locks: the daemon holds "daemon" for its lifetime (one daemon
 * per spool); review commands and repair take "review" around a move.
 * Returns an fd (>= 0) to pass to spool_unlock, or -1 (errno EWOULDBLOCK
 * when wait is 0 and someone holds it). */
int spool_lock(const spool *sp, const char *which, int wait);
/* Shared (never waits): cluster nodes share "daemon"; a single daemon's
 * exclusive lock refuses them and they refuse it.  A lock is a
 * descriptor whatever the backend: spool_unlock closes it. */
int spool_lock_shared(const spool *sp, const char *which);
void spool_unlock(int fd);
/*
 * lock.c (issue 18): locks only the service account and root can take.
 * The fs backend's lock: SPOOL/.lock/WHICH in a 0700 directory of the
 * spool's owner (SPOOL_LOCK_* in how).
 */
int spool_fs_lock(const spool *sp, const char *which, int how);
/* Check (and with create > 0 make) SPOOL/.lock: the spool owner's, 0700.
 * A missing one is fine otherwise (the first lock makes it).  0 or -1. */
int spool_lock_dir_init(const spool *sp, int create, char *err, size_t errlen);
/* The audit log's lock DIR/.NAME.lock (0600, the log's owner), exclusive
 * or shared, waiting; without create only when it exists (a reader of a
 * log no writer locks).  A descriptor for spool_unlock, or -1 with errno. */
int spool_audit_lock(const char *audit_path, int shared, int create);
/* Seconds the longest wait for a lock going on now has lasted (0: none),
 * and that lock's path in what: /healthz reports it past a bound. */
double spool_lock_stalled(char *what, size_t len);
/* Running as root, give fd the owner and group of dir (a file root makes
 * in the service's directories must stay the service's to rewrite). */
void spool_own_like(int fd, const struct stat *dir);
/*
 * perm.c (issue 18): who may read a spool's states.  active/, hold/ and
 * rejected/ are for the service account alone: nothing for others, and
 * group bits only for a group holding no other account (checked with
 * full, at start-up and --check: it walks the account database).
 * released/ may belong to the delivery group, which the service account
 * must be in: what is placed there is given that group.  0 or -1.
 */
int spool_state_perm(const spool *sp, spool_state st, const char *path, int full, char *err,
                     size_t errlen);
/* Give the files of an item about to move from state from to released/
 * the group of released/ (the delivery group).  Logged when it cannot. */
void spool_give_released(const spool *sp, const spool_item *it, spool_state from);

/* Atomically create or replace any file (same steps as spool_put). */
int spool_write_atomic(const char *path, const char *data, size_t len);
/*
 * Walk incoming/: fn sees every entry name; st is its lstat when it is a
 * candidate (a regular file with an acceptable name, not a sidecar), else
 * NULL with skip saying why (NULL skip: a sidecar, silently passed over).
 */
int spool_incoming_walk(const spool *sp, spool_incoming_fn fn, void *arg);
/* Ask inotify instance inofd to report what lands in incoming/: a watch
 * descriptor, or -1 (errno; the daemon then relies on rescans). */
int spool_incoming_watch(const spool *sp, int inofd);
/* fsync a directory by path. */
int spool_fsync_dir(const char *path);
/* Read a whole small regular file (O_NOFOLLOW) into a malloc'd string. */
char *spool_read_file(const char *path, size_t max, char *err, size_t errlen);

/* ISO 8601 UTC time of t (seconds.nanos) into buf (at least 32 bytes). */
void spool_iso_time(const struct timespec *ts, char *buf, size_t len);

/*
 * Audit log: JSON Lines, one object per line, appended with O_APPEND under
 * the log's private lock (spool_audit_lock) and fsynced before returning.  line is one compact JSON
 * object text starting with '{', without newline (else EINVAL).  0 or -1 (logged).
 *
 * The log is a hash chain: each line is written with "prev" first, the
 * lowercase hex SHA-256 of the previous line's bytes (without its
 * newline).  The first line of an empty log chains to the last line of
 * AUDIT_PATH.1 when a rotation left one, else prev is 64 zeros.  "seq"
 * follows prev: the line's number, the last line's (or AUDIT_PATH.1's
 * last line's) plus one, 1 in a new log or after unnumbered lines.  A log
 * that ends in a fragment (a torn write) gets a newline first and the new
 * line chains to the last whole line, so that `vmscreen audit verify`
 * reports the fragment.
 */
int spool_audit_append(const char *audit_path, const char *line);

/* SHA-256 of len bytes as lowercase hex into hex (SPOOL_SHA256_HEX bytes:
 * 64 digits and a NUL): the audit chain's hash.  0 or -1. */
#define SPOOL_SHA256_HEX 65
int spool_sha256_hex(const void *data, size_t len, char hex[SPOOL_SHA256_HEX]);

/*
 * Retention (retention.c): remove the items of released/ and rejected/
 * whose last change (their review decision, else their screening) is
 * older than sp->keep_days, every file of each, each removal audited
 * first ("expired").  Under the spool's review lock per item, so a
 * release from rejected/ is never half-removed.  Returns how many items
 * went, or -1.  Costs one walk of both directories and one verdict read
 * per item.  keep (may be NULL) is asked about each item due, under the
 * lock: nonzero keeps it whatever its age (issue 18: an alert that still
 * waits in the outbox links to it); such items are counted in the log.
 */
typedef int (*spool_keep_fn)(const spool *sp, const spool_item *it, void *arg);
int spool_expire(const spool *sp, const char *audit_log, time_t now, spool_keep_fn keep,
                 void *keep_arg);

/* Spools and the audit log as configured (spool_conf.c; shared by daemon and CLI). */
typedef struct spool_conf {
	spool *spools;
	size_t n_spools;
	char audit_log[SPOOL_PATH_MAX];
} spool_conf;

/* Read `spools` and `audit_log` from a parsed libconfig root. */
int spool_conf_load(const config_t *cfg, spool_conf *out, char *err, size_t errlen);
void spool_conf_free(spool_conf *c);

#endif
