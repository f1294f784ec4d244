/*
 * passwd.c - `vmscreen passwd NAME`: add, change or remove a reviewer
 * account of the console (issue 11).  The password comes from standard
 * input (asked twice without echo on a terminal; one line from a pipe),
 * never from the command line, where `ps` would show it.  The file is
 * --users-file, else the configuration's http.users_file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/review.h"
#include "conf/conf.h"
#include "review/review.h"

#define PASSWD_MAX 1024

static const char passwd_usage[] =
        "usage: vmscreen passwd NAME [--users-file FILE] [--config FILE] [--delete]\n"
        "Reads NAME's new console password from standard input (at least 10\n"
        "characters) and stores its Argon2id hash in the users file (the\n"
        "configuration's http.users_file unless --users-file is given).\n";

/* Read one line into buf without its newline; echo off on a terminal.
 * 0, or -1 at end of input or when the line is too long. */
static int passwd_read_line(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	int rc = 0;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (fgets(buf, (int)len, stdin) == NULL)
		rc = -1;
	else if (strchr(buf, '\n') == NULL && !feof(stdin))
		rc = -1; /* longer than the buffer */
	buf[strcspn(buf, "\r\n")] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	return rc;
}

/* The users file named by the configuration, into buf; 0 or -1. */
static int passwd_users_file(const char *config, char *buf, size_t len)
{
	char err[8192];
	const char *f = NULL;
	config_t cfg;

	config = vms_conf_path(config, 1);
	if (vms_conf_read(&cfg, config, err, sizeof err) < 0) {
		fprintf(stderr, "vmscreen: passwd: %s\n", err);
		return -1;
	}
	if (config_lookup_string(&cfg, "http.users_file", &f))
		snprintf(buf, len, "%s", f);
	else
		fprintf(stderr, "vmscreen: passwd: %s has no http.users_file; give --users-file\n",
		        config);
	config_destroy(&cfg);
	return f != NULL ? 0 : -1;
}

/* Ask for the new password (twice on a terminal); 0 or -1 (said why). */
static int passwd_ask(char *pw, size_t len)
{
	char again[PASSWD_MAX];
	int rc = 0;

	if (passwd_read_line("New password: ", pw, len) < 0) {
		fprintf(stderr, "vmscreen: passwd: no password on standard input (or longer "
		                "than 1023 bytes)\n");
		return -1;
	}
	if (strlen(pw) < REVIEWERS_PASSWORD_MIN) {
		fprintf(stderr, "vmscreen: passwd: the password must have at least %d characters\n",
		        REVIEWERS_PASSWORD_MIN);
		rc = -1;
	} else if (isatty(STDIN_FILENO)) {
		if (passwd_read_line("Again: ", again, sizeof again) < 0 ||
		    strcmp(pw, again) != 0) {
			fprintf(stderr, "vmscreen: passwd: the two passwords differ\n");
			rc = -1;
		}
		sodium_memzero(again, sizeof again);
	}
	return rc;
}

/* vmscreen passwd NAME [--users-file FILE] [--config FILE] [--delete] */
int review_cmd_passwd(int argc, char **argv)
{
	static const struct option opts[] = {{"users-file", required_argument, NULL, 'u'},
	                                     {"config", required_argument, NULL, 'c'},
	                                     {"delete", no_argument, NULL, 'd'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *users = NULL, *config = NULL;
	char file[4096], pw[PASSWD_MAX], err[4096 + 256];
	int del = 0, c, rc = 1;

	optind = 0;
	while ((c = getopt_long(argc, argv, "u:c:dh", opts, NULL)) != -1) {
		if (c == 'u')
			users = optarg;
		else if (c == 'c')
			config = optarg;
		else if (c == 'd')
			del = 1;
		else {
			fputs(passwd_usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind + 1 != argc) {
		fputs(passwd_usage, stderr);
		return 2;
	}
	if (users != NULL)
		snprintf(file, sizeof file, "%s", users);
	else if (passwd_users_file(config, file, sizeof file) < 0)
		return 1;
	if (!del && passwd_ask(pw, sizeof pw) < 0)
		return 1;
	if (reviewers_set(file, argv[optind], del ? NULL : pw, err, sizeof err) < 0)
		fprintf(stderr, "vmscreen: passwd: %s\n", err);
	else {
		printf("%s: account %s %s\n", file, argv[optind], del ? "removed" : "set");
		rc = 0;
	}
	sodium_memzero(pw, sizeof pw);
	return rc;
}
