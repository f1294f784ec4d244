/*
 * fs.c - the fs backend (issue 13), the only one: a spool is a directory
 * tree, an item's state is the directory its audio is in, and every
 * operation on items is one of the table spool_backend_fs, by item id or
 * by a state directory's file name, as OpenSMTPD's queue_fs.c is.  It owns
 * the state directories (created 0750, checked to be ours), finding and
 * filling items, moves (companions first, the audio last and never
 * replacing), atomic writes, walks of a state and of incoming/, the
 * free-space check, item locks and attempt counters, and the file
 * primitives the other files of the backend share through spool_int.h.
 * The backend's claim is in claim.c, its gather and repair in repair.c,
 * its lock in lock.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include "core/internal.h" /* vms_read_text_flags, vms_write_atomic */
#include "spool/spool_int.h"

static int spool_fs_init(const spool *sp, int create, char *err, size_t errlen);
static int spool_fs_move(const spool *sp, const spool_item *it, spool_state to);
static int spool_fs_walk(const spool *sp, spool_state st,
                         int (*fn)(const spool *sp, const spool_item *it, void *arg), void *arg);
static int spool_mkdir(const char *path, char *err, size_t errlen);
static int spool_fs_space_ok(const spool *sp, long min_free_mb);
static int spool_fs_incoming_walk(const spool *sp, spool_incoming_fn fn, void *arg);
static int spool_fs_incoming_watch(const spool *sp, int inofd);
static int spool_fs_get(const spool *sp, spool_state st, const char *file, spool_item *out);
static int spool_fs_item_lock(const spool *sp, const spool_item *it);
static int spool_fs_attempts(const spool *sp, const char *id, int bump);
static void spool_fs_attempts_clear(const spool *sp, const char *id);

const spool_backend spool_backend_fs = {
        .name = "fs",
        .init = spool_fs_init,
        .space_ok = spool_fs_space_ok,
        .incoming_walk = spool_fs_incoming_walk,
        .incoming_watch = spool_fs_incoming_watch,
        .claim = spool_fs_claim,
        .find = spool_fs_find,
        .get = spool_fs_get,
        .gather = spool_fs_gather,
        .move = spool_fs_move,
        .put = spool_fs_put,
        .walk = spool_fs_walk,
        .repair = spool_fs_repair,
        .lock = spool_fs_lock,
        .item_lock = spool_fs_item_lock,
        .attempts = spool_fs_attempts,
        .attempts_clear = spool_fs_attempts_clear,
};

/* The item whose id (or file name) is given, searched in every state
 * except incoming. */
int spool_fs_find(const spool *sp, const char *idarg, spool_item *out)
{
	char id[SPOOL_ID_LEN + 1], dir[SPOOL_PATH_MAX];
	int denied = 0;

	if (spool_id_ok(idarg))
		snprintf(id, sizeof id, "%s", idarg);
	else if (spool_file_id(idarg, id) < 0)
		return -1;
	for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
		DIR *d;
		struct dirent *de;
		int found = -1;

		spool_path(sp, (spool_state)st, NULL, dir, sizeof dir);
		if ((d = opendir(dir)) == NULL) {
			if (errno == EACCES || errno == EPERM)
				denied = errno;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, id, SPOOL_ID_LEN) != 0 ||
			    de->d_name[SPOOL_ID_LEN] != '_' || spool_name_is_json(de->d_name))
				continue;
			if (spool_item_fill(sp, (spool_state)st, de->d_name, out) == 0) {
				found = 0;
				break;
			}
		}
		closedir(d);
		if (found == 0) {
			spool_fs_gather(sp, out);
			return 0;
		}
	}
	/* issue 10: "no such item" for a spool we may not read misleads */
	errno = denied ? denied : ENOENT;
	return -1;
}

/* Errors that go away by themselves (space, descriptors, memory, I/O) are
 * temporary; everything else is a plain error. */
int spool_errno_class(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case EAGAIN:
	case EINTR:
	case EROFS:
		return SPOOL_TEMPFAIL;
	case ENOENT:
		return SPOOL_GONE;
	case EEXIST:
	case ENOTEMPTY:
		return SPOOL_EXISTS;
	default:
		return SPOOL_ERR;
	}
}

/* rename(2) that fails with EEXIST instead of replacing.  Falls back to
 * link+unlink where renameat2 is unsupported. */
int spool_rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) < 0)
		return -1;
	if (unlink(from) < 0) {
		int e = errno;
		unlink(to);
		errno = e;
		return -1;
	}
	return 0;
}

/* fsync a directory so that renames into or out of it are durable. */
int spool_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* mkdir -p for one level with 0750, accepting an existing directory but not
 * a symlink or a file in its place. */
static int spool_mkdir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create directory: %s", path, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", path);
		return -1;
	}
	return 0;
}

/* Fill an item from a state-directory file name after checking it is a
 * regular file (never following symlinks). */
int spool_item_fill(const spool *sp, spool_state st, const char *file, spool_item *it)
{
	char path[SPOOL_PATH_MAX];
	struct stat sb;

	memset(it, 0, sizeof *it);
	if (strlen(file) >= sizeof it->file || spool_file_id(file, it->id) < 0)
		return -1;
	spool_path(sp, st, file, path, sizeof path);
	if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
		return -1;
	snprintf(it->file, sizeof it->file, "%s", file);
	snprintf(it->name, sizeof it->name, "%s", file + SPOOL_ID_LEN + 1);
	it->state = st;
	spool_item_sidecar(sp, it, path, sizeof path);
	it->has_sidecar = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
	spool_item_verdict(sp, it, path, sizeof path);
	it->has_verdict = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
	spool_item_claim(sp, it, path, sizeof path);
	it->has_claim = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
	return 0;
}

/* Read a small regular file without following symlinks. */
char *spool_read_file(const char *path, size_t max, char *err, size_t errlen)
{
	char why[256];
	/* never trust a file found in a spool: a symlink is not followed */
	char *text = vms_read_text_flags(path, max, O_NOFOLLOW, why, sizeof why);
	if (text == NULL)
		snprintf(err, errlen, "%s: %s", path, why);
	return text;
}

/* Atomic, durable replace of a spool file: vms_write_atomic (the one
 * helper, one contract), logged, with the error classed for the caller. */
int spool_write_atomic(const char *path, const char *data, size_t len)
{
	if (vms_write_atomic(path, data, len, 0640) == 0)
		return SPOOL_OK;
	int e = errno;
	spool_log(LOG_ERR, "%s: cannot write: %s", path, strerror(e));
	errno = e;
	return spool_errno_class(e) == SPOOL_TEMPFAIL ? SPOOL_TEMPFAIL : SPOOL_ERR;
}

/* Accept new work only with room to write verdicts, move files and log.
 * One statvfs. */
static int spool_fs_space_ok(const spool *sp, long min_free_mb)
{
	struct statvfs vs;

	if (statvfs(sp->path, &vs) < 0) {
		spool_log(LOG_WARNING, "spool %s: statvfs %s: %s", sp->name, sp->path,
		          strerror(errno));
		return 0;
	}
	unsigned long long free_b = (unsigned long long)vs.f_bavail * vs.f_frsize;
	if (free_b < (unsigned long long)min_free_mb * 1024ULL * 1024ULL) {
		spool_log(LOG_WARNING,
		          "spool %s: only %llu MB free (min_free_mb = %ld): not accepting work",
		          sp->name, free_b / (1024ULL * 1024ULL), min_free_mb);
		return 0;
	}
	if (vs.f_files > 0 && vs.f_favail < vs.f_files / 100) {
		spool_log(LOG_WARNING, "spool %s: under 1%% of inodes free: not accepting work",
		          sp->name);
		return 0;
	}
	return 1;
}

/*
 * issue 10: a state directory someone else owns, or can write to, is not
 * ours to gate: its owner could put a file in released/ or take one out
 * of hold/.  Each must belong to us; only incoming/ may be writable by the
 * group (the producers'), none by everybody, and the spool directory
 * itself is ours or root's and writable by neither group nor others (or
 * the state directories could be swapped).
 */
static int spool_dir_trusted(const spool *sp, const char *path, int is_root, int group_ok,
                             char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "spool %s: %s: not a directory", sp->name, path);
		return -1;
	}
	if (st.st_uid != geteuid() && !(is_root && st.st_uid == 0)) {
		snprintf(err, errlen,
		         "spool %s: %s belongs to uid %u, not to vmscreend (uid %u): refusing a "
		         "directory another user controls",
		         sp->name, path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if ((st.st_mode & S_IWOTH) || (!group_ok && (st.st_mode & S_IWGRP))) {
		snprintf(err, errlen,
		         "spool %s: %s is writable by %s (mode %04o): refusing it (chmod %s)",
		         sp->name, path, (st.st_mode & S_IWOTH) ? "everybody" : "its group",
		         (unsigned)(st.st_mode & 07777), group_ok ? "o-w" : "go-w");
		return -1;
	}
	return 0;
}

/* Create SPOOL and its five state directories (0750), or check them; in
 * both cases check they are ours (spool_dir_trusted). */
static int spool_fs_init(const spool *sp, int create, char *err, size_t errlen)
{
	char path[SPOOL_PATH_MAX];

	if (create > 0 && spool_mkdir(sp->path, err, errlen) < 0)
		return -1;
	if (spool_dir_trusted(sp, sp->path, 1, 0, err, errlen) < 0)
		return -1;
	for (int i = 0; i < SPOOL_NSTATES; i++) {
		spool_path(sp, (spool_state)i, NULL, path, sizeof path);
		if (create > 0 && spool_mkdir(path, err, errlen) < 0)
			return -1;
		if (create < 0 && access(path, F_OK) < 0 && errno == ENOENT)
			continue; /* --check: start-up will create it */
		if (spool_dir_trusted(sp, path, 0, i == SPOOL_INCOMING, err, errlen) < 0 ||
		    spool_state_perm(sp, (spool_state)i, path, create != 0, err, errlen) < 0)
			return -1;
	}
	return spool_lock_dir_init(sp, create, err, errlen); /* lock.c */
}

/*
 * Move an item: companions first (they may replace a stray copy, since the
 * item id is unique), the audio last and never replacing, so whoever looks
 * at a state directory sees the audio only once its companions are there.
 * When a rename fails, the companions already moved go back (issue 10: a
 * failed final rename left the sidecar in hold/, and the retry screened the
 * file without its hangup mark and released it).  If even that fails,
 * spool_item_gather() on the next touch puts them right.
 */
static int spool_fs_move(const spool *sp, const spool_item *it, spool_state to)
{
	char names[SPOOL_NCOMP][SPOOL_FILE_MAX + 64], src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX];
	int moved[SPOOL_NCOMP] = {0}, e;
	spool_item there = *it;

	if (to == it->state)
		return SPOOL_OK;
	there.state = to;
	if (to == SPOOL_RELEASED)
		spool_give_released(sp, it, it->state); /* perm.c: the delivery group */
	spool_item_companions(it, names);
	for (int i = 0; i < SPOOL_NCOMP; i++) {
		spool_path(sp, it->state, names[i], src, sizeof src);
		spool_path(sp, to, names[i], dst, sizeof dst);
		if (rename(src, dst) == 0)
			moved[i] = 1;
		else if (errno != ENOENT)
			goto fail;
	}
	spool_item_path(sp, it, src, sizeof src);
	spool_item_path(sp, &there, dst, sizeof dst);
	if (spool_rename_noreplace(src, dst) < 0)
		goto fail;
	spool_path(sp, to, NULL, dst, sizeof dst);
	spool_fsync_dir(dst);
	spool_path(sp, it->state, NULL, src, sizeof src);
	spool_fsync_dir(src);
	return SPOOL_OK;
fail:
	e = errno;
	spool_log(LOG_ERR, "spool %s: move %s from %s to %s: %s", sp->name, it->file,
	          spool_state_name(it->state), spool_state_name(to), strerror(e));
	for (int i = 0; i < SPOOL_NCOMP; i++) {
		if (!moved[i])
			continue;
		spool_path(sp, to, names[i], src, sizeof src);
		spool_path(sp, it->state, names[i], dst, sizeof dst);
		if (rename(src, dst) < 0)
			spool_log(LOG_ERR, "spool %s: cannot put %s back in %s: %s", sp->name,
			          names[i], spool_state_name(it->state), strerror(errno));
	}
	errno = e;
	return spool_errno_class(e);
}

/* Atomic write of STATE/FILE. */
int spool_fs_put(const spool *sp, spool_state st, const char *file, const char *data, size_t len)
{
	char path[SPOOL_PATH_MAX];

	if (strchr(file, '/') != NULL || file[0] == '.') {
		errno = EINVAL;
		return SPOOL_ERR;
	}
	spool_path(sp, st, file, path, sizeof path);
	return spool_write_atomic(path, data, len);
}

/* Every audio file (ID_NAME, not a .json companion, regular) in a state. */
static int spool_fs_walk(const spool *sp, spool_state st,
                         int (*fn)(const spool *sp, const spool_item *it, void *arg), void *arg)
{
	char dir[SPOOL_PATH_MAX];
	struct dirent *de;
	spool_item it;
	DIR *d;
	int rc = 0;

	spool_path(sp, st, NULL, dir, sizeof dir);
	if ((d = opendir(dir)) == NULL) {
		spool_log(LOG_ERR, "spool %s: %s: %s", sp->name, dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || spool_name_is_json(de->d_name))
			continue;
		if (spool_item_fill(sp, st, de->d_name, &it) < 0) {
			spool_log(LOG_WARNING, "spool %s: %s/%s: not a spool item: skipped",
			          sp->name, spool_state_name(st), de->d_name);
			continue;
		}
		rc = fn(sp, &it, arg);
	}
	closedir(d);
	return rc;
}

/* One item of a state by its file name (ID_NAME.ext): 0, or -1 when it is
 * not there as a regular file.  Four lstats (audio and companions). */
static int spool_fs_get(const spool *sp, spool_state st, const char *file, spool_item *out)
{
	if (strchr(file, '/') != NULL || file[0] == '.')
		return -1;
	return spool_item_fill(sp, st, file, out);
}

/*
 * Lock an item's audio (flock on the file, which follows it through the
 * renames of a move and which NFSv4 carries between clients) while one
 * worker screens and moves it.  The lock descriptor, or SPOOL_GONE when
 * the audio has left it->state (placed meanwhile), SPOOL_BUSY when another
 * holds it.  Costs an open, a flock and an access.
 */
static int spool_fs_item_lock(const spool *sp, const spool_item *it)
{
	char path[SPOOL_PATH_MAX];
	int fd;

	spool_path(sp, it->state, it->file, path, sizeof path);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return SPOOL_GONE;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return SPOOL_BUSY;
	}
	if (access(path, F_OK) != 0) { /* moved on while another held it */
		close(fd);
		return SPOOL_GONE;
	}
	return fd;
}

/* The attempts file of an active item: active/.attempts-ID. */
static void spool_fs_attempts_path(const spool *sp, const char *id, char *buf, size_t len)
{
	char file[SPOOL_ID_LEN + 16];

	snprintf(file, sizeof file, ".attempts-%.*s", SPOOL_ID_LEN, id);
	spool_path(sp, SPOOL_ACTIVE, file, buf, len);
}

/* Screening starts of an active item (with bump, counted first, durably:
 * an atomic rewrite of active/.attempts-ID).  The count, or -1. */
static int spool_fs_attempts(const spool *sp, const char *id, int bump)
{
	char path[SPOOL_PATH_MAX], err[SPOOL_PATH_MAX + 512], buf[32];
	char *text;
	int n = 0;

	spool_fs_attempts_path(sp, id, path, sizeof path);
	if ((text = spool_read_file(path, 64, err, sizeof err)) != NULL) {
		n = atoi(text);
		free(text);
	}
	if (n < 0)
		n = 0;
	if (bump) {
		n++;
		snprintf(buf, sizeof buf, "%d\n", n);
		if (spool_write_atomic(path, buf, strlen(buf)) != SPOOL_OK)
			return -1;
	}
	return n;
}

/* Forget the attempts of an item leaving active/ (one unlink). */
static void spool_fs_attempts_clear(const spool *sp, const char *id)
{
	char path[SPOOL_PATH_MAX];

	spool_fs_attempts_path(sp, id, path, sizeof path);
	unlink(path);
}

/* inotify on incoming/ for what lands there (closed after writing, renamed
 * in): the watch descriptor, or -1 with errno (the caller rescans). */
static int spool_fs_incoming_watch(const spool *sp, int inofd)
{
	char inc[SPOOL_PATH_MAX];

	spool_path(sp, SPOOL_INCOMING, NULL, inc, sizeof inc);
	return inotify_add_watch(inofd, inc,
	                         IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW);
}

/* Walk incoming/, classifying each entry for the caller: one readdir and
 * an lstat per entry. */
static int spool_fs_incoming_walk(const spool *sp, spool_incoming_fn fn, void *arg)
{
	char dir[SPOOL_PATH_MAX], path[SPOOL_PATH_MAX];
	struct dirent *de;
	struct stat st;
	const char *why;
	DIR *d;

	spool_path(sp, SPOOL_INCOMING, NULL, dir, sizeof dir);
	if ((d = opendir(dir)) == NULL) {
		spool_log(LOG_ERR, "spool %s: %s: %s", sp->name, dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!spool_name_ok(de->d_name, &why)) {
			fn(sp, de->d_name, NULL, why, arg);
			continue;
		}
		spool_path(sp, SPOOL_INCOMING, de->d_name, path, sizeof path);
		if (lstat(path, &st) < 0)
			continue; /* gone meanwhile */
		if (!S_ISREG(st.st_mode)) {
			fn(sp, de->d_name, NULL,
			   S_ISLNK(st.st_mode) ? "a symlink (never followed)"
			                       : "not a regular file",
			   arg);
			continue;
		}
		/* issue 6: a hard link shares its bytes with a name outside the
		 * spool, through which they could be rewritten after screening
		 * (a gate bypass).  Like Postfix's pickup, take only files with
		 * one link; the entry stays in incoming/. */
		if (st.st_nlink > 1 && !spool_name_is_json(de->d_name)) {
			fn(sp, de->d_name, NULL,
			   "a hard link (another name outside the spool could change it "
			   "after screening)",
			   arg);
			continue;
		}
		if (spool_name_is_json(de->d_name)) {
			fn(sp, de->d_name, NULL, NULL, arg);
			continue;
		}
		fn(sp, de->d_name, &st, NULL, arg);
	}
	closedir(d);
	return 0;
}
