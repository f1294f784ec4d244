/*
 * main.c - the `vmscreen` command: screen files, test rules, review holds.
 *
 *   vmscreen check [--config FILE|--no-config] [--json] [-j N] FILE...
 *   vmscreen check [--config FILE|--no-config] [--json] --text FILE|-
 *   vmscreen rules [--config FILE] (--lint | --test "sentence")
 *   vmscreen list | show | release | reject ...   (the review workflow)
 *   vmscreen audit verify | false-alarms ...       (the audit log)
 *
 *   vmscreen help [COMMAND]                        (COMMAND's own options)
 *
 * `check` (check.c) calls exactly the screening path the daemon calls.
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
#include "check.h"

#define EXIT_PASS 0
#define EXIT_HELD 1
#define EXIT_USAGE 2

/* A subcommand: argv[0] is its name; returns the exit status. */
typedef int (*cli_command_fn)(int argc, char **argv);

struct cli_command {
	const char *name;
	cli_command_fn run;
};

static int cli_usage(FILE *fp);
static int cli_rules(int argc, char **argv);
static int cli_help(int argc, char **argv);
static const struct cli_command *cli_find(const char *name);

/* Print the command summary. */
static int cli_usage(FILE *fp)
{
	fprintf(fp,
	        "usage: vmscreen check [--config FILE|--no-config] [--json] [-j N] FILE...\n"
	        "       vmscreen check [--config FILE|--no-config] [--json] --text FILE|-\n"
	        "       vmscreen rules [--config FILE] --lint\n"
	        "       vmscreen rules [--config FILE] --test \"recognised words\"\n"
	        "       vmscreen list [--config FILE] [--spool S] [--state STATE]\n"
	        "       vmscreen show [--config FILE] ID\n"
	        "       vmscreen release [--config FILE] ID --reason TEXT\n"
	        "       vmscreen reject [--config FILE] ID --reason TEXT\n"
	        "       vmscreen passwd NAME [--users-file FILE] [--delete]\n"
	        "       vmscreen alerts list | retry ID | test HOOK [--config FILE]\n"
	        "       vmscreen audit verify [--config FILE] [--json] [AUDIT_FILE...]\n"
	        "       vmscreen audit false-alarms [--config FILE] [--tsv] [AUDIT_FILE...]\n"
	        "       vmscreen help [COMMAND]\n"
	        "       vmscreen --version\n"
	        "\n"
	        "check screens recordings (WAV, FLAC, Ogg, raw .ulaw/.alaw/.gsm/.sln) for open\n"
	        "lines and unprofessional phrasing.  Exit status: 0 all passed, 1 something\n"
	        "was held, 2 usage or configuration error.  With --text each line of FILE\n"
	        "(or standard input) that is not empty and does not start with '#' is the\n"
	        "transcript of one recording, screened by every phrasing layer.\n"
	        "`vmscreen help COMMAND` (or `vmscreen COMMAND --help`) shows a command's\n"
	        "options.\n");
	return fp == stderr ? EXIT_USAGE : 0;
}

/* rules' usage and options. */
static int cli_rules_usage(FILE *fp)
{
	fprintf(fp, "usage: vmscreen rules [--config FILE] --lint\n"
	            "       vmscreen rules [--config FILE] --test \"recognised words\"\n"
	            "\n"
	            "  -c, --config FILE  the rule packs of FILE's screening group (models_dir)\n"
	            "  -l, --lint         load every rule pack and report the first problem\n"
	            "  -t, --test WORDS   print the rules that fire on WORDS (category, severity,\n"
	            "                     rule, the words matched); exit 1 when any fires\n"
	            "  -h, --help         this text\n");
	return fp == stderr ? EXIT_USAGE : 0;
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
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *config = NULL, *test = NULL;
	int lint = 0, c;
	char err[VMS_ERR_MAX];
	vms_settings s;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:lt:h", opts, NULL)) != -1) {
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
		case 'h':
			return cli_rules_usage(stdout);
		default:
			return cli_rules_usage(stderr);
		}
	}
	if (!lint && test == NULL)
		return cli_rules_usage(stderr);
	if (check_load_settings(config, &s) < 0)
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

static const struct cli_command cli_commands[] = {
        {"check", check_cmd},
        {"rules", cli_rules},
        {"audit", audit_cmd},
#ifdef HAVE_REVIEW
        {"list", review_cmd_list},
        {"show", review_cmd_show},
        {"release", review_cmd_release},
        {"reject", review_cmd_reject},
        {"passwd", review_cmd_passwd},
        {"alerts", review_cmd_alerts},
#endif
        {"help", cli_help},
};

/* The subcommand called name, or NULL. */
static const struct cli_command *cli_find(const char *name)
{
	for (size_t i = 0; i < sizeof cli_commands / sizeof cli_commands[0]; i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return &cli_commands[i];
	return NULL;
}

/*
 * vmscreen help [COMMAND]: the general usage, or COMMAND's own (issue 12:
 * `help check` printed the general one).  Each command prints its own
 * with --help, so that is what is called: one text per command.
 */
static int cli_help(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "help") == 0)
		return cli_usage(stdout);
	const struct cli_command *c = cli_find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "vmscreen: help: no command '%s'\n", argv[1]);
		return cli_usage(stderr);
	}
	char *args[] = {argv[1], "--help", NULL};
	return c->run(2, args);
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
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
		return cli_usage(stdout);
	const struct cli_command *c = cli_find(cmd);
	if (c != NULL)
		return c->run(argc - 1, argv + 1);
	fprintf(stderr, "vmscreen: unknown command '%s'\n", cmd);
	return cli_usage(stderr);
}
