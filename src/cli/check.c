/*
 * check.c - `vmscreen check`: screen recordings by hand, exactly as the
 * daemon screens them.
 *
 * The configuration is the daemon's: --config FILE, else $VMSCREEN_CONFIG,
 * else the installed VMS_SYSCONFDIR/vmscreend.conf when it exists (issue 12:
 * check read none of the last two, so one file was HOLD in the daemon and
 * pass here); --no-config for the built-in defaults.  -j N screens with N
 * threads, each with its own vms_worker from one shared vms_engine, all
 * made up front as daemon/runtime.c makes them, and each calling
 * vms_screen_file() as daemon/work.c does.  The main thread prints the
 * results in input order, so the output does not depend on N.  On a
 * terminal a progress line is kept on stderr; a summary line ends a run.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/check.h"
#include "conf/conf.h"
#include "core/internal.h" /* vms_unsafe_char_len */

#ifndef VMS_SYSCONFDIR
#define VMS_SYSCONFDIR "/etc/vmscreen"
#endif
#define CHECK_INSTALLED_CONFIG VMS_SYSCONFDIR "/vmscreend.conf"
#define CHECK_PASS 0
#define CHECK_HELD 1
#define CHECK_USAGE 2
#define CHECK_MAX_JOBS 256

/* The command line, and the configuration it comes to. */
struct check_opts {
	const char *config; /* the file read; NULL: the built-in defaults */
	const char *source; /* where config came from, for the notice */
	int config_given;   /* --config or --no-config */
	int no_config;
	int json;
	int verbose;
	int jobs; /* threads; 0 on the command line: one per online CPU */
	const char *text;
	char **files;
	size_t n_files;
};

/* What was screened, for the progress and summary lines. */
struct check_tally {
	size_t n, held, passed, unscreenable;
	double audio_s;
	double t0;          /* monotonic start of the run */
	int progress;       /* keep a progress line on stderr (a terminal) */
	int progress_shown; /* one is on the screen now */
	int stdout_tty;     /* results go to the same screen */
};

/* The files of one run and the threads screening them. */
struct check_run {
	char **files;
	size_t n;
	vms_result **results; /* by input index: set when done[i] */
	unsigned char *done;
	size_t next;      /* the next file a thread takes */
	size_t n_done;    /* how many have finished */
	size_t last_done; /* the one that finished last */
	pthread_mutex_t lock;
	pthread_cond_t finished;
	struct check_thread *threads; /* one worker each */
	int n_workers;
	int n_threads; /* started */
};

/* One screening thread and its own worker. */
struct check_thread {
	struct check_run *run;
	vms_worker *w;
	pthread_t tid;
};

/* How far the run was when the printer last looked. */
struct check_seen {
	size_t n_done, last;
};

/* check's usage and options. */
void check_usage(FILE *fp)
{
	fprintf(fp,
	        "usage: vmscreen check [OPTIONS] FILE...\n"
	        "       vmscreen check [OPTIONS] --text FILE|-\n"
	        "\n"
	        "Screen recordings (WAV, FLAC, Ogg, raw .ulaw/.alaw/.gsm/.sln) for open lines and\n"
	        "unprofessional phrasing, with the daemon's configuration and screening path.\n"
	        "\n"
	        "  -c, --config FILE  read FILE's screening group (default: $VMSCREEN_CONFIG,\n"
	        "                     else " CHECK_INSTALLED_CONFIG " when it exists,\n"
	        "                     else the built-in defaults)\n"
	        "      --no-config    use the built-in defaults, whatever is installed\n"
	        "      --json         one JSON object per file (JSON Lines) instead of the report\n"
	        "  -j, --jobs N       screen N files at a time (default 1; 0: one per online "
	        "CPU);\n"
	        "                     the output keeps the order of the files\n"
	        "  -t, --text FILE|-  each line of FILE (or standard input) that is not empty and\n"
	        "                     does not start with '#' is the transcript of one recording,\n"
	        "                     screened by every phrasing layer\n"
	        "  -v, --verbose      say which configuration is used, also when not on a "
	        "terminal\n"
	        "  -h, --help         this text\n"
	        "\n"
	        "On a terminal, progress is shown on stderr; a summary line (files, held, passed,\n"
	        "unscreenable, audio and wall time) always ends the run there.\n"
	        "Exit status: 0 all passed, 1 something was held, 2 usage or configuration "
	        "error.\n");
}

/* See check.h: defaults, then the config file's screening group. */
int check_load_settings(const char *config, vms_settings *s)
{
	char err[VMS_ERR_MAX + 256];
	config_t cfg;
	int rc;

	vms_settings_defaults(s);
	if (config == NULL)
		return 0;
	if (vms_conf_read(&cfg, config, err, sizeof err) < 0) {
		fprintf(stderr, "vmscreen: %s\n", err);
		return -1;
	}
	rc = vms_settings_apply(s, config_lookup(&cfg, "screening"), config, err, sizeof err);
	if (rc < 0)
		fprintf(stderr, "vmscreen: %s\n", err);
	config_destroy(&cfg);
	return rc;
}

/* -j's value: 0..CHECK_MAX_JOBS, 0 meaning one per online CPU.  0 or -1. */
static int check_parse_jobs(const char *arg, int *jobs)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 0 || v > CHECK_MAX_JOBS) {
		fprintf(stderr, "vmscreen check: --jobs %s: a number from 0 to %d\n", arg,
		        CHECK_MAX_JOBS);
		return -1;
	}
	if (v == 0) {
		v = sysconf(_SC_NPROCESSORS_ONLN);
		v = v < 1 ? 1 : v > CHECK_MAX_JOBS ? CHECK_MAX_JOBS : v;
	}
	*jobs = (int)v;
	return 0;
}

/* Parse the options into o.  0 to go on, 1 when --help was printed, -1 on
 * a usage error (already reported). */
static int check_parse(int argc, char **argv, struct check_opts *o)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'}, {"no-config", no_argument, NULL, 'N'},
	        {"json", no_argument, NULL, 'J'},         {"jobs", required_argument, NULL, 'j'},
	        {"text", required_argument, NULL, 't'},   {"verbose", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof *o);
	o->jobs = 1;
	optind = 0;
	while ((c = getopt_long(argc, argv, "c:j:t:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'N':
			o->no_config = 1;
			break;
		case 'J':
			o->json = 1;
			break;
		case 'j':
			if (check_parse_jobs(optarg, &o->jobs) < 0)
				return -1;
			break;
		case 't':
			o->text = optarg;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			check_usage(stdout);
			return 1;
		default:
			check_usage(stderr);
			return -1;
		}
	}
	o->files = argv + optind;
	o->n_files = (size_t)(argc - optind);
	return 0;
}

/* Combinations the options do not allow.  0, or -1 after saying why. */
static int check_validate(const struct check_opts *o)
{
	const char *why = NULL;

	if (o->config != NULL && o->no_config)
		why = "--config and --no-config exclude each other";
	else if (o->text != NULL && o->n_files > 0)
		why = "--text takes no other files";
	else if (o->text == NULL && o->n_files == 0)
		why = "no files given";
	if (why == NULL)
		return 0;
	fprintf(stderr, "vmscreen check: %s\n", why);
	check_usage(stderr);
	return -1;
}

/*
 * Which configuration is read, as the daemon and the review commands find
 * it: --config, else $VMSCREEN_CONFIG (empty counts as unset), else the
 * installed file when it exists.  One that exists but cannot be read is
 * an error later, never a silent fall back to defaults the daemon does
 * not use.
 */
static void check_resolve_config(struct check_opts *o)
{
	const char *env = getenv("VMSCREEN_CONFIG");
	struct stat st;

	o->config_given = o->config != NULL || o->no_config;
	if (o->no_config) {
		o->source = "--no-config";
	} else if (o->config != NULL) {
		o->source = "named by --config";
	} else if (env != NULL && env[0] != '\0') {
		o->config = env;
		o->source = "named by $VMSCREEN_CONFIG";
	} else if (stat(CHECK_INSTALLED_CONFIG, &st) == 0 || errno != ENOENT) {
		o->config = CHECK_INSTALLED_CONFIG;
		o->source = "the installed configuration";
	} else {
		o->source = CHECK_INSTALLED_CONFIG " does not exist";
	}
}

/* One line on stderr naming the configuration when it was not chosen on
 * the command line (on a terminal) or when asked (-v), so a verdict never
 * comes from a file nobody knew was read. */
static void check_notice_config(const struct check_opts *o)
{
	if (!o->verbose && (o->config_given || !isatty(STDERR_FILENO)))
		return;
	if (o->config != NULL)
		fprintf(stderr, "vmscreen check: config %s (%s)\n", o->config, o->source);
	else
		fprintf(stderr, "vmscreen check: built-in defaults (%s)\n", o->source);
}

/* Settings from the resolved configuration.  When it was not named on the
 * command line and fails, say where it came from and how to go on.  0 or
 * -1 (reported). */
static int check_settings(const struct check_opts *o, vms_settings *s)
{
	if (check_load_settings(o->config, s) == 0)
		return 0;
	if (!o->config_given)
		fprintf(stderr,
		        "vmscreen check: %s is %s; --config FILE reads another, --no-config "
		        "uses the built-in defaults\n",
		        o->config, o->source);
	return -1;
}

/* Monotonic seconds, for the wall time of a run. */
static double check_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A short report a person reads. */
static void check_report(const vms_result *r)
{
	printf("%-40s %s  %.1f s\n", r->file, r->verdict == VMS_HOLD ? "HOLD" : "pass",
	       r->duration_s);
	for (size_t i = 0; i < r->n_findings; i++) {
		const vms_finding *f = &r->findings[i];
		if (f->type == VMS_FINDING_UNSCREENABLE) {
			printf("    unscreenable: %s\n", f->evidence);
			continue;
		}
		printf("    %s/%s (%s) at %.1f-%.1f s: %s  [%s", vms_finding_type_name(f->type),
		       f->category, vms_severity_name(f->severity), f->start_s, f->end_s,
		       f->evidence, f->rule);
		if (f->type == VMS_FINDING_PHRASING)
			printf(", confidence %.2f", f->confidence);
		printf("]\n");
	}
}

/* 1 when the result was held because the file could not be screened. */
static int check_is_unscreenable(const vms_result *r)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (r->findings[i].type == VMS_FINDING_UNSCREENABLE)
			return 1;
	return 0;
}

/* Count one result (NULL: out of memory, which is unscreenable too). */
static void check_count(struct check_tally *t, const vms_result *r)
{
	t->n++;
	if (r == NULL || check_is_unscreenable(r))
		t->unscreenable++;
	else if (r->verdict == VMS_HOLD)
		t->held++;
	else
		t->passed++;
	if (r != NULL)
		t->audio_s += r->duration_s;
}

/* Take the progress line off the screen before anything else is printed. */
static void check_progress_clear(struct check_tally *t)
{
	if (!t->progress_shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	t->progress_shown = 0;
}

/* name as it may be shown on a terminal: control and bidirectional
 * characters as '?', cut from the left to fit width bytes. */
static void check_safe_name(const char *name, char *out, size_t width)
{
	size_t len = strlen(name), o = 0;
	const unsigned char *p = (const unsigned char *)name;

	if (len > width && width > 3) {
		p += len - (width - 3);
		while ((*p & 0xc0) == 0x80)
			p++; /* not in the middle of a character */
		memcpy(out, "...", 3);
		o = 3;
	}
	while (*p && o < width) {
		size_t bad = vms_unsafe_char_len(p);
		if (bad == 0 && *p != '\n' && *p != '\t') {
			out[o++] = (char)*p++;
			continue;
		}
		out[o++] = '?';
		p += bad ? bad : 1;
	}
	out[o] = '\0';
}

/* The progress line: "\r[12/50] 24% file.wav", the last file that finished. */
static void check_progress(struct check_tally *t, size_t done, size_t total, const char *name)
{
	char head[64], shown[512];
	struct winsize ws;
	size_t cols = 80;

	if (!t->progress || done == 0)
		return;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		cols = ws.ws_col;
	int n = snprintf(head, sizeof head, "[%zu/%zu] %d%% ", done, total,
	                 (int)(done * 100 / (total ? total : 1)));
	size_t room = cols > (size_t)n + 1 ? cols - (size_t)n - 1 : 0;
	check_safe_name(name, shown, room < sizeof shown - 1 ? room : sizeof shown - 1);
	fprintf(stderr, "\r%s%s\033[K", head, shown);
	fflush(stderr);
	t->progress_shown = 1;
}

/* The closing line on stderr, e.g. "50 files: 7 held, 42 passed, 1
 * unscreenable; 812.4 s of audio in 101.3 s (8.0x real time)". */
static void check_summary(struct check_tally *t, int text)
{
	double wall = check_now() - t->t0;

	check_progress_clear(t);
	if (text) {
		fprintf(stderr, "%zu transcript%s: %zu held, %zu passed; in %.1f s\n", t->n,
		        t->n == 1 ? "" : "s", t->held + t->unscreenable, t->passed, wall);
		return;
	}
	fprintf(stderr,
	        "%zu file%s: %zu held, %zu passed, %zu unscreenable; %.1f s of audio in %.1f s "
	        "(%.1fx real time)\n",
	        t->n, t->n == 1 ? "" : "s", t->held, t->passed, t->unscreenable, t->audio_s, wall,
	        wall > 0 ? t->audio_s / wall : 0.0);
}

/* Print one result (JSON Lines or the report); 1 when it was held. */
static int check_emit(const vms_result *r, int json)
{
	if (json) {
		char *j = vms_result_json(r);
		if (j)
			printf("%s\n", j);
		free(j);
	} else {
		check_report(r);
	}
	fflush(stdout);
	return r->verdict == VMS_HOLD;
}

/* One file's result: why it was unscreenable on stderr, the result on
 * stdout, and the tally.  Frees r; 1 when held. */
static int check_emit_file(const char *path, vms_result *r, int json, struct check_tally *t)
{
	int held = 1;

	if (t->stdout_tty || r == NULL || check_is_unscreenable(r))
		check_progress_clear(t);
	check_count(t, r);
	if (r == NULL) {
		fprintf(stderr, "vmscreen: %s: out of memory\n", path);
		return held;
	}
	for (size_t k = 0; k < r->n_findings; k++)
		if (r->findings[k].type == VMS_FINDING_UNSCREENABLE)
			fprintf(stderr, "vmscreen: %s: %s\n", path, r->findings[k].evidence);
	held = check_emit(r, json);
	vms_result_free(r);
	return held;
}

/*
 * check --text: each line a transcript, screened by the phrasing layers
 * only (no audio, no decoder).  Results are named FILE:LINE.
 */
static int check_text(vms_engine *e, const char *path, int json, struct check_tally *t)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	const char *shown = fp == stdin ? "-" : path;
	char *line = NULL, name[VMS_PATH_MAX + 32];
	size_t cap = 0;
	long no = 0;
	int held = 0;
	if (fp == NULL) {
		fprintf(stderr, "vmscreen: %s: %m\n", path);
		return CHECK_USAGE;
	}
	while (getline(&line, &cap, fp) >= 0) {
		no++;
		const char *p = line + strspn(line, " \t\r\n");
		if (*p == '\0' || *p == '#')
			continue;
		snprintf(name, sizeof name, "%s:%ld", shown, no);
		held |= check_emit_file(name, vms_screen_text(e, name, p), json, t);
	}
	int rc = ferror(fp) ? CHECK_USAGE : held ? CHECK_HELD : CHECK_PASS;
	if (ferror(fp))
		fprintf(stderr, "vmscreen: %s: read error\n", shown);
	free(line);
	if (fp != stdin)
		fclose(fp);
	if (rc != CHECK_USAGE)
		check_summary(t, 1);
	return rc;
}

/* A screening thread: take the next file, screen it with this thread's
 * worker (the daemon's call), hand the result to the printer. */
static void *check_thread_main(void *arg)
{
	struct check_thread *th = arg;
	struct check_run *run = th->run;

	for (;;) {
		pthread_mutex_lock(&run->lock);
		size_t i = run->next < run->n ? run->next++ : run->n;
		pthread_mutex_unlock(&run->lock);
		if (i == run->n)
			break;
		vms_result *r = vms_screen_file(th->w, run->files[i], NULL);
		pthread_mutex_lock(&run->lock);
		run->results[i] = r;
		run->done[i] = 1;
		run->n_done++;
		run->last_done = i;
		pthread_cond_signal(&run->finished);
		pthread_mutex_unlock(&run->lock);
	}
	return NULL;
}

/* Free what check_run_init made (threads already joined). */
static void check_run_free(struct check_run *run)
{
	for (int i = 0; i < run->n_workers; i++)
		vms_worker_free(run->threads[i].w);
	for (size_t i = 0; run->results != NULL && i < run->n; i++)
		vms_result_free(run->results[i]);
	free(run->threads);
	free(run->results);
	free(run->done);
	pthread_cond_destroy(&run->finished);
	pthread_mutex_destroy(&run->lock);
}

/* The run's tables and one worker per thread, all before any screening
 * (models load once per worker, as in the daemon).  0 or -1 (reported). */
static int check_run_init(struct check_run *run, vms_engine *e, const struct check_opts *o)
{
	char err[VMS_ERR_MAX];

	memset(run, 0, sizeof *run);
	pthread_mutex_init(&run->lock, NULL);
	pthread_cond_init(&run->finished, NULL);
	run->files = o->files;
	run->n = o->n_files;
	int want = o->jobs < 1 ? 1 : (size_t)o->jobs > run->n ? (int)run->n : o->jobs;
	run->results = calloc(run->n, sizeof *run->results);
	run->done = calloc(run->n, 1);
	run->threads = calloc((size_t)want, sizeof *run->threads);
	if (!run->results || !run->done || !run->threads) {
		fprintf(stderr, "vmscreen: out of memory\n");
		return -1;
	}
	for (; run->n_workers < want; run->n_workers++) {
		struct check_thread *th = &run->threads[run->n_workers];
		th->run = run;
		if ((th->w = vms_worker_new(e, err, sizeof err)) == NULL) {
			fprintf(stderr, "vmscreen: %s\n", err);
			return -1;
		}
	}
	return 0;
}

/* Start one thread per worker.  Fewer than asked still screens everything
 * (said on stderr); none is an error.  0 or -1. */
static int check_run_start(struct check_run *run)
{
	for (int i = 0; i < run->n_workers; i++) {
		struct check_thread *th = &run->threads[i];
		int rc = pthread_create(&th->tid, NULL, check_thread_main, th);
		if (rc != 0) {
			fprintf(stderr, "vmscreen check: thread %d: %s%s\n", i + 1, strerror(rc),
			        i > 0 ? ": going on with fewer" : "");
			break;
		}
		run->n_threads++;
	}
	return run->n_threads > 0 ? 0 : -1;
}

/* Wait until file i is done and take its result; meanwhile keep the
 * progress line up to date as other files finish.  *seen: the latest
 * count and last finished file. */
static vms_result *check_wait(struct check_run *run, size_t i, struct check_tally *t,
                              struct check_seen *seen)
{
	pthread_mutex_lock(&run->lock);
	for (;;) {
		if (run->n_done != seen->n_done) {
			seen->n_done = run->n_done;
			seen->last = run->last_done;
			if (t->progress && !run->done[i]) {
				pthread_mutex_unlock(&run->lock);
				check_progress(t, seen->n_done, run->n, run->files[seen->last]);
				pthread_mutex_lock(&run->lock);
				continue;
			}
		}
		if (run->done[i])
			break;
		pthread_cond_wait(&run->finished, &run->lock);
	}
	vms_result *r = run->results[i];
	run->results[i] = NULL;
	pthread_mutex_unlock(&run->lock);
	return r;
}

/* Screen the files with o->jobs threads and print each result in input
 * order, then the summary. */
static int check_files(vms_engine *e, const struct check_opts *o, struct check_tally *t)
{
	struct check_run run;
	struct check_seen seen = {0, 0};
	int held = 0;

	if (check_run_init(&run, e, o) < 0 || check_run_start(&run) < 0) {
		check_run_free(&run);
		return CHECK_USAGE;
	}
	for (size_t i = 0; i < run.n; i++) {
		vms_result *r = check_wait(&run, i, t, &seen);
		held |= check_emit_file(run.files[i], r, o->json, t);
		check_progress(t, seen.n_done, run.n, run.files[seen.last]);
	}
	for (int i = 0; i < run.n_threads; i++)
		pthread_join(run.threads[i].tid, NULL);
	check_run_free(&run);
	check_summary(t, 0);
	return held ? CHECK_HELD : CHECK_PASS;
}

/* vmscreen check: screen each file (or each line with --text), print a
 * verdict for each and a summary. */
int check_cmd(int argc, char **argv)
{
	struct check_tally t = {0};
	struct check_opts o;
	char err[VMS_ERR_MAX];
	vms_settings s;
	int rc;

	t.t0 = check_now();
	if ((rc = check_parse(argc, argv, &o)) != 0)
		return rc > 0 ? CHECK_PASS : CHECK_USAGE;
	if (check_validate(&o) < 0)
		return CHECK_USAGE;
	check_resolve_config(&o);
	check_notice_config(&o);
	if (check_settings(&o, &s) < 0)
		return CHECK_USAGE;
	vms_engine *e = vms_engine_new(&s, err, sizeof err);
	if (e == NULL) {
		fprintf(stderr, "vmscreen: %s\n", err);
		return CHECK_USAGE;
	}
	t.progress = o.text == NULL && isatty(STDERR_FILENO);
	t.stdout_tty = isatty(STDOUT_FILENO);
	rc = o.text ? check_text(e, o.text, o.json, &t) : check_files(e, &o, &t);
	vms_engine_free(e);
	return rc;
}
