/*
 * alert_driver.c - drives the webhook hub (src/alert) for
 * tests/integration/test_webhooks.py: real outbox, real HTTP, no daemon.
 *
 *   alert_driver -c CONFIG [-s SPOOL:ID:VERDICT.json]... [-t SECONDS] [-e]
 *
 * Creates the hub from CONFIG, starts it, submits each -s verdict (timing
 * each submit), then runs until SECONDS pass (-t, default 10), SIGTERM or
 * SIGINT, or with -e until the outbox holds no pending entry.  Prints one
 * line per event on stdout:
 *   submit SPOOL/ID rc=0 us=123
 *   empty ms=456                (with -e, when the outbox drained)
 *   stop ms=7                   (time alert_hub_stop() took)
 * Exit: 0 ok, 1 usage, 2 configuration refused (message on stderr),
 * 3 a submit failed, 4 -e given but the outbox did not drain in time.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libconfig.h>

#include "alert/alert.h"

static volatile sig_atomic_t driver_quit;

static void driver_on_signal(int sig);
static double driver_now(void);
static char *driver_slurp(const char *path);
static int driver_pending(const char *dir);

/* Async-signal-safe: only records that we should stop. */
static void driver_on_signal(int sig)
{
	driver_quit = sig;
}

/* Monotonic seconds, for timings. */
static double driver_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads a whole file into a NUL-terminated buffer. */
static char *driver_slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (fp == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	fclose(fp);
	return buf;
}

/* Pending outbox entries: *.json files not starting with a dot. */
static int driver_pending(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;
	size_t len;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] != '.' && len > 5 && strcmp(de->d_name + len - 5, ".json") == 0)
			n++;
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	const char *cfgpath = NULL, *outbox = "/var/spool/vmscreen/outbox";
	char err[512], **subs = NULL;
	double seconds = 10, t0, t;
	int opt, nsubs = 0, until_empty = 0, rc = 0;
	struct sigaction sa;
	alert_hub *h;
	config_t cfg;

	if ((subs = calloc((size_t)argc, sizeof(char *))) == NULL)
		return 1;
	while ((opt = getopt(argc, argv, "c:s:t:e")) != -1) {
		switch (opt) {
		case 'c':
			cfgpath = optarg;
			break;
		case 's':
			subs[nsubs++] = optarg;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'e':
			until_empty = 1;
			break;
		default:
			fprintf(stderr,
			        "usage: alert_driver -c CONFIG [-s SPOOL:ID:VERDICT.json]... "
			        "[-t SECONDS] [-e]\n");
			free(subs);
			return 1;
		}
	}
	if (cfgpath == NULL) {
		fprintf(stderr, "alert_driver: -c CONFIG is required\n");
		free(subs);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = driver_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	config_init(&cfg);
	if (config_read_file(&cfg, cfgpath) != CONFIG_TRUE) {
		fprintf(stderr, "alert_driver: %s:%d: %s\n",
		        config_error_file(&cfg) ? config_error_file(&cfg) : cfgpath,
		        config_error_line(&cfg), config_error_text(&cfg));
		config_destroy(&cfg);
		free(subs);
		return 2;
	}
	config_lookup_string(&cfg, "outbox_dir", &outbox);
	if ((h = alert_hub_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "alert_driver: %s\n", err);
		config_destroy(&cfg);
		free(subs);
		return 2;
	}
	if (alert_hub_start(h) == -1) {
		fprintf(stderr, "alert_driver: cannot start the hub\n");
		rc = 2;
		goto out;
	}
	for (int i = 0; i < nsubs; i++) {
		char *spool = subs[i], *id = strchr(spool, ':'), *file, *json;
		int r;

		if (id == NULL || (file = strchr(id + 1, ':')) == NULL) {
			fprintf(stderr, "alert_driver: -s wants SPOOL:ID:FILE, not %s\n", spool);
			rc = 1;
			goto out;
		}
		*id++ = '\0';
		*file++ = '\0';
		if ((json = driver_slurp(file)) == NULL) {
			fprintf(stderr, "alert_driver: %s: %s\n", file, strerror(errno));
			rc = 1;
			goto out;
		}
		json_t *v = json_loads(json, 0, NULL); /* as the daemon has it: a value */
		t = driver_now();
		r = v ? alert_hub_submit(h, spool, id, v) : -1;
		json_decref(v);
		printf("submit %s/%s rc=%d us=%.0f\n", spool, id, r, (driver_now() - t) * 1e6);
		free(json);
		if (r == -1)
			rc = 3;
	}
	t0 = driver_now();
	while (!driver_quit && driver_now() - t0 < seconds) {
		if (until_empty && driver_pending(outbox) == 0) {
			printf("empty ms=%.0f\n", (driver_now() - t0) * 1e3);
			break;
		}
		usleep(10000);
	}
	if (until_empty && driver_pending(outbox) > 0 && rc == 0)
		rc = 4;
out:
	t = driver_now();
	alert_hub_stop(h);
	printf("stop ms=%.0f\n", (driver_now() - t) * 1e3);
	alert_hub_free(h);
	config_destroy(&cfg);
	free(subs);
	return rc;
}
