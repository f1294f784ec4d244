/*
 * spool.c - the filesystem spool: state directories, claims, moves, atomic
 * verdict files, repair after a crash.  See spool.h for the layout.
 *
 * Every public call goes through the backend table (spool_backend_fs is the
 * only backend); the fs backend's helpers are static and declared here.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h" /* vms_read_text_flags */
#include "spool/spool.h"

#define SPOOL_TMP_PREFIX ".tmp-"
#define SPOOL_TMP_STALE_S 60 /* temp files older than this are leftovers */

static int spool_fs_init(const spool *sp, int create, char *err, size_t errlen);
static int spool_fs_claim(const spool *sp, const char *name, spool_item *out);
static int spool_fs_move(const spool *sp, const spool_item *it, spool_state to);
static int spool_fs_put(const spool *sp, spool_state st, const char *file, const char *data,
                        size_t len);
static int spool_fs_walk(const spool *sp, spool_state st,
                         int (*fn)(const spool *sp, const spool_item *it, void *arg), void *arg);
static int spool_errno_class(int e);
static int spool_rename_noreplace(const char *from, const char *to);
static int spool_item_fill(const spool *sp, spool_state st, const char *file, spool_item *it);
static void spool_default_log(int prio, const char *msg);
static int spool_mkdir(const char *path, char *err, size_t errlen);

const spool_backend spool_backend_fs = {
        .name = "fs",
        .init = spool_fs_init,
        .claim = spool_fs_claim,
        .move = spool_fs_move,
        .put = spool_fs_put,
        .walk = spool_fs_walk,
};

static const char *const spool_state_names[SPOOL_NSTATES] = {"incoming", "active", "released",
                                                             "hold", "rejected"};

static spool_log_fn spool_logger = spool_default_log;
static atomic_uint spool_tmp_counter;

/* ---------------------------------------------------------------- logging */

/* Default logger: one line on stderr with a <prio> prefix, which journald
 * turns into the message priority. */
static void spool_default_log(int prio, const char *msg)
{
	fprintf(stderr, "<%d>%s\n", prio, msg);
}

/* Route the module's log lines elsewhere (the CLI prints plain text). */
void spool_set_logger(spool_log_fn fn)
{
	spool_logger = fn ? fn : spool_default_log;
}

/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0 when the
 * bytes there are not UTF-8 (stray continuation byte, overlong form,
 * surrogate, beyond U+10FFFF, truncated sequence). */
static size_t spool_utf8_len(const unsigned char *p)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* printf-style logging through the configured logger; newlines and control
 * characters from file names are replaced so one event is one line. */
void spool_log(int prio, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* issue 6: bytes that are not UTF-8 (a hostile file name) become '?'
	 * too; journald stores a line with such bytes as an opaque blob. */
	for (char *p = buf; *p; p += n) {
		n = spool_utf8_len((const unsigned char *)p);
		if (n == 0) {
			*p = '?';
			n = 1;
		} else if (n == 1 && ((unsigned char)*p < 0x20 || *p == 0x7f))
			*p = '?';
	}
	spool_logger(prio, buf);
}

/* --------------------------------------------------------------- names */

/* The directory name of a state. */
const char *spool_state_name(spool_state st)
{
	return (st >= 0 && st < SPOOL_NSTATES) ? spool_state_names[st] : "?";
}

/* Parse a state name; 0 or -1. */
int spool_state_parse(const char *s, spool_state *out)
{
	for (int i = 0; i < SPOOL_NSTATES; i++)
		if (strcmp(s, spool_state_names[i]) == 0) {
			*out = (spool_state)i;
			return 0;
		}
	return -1;
}

/* "gate" or "monitor". */
const char *spool_mode_name(spool_mode m)
{
	return m == SPOOL_MONITOR ? "monitor" : "gate";
}

/*
 * The one place paths are built.  A path that does not fit is never
 * truncated (a truncated path names a different file): log and abort.
 */
void spool_path(const spool *sp, spool_state st, const char *file, char *buf, size_t len)
{
	int n;

	if (file != NULL)
		n = snprintf(buf, len, "%s/%s/%s", sp->path, spool_state_name(st), file);
	else
		n = snprintf(buf, len, "%s/%s", sp->path, spool_state_name(st));
	if (n < 0 || (size_t)n >= len) {
		spool_log(LOG_CRIT, "spool %s: path does not fit buffer (%s/%s)", sp->name,
		          spool_state_name(st), file ? file : "");
		abort();
	}
}

/* 1 if s ends with suffix. */
static int spool_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* 1 for sidecars and verdicts (anything ending in .json). */
int spool_name_is_json(const char *name)
{
	return spool_ends_with(name, ".json");
}

/*
 * Postfix's rule: a name found in a spool is hostile until checked.  No
 * dotfiles (temp files by convention), no '/', no "..", no control
 * characters, bounded length.
 */
int spool_name_ok(const char *name, const char **why)
{
	const char *dummy;
	size_t n = strlen(name);

	if (why == NULL)
		why = &dummy;
	if (n == 0) {
		*why = "empty name";
		return 0;
	}
	if (name[0] == '.') {
		*why = "dotfile (temporary by convention)";
		return 0;
	}
	if (n > SPOOL_FILE_MAX) {
		*why = "name too long";
		return 0;
	}
	if (strchr(name, '/') != NULL || strstr(name, "..") != NULL) {
		*why = "name contains '/' or '..'";
		return 0;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			*why = "name contains a control character";
			return 0;
		}
	/* issue 6: the name goes into JSON (verdict, audit line, alerts), which
	 * must be UTF-8: jansson refuses anything else, and such a file was
	 * claimed, then stuck in active/ retrying an audit line it could never
	 * write.  Refuse it here, where it stays untouched in incoming/. */
	for (const unsigned char *p = (const unsigned char *)name; *p;) {
		size_t len = spool_utf8_len(p);
		if (len == 0) {
			*why = "name is not valid UTF-8";
			return 0;
		}
		p += len;
	}
	if (spool_ends_with(name, ".verdict")) {
		*why = "name ends in .verdict (reserved)";
		return 0;
	}
	*why = NULL;
	return 1;
}

/* NAME.ext -> NAME (the stem that names the sidecar and the verdict). */
int spool_name_stem(const char *name, char *buf, size_t len)
{
	const char *dot = strrchr(name, '.');
	size_t stem = (dot != NULL && dot != name) ? (size_t)(dot - name) : strlen(name);
	int n = snprintf(buf, len, "%.*s", (int)stem, name);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* 1 if s is exactly an item id: YYYYMMDDTHHMMSSZ-xxxxxxxx. */
int spool_id_ok(const char *s)
{
	static const char shape[] = "ddddddddTddddddZ-hhhhhhhh";

	if (strlen(s) != SPOOL_ID_LEN)
		return 0;
	for (size_t i = 0; i < SPOOL_ID_LEN; i++) {
		char c = s[i], want = shape[i];
		if (want == 'd' && !isdigit((unsigned char)c))
			return 0;
		if (want == 'h' && !(isdigit((unsigned char)c) || (c >= 'a' && c <= 'f')))
			return 0;
		if (want != 'd' && want != 'h' && c != want)
			return 0;
	}
	return 1;
}

/* Split "ID_rest" into its id; -1 when the name does not carry one. */
int spool_file_id(const char *file, char id[SPOOL_ID_LEN + 1])
{
	if (strlen(file) < SPOOL_ID_LEN + 1 || file[SPOOL_ID_LEN] != '_')
		return -1;
	memcpy(id, file, SPOOL_ID_LEN);
	id[SPOOL_ID_LEN] = '\0';
	return spool_id_ok(id) ? 0 : -1;
}

/*
 * A fresh id: the claim time (sortable, readable) and 32 random bits, so
 * ids from a restarted daemon cannot repeat.  Collisions are still caught
 * by the no-replace rename of the claim.
 */
void spool_id_new(char id[SPOOL_ID_LEN + 1])
{
	struct tm tm;
	time_t now = time(NULL);
	uint32_t r;

	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (uint32_t)now ^ ((uint32_t)getpid() << 16) ^
		    atomic_fetch_add(&spool_tmp_counter, 1);
	char stamp[32];

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(id, SPOOL_ID_LEN + 1, "%.16s-%08x", stamp, (unsigned)r);
}

/* ISO 8601 UTC with milliseconds. */
void spool_iso_time(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	char base[32];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", base, ts->tv_nsec / 1000000);
}

/* ------------------------------------------------------------ front end */

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

/* Path of the item's audio file. */
void spool_item_path(const spool *sp, const spool_item *it, char *buf, size_t len)
{
	spool_path(sp, it->state, it->file, buf, len);
}

/* Path of the item's sidecar (ID_STEM.json), present or not. */
void spool_item_sidecar(const spool *sp, const spool_item *it, char *buf, size_t len)
{
	char stem[sizeof it->file], f[sizeof it->file + 8];

	spool_name_stem(it->file, stem, sizeof stem);
	snprintf(f, sizeof f, "%s.json", stem);
	spool_path(sp, it->state, f, buf, len);
}

/* File name of the item's verdict: ID_STEM.verdict.json. */
void spool_item_verdict_file(const spool_item *it, char *buf, size_t len)
{
	char stem[sizeof it->file];

	spool_name_stem(it->file, stem, sizeof stem);
	snprintf(buf, len, "%s.verdict.json", stem);
}

/* Path of the item's verdict, present or not. */
void spool_item_verdict(const spool *sp, const spool_item *it, char *buf, size_t len)
{
	char f[sizeof it->file + 16];

	spool_item_verdict_file(it, f, sizeof f);
	spool_path(sp, it->state, f, buf, len);
}

/* The item whose id (or file name) is given, searched in every state
 * except incoming. */
int spool_item_find(const spool *sp, const char *idarg, spool_item *out)
{
	char id[SPOOL_ID_LEN + 1], dir[SPOOL_PATH_MAX];

	if (spool_id_ok(idarg))
		snprintf(id, sizeof id, "%s", idarg);
	else if (spool_file_id(idarg, id) < 0)
		return -1;
	for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
		DIR *d;
		struct dirent *de;
		int found = -1;

		spool_path(sp, (spool_state)st, NULL, dir, sizeof dir);
		if ((d = opendir(dir)) == NULL)
			continue;
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
		if (found == 0)
			return 0;
	}
	return -1;
}

/* --------------------------------------------------------- small helpers */

/* Errors that go away by themselves (space, descriptors, memory, I/O) are
 * temporary; everything else is a plain error. */
static int spool_errno_class(int e)
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
static int spool_rename_noreplace(const char *from, const char *to)
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
static int spool_item_fill(const spool *sp, spool_state st, const char *file, spool_item *it)
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

/*
 * Atomic replace, after OpenSMTPD's fsqueue_envelope_dump: write a temp file
 * created O_EXCL in the destination directory, fflush, fsync, fclose,
 * rename over the destination, fsync the directory.  Any failure removes
 * the temp file; the destination is then untouched.
 */
int spool_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[SPOOL_PATH_MAX], dir[SPOOL_PATH_MAX];
	const char *slash = strrchr(path, '/');
	FILE *fp = NULL;
	int fd = -1, e = 0, n;

	if (slash == NULL || slash[1] == '\0') {
		errno = EINVAL;
		return SPOOL_ERR;
	}
	n = snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	if (n < 0 || (size_t)n >= sizeof dir || n == 0)
		snprintf(dir, sizeof dir, "/");
	n = snprintf(tmp, sizeof tmp, "%s/" SPOOL_TMP_PREFIX "%d-%u-%.200s", dir, (int)getpid(),
	             atomic_fetch_add(&spool_tmp_counter, 1), slash + 1);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		spool_log(LOG_CRIT, "%s: temp path does not fit buffer", path);
		abort();
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640)) < 0)
		goto fail;
	if ((fp = fdopen(fd, "w")) == NULL)
		goto fail;
	fd = -1;
	if (len > 0 && fwrite(data, 1, len, fp) != len)
		goto fail;
	if (fflush(fp) != 0)
		goto fail;
	if (fsync(fileno(fp)) != 0)
		goto fail;
	if (fclose(fp) != 0) {
		fp = NULL;
		goto fail;
	}
	fp = NULL;
	if (rename(tmp, path) != 0)
		goto fail;
	if (spool_fsync_dir(dir) != 0)
		spool_log(LOG_WARNING, "%s: fsync: %s", dir, strerror(errno));
	return SPOOL_OK;
fail:
	e = errno;
	if (fp != NULL)
		fclose(fp);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	spool_log(LOG_ERR, "%s: cannot write: %s", path, strerror(e));
	errno = e;
	return spool_errno_class(e) == SPOOL_TEMPFAIL ? SPOOL_TEMPFAIL : SPOOL_ERR;
}

/* Exclusive advisory lock on SPOOL/.lock-WHICH. */
int spool_lock(const spool *sp, const char *which, int wait)
{
	char path[SPOOL_PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof path, "%s/.lock-%s", sp->path, which);
	if (n < 0 || (size_t)n >= sizeof path)
		abort();
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640)) < 0)
		return -1;
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Release a spool_lock(). */
void spool_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Accept new work only with room to write verdicts, move files and log. */
int spool_space_ok(const spool *sp, long min_free_mb)
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

/* ------------------------------------------------------------ fs backend */

/* Create SPOOL and its five state directories (0750), or check them. */
static int spool_fs_init(const spool *sp, int create, char *err, size_t errlen)
{
	char path[SPOOL_PATH_MAX];
	struct stat st;

	if (create && spool_mkdir(sp->path, err, errlen) < 0)
		return -1;
	for (int i = 0; i < SPOOL_NSTATES; i++) {
		spool_path(sp, (spool_state)i, NULL, path, sizeof path);
		if (create) {
			if (spool_mkdir(path, err, errlen) < 0)
				return -1;
		} else if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "spool %s: %s: not a directory", sp->name, path);
			return -1;
		}
	}
	return 0;
}

/*
 * Claim incoming/NAME: rename it (never replacing) to active/ID_NAME, then
 * its sidecar STEM.json to active/ID_STEM.json, then make both renames
 * durable.  A crash between the two renames leaves the sidecar in incoming/,
 * where spool_claim_sidecar() at recovery finds it again.
 */
static int spool_fs_claim(const spool *sp, const char *name, spool_item *out)
{
	char src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX], file[sizeof out->file];
	char stem[SPOOL_FILE_MAX + 1], sc[SPOOL_FILE_MAX + 8], scfile[sizeof out->file + 8];
	char id[SPOOL_ID_LEN + 1];
	const char *why;
	struct stat st;
	int tries;

	if (!spool_name_ok(name, &why) || spool_name_is_json(name)) {
		spool_log(LOG_WARNING, "spool %s: incoming/%s: refused: %s", sp->name, name,
		          why ? why : "a sidecar is not a recording");
		return SPOOL_ERR;
	}
	spool_path(sp, SPOOL_INCOMING, name, src, sizeof src);
	if (lstat(src, &st) < 0)
		return spool_errno_class(errno) == SPOOL_TEMPFAIL ? SPOOL_TEMPFAIL : SPOOL_GONE;
	if (!S_ISREG(st.st_mode)) {
		spool_log(LOG_WARNING, "spool %s: incoming/%s: not a regular file: skipped",
		          sp->name, name);
		return SPOOL_ERR;
	}
	for (tries = 0; tries < 8; tries++) {
		spool_id_new(id);
		snprintf(file, sizeof file, "%s_%s", id, name);
		spool_path(sp, SPOOL_ACTIVE, file, dst, sizeof dst);
		if (spool_rename_noreplace(src, dst) == 0)
			break;
		if (errno != EEXIST) {
			int rc = spool_errno_class(errno);
			if (rc != SPOOL_GONE)
				spool_log(LOG_ERR, "spool %s: claim incoming/%s: %s", sp->name,
				          name, strerror(errno));
			return rc == SPOOL_EXISTS ? SPOOL_ERR : rc;
		}
	}
	if (tries == 8)
		return SPOOL_TEMPFAIL;
	/* the name might have been swapped for a symlink between lstat and
	 * rename: check what we actually moved, and give it back if bad */
	if (lstat(dst, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) {
		/* issue 6: st_nlink too, see spool_incoming_walk() */
		spool_log(LOG_WARNING,
		          "spool %s: incoming/%s: changed to a non-regular or hard-linked file: "
		          "skipped",
		          sp->name, name);
		if (spool_rename_noreplace(dst, src) < 0)
			unlink(dst);
		return SPOOL_ERR;
	}
	spool_name_stem(name, stem, sizeof stem);
	snprintf(sc, sizeof sc, "%s.json", stem);
	snprintf(scfile, sizeof scfile, "%s_%s", id, sc);
	spool_path(sp, SPOOL_INCOMING, sc, src, sizeof src);
	if (lstat(src, &st) == 0) {
		char scdst[SPOOL_PATH_MAX];
		spool_path(sp, SPOOL_ACTIVE, scfile, scdst, sizeof scdst);
		if (!S_ISREG(st.st_mode))
			spool_log(LOG_WARNING,
			          "spool %s: incoming/%s: sidecar is not a regular file: ignored",
			          sp->name, sc);
		else if (spool_rename_noreplace(src, scdst) < 0)
			spool_log(LOG_WARNING, "spool %s: incoming/%s: cannot claim sidecar: %s",
			          sp->name, sc, strerror(errno));
	}
	spool_path(sp, SPOOL_ACTIVE, NULL, dst, sizeof dst);
	spool_fsync_dir(dst);
	spool_path(sp, SPOOL_INCOMING, NULL, src, sizeof src);
	spool_fsync_dir(src);
	return spool_item_fill(sp, SPOOL_ACTIVE, file, out) == 0 ? SPOOL_OK : SPOOL_GONE;
}

/*
 * Move an item: companions first (sidecar, verdict: they may replace a
 * stray copy, since the item id is unique), the audio last and never
 * replacing.  Whoever looks at a state directory sees the audio only once
 * its companions are already there.
 */
static int spool_fs_move(const spool *sp, const spool_item *it, spool_state to)
{
	char src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX], f[sizeof it->file + 16];
	spool_item moved = *it;

	if (to == it->state)
		return SPOOL_OK;
	moved.state = to;
	spool_item_sidecar(sp, it, src, sizeof src);
	spool_item_sidecar(sp, &moved, dst, sizeof dst);
	if (rename(src, dst) < 0 && errno != ENOENT)
		goto fail;
	spool_item_verdict_file(it, f, sizeof f);
	spool_path(sp, it->state, f, src, sizeof src);
	spool_path(sp, to, f, dst, sizeof dst);
	if (rename(src, dst) < 0 && errno != ENOENT)
		goto fail;
	spool_item_path(sp, it, src, sizeof src);
	spool_item_path(sp, &moved, dst, sizeof dst);
	if (spool_rename_noreplace(src, dst) < 0)
		goto fail;
	spool_path(sp, to, NULL, dst, sizeof dst);
	spool_fsync_dir(dst);
	spool_path(sp, it->state, NULL, src, sizeof src);
	spool_fsync_dir(src);
	return SPOOL_OK;
fail:;
	int e = errno;
	spool_log(LOG_ERR, "spool %s: move %s from %s to %s: %s", sp->name, it->file,
	          spool_state_name(it->state), spool_state_name(to), strerror(e));
	errno = e;
	return spool_errno_class(e);
}

/* Atomic write of STATE/FILE. */
static int spool_fs_put(const spool *sp, spool_state st, const char *file, const char *data,
                        size_t len)
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

/* Walk incoming/, classifying each entry for the caller. */
int spool_incoming_walk(const spool *sp,
                        void (*fn)(const spool *sp, const char *name, const struct stat *st,
                                   const char *skip, void *arg),
                        void *arg)
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

/*
 * An active item without its sidecar: a crash between the two renames of a
 * claim left STEM.json in incoming/.  Take it now.  1 if taken, else 0.
 */
int spool_claim_sidecar(const spool *sp, const spool_item *it)
{
	char stem[SPOOL_FILE_MAX + 1], sc[SPOOL_FILE_MAX + 8], src[SPOOL_PATH_MAX];
	char dst[SPOOL_PATH_MAX];
	struct stat st;

	if (it->state != SPOOL_ACTIVE || it->has_sidecar)
		return 0;
	spool_name_stem(it->name, stem, sizeof stem);
	snprintf(sc, sizeof sc, "%s.json", stem);
	spool_path(sp, SPOOL_INCOMING, sc, src, sizeof src);
	if (lstat(src, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	spool_item_sidecar(sp, it, dst, sizeof dst);
	if (spool_rename_noreplace(src, dst) < 0)
		return 0;
	spool_log(LOG_NOTICE, "spool %s: recovered sidecar incoming/%s for %s", sp->name, sc,
	          it->file);
	spool_path(sp, SPOOL_ACTIVE, NULL, dst, sizeof dst);
	spool_fsync_dir(dst);
	return 1;
}

/* ---------------------------------------------------------------- repair */

struct spool_rent {
	char id[SPOOL_ID_LEN + 1];
	spool_state st;
	char *file;
	int audio;
};

/* Order repair entries by id, audio first. */
static int spool_rent_cmp(const void *a, const void *b)
{
	const struct spool_rent *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c != 0 ? c : y->audio - x->audio;
}

/* Remove a temp file left by a crashed writer, if it is old enough that no
 * live writer can still own it. */
static void spool_repair_tmp(const spool *sp, spool_state st, const char *file, time_t now)
{
	char path[SPOOL_PATH_MAX];
	struct stat sb;

	spool_path(sp, st, file, path, sizeof path);
	if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (st == SPOOL_ACTIVE || now - sb.st_mtime > SPOOL_TMP_STALE_S)) {
		if (unlink(path) == 0)
			spool_log(LOG_INFO, "spool %s: removed stale temp file %s/%s", sp->name,
			          spool_state_name(st), file);
	}
}

/*
 * Put every companion file back beside its audio.  The audio's directory is
 * the item's state (spool_fs_move moves it last), so a crash mid-move is
 * undone here and the move is simply made again later.  Stale temp files
 * go too.  Run by the daemon at start-up under the "review" lock.
 */
int spool_repair(const spool *sp)
{
	struct spool_rent *ents = NULL;
	size_t n = 0, cap = 0;
	int repaired = 0;
	time_t now = time(NULL);

	for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
		char dir[SPOOL_PATH_MAX];
		struct dirent *de;
		DIR *d;

		spool_path(sp, (spool_state)st, NULL, dir, sizeof dir);
		if ((d = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char id[SPOOL_ID_LEN + 1];
			if (strncmp(de->d_name, SPOOL_TMP_PREFIX, strlen(SPOOL_TMP_PREFIX)) == 0) {
				spool_repair_tmp(sp, (spool_state)st, de->d_name, now);
				continue;
			}
			if (spool_file_id(de->d_name, id) < 0)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct spool_rent *ne = realloc(ents, nc * sizeof *ne);
				if (ne == NULL) {
					closedir(d);
					repaired = -1;
					goto out;
				}
				ents = ne;
				cap = nc;
			}
			memcpy(ents[n].id, id, sizeof id);
			ents[n].st = (spool_state)st;
			ents[n].audio = !spool_name_is_json(de->d_name);
			if ((ents[n].file = strdup(de->d_name)) == NULL) {
				closedir(d);
				repaired = -1;
				goto out;
			}
			n++;
		}
		closedir(d);
	}
	if (n > 0)
		qsort(ents, n, sizeof *ents, spool_rent_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && strcmp(ents[j].id, ents[i].id) == 0)
			j++;
		if (!ents[i].audio) {
			i = j; /* companions without audio: delivery took it; not ours */
			continue;
		}
		if (i + 1 < j && ents[i + 1].audio)
			spool_log(LOG_ERR, "spool %s: item %s has audio in two states (%s, %s)",
			          sp->name, ents[i].id, spool_state_name(ents[i].st),
			          spool_state_name(ents[i + 1].st));
		for (size_t k = i + 1; k < j; k++) {
			char src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX];
			if (ents[k].audio || ents[k].st == ents[i].st)
				continue;
			spool_path(sp, ents[k].st, ents[k].file, src, sizeof src);
			spool_path(sp, ents[i].st, ents[k].file, dst, sizeof dst);
			if (rename(src, dst) == 0) {
				spool_log(LOG_NOTICE, "spool %s: repaired %s: %s back to %s",
				          sp->name, ents[k].file, spool_state_name(ents[k].st),
				          spool_state_name(ents[i].st));
				repaired++;
			} else {
				spool_log(LOG_ERR, "spool %s: repair %s: %s", sp->name,
				          ents[k].file, strerror(errno));
			}
		}
		i = j;
	}
	if (repaired > 0)
		for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
			char dir[SPOOL_PATH_MAX];
			spool_path(sp, (spool_state)st, NULL, dir, sizeof dir);
			spool_fsync_dir(dir);
		}
out:
	for (size_t i = 0; i < n; i++)
		free(ents[i].file);
	free(ents);
	return repaired;
}
