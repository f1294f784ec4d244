/*
 * name.c - the names of a spool: what its states are called, which
 * producer file names are acceptable (Postfix's rule: a name found in a
 * spool is hostile until checked), item ids and the ID_NAME file names
 * that carry them, and every path: spool_path is the one place a path is
 * built, and spool_companion_name the one namer of an item's companions
 * (sidecar, claim record, verdict).  No filesystem access here.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h" /* vms_unsafe_char */
#include "spool/spool_int.h"

static const char *const spool_state_names[SPOOL_NSTATES] = {"incoming", "active", "released",
                                                             "hold", "rejected"};

static atomic_uint spool_tmp_counter;

/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0 when the
 * bytes there are not UTF-8 (stray continuation byte, overlong form,
 * surrogate, beyond U+10FFFF, truncated sequence). */
size_t spool_utf8_len(const unsigned char *p)
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
		/* issue 10: a right-to-left override makes "evil\u202Evaw.exe"
		 * read as "evilexe.wav" in a reviewer's list; issue 18: an
		 * invisible character (U+00AD, U+3164, a tag...) makes a second
		 * "a.wav".  The reason names the code point for the log. */
		static _Thread_local char cpwhy[96];
		uint32_t cp;
		if (vms_unsafe_char(p, &cp) > 0) {
			snprintf(cpwhy, sizeof cpwhy,
			         "name contains invisible, control or bidirectional character "
			         "U+%04X",
			         (unsigned)cp);
			*why = cpwhy;
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

/* Path of the item's audio file. */
void spool_item_path(const spool *sp, const spool_item *it, char *buf, size_t len)
{
	spool_path(sp, it->state, it->file, buf, len);
}

/* Path of the item's sidecar (ID_STEM.json), present or not. */
void spool_item_sidecar(const spool *sp, const spool_item *it, char *buf, size_t len)
{
	char f[sizeof it->file + 8];

	spool_companion_name(it, ".json", f, sizeof f);
	spool_path(sp, it->state, f, buf, len);
}

/* The one namer of companions: ID_STEM plus suffix (".json",
 * ".verdict.json", ".claim.json"). */
void spool_companion_name(const spool_item *it, const char *suffix, char *buf, size_t len)
{
	char stem[sizeof it->file];

	spool_name_stem(it->file, stem, sizeof stem);
	snprintf(buf, len, "%s%s", stem, suffix);
}

/* File name of the item's verdict: ID_STEM.verdict.json. */
void spool_item_verdict_file(const spool_item *it, char *buf, size_t len)
{
	spool_companion_name(it, ".verdict.json", buf, len);
}

/* Path of the item's verdict, present or not. */
void spool_item_verdict(const spool *sp, const spool_item *it, char *buf, size_t len)
{
	char f[sizeof it->file + 16];

	spool_item_verdict_file(it, f, sizeof f);
	spool_path(sp, it->state, f, buf, len);
}

/* File name of the item's claim record: ID_STEM.claim.json. */
void spool_item_claim_file(const spool_item *it, char *buf, size_t len)
{
	spool_companion_name(it, ".claim.json", buf, len);
}

/* Path of the item's claim record, present or not. */
void spool_item_claim(const spool *sp, const spool_item *it, char *buf, size_t len)
{
	char f[sizeof it->file + 16];

	spool_item_claim_file(it, f, sizeof f);
	spool_path(sp, it->state, f, buf, len);
}

/* The item's companion file names, in move order (the audio goes last). */
void spool_item_companions(const spool_item *it, char names[SPOOL_NCOMP][SPOOL_FILE_MAX + 64])
{
	spool_companion_name(it, ".json", names[0], SPOOL_FILE_MAX + 64);
	spool_companion_name(it, ".claim.json", names[1], SPOOL_FILE_MAX + 64);
	spool_companion_name(it, ".verdict.json", names[2], SPOOL_FILE_MAX + 64);
}
