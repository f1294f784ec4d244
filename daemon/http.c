/*
 * http.c - the HTTP face of vmscreend (issue 11): GET /metrics (Prometheus
 * text, no login), GET /healthz (200 when the workers are alive and every
 * spool's state directories are there and writable, else 503 with the
 * reasons), and, when the config names a users_file, the reviewer
 * console (static files from console_dir), logins (http_auth.c) and the
 * JSON API (http_api.c).  Off unless the config has
 *   http = { listen = "127.0.0.1:9430"; users_file = "..."; };
 * The contract is docs/http.md.
 *
 * libmicrohttpd serves it from a small pool of its own threads (a
 * connection limit, timeouts), so a slow or hostile client never blocks
 * screening, and a login's Argon2id check blocks only its own thread.
 * Issue 18: one address may hold HTTP_PER_ADDRESS connections, and a
 * request must arrive whole within HTTP_DEADLINE_S of its connection's
 * start (or of the previous answer): a reaper thread shuts down the
 * connections that trickle, so slow clients cannot take /healthz,
 * /metrics and the console down.  A Host header must name this server (an
 * address literal, localhost or http.public_name; 421 otherwise), so a DNS
 * rebinding page cannot read it.  TLS is 1.2 or 1.3 with forward secrecy
 * only, and its key must be private to the service account.  A
 * request takes the metrics mutex only to format counters, and reads the
 * spools as the review commands do.  Every response carries a strict
 * Content-Security-Policy and nosniff; the console's pages get a CSP that
 * allows only its own scripts and styles, and they put every string from a
 * recording into the page as text, never as HTML.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>

#include <microhttpd.h>

#include "http_int.h"

#define HTTP_MAX_CONNECTIONS 32
#define HTTP_PER_ADDRESS 8  /* connections from one client address */
#define HTTP_POOL_THREADS 4 /* Argon2id may take 2 of them (http_auth.c) */
#define HTTP_TIMEOUT_S 30   /* idle, while an answer is being sent */
#define HTTP_DEADLINE_S 10  /* for a request to arrive, headers and body */
/* TLS 1.2 and 1.3, no static-RSA key exchange (no forward secrecy) */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:%SERVER_PRECEDENCE"
#define HTTP_SESSION_MIN_DEFAULT 480
#define HTTP_CSP_API "default-src 'none'; frame-ancestors 'none'"
/* The hash is of the one <style> that the vendored wavesurfer.js (7.12.12,
 * daemon/console/package-lock.json) writes into its shadow root; nothing
 * else inline is allowed.  tests/integration/test_console.py prints the
 * value to use when an upgrade changes it. */
#define HTTP_CSP_WAVESURFER "'sha256-Y/8t1dAKa3ay+RZEiEFEDr8dFiQhpaFvYXXUfT3p6ZU='"
#define HTTP_CSP_CONSOLE                                                                           \
	"default-src 'none'; script-src 'self'; style-src 'self' " HTTP_CSP_WAVESURFER             \
	"; img-src 'self' data:; "                                                                 \
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; form-action 'self'; "        \
	"base-uri 'none'; frame-ancestors 'none'"
#define HTTP_WORKER_STUCK_S 900.0 /* a file in hand longer than this: unhealthy */

/* One open connection, for the deadline: since when it has been waiting
 * for a request (answering: 0), its descriptor to shut down. */
typedef struct http_conn {
	struct http_conn *next, *prev;
	int fd;
	int answering;
	int reaped;
	struct timespec since;
} http_conn;

static struct MHD_Daemon *http_daemon;
static http_conf http_cf;
static char *http_tls_cert, *http_tls_key;
static pthread_mutex_t http_conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t http_reaper_cv = PTHREAD_COND_INITIALIZER;
static http_conn *http_conns;
static pthread_t http_reaper;
static int http_reaper_on, http_reaper_stop;

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

	long *n = calloc(rt->sc.n_spools + 1, sizeof *n);
	time_t *oldest = calloc(rt->sc.n_spools + 1, sizeof *oldest);

	for (size_t i = 0; n != NULL && oldest != NULL && i < rt->sc.n_spools; i++) {
		spool_path(&rt->sc.spools[i], SPOOL_HOLD, NULL, dir, sizeof dir);
		n[i] = http_count(dir, 0, &oldest[i]);
	}
	/* one HELP and TYPE per metric, then its samples (promtool's rule) */
	fprintf(o, "# HELP vmscreen_hold_items Items waiting in hold/ for a reviewer.\n"
	           "# TYPE vmscreen_hold_items gauge\n");
	for (size_t i = 0; n != NULL && oldest != NULL && i < rt->sc.n_spools; i++)
		fprintf(o, "vmscreen_hold_items{spool=\"%s\"} %ld\n", rt->sc.spools[i].name,
		        n[i] < 0 ? 0 : n[i]);
	fprintf(o, "# HELP vmscreen_hold_oldest_age_seconds Age of the oldest held item.\n"
	           "# TYPE vmscreen_hold_oldest_age_seconds gauge\n");
	for (size_t i = 0; n != NULL && oldest != NULL && i < rt->sc.n_spools; i++)
		fprintf(o, "vmscreen_hold_oldest_age_seconds{spool=\"%s\"} %lld\n",
		        rt->sc.spools[i].name, (long long)(oldest[i] ? now - oldest[i] : 0));
	free(n);
	free(oldest);
	const char *outbox = alert_hub_outbox(D.hub);
	if (outbox != NULL) {
		long pending = http_count(outbox, 1, NULL);
		snprintf(dir, sizeof dir, "%s/parked", outbox);
		long parked = http_count(dir, 1, NULL);
		alert_hub_metrics(D.hub, o);
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
	char lock[300];
	double waited = spool_lock_stalled(lock, sizeof lock);
	if (waited > DAEMON_LOCK_STALL_S) { /* issue 18: a lock someone holds */
		fprintf(o, "lock %s: waited for %.0f s (another process holds it)\n", lock, waited);
		bad++;
	}
	/* issue 18, attack round 4: screening stops while the audit log cannot
	 * be written (every item waits in active/); monitoring must see it */
	if (atomic_load(&D.audit_failing) ||
	    (access(rt->sc.audit_log, F_OK) == 0 && access(rt->sc.audit_log, W_OK) < 0)) {
		fprintf(o, "audit log %s: cannot be written: verdicts and decisions wait\n",
		        rt->sc.audit_log);
		bad++;
	}
	bad += cluster_health(o); /* issue 13: Redis unreachable */
	if (bad == 0)
		fprintf(o, "ok\n");
	return bad;
}

/* See http_int.h. */
void http_headers(struct MHD_Response *resp, int console_page)
{
	MHD_add_response_header(resp, "Content-Security-Policy",
	                        console_page ? HTTP_CSP_CONSOLE : HTTP_CSP_API);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
}

/* See http_int.h. */
enum MHD_Result http_send(http_req *r, unsigned status, char *body, size_t len, const char *type,
                          const char *const *hdrs)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	if (body == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	http_headers(resp, 0);
	MHD_add_response_header(resp, "Content-Type", type);
	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i += 2)
		MHD_add_response_header(resp, hdrs[i], hdrs[i + 1]);
	ok = MHD_queue_response(r->c, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* See http_int.h.  JSON is ASCII-escaped: a transcript's bytes can never
 * be read as markup or as another encoding. */
enum MHD_Result http_json(http_req *r, unsigned status, json_t *j, const char *const *hdrs)
{
	/* 10 significant digits: 2.56, not 2.5600000000000001 */
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10))
	               : NULL;

	json_decref(j);
	if (text == NULL)
		return MHD_NO;
	return http_send(r, status, text, strlen(text), "application/json; charset=utf-8", hdrs);
}

/* See http_int.h. */
enum MHD_Result http_error(http_req *r, unsigned status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return http_json(r, status, json_pack("{s:s}", "error", msg), NULL);
}

/* Content-Type of a console file, or NULL for a kind we do not serve. */
static const char *http_static_type(const char *path)
{
	static const char *const types[][2] = {
	        {".html", "text/html; charset=utf-8"},
	        {".js", "text/javascript; charset=utf-8"},
	        {".mjs", "text/javascript; charset=utf-8"},
	        {".css", "text/css; charset=utf-8"},
	        {".svg", "image/svg+xml"},
	        {".png", "image/png"},
	        {".woff2", "font/woff2"},
	        {".txt", "text/plain; charset=utf-8"},
	        {".json", "application/json"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot != NULL && i < sizeof types / sizeof *types; i++)
		if (strcmp(dot, types[i][0]) == 0)
			return types[i][1];
	return NULL;
}

/* 1 when rel is a console file name we may open: letters, digits, '.',
 * '_', '-' and '/', no empty, hidden or ".." component. */
static int http_static_name_ok(const char *rel)
{
	if (*rel == '\0' || strlen(rel) > 200)
		return 0;
	for (const char *p = rel; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-' || *p == '/'))
			return 0;
	for (const char *c = rel; c != NULL; c = strchr(c, '/'), c = c ? c + 1 : NULL)
		if (*c == '.' || *c == '/' || *c == '\0')
			return 0;
	return 1;
}

/* GET / and /console/REL: a file of console_dir. */
static enum MHD_Result http_static(http_req *r, const char *rel)
{
	char path[VMS_PATH_MAX + 256];
	const char *type = http_static_type(rel);
	struct stat st;
	int fd;

	if (!http_static_name_ok(rel) || type == NULL)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not found");
	snprintf(path, sizeof path, "%s/%s", http_cf.console_dir, rel);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not found");
	}
	struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
	if (resp == NULL) {
		close(fd);
		return MHD_NO;
	}
	http_headers(resp, 1);
	MHD_add_response_header(resp, "Content-Type", type);
	enum MHD_Result ok = MHD_queue_response(r->c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* GET /metrics and /healthz (no login). */
static enum MHD_Result http_ops(http_req *r, runtime *rt)
{
	char *body = NULL;
	size_t len = 0;
	unsigned status = MHD_HTTP_OK;
	int metrics = strcmp(r->url, "/metrics") == 0;
	FILE *o = open_memstream(&body, &len);

	if (o == NULL)
		return MHD_NO;
	if (metrics) {
		metrics_format(o);
		http_disk_gauges(rt, o);
	} else if (http_health(rt, o) > 0) {
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	fclose(o);
	return http_send(r, status, body, len,
	                 metrics && status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
	                                          : "text/plain; charset=utf-8",
	                 NULL);
}

/* Everything that needs a users_file: the console, logins, the API. */
static enum MHD_Result http_reviewer(http_req *r, runtime *rt)
{
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	int post = strcmp(r->method, "POST") == 0;
	const char *why = NULL;
	unsigned st;

	if (http_cf.users_file[0] == '\0')
		return http_error(r, MHD_HTTP_NOT_FOUND, "not found (no http.users_file)");
	if (get && strcmp(r->url, "/") == 0)
		return http_static(r, "index.html");
	if (get && strncmp(r->url, "/console/", 9) == 0)
		return http_static(r, r->url + 9);
	if (post && strcmp(r->url, "/login") == 0)
		return auth_login(r);
	if (get && strcmp(r->url, "/api/session") == 0)
		return auth_session(r);
	if (!get && !post)
		return http_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and POST");
	if ((st = auth_require(r, &why)) != 0)
		return http_error(r, st, "%s", why);
	if (post && strcmp(r->url, "/logout") == 0)
		return auth_logout(r);
	if (strcmp(r->url, "/api/items") == 0 || strncmp(r->url, "/api/items/", 11) == 0)
		return api_items(r, rt);
	return http_error(r, MHD_HTTP_NOT_FOUND, "not found");
}

/* See http_int.h. */
int http_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The client's address as text. */
static void http_client_ip(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr_in *sa = ci ? (const struct sockaddr_in *)ci->client_addr : NULL;

	snprintf(buf, len, "?");
	if (sa != NULL && sa->sin_family == AF_INET)
		inet_ntop(AF_INET, &sa->sin_addr, buf, (socklen_t)len);
}

/* This connection's record (NULL before MHD told us of it). */
static http_conn *http_conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/* A request has arrived whole (answering 1) or its answer is done (0: the
 * deadline for the next request starts now). */
static void http_conn_mark(struct MHD_Connection *c, int answering)
{
	http_conn *k = http_conn_of(c);

	if (k == NULL)
		return;
	pthread_mutex_lock(&http_conn_mu);
	k->answering = answering;
	clock_gettime(CLOCK_MONOTONIC, &k->since);
	pthread_mutex_unlock(&http_conn_mu);
}

/* MHD's connection callback: keep the list of open connections.  MHD
 * calls CLOSED before it closes the descriptor, so the reaper (which holds
 * the same mutex) never shuts down a descriptor that was reused. */
static void http_conn_notify(void *cls, struct MHD_Connection *c, void **ctx,
                             enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci;
	http_conn *k = *ctx;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL || (k = calloc(1, sizeof *k)) == NULL)
			return;
		k->fd = ci->connect_fd;
		clock_gettime(CLOCK_MONOTONIC, &k->since);
		pthread_mutex_lock(&http_conn_mu);
		k->next = http_conns;
		if (http_conns != NULL)
			http_conns->prev = k;
		http_conns = k;
		pthread_mutex_unlock(&http_conn_mu);
		*ctx = k;
		return;
	}
	if (k == NULL)
		return;
	pthread_mutex_lock(&http_conn_mu);
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		http_conns = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&http_conn_mu);
	free(k);
	*ctx = NULL;
}

/* The reaper: once a second, shut down the connections whose request has
 * not arrived within HTTP_DEADLINE_S (MHD then sees the end and closes). */
static void *http_reaper_main(void *arg)
{
	struct timespec now, wake;
	int n;

	(void)arg;
	pthread_mutex_lock(&http_conn_mu);
	while (!http_reaper_stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		n = 0;
		for (http_conn *k = http_conns; k != NULL; k = k->next)
			if (!k->answering && !k->reaped &&
			    now.tv_sec - k->since.tv_sec >= HTTP_DEADLINE_S) {
				shutdown(k->fd, SHUT_RDWR);
				k->reaped = 1;
				n++;
			}
		if (n > 0)
			dlog(LOG_WARNING,
			     "http: closed %d connection(s) that sent no whole request "
			     "within %d s",
			     n, HTTP_DEADLINE_S);
		clock_gettime(CLOCK_REALTIME, &wake);
		wake.tv_sec += 1;
		pthread_cond_timedwait(&http_reaper_cv, &http_conn_mu, &wake);
	}
	pthread_mutex_unlock(&http_conn_mu);
	return NULL;
}

/* 1 when a Host header may be served: none (HTTP/1.0), an address literal
 * (a rebinding page always comes by a DNS name), localhost, or the
 * configured public_name; any port. */
static int http_host_ok(const char *host)
{
	char name[256];
	struct in_addr a4;

	if (host == NULL || host[0] == '[')
		return 1;
	snprintf(name, sizeof name, "%s", host);
	char *colon = strchr(name, ':');
	if (colon != NULL)
		*colon = '\0';
	if (inet_pton(AF_INET, name, &a4) == 1 || strcasecmp(name, "localhost") == 0)
		return 1;
	return http_cf.public_name[0] != '\0' && strcasecmp(name, http_cf.public_name) == 0;
}

/* Gather a request body (at most HTTP_BODY_MAX) into r; 1 while more may
 * come. */
static int http_gather(http_req *r, const char *upload, size_t *upload_len)
{
	if (*upload_len == 0)
		return 0;
	if (!r->too_big && r->len + *upload_len <= HTTP_BODY_MAX) {
		char *nb = realloc(r->body, r->len + *upload_len + 1);
		if (nb != NULL) {
			memcpy(nb + r->len, upload, *upload_len);
			r->body = nb;
			r->len += *upload_len;
			r->body[r->len] = '\0';
		} else
			r->too_big = 1;
	} else
		r->too_big = 1;
	*upload_len = 0;
	return 1;
}

/* The one request handler: gather the body, then route. */
static enum MHD_Result http_handle(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_len, void **state)
{
	http_req *r = *state;
	enum MHD_Result ok;
	runtime *rt;

	(void)cls;
	(void)version;
	if (r == NULL) { /* first call: headers only */
		if ((r = calloc(1, sizeof *r)) == NULL)
			return MHD_NO;
		r->c = c;
		http_client_ip(c, r->ip, sizeof r->ip);
		*state = r;
		return MHD_YES;
	}
	if (http_gather(r, upload, upload_len))
		return MHD_YES;
	http_conn_mark(c, 1);
	r->method = method;
	r->url = url;
	if (!http_host_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")))
		return http_error(r, 421,
		                  "this server does not answer to that Host (http.public_name)");
	if (r->too_big)
		return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body over %d bytes",
		                  HTTP_BODY_MAX);
	pthread_mutex_lock(&D.mu);
	rt = D.current;
	runtime_ref(rt);
	pthread_mutex_unlock(&D.mu);
	if (strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0)
		ok = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0
		             ? http_ops(r, rt)
		             : http_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET");
	else
		ok = http_reviewer(r, rt);
	runtime_unref(rt);
	return ok;
}

/* MHD's URL unescaping, but a %00 stays as it is: decoded, it would end
 * the path early ("/api/items/ID%00/../x" read as "/api/items/ID"), so it
 * is left to fail the name and id checks.  Returns the new length. */
static size_t http_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *o = s;

	(void)cls;
	(void)c;
	for (const char *p = s; *p; p++) {
		int hi, lo;
		if (p[0] == '%' && (hi = http_hexval(p[1])) >= 0 && (lo = http_hexval(p[2])) >= 0 &&
		    (hi | lo) != 0) {
			*o++ = (char)(hi * 16 + lo);
			p += 2;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return (size_t)(o - s);
}

/* MHD's request-completed callback: free the request state. */
static void http_done(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode how)
{
	http_req *r = *state;

	(void)cls;
	(void)how;
	http_conn_mark(c, 0);
	if (r != NULL) {
		free(r->body);
		free(r);
	}
	*state = NULL;
}

/* A string member of the http group into buf ("" when absent); -1 when
 * present but not an absolute path. */
static int http_conf_path(const config_t *cfg, const char *key, char *buf, size_t len, char *err,
                          size_t errlen)
{
	char full[64];
	const char *v = NULL;

	snprintf(full, sizeof full, "http.%s", key);
	buf[0] = '\0';
	if (!config_lookup_string(cfg, full, &v))
		return 0;
	if (v[0] != '/' || strlen(v) >= len) {
		snprintf(err, errlen, "http.%s \"%s\": must be an absolute path", key, v);
		return -1;
	}
	snprintf(buf, len, "%s", v);
	return 0;
}

/* http.public_name: the DNS name clients use (Host), if any. */
static int http_conf_name(const config_t *cfg, http_conf *hc, char *err, size_t errlen)
{
	const char *v = NULL;

	if (!config_lookup_string(cfg, "http.public_name", &v))
		return 0;
	if (v[0] == '\0' || v[0] == '.' || v[0] == '-' || strlen(v) >= sizeof hc->public_name ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
	            strlen(v)) {
		snprintf(err, errlen,
		         "http.public_name \"%.200s\": must be a DNS name, e.g. "
		         "console.example.com",
		         v);
		return -1;
	}
	snprintf(hc->public_name, sizeof hc->public_name, "%s", v);
	return 0;
}

/* The TLS key must be private to the service account: a key that group or
 * others can read is refused (issue 18). */
static int http_tls_key_private(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "http.tls_key %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & 0066) {
		snprintf(err, errlen,
		         "http.tls_key %s: mode %04o lets group or others read or write it; run "
		         "chmod 600 %s (owned by the service account)",
		         path, (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

/* Read the http group into hc and the address into sa; 1 on, 0 off, -1
 * error.  TLS files are checked here and read by http_start. */
static int http_conf_load(const config_t *cfg, http_conf *hc, struct sockaddr_in *sa, char *tls[2],
                          char *err, size_t errlen)
{
	const char *listen = NULL;
	double minutes = HTTP_SESSION_MIN_DEFAULT;
	int whole;
	char ck[VMS_PATH_MAX];

	memset(hc, 0, sizeof *hc);
	if (!config_lookup_string(cfg, "http.listen", &listen)) {
		if (config_lookup(cfg, "http") == NULL)
			return 0;
		snprintf(err, errlen, "http: listen = \"ADDRESS:PORT\"; is required");
		return -1;
	}
	if (http_parse_listen(listen, sa, err, errlen) < 0 ||
	    http_conf_path(cfg, "users_file", hc->users_file, sizeof hc->users_file, err, errlen) <
	            0 ||
	    http_conf_path(cfg, "console_dir", hc->console_dir, sizeof hc->console_dir, err,
	                   errlen) < 0 ||
	    http_conf_path(cfg, "tls_cert", tls[0], VMS_PATH_MAX, err, errlen) < 0 ||
	    http_conf_path(cfg, "tls_key", tls[1], VMS_PATH_MAX, err, errlen) < 0)
		return -1;
	if (hc->console_dir[0] == '\0')
		snprintf(hc->console_dir, sizeof hc->console_dir, "%s", VMS_DATADIR "/console");
	if (http_conf_name(cfg, hc, err, errlen) < 0)
		return -1;
	if (config_lookup_int(cfg, "http.session_minutes", &whole))
		minutes = whole;
	else
		config_lookup_float(cfg, "http.session_minutes", &minutes);
	if (!(minutes >= 0.05 && minutes <= 7 * 24 * 60)) {
		snprintf(err, errlen, "http.session_minutes %g: must be 0.05 to 10080", minutes);
		return -1;
	}
	hc->session_s = (int)(minutes * 60 + 0.5);
	if ((tls[0][0] == '\0') != (tls[1][0] == '\0')) {
		snprintf(err, errlen, "http: tls_cert and tls_key go together");
		return -1;
	}
	hc->tls = tls[0][0] != '\0';
	if (hc->tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "http: this libmicrohttpd has no TLS");
		return -1;
	}
	if (hc->users_file[0] &&
	    reviewers_lookup(hc->users_file, "-", ck, sizeof ck, err, errlen) < 0)
		return -1;
	/* issue 18: every reviewer's password hash, and the key that makes
	 * this server who it says it is, for the service account alone (the
	 * key checked first by its own stricter rule, 0600) */
	if (hc->users_file[0] && access(hc->users_file, F_OK) == 0 &&
	    vms_private_file("http.users_file", hc->users_file, err, errlen) < 0)
		return -1;
	if (hc->tls && access(tls[1], F_OK) == 0 &&
	    (http_tls_key_private(tls[1], err, errlen) < 0 ||
	     vms_private_file("http.tls_key", tls[1], err, errlen) < 0))
		return -1;
	return 1;
}

/* See daemon.h. */
int http_check(const config_t *cfg, char *err, size_t errlen)
{
	char cert[VMS_PATH_MAX], key[VMS_PATH_MAX], *tls[2] = {cert, key};
	struct sockaddr_in sa;
	http_conf hc;
	int on = http_conf_load(cfg, &hc, &sa, tls, err, errlen);

	for (int i = 0; on > 0 && hc.tls && i < 2; i++)
		if (access(tls[i], R_OK) < 0) {
			snprintf(err, errlen, "http.%s %s: %s", i ? "tls_key" : "tls_cert", tls[i],
			         strerror(errno));
			return -1;
		}
	if (on > 0 && hc.tls && http_tls_key_private(key, err, errlen) < 0)
		return -1;
	return on < 0 ? -1 : 0;
}

/* Read the TLS certificate and key into memory (MHD wants PEM text). */
static int http_tls_load(char *tls[2], char *err, size_t errlen)
{
	char why[VMS_PATH_MAX + 256];

	if (http_tls_key_private(tls[1], err, errlen) < 0)
		return -1;
	if ((http_tls_cert = spool_read_file(tls[0], 1 << 20, why, sizeof why)) == NULL ||
	    (http_tls_key = spool_read_file(tls[1], 1 << 20, why, sizeof why)) == NULL) {
		snprintf(err, errlen, "http: TLS %s", why);
		return -1;
	}
	return 0;
}

/* MHD's messages go to our log (not bare to stderr). */
static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	dlog(LOG_WARNING, "http: libmicrohttpd: %s", msg);
}

/* Start MHD on sa.  The TLS options are given only with TLS: MHD warns
 * about HTTPS options on a plain daemon, even NULL ones (the two lines
 * every plain start used to print). */
static struct MHD_Daemon *http_mhd_start(struct sockaddr_in *sa)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls[] = {
	        {MHD_OPTION_HTTPS_MEM_CERT, 0, http_tls_cert},
	        {MHD_OPTION_HTTPS_MEM_KEY, 0, http_tls_key},
	        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
	        {MHD_OPTION_END, 0, NULL},
	};
	struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};

	return MHD_start_daemon(
	        flags | (http_cf.tls ? MHD_USE_TLS : 0), 0, NULL, NULL, http_handle, NULL,
	        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
	        (struct sockaddr *)sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_ADDRESS,
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
	        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_POOL_THREADS,
	        MHD_OPTION_NOTIFY_COMPLETED, http_done, NULL, MHD_OPTION_NOTIFY_CONNECTION,
	        http_conn_notify, NULL, MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL,
	        MHD_OPTION_ARRAY, http_cf.tls ? tls : none, MHD_OPTION_END);
}

/* See daemon.h. */
int http_start(const config_t *cfg, char *err, size_t errlen)
{
	char cert[VMS_PATH_MAX], key[VMS_PATH_MAX], *tls[2] = {cert, key}, index[VMS_PATH_MAX + 16];
	struct sockaddr_in sa;
	int on = http_conf_load(cfg, &http_cf, &sa, tls, err, errlen);

	if (on <= 0)
		return on;
	if (http_cf.tls && http_tls_load(tls, err, errlen) < 0)
		return -1;
	if (http_cf.users_file[0] && auth_init(&http_cf, err, errlen) < 0)
		return -1;
	if ((http_daemon = http_mhd_start(&sa)) == NULL) {
		snprintf(err, errlen, "http.listen: cannot listen on %s:%u: %s",
		         inet_ntoa(sa.sin_addr), ntohs(sa.sin_port), strerror(errno));
		return -1;
	}
	http_reaper_stop = 0;
	http_reaper_on = pthread_create(&http_reaper, NULL, http_reaper_main, NULL) == 0;
	if (!http_reaper_on)
		dlog(LOG_ERR, "http: no reaper thread: slow clients are cut only after %d s idle",
		     HTTP_TIMEOUT_S);
	snprintf(index, sizeof index, "%s/index.html", http_cf.console_dir);
	if (http_cf.users_file[0] && access(index, R_OK) < 0)
		dlog(LOG_WARNING, "http: %s: %s (the console's pages will answer 404)", index,
		     strerror(errno));
	dlog(LOG_NOTICE, "http: serving /metrics, /healthz%s on %s%s:%u",
	     http_cf.users_file[0] ? ", the console and its API" : "",
	     http_cf.tls ? "https://" : "", inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
	return 0;
}

/* See daemon.h. */
void http_stop(void)
{
	if (http_reaper_on) {
		pthread_mutex_lock(&http_conn_mu);
		http_reaper_stop = 1;
		pthread_cond_signal(&http_reaper_cv);
		pthread_mutex_unlock(&http_conn_mu);
		pthread_join(http_reaper, NULL);
		http_reaper_on = 0;
	}
	if (http_daemon != NULL)
		MHD_stop_daemon(http_daemon);
	http_daemon = NULL;
	auth_free();
	free(http_tls_cert);
	free(http_tls_key);
	http_tls_cert = http_tls_key = NULL;
}
