/*
 * audit_cmd.c - `vmscreen audit verify` and `vmscreen audit false-alarms`.
 *
 * verify reads the audit log (or the files named, oldest first: the chain
 * runs across them) line by line and checks that every line is a JSON
 * object whose "prev" is the SHA-256 of the line before it (see
 * spool_audit_append), and whose "seq" is the one before's plus one, from 1
 * (or --first): the chain shows a line changed, removed or inserted between
 * others, the numbers a cut at the start.  With no file named, the
 * configured log and all its rotated files are read (.gz too).  Lines
 * without "prev" at the very start of the first file were written before
 * the log was chained, lines without "seq" before they were numbered; both
 * are only counted.  The
 * first break is reported with its file and line number and a best guess
 * at what happened, from the neighbouring hashes: a line whose successor
 * does not chain to it was changed (or lines after it were removed); a line
 * the next line skips over was inserted; a last line without a newline is
 * torn.  A chain proves nothing about the lines after the last one anybody
 * kept a hash of, so the head (the hash of the last line) is printed for an
 * operator to record elsewhere.
 *
 * false-alarms prints the reviewers' false_alarm events as clean test
 * lines for the phrasing corpora.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <zlib.h>

#include "cli/audit_cmd.h"
#include "conf/conf.h"
#include "core/internal.h" /* vms_unsafe_char_len */
#include "spool/spool.h"

#define AUDIT_OK 0
#define AUDIT_BROKEN 1
#define AUDIT_USAGE 2
#define AUDIT_MAX_FILES 100000
#define AUDIT_ZERO "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_USAGE_TEXT                                                                           \
	"usage: vmscreen audit verify [--config FILE] [--json] [--head HEX] [--first SEQ]\n"       \
	"                             [AUDIT_FILE...]\n"                                           \
	"       vmscreen audit false-alarms [--config FILE] [--tsv] [AUDIT_FILE...]\n"

struct audit_opts {
	const char *config;
	const char *head;  /* verify: a head recorded earlier must still be a line */
	const char *first; /* verify: the seq the history starts at (default 1) */
	int json, tsv;
	char **files; /* the files named, or the configured log and its rotations */
	size_t n_files;
	char **found; /* malloc'd: the configured log's files when none is named */
};

/* One line of the log as verify sees it. */
typedef struct audit_rec {
	size_t file; /* index into the files */
	long line;   /* 1-based, within its file */
	char hash[SPOOL_SHA256_HEX];
	int json;                    /* a JSON object */
	int torn;                    /* the last line of its file, without a newline */
	int has_prev;                /* has a "prev" member */
	char prev[SPOOL_SHA256_HEX]; /* its value when 64 lowercase hex digits, else "" */
	int has_seq;                 /* has a "seq" member */
	long long seq;               /* its value, or 0 when it is not a whole number >= 1 */
} audit_rec;

/* Reads the files one line after another. */
typedef struct audit_reader {
	char *const *files;
	size_t n, cur;
	FILE *fp;
	long line;
	off_t off, limit; /* bytes read of the file, and its size when opened */
	char *buf;
	size_t cap;
} audit_reader;

/* The state of verify between lines, and the break when found. */
typedef struct audit_verify {
	audit_rec a, b; /* the line two back and the line before */
	int have_a, have_b, chained;
	long pre;                          /* lines before the chain began */
	long long first;                   /* --first: the seq the history starts at */
	long long last_seq;                /* of the line before; 0: none numbered yet */
	long long first_seq;               /* of the first numbered line */
	long unseq;                        /* chained lines before the numbering began */
	char chain_from[SPOOL_SHA256_HEX]; /* prev of a first line with nothing before it */
	const char *want;                  /* --head: a hash recorded earlier */
	size_t want_file;                  /* where it was found */
	long want_line;                    /* 0: not (yet) found */
	long *lines;                       /* per file */
	char (*heads)[SPOOL_SHA256_HEX];   /* per file: hash of the last line so far */
	size_t bad_file;
	long bad_line;
	const char *problem;
	char what[256];
} audit_verify;

static int audit_check_chain(audit_verify *v, const audit_rec *c, audit_reader *r);

/* Log lines of the spool module, as plain messages for a terminal. */
static void audit_log(int prio, const char *msg)
{
	if (prio <= LOG_NOTICE)
		fprintf(stderr, "vmscreen: %s\n", msg);
}

/*
 * Options of both subcommands (argv[0] is the subcommand).  The config is
 * found as the review commands find it; it is read only when no file is
 * named.  0, or an exit status (help: -1).
 */
static int audit_parse(int argc, char **argv, struct audit_opts *o)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"tsv", no_argument, NULL, 't'},
	                                     {"head", required_argument, NULL, 'H'},
	                                     {"first", required_argument, NULL, 'F'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;

	optind = 0;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "c:jtH:F:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 't':
			o->tsv = 1;
			break;
		case 'H':
			o->head = optarg;
			break;
		case 'F':
			o->first = optarg;
			break;
		case 'h':
			fputs(AUDIT_USAGE_TEXT, stdout);
			return -1;
		default:
			fputs(AUDIT_USAGE_TEXT, stderr);
			return AUDIT_USAGE;
		}
	}
	o->files = argv + optind;
	o->n_files = (size_t)(argc - optind);
	o->config = vms_conf_path(o->config, 1);
	spool_set_logger(audit_log);
	return 0;
}

/*
 * The name of log's i-th rotated file as logrotate names it (LOG.1,
 * LOG.2.gz, ...: delaycompress), malloc'd, or NULL when there is none.
 */
static char *audit_rotated_name(const char *log, unsigned i)
{
	struct stat st;
	char *p = NULL;

	if (asprintf(&p, "%s.%u", log, i) >= 0 && lstat(p, &st) == 0)
		return p;
	free(p);
	p = NULL;
	if (asprintf(&p, "%s.%u.gz", log, i) >= 0 && lstat(p, &st) == 0)
		return p;
	free(p);
	return NULL;
}

/*
 * The rotated files of log, oldest first, then log itself, up to the first
 * number missing, into o->files (and o->found): the whole history verify is
 * to read (issue 18: the current file alone let its start be cut).  A gap
 * leaves older files unread, and the numbers then show the history does
 * not start at 1.  0 or -1 (said).
 */
static int audit_find_rotated(struct audit_opts *o, const char *log)
{
	size_t n = 0;
	char *p, **v;

	while (n < AUDIT_MAX_FILES && (p = audit_rotated_name(log, (unsigned)n + 1)) != NULL) {
		free(p);
		n++;
	}
	if ((v = calloc(n + 1, sizeof *v)) == NULL)
		goto fail;
	o->found = v;
	o->n_files = n + 1;
	for (size_t i = 0; i < n; i++) /* oldest first */
		if ((v[n - 1 - i] = audit_rotated_name(log, (unsigned)i + 1)) == NULL)
			goto fail;
	if ((v[n] = strdup(log)) == NULL)
		goto fail;
	o->files = v;
	return 0;
fail:
	fprintf(stderr, "vmscreen: audit log %s: out of memory, or rotated while read\n", log);
	return -1;
}

/* Free what audit_find_rotated found. */
static void audit_opts_free(struct audit_opts *o)
{
	for (size_t i = 0; o->found != NULL && i < o->n_files; i++)
		free(o->found[i]);
	free(o->found);
	o->found = NULL;
}

/* With no file named, the configured audit log and its rotated files.
 * 0 or -1 (said). */
static int audit_default_file(struct audit_opts *o)
{
	char err[8192];
	config_t cfg;
	spool_conf sc;

	if (o->n_files > 0)
		return 0;
	if (vms_conf_read(&cfg, o->config, err, sizeof err) < 0) {
		fprintf(stderr, "vmscreen: %s\n", err);
		return -1;
	}
	if (spool_conf_load(&cfg, &sc, err, sizeof err) < 0) {
		fprintf(stderr, "vmscreen: %s: %s\n", o->config, err);
		config_destroy(&cfg);
		return -1;
	}
	int rc = audit_find_rotated(o, sc.audit_log);
	spool_conf_free(&sc);
	config_destroy(&cfg);
	return rc;
}

/* 1 if s is 64 lowercase hex digits. */
static int audit_is_hex(const char *s)
{
	return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Fill rec from the line in r->buf (n bytes, with its newline if any);
 * *obj gets the object when obj is not NULL. */
static void audit_rec_fill(audit_reader *r, size_t n, audit_rec *rec, json_t **obj)
{
	json_error_t jerr;
	json_t *o, *p;

	memset(rec, 0, sizeof *rec);
	rec->file = r->cur;
	rec->line = r->line;
	rec->torn = r->buf[n - 1] != '\n';
	if (!rec->torn)
		n--;
	if (spool_sha256_hex(r->buf, n, rec->hash) < 0)
		rec->hash[0] = '\0'; /* out of memory: matches nothing */
	/* duplicate keys refused: a second "prev" must not hide the first */
	o = json_loadb(r->buf, n, JSON_REJECT_DUPLICATES, &jerr);
	rec->json = json_is_object(o);
	if (rec->json && (p = json_object_get(o, "prev")) != NULL) {
		rec->has_prev = 1;
		if (audit_is_hex(json_string_value(p)))
			memcpy(rec->prev, json_string_value(p), SPOOL_SHA256_HEX);
	}
	if (rec->json && (p = json_object_get(o, "seq")) != NULL) {
		rec->has_seq = 1;
		if (json_is_integer(p) && json_integer_value(p) >= 1)
			rec->seq = (long long)json_integer_value(p);
	}
	if (obj != NULL && rec->json)
		*obj = o;
	else
		json_decref(o);
}

/* fopencookie's read and close for a gzFile. */
static ssize_t audit_gz_read(void *c, char *buf, size_t size)
{
	int n = gzread((gzFile)c, buf, size > INT_MAX ? INT_MAX : (unsigned)size);

	if (n < 0)
		errno = EIO;
	return n;
}

static int audit_gz_close(void *c)
{
	return gzclose((gzFile)c) == Z_OK ? 0 : EOF;
}

/* A rotated, compressed file (logrotate's LOG.2.gz and older), read as a
 * stream: nobody appends to it, so there is no size to stop at. */
static FILE *audit_open_gz(const char *path, off_t *limit)
{
	static const cookie_io_functions_t io = {.read = audit_gz_read, .close = audit_gz_close};
	gzFile z = gzopen(path, "rb");
	FILE *fp = z != NULL ? fopencookie(z, "rb", io) : NULL;

	if (fp == NULL) {
		fprintf(stderr, "vmscreen: audit log %s: %m\n", path);
		if (z != NULL)
			gzclose(z);
		return NULL;
	}
	*limit = (off_t)INT64_MAX;
	return fp;
}

/*
 * Open one file and note its size under the writers' lock, shared
 * (spool_audit_lock, issue 18: not a flock on the log, which anyone who
 * reads it could hold).  Writers append whole lines under it, so that size
 * ends at a line: reading no further, a line the daemon is writing
 * meanwhile is not taken for a torn one.  The lock is not kept (a long
 * read must not stall the daemon); an account that cannot open it (it is
 * the service's) reads without it.
 */
static FILE *audit_open(const char *path, off_t *limit)
{
	size_t len = strlen(path);
	FILE *fp;
	struct stat st;
	int lk;

	if (len > 3 && strcmp(path + len - 3, ".gz") == 0)
		return audit_open_gz(path, limit);
	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "vmscreen: audit log %s: %m\n", path);
		return NULL;
	}
	lk = spool_audit_lock(path, 1, 0);
	if (fstat(fileno(fp), &st) < 0) {
		fprintf(stderr, "vmscreen: audit log %s: %m\n", path);
		spool_unlock(lk);
		fclose(fp);
		return NULL;
	}
	spool_unlock(lk);
	*limit = st.st_size;
	return fp;
}

/*
 * The next line of the files, in order: 1 and *rec (and *obj, the parsed
 * object or NULL, when obj is given), 0 after the last line of the last
 * file, -1 when a file cannot be read (said).
 */
static int audit_next(audit_reader *r, audit_rec *rec, json_t **obj)
{
	ssize_t n;

	if (obj != NULL)
		*obj = NULL;
	for (;;) {
		if (r->fp == NULL) {
			if (r->cur >= r->n)
				return 0;
			if ((r->fp = audit_open(r->files[r->cur], &r->limit)) == NULL)
				return -1;
			r->line = 0;
			r->off = 0;
		}
		if (r->off < r->limit && (n = getline(&r->buf, &r->cap, r->fp)) > 0) {
			if (n > r->limit - r->off)
				n = (ssize_t)(r->limit - r->off); /* appended since: not ours */
			r->off += n;
			break;
		}
		if (ferror(r->fp)) {
			fprintf(stderr, "vmscreen: audit log %s: read error\n", r->files[r->cur]);
			return -1;
		}
		fclose(r->fp);
		r->fp = NULL;
		r->cur++;
	}
	r->line++;
	audit_rec_fill(r, (size_t)n, rec, obj);
	return 1;
}

/* Close what the reader holds. */
static void audit_reader_close(audit_reader *r)
{
	if (r->fp != NULL)
		fclose(r->fp);
	free(r->buf);
}

/* Record the first break: problem (a short key) at file:line. */
static void audit_break(audit_verify *v, const audit_rec *at, const char *problem, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
static void audit_break(audit_verify *v, const audit_rec *at, const char *problem, const char *fmt,
                        ...)
{
	va_list ap;

	v->bad_file = at->file;
	v->bad_line = at->line;
	v->problem = problem;
	va_start(ap, fmt);
	vsnprintf(v->what, sizeof v->what, fmt, ap);
	va_end(ap);
}

/*
 * c's prev is not the hash of the line before it (b).  Name the likeliest
 * culprit from the neighbours: a prev equal to the hash two back means b
 * was inserted; a next line d chaining to b means c was inserted; d not
 * chaining to c either means c itself was changed; else b was changed or
 * lines between b and c were removed (the hashes cannot tell these apart).
 */
static int audit_mismatch(audit_verify *v, const audit_rec *c, audit_reader *r)
{
	audit_rec d;
	int nd = audit_next(r, &d, NULL);

	if (nd < 0)
		return -1;
	if (v->have_a && strcmp(c->prev, v->a.hash) == 0)
		audit_break(v, &v->b, "inserted",
		            "inserted: the next line's prev is the hash of the line before it");
	else if (nd > 0 && d.has_prev && strcmp(d.prev, v->b.hash) == 0)
		audit_break(v, c, "inserted",
		            "inserted: its prev does not match the line before, and the next "
		            "line chains past it");
	else if (nd > 0 && d.has_prev && strcmp(d.prev, c->hash) != 0)
		audit_break(v, c, "changed",
		            "changed: its prev does not match the line before, and the next "
		            "line's prev does not match it");
	else
		audit_break(v, &v->b, "changed_or_removed",
		            "changed, or lines after it were removed: the next line's prev is "
		            "not its hash");
	return 1;
}

/* A line that is not a JSON object: a torn write the next line chains
 * past (what spool_audit_append leaves after a crash), or damage. */
static int audit_not_json(audit_verify *v, const audit_rec *c, audit_reader *r)
{
	audit_rec d;
	int nd = audit_next(r, &d, NULL);
	const char *before = v->have_b ? v->b.hash : AUDIT_ZERO;

	if (nd < 0)
		return -1;
	if (nd > 0 && d.has_prev && strcmp(d.prev, before) == 0)
		audit_break(v, c, "torn",
		            "not JSON: a torn write (a write cut short; the next line chains "
		            "past it)");
	else
		audit_break(v, c, "not_json", "not a JSON object: changed or inserted");
	return 1;
}

/*
 * The line's seq against the line before (issue 18: the hashes show a
 * line changed, inserted or removed between two others, but not the
 * oldest lines cut off; the numbers do).  The first numbered line must be
 * --first (1 unless older files were deleted on purpose), or 1 after
 * unnumbered lines of an older version; each next one its predecessor's
 * plus one.  0 fine, 1 a break.
 */
static int audit_check_seq(audit_verify *v, const audit_rec *c)
{
	long long want = v->last_seq ? v->last_seq + 1 : v->unseq > 0 ? 1 : v->first;

	if (!c->has_prev)
		return 0; /* written before the chain began: counted as such */
	if (!c->has_seq && v->last_seq == 0)
		return v->unseq++, 0; /* written before lines were numbered */
	if (!c->has_seq || c->seq == 0) {
		audit_break(v, c, "no_seq",
		            "has no valid \"seq\" after numbered lines: inserted (or written by a "
		            "version without numbers after they began)");
		return 1;
	}
	if (c->seq == want) {
		if (v->last_seq == 0)
			v->first_seq = c->seq;
		v->last_seq = c->seq;
		return 0;
	}
	if (v->last_seq == 0 && v->unseq == 0 && c->seq > want)
		audit_break(v, c, "start_missing",
		            "its seq is %lld but the history starts at %lld: lines %lld to %lld "
		            "are missing (the oldest lines or files were cut; if rotated files "
		            "were deleted on purpose, give --first %lld)",
		            c->seq, want, want, c->seq - 1, c->seq);
	else
		audit_break(v, c, "seq",
		            "its seq is %lld where %lld was due: lines were removed or renumbered",
		            c->seq, want);
	return 1;
}

/* Check one line against the ones before it: 0 fine, 1 a break (recorded
 * in v), -1 a read error. */
static int audit_check(audit_verify *v, const audit_rec *c, audit_reader *r)
{
	int rc = audit_check_chain(v, c, r);

	return rc != 0 ? rc : audit_check_seq(v, c);
}

/* The hash chain part of audit_check. */
static int audit_check_chain(audit_verify *v, const audit_rec *c, audit_reader *r)
{
	if (c->torn) {
		audit_break(v, c, "torn",
		            "torn: no newline at its end (a write cut short, or the file was "
		            "truncated)");
		return 1;
	}
	if (!c->json)
		return audit_not_json(v, c, r);
	if (!c->has_prev) {
		if (!v->chained && c->file == 0)
			return v->pre++, 0; /* written before the log was chained */
		audit_break(v, c, "no_prev",
		            "has no \"prev\": inserted (or written by a version without the "
		            "chain after the chain began)");
		return 1;
	}
	if (!v->chained && !v->have_b) {
		v->chained = 1; /* the first line given: what it chains to is not here */
		memcpy(v->chain_from, c->prev, SPOOL_SHA256_HEX);
		return 0;
	}
	v->chained = 1;
	if (strcmp(c->prev, v->b.hash) == 0)
		return 0;
	return audit_mismatch(v, c, r);
}

/* Walk every line; 0 intact, 1 broken, -1 unreadable. */
static int audit_walk(audit_verify *v, char *const *files, size_t n)
{
	audit_reader r = {.files = files, .n = n};
	audit_rec c;
	int got, rc = 0;

	while ((got = audit_next(&r, &c, NULL)) > 0) {
		if ((rc = audit_check(v, &c, &r)) != 0)
			break;
		v->a = v->b;
		v->have_a = v->have_b;
		v->b = c;
		v->have_b = 1;
		v->lines[c.file] = c.line;
		memcpy(v->heads[c.file], c.hash, SPOOL_SHA256_HEX);
		if (v->want != NULL && v->want_line == 0 && strcmp(c.hash, v->want) == 0) {
			v->want_file = c.file;
			v->want_line = c.line;
		}
	}
	audit_reader_close(&r);
	return got < 0 ? -1 : rc;
}

/* verify's answer as one JSON object. */
static void audit_report_json(const audit_verify *v, int rc, char *const *files, size_t n)
{
	json_t *out, *arr = json_array();
	json_int_t total = 0;

	for (size_t i = 0; i < n; i++) {
		total += v->lines[i];
		json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "file", files[i], "lines",
		                                     (json_int_t)v->lines[i], "head", v->heads[i]));
	}
	if (rc == 0) {
		out = json_pack("{s:b, s:o, s:I, s:s, s:I, s:s?}", "ok", 1, "files", arr, "lines",
		                total, "head", v->heads[n - 1], "before_chain", (json_int_t)v->pre,
		                "chain_from", v->chain_from[0] ? v->chain_from : NULL);
		json_object_set_new(out, "first_seq", json_integer(v->first_seq));
		json_object_set_new(out, "last_seq", json_integer(v->last_seq));
		json_object_set_new(out, "unnumbered", json_integer(v->unseq));
		if (v->want != NULL)
			json_object_set_new(out, "recorded_head",
			                    json_pack("{s:s, s:s, s:I}", "head", v->want, "file",
			                              files[v->want_file], "line",
			                              (json_int_t)v->want_line));
	} else {
		json_decref(arr);
		out = json_pack("{s:b, s:s, s:I, s:s, s:s}", "ok", 0, "file", files[v->bad_file],
		                "line", (json_int_t)v->bad_line, "problem", v->problem, "error",
		                v->what);
	}
	char *t = out ? json_dumps(out, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
	if (t != NULL)
		printf("%s\n", t);
	free(t);
	json_decref(out);
}

/* Print verify's answer (text or JSON); returns the exit status. */
static int audit_report(const audit_verify *v, int rc, char *const *files, size_t n, int json)
{
	if (json) {
		audit_report_json(v, rc, files, n);
		return rc == 0 ? AUDIT_OK : AUDIT_BROKEN;
	}
	if (rc != 0 && v->bad_line == 0)
		printf("audit log %s: %s\n", files[v->bad_file], v->what);
	else if (rc != 0)
		printf("audit log %s: line %ld: %s\n", files[v->bad_file], v->bad_line, v->what);
	if (rc != 0)
		return AUDIT_BROKEN;
	for (size_t i = 0; i < n; i++)
		printf("audit log %s: %ld lines, chain intact, head %s\n", files[i], v->lines[i],
		       v->heads[i]);
	if (v->pre > 0)
		printf("audit log %s: %ld lines before the chain began (written by a version "
		       "without it)\n",
		       files[0], v->pre);
	if (v->unseq > 0)
		printf("audit log %s: %ld lines have no seq (written by a version before lines "
		       "were numbered): a cut among or before them cannot be found\n",
		       files[0], v->unseq);
	if (v->last_seq > 0)
		printf("audit log %s: lines numbered %lld to %lld, none missing\n", files[n - 1],
		       v->first_seq, v->last_seq);
	if (v->chain_from[0] && strcmp(v->chain_from, AUDIT_ZERO) != 0)
		printf("audit log %s: the chain continues from a line not given here (a "
		       "rotated file?): prev %s\n",
		       files[0], v->chain_from);
	if (v->want != NULL)
		printf("audit log %s: line %ld is the recorded head %s\n", files[v->want_file],
		       v->want_line, v->want);
	return AUDIT_OK;
}

/* --head was given and no line has that hash: a break of its own (the
 * lines up to a head someone kept are what the chain vouches for).  1. */
static int audit_head_missing(audit_verify *v, size_t n)
{
	v->bad_file = n - 1;
	v->bad_line = 0;
	v->problem = "head_missing";
	snprintf(v->what, sizeof v->what,
	         "the recorded head %s is the hash of no line: the lines up to it were "
	         "changed or removed, or it was recorded from other files",
	         v->want);
	return 1;
}

/* A seq given on the command line: a whole number from 1.  0 or -1. */
static int audit_parse_seq(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *out >= 1 ? 0 : -1;
}

/* vmscreen audit verify [--config FILE] [--json] [--head HEX] [--first SEQ] [FILE...] */
static int audit_cmd_verify(int argc, char **argv)
{
	struct audit_opts o = {0};
	audit_verify v = {0};
	int rc = audit_parse(argc, argv, &o);

	if (rc != 0)
		return rc < 0 ? AUDIT_OK : rc;
	if (o.head != NULL && !audit_is_hex(o.head)) {
		fprintf(stderr,
		        "vmscreen: --head %s: 64 lowercase hex digits, as verify printed it\n",
		        o.head);
		return AUDIT_USAGE;
	}
	v.first = 1;
	if (o.first != NULL && audit_parse_seq(o.first, &v.first) < 0) {
		fprintf(stderr,
		        "vmscreen: --first %s: the seq of the oldest line kept, 1 or more\n",
		        o.first);
		return AUDIT_USAGE;
	}
	if (audit_default_file(&o) < 0) {
		audit_opts_free(&o);
		return AUDIT_USAGE;
	}
	v.want = o.head;
	v.lines = calloc(o.n_files, sizeof *v.lines);
	v.heads = calloc(o.n_files, sizeof *v.heads);
	if (v.lines == NULL || v.heads == NULL) {
		fprintf(stderr, "vmscreen: out of memory\n");
		rc = AUDIT_USAGE;
		goto out;
	}
	memcpy(v.heads[0], AUDIT_ZERO, SPOOL_SHA256_HEX);
	if ((rc = audit_walk(&v, o.files, o.n_files)) < 0) {
		rc = AUDIT_USAGE;
		goto out;
	}
	/* an empty file's head is the head before it */
	for (size_t i = 1; i < o.n_files; i++)
		if (v.lines[i] == 0)
			memcpy(v.heads[i], v.heads[i - 1], SPOOL_SHA256_HEX);
	if (rc == 0 && v.want != NULL && v.want_line == 0)
		rc = audit_head_missing(&v, o.n_files);
	rc = audit_report(&v, rc, o.files, o.n_files, o.json);
out:
	audit_opts_free(&o);
	free(v.lines);
	free(v.heads);
	fflush(stdout);
	return rc;
}

/* s with control and bidirectional-override characters, tabs and
 * newlines shown as spaces (for a TSV line or a comment), malloc'd. */
static char *audit_clean(const char *s)
{
	char *out = strdup(s ? s : ""), *w = out;

	if (out == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)out; *p;) {
		size_t len = *p == '\t' || *p == '\n' || *p == '\r' ? 1 : vms_unsafe_char_len(p);
		if (len > 0) {
			*w++ = ' ';
			p += len;
		} else
			*w++ = (char)*p++;
	}
	*w = '\0';
	return out;
}

/* The words of a false_alarm event: its "words" (a string, or an array
 * of strings or of {w}), else its evidence.  malloc'd. */
static char *audit_words(const json_t *e)
{
	const json_t *w = json_object_get(e, "words"), *x;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *m;

	if (json_is_string(w) && json_string_length(w) > 0)
		return strdup(json_string_value(w));
	if ((m = open_memstream(&buf, &len)) == NULL)
		return NULL;
	json_array_foreach(w, i, x)
	{
		const char *t = json_string_value(json_is_object(x) ? json_object_get(x, "w") : x);
		if (t != NULL && *t)
			fprintf(m, "%s%s", ftell(m) > 0 ? " " : "", t);
	}
	if (ftell(m) == 0 && json_string_value(json_object_get(e, "evidence")) != NULL)
		fputs(json_string_value(json_object_get(e, "evidence")), m);
	fclose(m);
	return buf;
}

#define AUDIT_STR(e, k) (json_string_value(json_object_get(e, k)) ?: "")

/* Print one false_alarm event as a clean test line (JSON Lines, or the
 * label<TAB>sentence form of tests/phrases/ under a # comment). */
static void audit_emit_false_alarm(const json_t *e, int tsv)
{
	char *words = audit_words(e), *text = audit_clean(words), *src = NULL;

	if (text == NULL ||
	    asprintf(&src, "false_alarm %s (spool %s) by %s at %s", AUDIT_STR(e, "id"),
	             AUDIT_STR(e, "spool"), AUDIT_STR(e, "by"), AUDIT_STR(e, "ts")) < 0)
		src = NULL;
	if (src != NULL && tsv) {
		char *com = NULL, *safe = NULL;
		if (asprintf(&com, "%s: %s %s \"%s\"; note: %s", src, AUDIT_STR(e, "category"),
		             AUDIT_STR(e, "rule"), AUDIT_STR(e, "evidence"),
		             AUDIT_STR(e, "note")) >= 0 &&
		    (safe = audit_clean(com)) != NULL)
			printf("# %s\nclean\t%s\n", safe, text);
		free(com);
		free(safe);
	} else if (src != NULL) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "text", text, "expect",
		                      "clean", "source", src, "category", AUDIT_STR(e, "category"),
		                      "rule", AUDIT_STR(e, "rule"), "evidence",
		                      AUDIT_STR(e, "evidence"), "note", AUDIT_STR(e, "note"));
		char *t = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
		if (t != NULL)
			printf("%s\n", t);
		free(t);
		json_decref(o);
	}
	free(src);
	free(text);
	free(words);
}

/* vmscreen audit false-alarms [--config FILE] [--tsv] [AUDIT_FILE...] */
static int audit_cmd_false_alarms(int argc, char **argv)
{
	struct audit_opts o = {0};
	audit_reader r = {0};
	audit_rec rec;
	json_t *e;
	int got, rc = audit_parse(argc, argv, &o);

	if (rc != 0)
		return rc < 0 ? AUDIT_OK : rc;
	if (audit_default_file(&o) < 0) {
		audit_opts_free(&o);
		return AUDIT_USAGE;
	}
	r.files = o.files;
	r.n = o.n_files;
	while ((got = audit_next(&r, &rec, &e)) > 0) {
		const char *ev = json_string_value(json_object_get(e, "event"));
		if (e == NULL)
			fprintf(stderr,
			        "vmscreen: audit log %s: line %ld is not a JSON object: skipped\n",
			        o.files[rec.file], rec.line);
		else if (ev != NULL && strcmp(ev, "false_alarm") == 0)
			audit_emit_false_alarm(e, o.tsv);
		json_decref(e);
	}
	audit_reader_close(&r);
	audit_opts_free(&o);
	fflush(stdout);
	return got < 0 ? AUDIT_USAGE : AUDIT_OK;
}

/* vmscreen audit verify|false-alarms ... (argv[0] is "audit") */
int audit_cmd(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return audit_cmd_verify(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "false-alarms") == 0)
		return audit_cmd_false_alarms(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(AUDIT_USAGE_TEXT, stdout);
		return AUDIT_OK;
	}
	fputs(AUDIT_USAGE_TEXT, stderr);
	return AUDIT_USAGE;
}
