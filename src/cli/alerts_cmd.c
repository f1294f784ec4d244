/*
 * alerts_cmd.c - `vmscreen alerts list|retry ID|test HOOK` (issue 12): the
 * outbox for an operator.  `list` shows what waits and what was parked
 * (hook name, type, item, attempts, next attempt, last error); `retry`
 * puts a parked alert back in line for the daemon; `test` sends a signed
 * test alert to one hook from here and says what the endpoint answered.
 * The webhooks and outbox are the daemon's configuration's (--config,
 * $VMSCREEN_CONFIG, the installed one); retry must run as the outbox's
 * owner (the service account).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert/alert.h"
#include "cli/review.h"
#include "conf/conf.h"

static const char alerts_usage[] =
        "usage: vmscreen alerts list [--config FILE] [--json]\n"
        "       vmscreen alerts retry ID [--config FILE]\n"
        "       vmscreen alerts test HOOK [--config FILE]\n"
        "list: alerts waiting in the outbox and parked ones; retry: put a parked\n"
        "alert back in line (the daemon sends it at its next rescan); test: send a\n"
        "signed test alert to the webhook named HOOK now.\n";

struct alerts_list_ctx {
	int json;
	json_t *arr;
};

/* Unix milliseconds as local ISO time ("-" for 0). */
static void alerts_time(long long ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || localtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* alert_hub_list callback: one row or one JSON object. */
static int alerts_list_row(const alert_entry_info *e, void *arg)
{
	struct alerts_list_ctx *c = arg;
	char next[32];

	if (c->json) {
		json_array_append_new(
		        c->arr,
		        json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:i, s:I, s:I, s:I, s:s?}",
		                  "id", e->id, "state", e->parked ? "parked" : "pending", "hook",
		                  e->hook, "type", e->type, "spool", e->spool, "item",
		                  e->item ? e->item : "", "attempts", e->attempts, "last_status",
		                  (json_int_t)e->last_status, "created_ms",
		                  (json_int_t)e->created_ms, "next_ms", (json_int_t)e->next_ms,
		                  "last_error", e->last_error));
		return 0;
	}
	alerts_time(e->parked ? 0 : e->next_ms, next, sizeof next);
	printf("%-36s  %-7s  %-14s  %-21s  %s/%s  attempts %d  next %s%s%s\n", e->id,
	       e->parked ? "parked" : "pending", e->hook ? e->hook : "?", e->type ? e->type : "?",
	       e->spool ? e->spool : "?", e->item ? e->item : "?", e->attempts, next,
	       e->last_error && e->last_error[0] ? "  last: " : "",
	       e->last_error ? e->last_error : "");
	return 0;
}

/* The webhooks of the configuration, or NULL (said why). */
static alert_hub *alerts_hub(const char *config, config_t *cfg)
{
	char err[8192];
	alert_hub *h;

	config = vms_conf_path(config, 1);
	if (vms_conf_read(cfg, config, err, sizeof err) < 0) {
		fprintf(stderr, "vmscreen: alerts: %s\n", err);
		return NULL;
	}
	if ((h = alert_hub_new(cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "vmscreen: alerts: %s: webhooks: %s\n", config, err);
		config_destroy(cfg);
		return NULL;
	}
	return h;
}

/* Run one subcommand on the hub. */
static int alerts_run(alert_hub *h, const char *sub, const char *arg, int json)
{
	char msg[1024];

	if (strcmp(sub, "list") == 0) {
		struct alerts_list_ctx c = {json, json_array()};
		int n = alert_hub_list(h, alerts_list_row, &c);
		if (json) {
			char *s = json_dumps(c.arr, JSON_COMPACT | JSON_ENSURE_ASCII);
			printf("%s\n", s ? s : "[]");
			free(s);
		} else if (n == 0)
			printf("the outbox is empty\n");
		json_decref(c.arr);
		if (n < 0)
			fprintf(stderr, "vmscreen: alerts: the outbox cannot be read\n");
		return n < 0;
	}
	int rc = strcmp(sub, "retry") == 0 ? alert_hub_retry(h, arg, msg, sizeof msg)
	                                   : alert_hub_test(h, arg, msg, sizeof msg);
	if (rc == 0 && strcmp(sub, "retry") == 0)
		snprintf(msg, sizeof msg,
		         "%s: back in the outbox; the daemon sends it at its next "
		         "rescan",
		         arg);
	fprintf(rc == 0 ? stdout : stderr, "%s%s\n", rc == 0 ? "" : "vmscreen: alerts: ", msg);
	return rc == 0 ? 0 : 1;
}

/* vmscreen alerts list|retry ID|test HOOK [--config FILE] [--json] */
int review_cmd_alerts(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *config = NULL;
	int json = 0, c, rc;
	config_t cfg;

	optind = 0;
	while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'j')
			json = 1;
		else {
			fputs(alerts_usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	const char *sub = optind < argc ? argv[optind] : "";
	int want = strcmp(sub, "list") == 0                          ? 1
	           : (!strcmp(sub, "retry") || !strcmp(sub, "test")) ? 2
	                                                             : 0;
	if (want == 0 || argc - optind != want) {
		fputs(alerts_usage, stderr);
		return 2;
	}
	alert_hub *h = alerts_hub(config, &cfg);
	if (h == NULL)
		return 1;
	alert_hub_producer(h);
	rc = alerts_run(h, sub, want == 2 ? argv[optind + 1] : NULL, json);
	alert_hub_free(h);
	config_destroy(&cfg);
	return rc;
}
