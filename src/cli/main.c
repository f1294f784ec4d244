/*
 * main.c - the `vmscreen` command: screen files, test rules, review holds.
 *
 *   vmscreen check [--config FILE] [--json] FILE...
 *   vmscreen check [--config FILE] [--json] --text FILE|-
 *   vmscreen rules [--config FILE] (--lint | --test "sentence")
 *   vmscreen list | show | release | reject ...   (the review workflow)
 *   vmscreen audit verify | false-alarms ...       (the audit log)
 *
 * `check` calls exactly the screening path the daemon calls.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/internal.h"
#include "vmscreen.h"
#if __has_include("review.h")
#include "review.h"
#define HAVE_REVIEW 1
#endif
#include "audit_cmd.h"

#define EXIT_PASS 0
#define EXIT_HELD 1
#define EXIT_USAGE 2

static int cli_usage(FILE *fp);
static int cli_settings(const char *config, vms_settings *s);
static int cli_check(int argc, char **argv);
static int cli_rules(int argc, char **argv);
static void cli_report(const vms_result *r);
static int cli_check_text(vms_engine *e, const char *path, int json);
static int cli_emit(const vms_result *r, int json);

/* Print the command summary. */
static int cli_usage(FILE *fp)
{
	fprintf(fp,
	        "usage: vmscreen check [--config FILE] [--json] FILE...\n"
	        "       vmscreen check [--config FILE] [--json] --text FILE|-\n"
	        "       vmscreen rules [--config FILE] --lint\n"
	        "       vmscreen rules [--config FILE] --test \"recognised words\"\n"
	        "       vmscreen list [--config FILE] [--spool S] [--state STATE]\n"
	        "       vmscreen show [--config FILE] ID\n"
	        "       vmscreen release [--config FILE] ID --reason TEXT\n"
	        "       vmscreen reject [--config FILE] ID --reason TEXT\n"
	        "       vmscreen passwd NAME [--users-file FILE] [--delete]\n"
	        "       vmscreen audit verify [--config FILE] [--json] [AUDIT_FILE...]\n"
	        "       vmscreen audit false-alarms [--config FILE] [--tsv] [AUDIT_FILE...]\n"
	        "       vmscreen --version\n"
	        "\n"
	        "check screens recordings (WAV, FLAC, Ogg, raw .ulaw/.alaw/.gsm/.sln) for open\n"
	        "lines and unprofessional phrasing.  Exit status: 0 all passed, 1 something\n"
	        "was held, 2 usage or configuration error.  With --text each line of FILE\n"
	        "(or standard input) that is not empty and does not start with '#' is the\n"
	        "transcript of one recording, screened by every phrasing layer.\n");
	return fp == stderr ? EXIT_USAGE : 0;
}

/* Defaults, then the config file's screening group. */
static int cli_settings(const char *config, vms_settings *s)
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

/* A short report a person reads. */
static void cli_report(const vms_result *r)
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

/* Print one result (JSON Lines or the report); 1 when it was held. */
static int cli_emit(const vms_result *r, int json)
{
	if (json) {
		char *j = vms_result_json(r);
		if (j)
			printf("%s\n", j);
		free(j);
	} else {
		cli_report(r);
	}
	fflush(stdout);
	return r->verdict == VMS_HOLD;
}

/*
 * check --text: each line a transcript, screened by the phrasing layers
 * only (no audio, no decoder).  Results are named FILE:LINE.
 */
static int cli_check_text(vms_engine *e, const char *path, int json)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	const char *shown = fp == stdin ? "-" : path;
	char *line = NULL, name[VMS_PATH_MAX + 32];
	size_t cap = 0;
	long no = 0;
	int held = 0;
	if (fp == NULL) {
		fprintf(stderr, "vmscreen: %s: %m\n", path);
		return EXIT_USAGE;
	}
	while (getline(&line, &cap, fp) >= 0) {
		no++;
		const char *p = line + strspn(line, " \t\r\n");
		if (*p == '\0' || *p == '#')
			continue;
		snprintf(name, sizeof name, "%s:%ld", shown, no);
		vms_result *r = vms_screen_text(e, name, p);
		if (r == NULL) {
			fprintf(stderr, "vmscreen: %s: out of memory\n", name);
			held = 1;
			continue;
		}
		held |= cli_emit(r, json);
		vms_result_free(r);
	}
	int rc = ferror(fp) ? EXIT_USAGE : held ? EXIT_HELD : EXIT_PASS;
	if (ferror(fp))
		fprintf(stderr, "vmscreen: %s: read error\n", shown);
	free(line);
	if (fp != stdin)
		fclose(fp);
	return rc;
}

/* vmscreen check: screen each file, print a verdict for each. */
static int cli_check(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"text", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *config = NULL, *text = NULL;
	int json = 0, c, held = 0;
	char err[VMS_ERR_MAX];
	vms_settings s;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 't':
			text = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			return cli_usage(stdout);
		default:
			return cli_usage(stderr);
		}
	}
	if ((text == NULL) == (optind >= argc)) {
		fprintf(stderr, text ? "vmscreen check: --text takes no other files\n"
		                     : "vmscreen check: no files given\n");
		return cli_usage(stderr);
	}
	if (cli_settings(config, &s) < 0)
		return EXIT_USAGE;
	vms_engine *e = vms_engine_new(&s, err, sizeof err);
	if (e == NULL) {
		fprintf(stderr, "vmscreen: %s\n", err);
		return EXIT_USAGE;
	}
	if (text != NULL) {
		int rc = cli_check_text(e, text, json);
		vms_engine_free(e);
		return rc;
	}
	vms_worker *w = vms_worker_new(e, err, sizeof err);
	if (w == NULL) {
		fprintf(stderr, "vmscreen: %s\n", err);
		vms_engine_free(e);
		return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		vms_result *r = vms_screen_file(w, argv[i], NULL);
		if (r == NULL) {
			fprintf(stderr, "vmscreen: %s: out of memory\n", argv[i]);
			held = 1;
			continue;
		}
		for (size_t k = 0; k < r->n_findings; k++)
			if (r->findings[k].type == VMS_FINDING_UNSCREENABLE)
				fprintf(stderr, "vmscreen: %s: %s\n", argv[i],
				        r->findings[k].evidence);
		held |= cli_emit(r, json);
		vms_result_free(r);
	}
	vms_worker_free(w);
	vms_engine_free(e);
	return held ? EXIT_HELD : EXIT_PASS;
}

typedef struct cli_rules_hits {
	const char *const *words;
	size_t n;
} cli_rules_hits;

/* Print one rule hit for `rules --test`. */
static void cli_print_hit(const vms_hit *h, void *arg)
{
	const cli_rules_hits *ch = arg;
	printf("%s\t%s\t%s\t", h->category, vms_severity_name(h->severity), h->rule_id);
	for (size_t i = h->first; i <= h->last; i++)
		printf("%s%s", i > h->first ? " " : "", ch->words[i]);
	printf("\n");
}

/* vmscreen rules --lint | --test TEXT: check the packs, try a sentence. */
static int cli_rules(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"lint", no_argument, NULL, 'l'},
	                                     {"test", required_argument, NULL, 't'},
	                                     {NULL, 0, NULL, 0}};
	const char *config = NULL, *test = NULL;
	int lint = 0, c;
	char err[VMS_ERR_MAX];
	vms_settings s;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:lt:", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			lint = 1;
			break;
		case 't':
			test = optarg;
			break;
		default:
			return cli_usage(stderr);
		}
	}
	if (!lint && test == NULL)
		return cli_usage(stderr);
	if (cli_settings(config, &s) < 0)
		return EXIT_USAGE;
	vms_engine *e = vms_engine_new(&s, err, sizeof err);
	if (e == NULL) {
		fprintf(stderr, "vmscreen: %s\n", err);
		return EXIT_USAGE;
	}
	if (lint)
		printf("%s: rule packs load cleanly\n", s.models_dir);
	int rc = EXIT_PASS;
	if (test) {
		/* Split into lower-case words the way the recogniser writes them. */
		char *copy = strdup(test), *save = NULL;
		const char *words[512];
		size_t n = 0;
		for (char *t = copy ? vms_next_word(copy, &save) : NULL; t && n < 512;
		     t = vms_next_word(NULL, &save))
			words[n++] = t;
		cli_rules_hits ch = {words, n};
		size_t hits = vms_rules_match(vms_engine_rules(e), words, n, cli_print_hit, &ch);
		rc = hits ? EXIT_HELD : EXIT_PASS;
		free(copy);
	}
	vms_engine_free(e);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(stderr);
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0) {
		printf("vmscreen %s\n", VMS_VERSION);
		return 0;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
		return cli_usage(stdout);
	if (strcmp(cmd, "check") == 0)
		return cli_check(argc - 1, argv + 1);
	if (strcmp(cmd, "rules") == 0)
		return cli_rules(argc - 1, argv + 1);
	if (strcmp(cmd, "audit") == 0)
		return audit_cmd(argc - 1, argv + 1);
#ifdef HAVE_REVIEW
	if (strcmp(cmd, "list") == 0)
		return review_cmd_list(argc - 1, argv + 1);
	if (strcmp(cmd, "show") == 0)
		return review_cmd_show(argc - 1, argv + 1);
	if (strcmp(cmd, "release") == 0)
		return review_cmd_release(argc - 1, argv + 1);
	if (strcmp(cmd, "reject") == 0)
		return review_cmd_reject(argc - 1, argv + 1);
	if (strcmp(cmd, "passwd") == 0)
		return review_cmd_passwd(argc - 1, argv + 1);
#endif
	fprintf(stderr, "vmscreen: unknown command '%s'\n", cmd);
	return cli_usage(stderr);
}
