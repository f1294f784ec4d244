/*
 * lock.c - the locks of a spool and of the audit log, which no account but
 * the service's (and root) can take (issue 18).
 *
 * A flock needs only a descriptor, and a read-only one will do: while the
 * locks were SPOOL/.lock-review (0640) and the audit log itself, anyone who
 * could read them (the delivery account, in the group vmscreen) could hold
 * them with `flock -x` and freeze every screening and decision.  Now:
 *
 *   SPOOL/.lock/NAME       spool locks ("daemon", "review"), in a 0700
 *                          directory of the spool's owner;
 *   DIR/.AUDIT.lock        the audit log's lock, beside the log, 0600.
 *
 * Both live on the same storage as what they guard (cluster nodes share
 * them over NFSv4, which needs descriptors open for writing to lock).  A
 * lock file root makes (`sudo vmscreen release`) is given to the owner of
 * its directory, or the daemon could no longer open it.  Every wait for a
 * lock is registered, so that /healthz can say which lock has been waited
 * for too long instead of hanging silently (spool_lock_stalled()).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "spool/spool.h"

#define LOCK_DIR ".lock"
#define LOCK_WAITERS 32 /* waits tracked at once; more are not shown */

/* Who waits for which lock since when (monotonic seconds; 0: free slot). */
static struct {
	double since;
	char path[256];
} lock_waits[LOCK_WAITERS];
static pthread_mutex_t lock_waits_mu = PTHREAD_MUTEX_INITIALIZER;

/* Monotonic seconds. */
static double lock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Register a wait for path: its slot, or -1 when all are taken. */
static int lock_wait_begin(const char *path)
{
	int slot = -1;

	pthread_mutex_lock(&lock_waits_mu);
	for (int i = 0; i < LOCK_WAITERS && slot < 0; i++)
		if (lock_waits[i].since == 0) {
			lock_waits[i].since = lock_now();
			snprintf(lock_waits[i].path, sizeof lock_waits[i].path, "%s", path);
			slot = i;
		}
	pthread_mutex_unlock(&lock_waits_mu);
	return slot;
}

/* The wait in slot is over. */
static void lock_wait_end(int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&lock_waits_mu);
	lock_waits[slot].since = 0;
	pthread_mutex_unlock(&lock_waits_mu);
}

/* See spool.h. */
double spool_lock_stalled(char *what, size_t len)
{
	double now = lock_now(), worst = 0;

	pthread_mutex_lock(&lock_waits_mu);
	for (int i = 0; i < LOCK_WAITERS; i++)
		if (lock_waits[i].since > 0 && now - lock_waits[i].since > worst) {
			worst = now - lock_waits[i].since;
			snprintf(what, len, "%s", lock_waits[i].path);
		}
	pthread_mutex_unlock(&lock_waits_mu);
	return worst;
}

/* flock fd (LOCK_EX or LOCK_SH, | LOCK_NB), the wait registered under
 * path while it blocks.  0 or -1 with errno. */
static int lock_flock(int fd, int op, const char *path)
{
	int slot = -1, rc;

	if (!(op & LOCK_NB)) {
		if (flock(fd, op | LOCK_NB) == 0)
			return 0; /* the usual case: free, nothing to register */
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		slot = lock_wait_begin(path);
	}
	while ((rc = flock(fd, op)) < 0 && errno == EINTR)
		;
	int e = errno;
	lock_wait_end(slot);
	errno = e;
	return rc;
}

/* See spool.h. */
void spool_own_like(int fd, const struct stat *dir)
{
	struct stat st;

	if (geteuid() != 0 || fstat(fd, &st) < 0)
		return;
	if ((st.st_uid != dir->st_uid || st.st_gid != dir->st_gid) &&
	    fchown(fd, dir->st_uid, dir->st_gid) < 0)
		spool_log(LOG_WARNING, "cannot give a file root made to uid %u: %s",
		          (unsigned)dir->st_uid, strerror(errno));
}

/* A lock file or directory nobody but owner (and root) can open: owned by
 * owner, nothing for group or others.  0, or -1 with err. */
static int lock_private(const char *path, const struct stat *st, uid_t owner, char *err,
                        size_t errlen)
{
	if (st->st_uid != owner || (st->st_mode & 0077)) {
		snprintf(
		        err, errlen,
		        "%s: uid %u, mode %04o: a lock must belong to uid %u and be open to nobody "
		        "else (chown %u; chmod go=), or another account could hold it and stop "
		        "all work",
		        path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777),
		        (unsigned)owner, (unsigned)owner);
		return -1;
	}
	return 0;
}

/* See spool.h. */
int spool_lock_dir_init(const spool *sp, int create, char *err, size_t errlen)
{
	char path[SPOOL_PATH_MAX + 16];
	struct stat top, st;

	snprintf(path, sizeof path, "%s/" LOCK_DIR, sp->path);
	if (lstat(sp->path, &top) < 0) {
		snprintf(err, errlen, "spool %s: %s: %s", sp->name, sp->path, strerror(errno));
		return -1;
	}
	if (create > 0 && mkdir(path, 0700) == 0 && geteuid() == 0 &&
	    lchown(path, top.st_uid, top.st_gid) < 0) {
		snprintf(err, errlen, "spool %s: %s: chown: %s", sp->name, path, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT && create <= 0)
			return 0; /* made by start-up, or by the first lock */
		snprintf(err, errlen, "spool %s: %s: %s", sp->name, path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "spool %s: %s: not a directory", sp->name, path);
		return -1;
	}
	char why[SPOOL_PATH_MAX + 256];
	if (lock_private(path, &st, top.st_uid, why, sizeof why) < 0) {
		snprintf(err, errlen, "spool %s: %s", sp->name, why);
		return -1;
	}
	return 0;
}

/* The spool's lock directory, open, checked, made when missing: a
 * descriptor, or -1 with errno (logged). */
static int lock_dir_open(const spool *sp, struct stat *top)
{
	char err[SPOOL_PATH_MAX + 512], path[SPOOL_PATH_MAX + 16];
	struct stat st;
	int dfd;

	if (spool_lock_dir_init(sp, 1, err, sizeof err) < 0) {
		spool_log(LOG_ERR, "%s", err);
		errno = EPERM;
		return -1;
	}
	snprintf(path, sizeof path, "%s/" LOCK_DIR, sp->path);
	if (lstat(sp->path, top) < 0 ||
	    (dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(dfd, &st) < 0 || lock_private(path, &st, top->st_uid, err, sizeof err) < 0) {
		spool_log(LOG_ERR, "spool %s: %s", sp->name, err);
		close(dfd);
		errno = EPERM;
		return -1;
	}
	return dfd;
}

/* Open (making it) the lock file name in directory dfd, whose stat is dir,
 * and check nobody but its owner can open it.  A descriptor, or -1. */
static int lock_file_open(int dfd, const char *name, const struct stat *dir, const char *shown)
{
	char err[SPOOL_PATH_MAX + 512];
	struct stat st;
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	spool_own_like(fd, dir); /* root made it: the service must open it too */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    lock_private(shown, &st, dir->st_uid, err, sizeof err) < 0) {
		spool_log(LOG_ERR, "%s", S_ISREG(st.st_mode) ? err : "a lock is not a file");
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* See spool.h: SPOOL/.lock/WHICH, exclusive or shared (SPOOL_LOCK_SHARED),
 * blocking with SPOOL_LOCK_WAIT.  Two opens, three fstats and a flock. */
int spool_fs_lock(const spool *sp, const char *which, int how)
{
	char shown[SPOOL_PATH_MAX + 80];
	struct stat top;
	int dfd = lock_dir_open(sp, &top), fd;

	if (dfd < 0)
		return -1;
	snprintf(shown, sizeof shown, "%s/" LOCK_DIR "/%s", sp->path, which);
	fd = lock_file_open(dfd, which, &top, shown);
	close(dfd);
	if (fd < 0)
		return -1;
	if (lock_flock(fd,
	               ((how & SPOOL_LOCK_SHARED) ? LOCK_SH : LOCK_EX) |
	                       ((how & SPOOL_LOCK_WAIT) ? 0 : LOCK_NB),
	               shown) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* See spool.h. */
int spool_audit_lock(const char *audit_path, int shared, int create)
{
	char dir[SPOOL_PATH_MAX], name[SPOOL_PATH_MAX];
	const char *slash = strrchr(audit_path, '/');
	struct stat st;
	int dfd, fd;

	if (slash == NULL || (size_t)(slash - audit_path) >= sizeof dir) {
		errno = EINVAL;
		return -1;
	}
	snprintf(dir, sizeof dir, "%.*s", slash == audit_path ? 1 : (int)(slash - audit_path),
	         audit_path);
	snprintf(name, sizeof name, ".%s.lock", slash + 1);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	/* the lock belongs to whoever owns the log (the service account), or
	 * when there is none yet its directory's owner */
	if (fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 && fstat(dfd, &st) < 0) {
		close(dfd);
		return -1;
	}
	if (!create && faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		close(dfd);
		return -1;
	}
	char shown[SPOOL_PATH_MAX * 2];
	snprintf(shown, sizeof shown, "%s/%s", dir, name);
	if (st.st_uid != geteuid() && geteuid() != 0)
		st.st_uid = geteuid(); /* a new log in a directory not ours: ours */
	fd = lock_file_open(dfd, name, &st, shown);
	close(dfd);
	if (fd >= 0 && lock_flock(fd, shared ? LOCK_SH : LOCK_EX, shown) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}
