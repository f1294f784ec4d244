/*
 * http.c - the HTTP face of vmscreend (issue 11, first part): GET /metrics
 * (Prometheus text, no login) and GET /healthz (200 when the workers are
 * alive and every spool's state directories are there and writable, else
 * 503 with the reasons).  Off unless the config has
 *   http = { listen = "127.0.0.1:9430"; };
 *
 * libmicrohttpd serves it from its own thread (MHD_USE_INTERNAL_POLLING_
 * THREAD, a small connection limit), so a slow or hostile client never
 * blocks screening: a request only takes the metrics mutex for the time
 * it takes to format counters, and walks hold/ and the outbox with
 * opendir.  Every response carries a strict Content-Security-Policy and
 * nosniff; nothing is ever served as HTML.  Not done here yet: the
 * reviewer console, logins and the JSON API.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "daemon.h"

#define HTTP_MAX_CONNECTIONS 32
#define HTTP_TIMEOUT_S 10
#define HTTP_WORKER_STUCK_S 900.0 /* a file in hand longer than this: unhealthy */

static struct MHD_Daemon *http_daemon;

/* Parse "ADDRESS:PORT" (IPv4) into sa; 0 or -1 with err. */
static int http_parse_listen(const char *s, struct sockaddr_in *sa, char *err, size_t errlen)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	memset(sa, 0, sizeof *sa);
	if (colon == NULL || (size_t)(colon - s) >= sizeof host || colon == s) {
		snprintf(err, errlen,
		         "http.listen \"%s\": must be ADDRESS:PORT, e.g. 127.0.0.1:9430", s);
		return -1;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		snprintf(err, errlen, "http.listen \"%s\": not an IPv4 address and port 1-65535",
		         s);
		return -1;
	}
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

/* Files in a directory that are items or entries (not dotfiles, not JSON
 * companions unless want_json); the oldest mtime into *oldest. */
static long http_count(const char *dir, int want_json, time_t *oldest)
{
	char p[SPOOL_PATH_MAX + 256];
	struct dirent *de;
	struct stat st;
	long n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || spool_name_is_json(de->d_name) != want_json)
			continue;
		n++;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (oldest != NULL && lstat(p, &st) == 0 && (*oldest == 0 || st.st_mtime < *oldest))
			*oldest = st.st_mtime;
	}
	closedir(d);
	return n;
}

/* Gauges read from the disk at scrape time: hold queue per spool and its
 * oldest item's age, outbox depth and parked alerts. */
static void http_disk_gauges(runtime *rt, FILE *o)
{
	char dir[SPOOL_PATH_MAX + 16];
	time_t now = time(NULL);

	fprintf(o, "# HELP vmscreen_hold_items Items waiting in hold/ for a reviewer.\n"
	           "# TYPE vmscreen_hold_items gauge\n");
	for (size_t i = 0; i < rt->sc.n_spools; i++) {
		time_t oldest = 0;
		spool_path(&rt->sc.spools[i], SPOOL_HOLD, NULL, dir, sizeof dir);
		long n = http_count(dir, 0, &oldest);
		fprintf(o, "vmscreen_hold_items{spool=\"%s\"} %ld\n", rt->sc.spools[i].name,
		        n < 0 ? 0 : n);
		fprintf(o, "vmscreen_hold_oldest_age_seconds{spool=\"%s\"} %lld\n",
		        rt->sc.spools[i].name, (long long)(oldest ? now - oldest : 0));
	}
	const char *outbox = alert_hub_outbox(D.hub);
	if (outbox != NULL) {
		long pending = http_count(outbox, 1, NULL);
		snprintf(dir, sizeof dir, "%s/parked", outbox);
		long parked = http_count(dir, 1, NULL);
		fprintf(o,
		        "# HELP vmscreen_outbox_pending Alerts waiting for delivery.\n"
		        "# TYPE vmscreen_outbox_pending gauge\nvmscreen_outbox_pending %ld\n"
		        "# HELP vmscreen_outbox_parked Alerts given up on, kept for a person.\n"
		        "# TYPE vmscreen_outbox_parked gauge\nvmscreen_outbox_parked %ld\n",
		        pending < 0 ? 0 : pending, parked < 0 ? 0 : parked);
	}
}

/* /healthz: "ok", or one line per problem (returns the count). */
static int http_health(runtime *rt, FILE *o)
{
	int bad = 0;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&D.mu);
	for (int i = 0; i < D.n_workers; i++)
		if (D.busy_used[i] &&
		    now.tv_sec - D.busy_since[i].tv_sec > (time_t)HTTP_WORKER_STUCK_S) {
			fprintf(o, "worker %d: one file in hand for %lld s\n", i,
			        (long long)(now.tv_sec - D.busy_since[i].tv_sec));
			bad++;
		}
	pthread_mutex_unlock(&D.mu);
	if (atomic_load(&D.workers_running) < D.n_workers) {
		fprintf(o, "workers: %d of %d running\n", atomic_load(&D.workers_running),
		        D.n_workers);
		bad++;
	}
	for (size_t i = 0; i < rt->sc.n_spools; i++) {
		char why[SPOOL_PATH_MAX + 512];
		if (spool_init(&rt->sc.spools[i], 0, why, sizeof why) < 0) {
			fprintf(o, "%s\n", why);
			bad++;
			continue;
		}
		for (int st = SPOOL_INCOMING; st < SPOOL_NSTATES; st++) {
			spool_path(&rt->sc.spools[i], (spool_state)st, NULL, why, sizeof why);
			if (access(why, W_OK) < 0) {
				fprintf(o, "spool %s: %s: not writable: %s\n",
				        rt->sc.spools[i].name, why, strerror(errno));
				bad++;
			}
		}
	}
	if (bad == 0)
		fprintf(o, "ok\n");
	return bad;
}

/* Queue a text response with the headers every response carries. */
static enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                  const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ok;

	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy",
	                        "default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

/* The one request handler. */
static enum MHD_Result http_handle(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_len, void **state)
{
	char *body = NULL;
	size_t len = 0;
	unsigned status = 200;
	FILE *o;
	runtime *rt;

	(void)cls;
	(void)version;
	(void)upload;
	if (*state == NULL) { /* first call: headers only */
		*state = c;
		return MHD_YES;
	}
	if (*upload_len != 0) {
		*upload_len = 0; /* no bodies are accepted; answer after the upload */
		return MHD_YES;
	}
	if ((o = open_memstream(&body, &len)) == NULL)
		return MHD_NO;
	pthread_mutex_lock(&D.mu);
	rt = D.current;
	runtime_ref(rt);
	pthread_mutex_unlock(&D.mu);
	if (strcmp(url, "/metrics") != 0 && strcmp(url, "/healthz") != 0) {
		status = MHD_HTTP_NOT_FOUND;
		fprintf(o, "not found\n");
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		fprintf(o, "only GET\n");
	} else if (strcmp(url, "/metrics") == 0) {
		metrics_format(o);
		http_disk_gauges(rt, o);
	} else if (http_health(rt, o) > 0) {
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	runtime_unref(rt);
	fclose(o);
	return http_reply(c, status, body, len,
	                  strcmp(url, "/metrics") == 0 && status == 200
	                          ? "text/plain; version=0.0.4; charset=utf-8"
	                          : "text/plain; charset=utf-8");
}

/* See daemon.h. */
int http_check(const config_t *cfg, char *err, size_t errlen)
{
	const char *listen = NULL;
	struct sockaddr_in sa;

	if (config_lookup_string(cfg, "http.listen", &listen))
		return http_parse_listen(listen, &sa, err, errlen);
	if (config_lookup(cfg, "http") == NULL)
		return 0;
	snprintf(err, errlen, "http: listen = \"ADDRESS:PORT\"; is required");
	return -1;
}

/* See daemon.h. */
int http_start(const config_t *cfg, char *err, size_t errlen)
{
	const char *listen = NULL;
	struct sockaddr_in sa;

	if (!config_lookup_string(cfg, "http.listen", &listen))
		return 0; /* off */
	if (http_parse_listen(listen, &sa, err, errlen) < 0)
		return -1;
	http_daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	        http_handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S, MHD_OPTION_END);
	if (http_daemon == NULL) {
		snprintf(err, errlen, "http.listen %s: cannot listen: %s", listen, strerror(errno));
		return -1;
	}
	dlog(LOG_NOTICE, "http: serving /metrics and /healthz on %s", listen);
	return 0;
}

/* See daemon.h. */
void http_stop(void)
{
	if (http_daemon != NULL)
		MHD_stop_daemon(http_daemon);
	http_daemon = NULL;
}
