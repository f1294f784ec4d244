/*
 * cluster.c - cluster mode (issue 13): the nodes of a site share one spool
 * (the same path on every node: NFS in production) and the work through a
 * Redis stream read by one consumer group, Redis's own at-least-once
 * engine.  Keys, for group G and spool S:
 *
 *   STREAM                   entries {spool, file}: items claimed into active/
 *   G:scanner:S              the scanner lease: the node that scans incoming/
 *   G:announced:S            hash file -> entry id of every announced item
 *   G:config:S               the digest of the spool's configuration the
 *                            cluster works it under (issue 18)
 *
 * The lease holder claims (the single daemon's claim code) and announces
 * each item with XADD and HSET in one script.  Every node reads the group
 * with XREADGROUP, only as many entries as it has idle workers, so the
 * work spreads; a worker acks (XACK, XDEL, HDEL in one script) once the
 * item is placed.  A node's entries in hand are kept fresh (XCLAIM JUSTID
 * every claim_idle_s/3); entries idle for claim_idle_s belong to a dead
 * node and XAUTOCLAIM hands them to a live one.  An entry whose item is no
 * longer in active/ was placed by a node that died before acking: it is
 * acked, not screened again.  Announcements lost (Redis down after a claim,
 * or restarted without persistence) are made again by the scanner, which
 * compares active/ with the announced hash (cheaper than XPENDING plus
 * XRANGE, and the hash and the stream change together in one script).
 *
 * Issue 18: two nodes that disagree on a spool's configuration (its mode
 * above all) placed the same kind of item differently.  The first node to
 * look stores the digest of its spool configuration (name, path, mode,
 * keep_days, claim_max_bytes) with a short expiry that every node with the
 * same digest renews; a node whose digest differs logs it, takes no lease,
 * reads and claims nothing, and says so in /healthz (503) and the metrics
 * until the configurations agree (or every node that held the old one has
 * gone for CLUSTER_CONFIG_MS: then the key expires and a new one counts).
 *
 * Threads: one cluster thread owns the reading connection (it blocks in
 * XREADGROUP); every other command goes over a second connection under a
 * mutex, with a 1 s timeout, so a dead Redis costs the main thread and the
 * workers at most a second once, then nothing until the thread reconnects.
 * Not done: TLS to Redis (Debian's hiredis 0.14 has none; use a private
 * network or stunnel), Redis Cluster or Sentinel, spools added by a reload.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "daemon.h"
#include "cluster.h"
#include "conf/conf.h" /* vms_private_stat */

#define CLUSTER_LEASE_MS 3000 /* scanner lease; renewed every second */
#define CLUSTER_BLOCK_MS 500  /* XREADGROUP BLOCK */
#define CLUSTER_NODES_MAX 64  /* consumers listed in the metrics */
#define CLUSTER_HELD_MAX 256  /* entries in hand refreshed per heartbeat */
#define CLUSTER_REANNOUNCE_MAX 4096
#define CLUSTER_CONFIG_MS 10000 /* config digest key; renewed every second */

/* Renew the lease only if we still hold it. */
static const char *const cluster_lua_renew =
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/* Announce: the entry and the hash field together. */
static const char *const cluster_lua_announce =
        "local id = redis.call('xadd', KEYS[1], '*', 'spool', ARGV[1], 'file', ARGV[2]) "
        "redis.call('hset', KEYS[2], ARGV[2], id) return id";
/* The cluster's config digest of a spool: set it when there is none, renew
 * it when it is ours; the stored one either way. */
static const char *const cluster_lua_config =
        "local v = redis.call('get', KEYS[1]) "
        "if not v then redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) return ARGV[1] end "
        "if v == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) end return v";
/* Ack: XACK, XDEL, and the hash field if it still names this entry. */
static const char *const cluster_lua_ack =
        "redis.call('xack', KEYS[1], ARGV[1], ARGV[2]) redis.call('xdel', KEYS[1], ARGV[2]) "
        "if redis.call('hget', KEYS[2], ARGV[3]) == ARGV[2] then "
        "redis.call('hdel', KEYS[2], ARGV[3]) end return 1";

/* A spool's configuration digest here and as the cluster has it. */
struct cluster_config {
	char mine[SPOOL_SHA256_HEX], theirs[SPOOL_SHA256_HEX];
	int state;    /* CLUSTER_CONFIG_* */
	int differed; /* the difference was logged and not yet the agreement */
};
enum { CLUSTER_CONFIG_UNKNOWN, CLUSTER_CONFIG_SAME, CLUSTER_CONFIG_DIFFERS };

struct cluster_node {
	char name[64]; /* shown: bytes outside a node name's alphabet are '_' */
	long long pending;
};

/* issue 18: the scanner lease held by a client that is no node (no expiry,
 * a longer one, a name no node may have, or this node's own name while it
 * does not hold it): nothing is claimed from incoming/ meanwhile. */
struct cluster_squat {
	double since;     /* monotonic seconds the lease first looked foreign; 0 */
	int reported;     /* logged, /healthz 503, metric 1 */
	char holder[64];  /* shown */
	long long ttl_ms; /* -1: no expiry */
	double next_look; /* back-off between looks while it lasts */
};

static struct {
	cluster_conf cc;
	spool *sp;
	size_t n_sp;
	int queue_cap;
	int started;
	pthread_t thread;
	atomic_int stop;
	pthread_mutex_t mu; /* cmd */
	redisContext *cmd;
	redisContext *rd;    /* the cluster thread's alone */
	pthread_mutex_t smu; /* everything below */
	int up, down_logged;
	char why[160];                 /* why Redis is not usable (for /healthz) */
	double *lease_until;           /* per spool, monotonic seconds */
	struct cluster_config *config; /* per spool */
	struct cluster_squat *squat;   /* per spool: a lease no node holds */
	int odd_names;                 /* consumers whose names are no node's */
	long long xlen, pending_all, lag, announced_since;
	struct cluster_node nodes[CLUSTER_NODES_MAX];
	int n_nodes;
	unsigned long claims, announced, reannounced, acks, acked_placed;
	char cursor[CLUSTER_ENTRY_MAX];
} C = {.mu = PTHREAD_MUTEX_INITIALIZER, .smu = PTHREAD_MUTEX_INITIALIZER};

/* Monotonic seconds. */
static double cluster_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 if s is a usable node, stream or group name: [A-Za-z0-9._:-], 1 to max-1
 * bytes. */
static int cluster_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._:-", *s) != NULL))
			return 0;
	return 1;
}

/* A name from Redis (a consumer, a lease holder) as it may be shown in a
 * log line or a metrics label: bytes outside a node name's alphabet become
 * '_' (issue 18: a consumer named with a quote and a newline wrote lines
 * of its own into /metrics).  1 when it was a valid node name as it was. */
static int cluster_shown(const char *s, char *out, size_t len)
{
	size_t i = 0;
	int ok = s != NULL && cluster_name_ok(s, len);

	for (; s != NULL && s[i] != '\0' && i + 1 < len; i++)
		out[i] = (isalnum((unsigned char)s[i]) && (unsigned char)s[i] < 0x80) ||
		                         strchr("._:-", s[i]) != NULL
		                 ? s[i]
		                 : '_';
	out[i] = '\0';
	return ok;
}

/* "HOST:PORT" into cc; 0 or -1 with err. */
static int cluster_parse_addr(const char *s, cluster_conf *cc, char *err, size_t errlen)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof cc->host) {
		snprintf(err, errlen, "cluster.redis \"%.200s\": must be HOST:PORT", s);
		return -1;
	}
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		snprintf(err, errlen, "cluster.redis \"%.200s\": bad port", s);
		return -1;
	}
	memcpy(cc->host, s, (size_t)(colon - s));
	cc->host[colon - s] = '\0';
	cc->port = (int)port;
	return 0;
}

/* The password file's first line; only the service account and root may
 * read it (issue 18: a group-readable one gave the delivery account the
 * Redis password). */
static int cluster_read_password(const char *path, cluster_conf *cc, char *err, size_t errlen)
{
	char why[512];
	struct stat st;
	char *text;

	if (path[0] != '/' || stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
		         "cluster.password_file %.200s: not an absolute path to a file", path);
		return -1;
	}
	if (vms_private_stat("cluster.password_file", path, &st, -1, err, errlen) < 0)
		return -1;
	if ((text = spool_read_file(path, sizeof cc->password, why, sizeof why)) == NULL) {
		snprintf(err, errlen, "cluster.password_file: %s", why);
		return -1;
	}
	text[strcspn(text, "\r\n")] = '\0';
	snprintf(cc->password, sizeof cc->password, "%s", text);
	free(text);
	return 0;
}

/* A string member of the cluster group into buf (absent: the default). */
static int cluster_str(const config_setting_t *g, const char *key, const char *dflt, char *buf,
                       size_t len, char *err, size_t errlen)
{
	const char *s = dflt;

	config_setting_lookup_string(g, key, &s);
	if (!cluster_name_ok(s, len)) {
		snprintf(err, errlen, "cluster.%s \"%.100s\": use 1 to %zu of A-Z a-z 0-9 . _ : -",
		         key, s, len - 1);
		return -1;
	}
	snprintf(buf, len, "%s", s);
	return 0;
}

/* See cluster.h.  Costs a stat and a read of the password file. */
int cluster_conf_load(const config_t *cfg, cluster_conf *cc, char *err, size_t errlen)
{
	const config_setting_t *g = config_lookup(cfg, "cluster");
	const char *s = NULL;
	char host[64] = "vmscreend";
	double idle = 30;

	memset(cc, 0, sizeof *cc);
	if (g == NULL)
		return 0;
	cc->on = 1;
	if (config_setting_lookup_string(g, "redis", &s) != CONFIG_TRUE) {
		snprintf(err, errlen, "cluster.redis: required (HOST:PORT)");
		return -1;
	}
	gethostname(host, sizeof host - 1);
	if (cluster_parse_addr(s, cc, err, errlen) < 0 ||
	    cluster_str(g, "node", host, cc->node, sizeof cc->node, err, errlen) < 0 ||
	    cluster_str(g, "stream", "vmscreen:items", cc->stream, sizeof cc->stream, err, errlen) <
	            0 ||
	    cluster_str(g, "group", "vmscreen", cc->group, sizeof cc->group, err, errlen) < 0)
		return -1;
	config_setting_lookup_float(g, "claim_idle_s", &idle);
	int iv;
	if (config_setting_lookup_int(g, "claim_idle_s", &iv) == CONFIG_TRUE)
		idle = iv;
	if (!(idle >= 1 && idle <= 86400)) {
		snprintf(err, errlen, "cluster.claim_idle_s = %g: must be 1 to 86400", idle);
		return -1;
	}
	cc->claim_idle_s = idle;
	if (config_setting_lookup_string(g, "password_file", &s) == CONFIG_TRUE)
		return cluster_read_password(s, cc, err, errlen);
	return 0;
}

/* Drop the connections (cmd under C.mu held by the caller or not shared
 * yet) and say once that Redis is gone. */
static void cluster_down(const char *why)
{
	pthread_mutex_lock(&C.smu);
	int was_up = C.up;
	C.up = 0;
	snprintf(C.why, sizeof C.why, "%s", why ? why : "");
	for (size_t i = 0; i < C.n_sp; i++)
		C.lease_until[i] = 0;
	if (!C.down_logged || was_up)
		dlog(LOG_ERR,
		     "cluster: redis %s:%d unreachable: waiting (no claims, no new work)%s%s",
		     C.cc.host, C.cc.port, why ? ": " : "", why ? why : "");
	C.down_logged = 1;
	pthread_mutex_unlock(&C.smu);
}

/* One command on the shared connection.  NULL when there is none or it
 * failed (then it is dropped: the cluster thread reconnects).  An error
 * reply is returned as it is, except NOGROUP (Redis lost its data), which
 * drops the connection too, so the reconnect makes the group again.
 * Costs one round trip, at most 1 s. */
static redisReply *cluster_cmd(const char *fmt, ...)
{
	redisReply *r = NULL;
	va_list ap;

	pthread_mutex_lock(&C.mu);
	if (C.cmd != NULL) {
		va_start(ap, fmt);
		r = redisvCommand(C.cmd, fmt, ap);
		va_end(ap);
		if (r == NULL ||
		    (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0)) {
			char why[128];
			snprintf(why, sizeof why, "%s", r ? r->str : C.cmd->errstr);
			freeReplyObject(r);
			r = NULL;
			redisFree(C.cmd);
			C.cmd = NULL;
			cluster_down(why);
		}
	}
	pthread_mutex_unlock(&C.mu);
	return r;
}

/* Connect one context with AUTH; NULL with why. */
static redisContext *cluster_connect_one(double timeout_s, char *why, size_t len)
{
	struct timeval tv = {1, 0}, rt = {(time_t)timeout_s, 0};
	redisContext *c = redisConnectWithTimeout(C.cc.host, C.cc.port, tv);
	redisReply *r = NULL;

	if (c == NULL || c->err) {
		snprintf(why, len, "%s", c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, rt);
	if (C.cc.password[0] && ((r = redisCommand(c, "AUTH %s", C.cc.password)) == NULL ||
	                         r->type == REDIS_REPLY_ERROR)) {
		snprintf(why, len, "AUTH: %s", r ? r->str : c->errstr);
		freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

/* (Re)connect both connections and make the group (from the stream's
 * start: entries announced before it existed are read too).  0 or -1. */
static int cluster_connect(void)
{
	char why[256];
	redisContext *cmd, *rd;
	redisReply *r;

	if ((cmd = cluster_connect_one(1, why, sizeof why)) == NULL ||
	    (rd = cluster_connect_one(CLUSTER_BLOCK_MS / 1000.0 + 2, why, sizeof why)) == NULL) {
		redisFree(cmd); /* NULL-safe */
		cluster_down(why);
		return -1;
	}
	r = redisCommand(cmd, "XGROUP CREATE %s %s 0 MKSTREAM", C.cc.stream, C.cc.group);
	if (r == NULL || (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)) {
		snprintf(why, sizeof why, "XGROUP CREATE: %s", r ? r->str : cmd->errstr);
		freeReplyObject(r);
		redisFree(cmd);
		redisFree(rd);
		cluster_down(why);
		return -1;
	}
	freeReplyObject(r);
	pthread_mutex_lock(&C.mu);
	C.cmd = cmd;
	pthread_mutex_unlock(&C.mu);
	C.rd = rd;
	pthread_mutex_lock(&C.smu);
	if (!C.up)
		dlog(LOG_NOTICE, "cluster: node %s connected to redis %s:%d (stream %s, group %s)",
		     C.cc.node, C.cc.host, C.cc.port, C.cc.stream, C.cc.group);
	C.up = 1;
	C.down_logged = 0;
	snprintf(C.cursor, sizeof C.cursor, "0-0");
	pthread_mutex_unlock(&C.smu);
	return 0;
}

/* Index of a spool by name, or -1. */
static int cluster_spool_index(const char *name)
{
	for (size_t i = 0; i < C.n_sp; i++)
		if (strcmp(C.sp[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The screening settings as the digest reads them (cluster_screening). */
static char cluster_screening_text[512];

/* See cluster.h.  Everything that can turn one verdict into another. */
void cluster_screening(const vms_settings *s)
{
	pthread_mutex_lock(&C.smu);
	snprintf(cluster_screening_text, sizeof cluster_screening_text,
	         "hold_severity=%d\nmax_duration_s=%.17g\nmin_duration_s=%.17g\n"
	         "max_file_bytes=%ld\nvocabulary_words=%d\ntranscribe_all_channels=%d\n"
	         "learned=%d\nlearned_report=%.17g\nlearned_hold=%.17g\nlearned_sure=%.17g\n"
	         "learned_sure_words=%.17g\nagent_lm_weight=%.17g\nphone_adapt=%d\n",
	         (int)s->hold_severity, s->max_duration_s, s->min_duration_s, s->max_file_bytes,
	         s->vocabulary_words, s->transcribe_all_channels, s->learned, s->learned_report,
	         s->learned_hold, s->learned_sure, s->learned_sure_words, s->agent_lm_weight,
	         s->phone_adapt);
	pthread_mutex_unlock(&C.smu);
}

/* The digest of what a spool is worked under: every node of a cluster
 * must agree on it (issue 18), the screening settings included. */
static void cluster_config_digest(const spool *sp, char hex[SPOOL_SHA256_HEX])
{
	char *text = NULL;
	int n = asprintf(&text,
	                 "name=%s\npath=%s\nmode=%s\nkeep_days=%.17g\nclaim_max_bytes=%lld\n%s",
	                 sp->name, sp->path, spool_mode_name(sp->mode), sp->keep_days,
	                 sp->claim_max_bytes, cluster_screening_text);

	if (n < 0 || spool_sha256_hex(text, (size_t)n, hex) < 0)
		snprintf(hex, SPOOL_SHA256_HEX, "unknown"); /* matches no digest */
	free(text);
}

/* Compare each spool's digest with the cluster's (storing or renewing it);
 * a change of the answer is logged.  One round trip per spool. */
static void cluster_config_check(void)
{
	for (size_t i = 0; i < C.n_sp; i++) {
		char mine[SPOOL_SHA256_HEX];
		pthread_mutex_lock(&C.smu);
		memcpy(mine, C.config[i].mine, sizeof mine);
		pthread_mutex_unlock(&C.smu);
		redisReply *r = cluster_cmd("EVAL %s 1 %s:config:%s %s %d", cluster_lua_config,
		                            C.cc.group, C.sp[i].name, mine, CLUSTER_CONFIG_MS);
		int st = CLUSTER_CONFIG_UNKNOWN;
		pthread_mutex_lock(&C.smu);
		struct cluster_config *c = &C.config[i];
		if (r != NULL && r->type == REDIS_REPLY_STRING) {
			st = strcmp(r->str, mine) == 0 ? CLUSTER_CONFIG_SAME
			                               : CLUSTER_CONFIG_DIFFERS;
			snprintf(c->theirs, sizeof c->theirs, "%.64s", r->str);
		}
		if (st == CLUSTER_CONFIG_DIFFERS && !c->differed)
			dlog(LOG_ERR,
			     "cluster: spool %s: configuration differs from the cluster's (digest "
			     "%.12s "
			     "here, %.12s in redis): not working it (no claims) until they agree",
			     C.sp[i].name, mine, c->theirs);
		else if (st == CLUSTER_CONFIG_SAME && c->differed)
			dlog(LOG_NOTICE,
			     "cluster: spool %s: configuration agrees with the cluster's",
			     C.sp[i].name);
		if (st != CLUSTER_CONFIG_UNKNOWN)
			c->differed = st == CLUSTER_CONFIG_DIFFERS;
		if (st != CLUSTER_CONFIG_UNKNOWN || r == NULL)
			c->state = st; /* no answer: unknown, so no work */
		pthread_mutex_unlock(&C.smu);
		freeReplyObject(r);
	}
}

/* 1 when spool i (or, i < 0, every spool) is known to agree with the
 * cluster: only then does this node take leases, read or claim. */
static int cluster_config_ok(int i)
{
	int ok = 1;

	pthread_mutex_lock(&C.smu);
	for (size_t k = 0; k < C.n_sp; k++)
		if ((i < 0 || (size_t)i == k) && C.config[k].state != CLUSTER_CONFIG_SAME)
			ok = 0;
	pthread_mutex_unlock(&C.smu);
	return ok;
}

/* Who holds spool i's lease, and for how long (GET, PTTL): 1 when it
 * looks like no node's (see struct cluster_squat), with the holder shown
 * and ttl.  Two round trips, made only while another holds it. */
static int cluster_lease_foreign(size_t i, char *holder, size_t len, long long *ttl)
{
	redisReply *g = cluster_cmd("GET %s:scanner:%s", C.cc.group, C.sp[i].name);
	redisReply *t = cluster_cmd("PTTL %s:scanner:%s", C.cc.group, C.sp[i].name);
	int named = 0, foreign = 0;

	*ttl = t != NULL && t->type == REDIS_REPLY_INTEGER ? t->integer : -2;
	holder[0] = '\0';
	if (g != NULL && g->type == REDIS_REPLY_STRING)
		named = cluster_shown(g->str, holder, len);
	else if (g != NULL && g->type == REDIS_REPLY_ERROR)
		snprintf(holder, len, "(not a string)");
	if (g != NULL && g->type != REDIS_REPLY_NIL && *ttl != -2)
		foreign = !named || *ttl == -1 || *ttl > CLUSTER_LEASE_MS ||
		          strcmp(holder, C.cc.node) == 0;
	freeReplyObject(g);
	freeReplyObject(t);
	return foreign;
}

/* Spool i's lease is not ours: say once (log, /healthz, metric) when it
 * has looked foreign for two lease lengths (this node's own lease from
 * before a restart expires sooner), and look less often meanwhile. */
static void cluster_lease_watch(size_t i, double now)
{
	struct cluster_squat *q = &C.squat[i];
	char holder[64];
	long long ttl;

	if (now < q->next_look)
		return;
	int foreign = cluster_lease_foreign(i, holder, sizeof holder, &ttl);
	pthread_mutex_lock(&C.smu);
	if (!foreign) {
		if (q->reported)
			dlog(LOG_NOTICE, "cluster: spool %s: the scanner lease is free of it again",
			     C.sp[i].name);
		memset(q, 0, sizeof *q);
	} else {
		if (q->since == 0)
			q->since = now;
		snprintf(q->holder, sizeof q->holder, "%s", holder);
		q->ttl_ms = ttl;
		if (!q->reported && now - q->since >= 2 * CLUSTER_LEASE_MS / 1000.0) {
			dlog(LOG_ERR,
			     "cluster: spool %s: the scanner lease %s:scanner:%s is held by \"%s\" "
			     "(%s%lld ms), which no node sets: another Redis client holds it and "
			     "incoming/ is not scanned (redis-cli DEL %s:scanner:%s)",
			     C.sp[i].name, C.cc.group, C.sp[i].name, holder,
			     ttl < 0 ? "no expiry, " : "expires in ", ttl < 0 ? 0 : ttl, C.cc.group,
			     C.sp[i].name);
			q->reported = 1;
		}
		q->next_look = now + (q->reported ? 5.0 : 1.0); /* back off */
	}
	pthread_mutex_unlock(&C.smu);
}

/* Take or renew each spool's scanner lease (SET NX PX, or the renew
 * script).  The lease counts locally from before the command was sent and
 * for 80% of its length, so this node stops scanning before Redis could
 * give it to another.  Costs one round trip per spool. */
static void cluster_leases(void)
{
	for (size_t i = 0; i < C.n_sp; i++) {
		double t0 = cluster_now();
		pthread_mutex_lock(&C.smu);
		int held = C.lease_until[i] > t0;
		if (C.config[i].state != CLUSTER_CONFIG_SAME)
			C.lease_until[i] = 0; /* issue 18: no scanning on a config of our own */
		pthread_mutex_unlock(&C.smu);
		if (!cluster_config_ok((int)i))
			continue;
		redisReply *r =
		        held ? cluster_cmd("EVAL %s 1 %s:scanner:%s %s %d", cluster_lua_renew,
		                           C.cc.group, C.sp[i].name, C.cc.node, CLUSTER_LEASE_MS)
		             : cluster_cmd("SET %s:scanner:%s %s NX PX %d", C.cc.group,
		                           C.sp[i].name, C.cc.node, CLUSTER_LEASE_MS);
		int ok = r != NULL && ((r->type == REDIS_REPLY_INTEGER && r->integer == 1) ||
		                       r->type == REDIS_REPLY_STATUS);
		freeReplyObject(r);
		pthread_mutex_lock(&C.smu);
		C.lease_until[i] = ok ? t0 + CLUSTER_LEASE_MS * 0.8 / 1000.0 : 0;
		pthread_mutex_unlock(&C.smu);
		if (held && !ok)
			dlog(LOG_WARNING, "cluster: spool %s: lost the scanner lease",
			     C.sp[i].name);
		if (ok) {
			pthread_mutex_lock(&C.smu);
			if (C.squat[i].reported)
				dlog(LOG_NOTICE, "cluster: spool %s: scanner lease taken again",
				     C.sp[i].name);
			memset(&C.squat[i], 0, sizeof C.squat[i]);
			pthread_mutex_unlock(&C.smu);
		} else
			cluster_lease_watch(i, cluster_now());
	}
}

/* Stream length and pending entries per node (XLEN, XPENDING summary):
 * the metrics and the claim room.  Two round trips. */
static void cluster_stats(void)
{
	redisReply *l = cluster_cmd("XLEN %s", C.cc.stream);
	redisReply *p = cluster_cmd("XPENDING %s %s", C.cc.stream, C.cc.group);
	int odd = 0;

	pthread_mutex_lock(&C.smu);
	if (l != NULL && l->type == REDIS_REPLY_INTEGER)
		C.xlen = l->integer;
	if (p != NULL && p->type == REDIS_REPLY_ARRAY && p->elements >= 4) {
		C.pending_all = p->element[0]->integer;
		C.n_nodes = 0;
		redisReply *cs = p->element[3];
		for (size_t i = 0; cs->type == REDIS_REPLY_ARRAY && i < cs->elements &&
		                   C.n_nodes < CLUSTER_NODES_MAX;
		     i++) {
			redisReply *e = cs->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
				continue;
			struct cluster_node *n = &C.nodes[C.n_nodes++];
			odd += !cluster_shown(e->element[0]->str, n->name, sizeof n->name);
			n->pending = atoll(e->element[1]->str ? e->element[1]->str : "0");
		}
		C.lag = C.xlen - C.pending_all; /* acked entries are deleted */
		C.announced_since = 0;
		if (odd > C.odd_names)
			dlog(LOG_WARNING,
			     "cluster: %d consumer(s) of group %s hold entries under a name no "
			     "node "
			     "may have: a client other than vmscreend reads the stream",
			     odd, C.cc.group);
		C.odd_names = odd;
	}
	pthread_mutex_unlock(&C.smu);
	freeReplyObject(l);
	freeReplyObject(p);
}

/* Ack an entry whose item needs no screening (gone from active/). */
static void cluster_ack_placed(const char *entry, const char *spool_name, const char *file)
{
	dlog(LOG_INFO, "cluster: spool %s: %s is no longer in active/ (placed before): acked",
	     spool_name, file);
	pthread_mutex_lock(&C.smu);
	C.acked_placed++;
	pthread_mutex_unlock(&C.smu);
	cluster_ack(entry, spool_name, file);
}

/* One entry [id, [field, value, ...]] read or claimed: queue its item for
 * a worker, or ack it when the item has left active/.  1 when queued. */
static int cluster_take(const redisReply *e, int claimed)
{
	const char *spool_name = NULL, *file = NULL, *id;
	job j;
	int si;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return 0; /* deleted meanwhile */
	id = e->element[0]->str;
	for (size_t k = 0; k + 1 < e->element[1]->elements; k += 2) {
		const char *f = e->element[1]->element[k]->str,
		           *v = e->element[1]->element[k + 1]->str;
		if (strcmp(f, "spool") == 0)
			spool_name = v;
		else if (strcmp(f, "file") == 0)
			file = v;
	}
	memset(&j, 0, sizeof j);
	if (spool_name == NULL || file == NULL || (si = cluster_spool_index(spool_name)) < 0 ||
	    strchr(file, '/') != NULL || strlen(file) >= sizeof j.it.file ||
	    spool_file_id(file, j.it.id) < 0 || strlen(id) >= sizeof j.entry) {
		dlog(LOG_WARNING, "cluster: entry %s names no item of ours: acked", id);
		cluster_ack(id, spool_name ? spool_name : "", file ? file : "");
		return 0;
	}
	if (job_inflight(spool_name, file))
		return 0; /* in hand here already (read again after a reconnect) */
	if (spool_item_get(&C.sp[si], SPOOL_ACTIVE, file, &j.it) < 0) {
		cluster_ack_placed(id, spool_name, file);
		return 0;
	}
	j.sp = C.sp[si];
	snprintf(j.entry, sizeof j.entry, "%s", id);
	long long ms = atoll(id); /* the entry id starts with its time in ms */
	j.claimed.tv_sec = (time_t)(ms / 1000);
	j.claimed.tv_nsec = (long)(ms % 1000) * 1000000L;
	j.recovered = claimed;
	if (claimed)
		dlog(LOG_NOTICE, "cluster: spool %s: took %s, idle for %g s (its node went quiet)",
		     spool_name, file, C.cc.claim_idle_s);
	return queue_push(&j) == 0;
}

/* Free worker slots: a node reads no more than it has idle workers (plus
 * one), so a burst spreads over the nodes instead of queueing on one. */
static int cluster_room(void)
{
	int r = D.n_workers + 1 - queue_depth();
	pthread_mutex_lock(&D.mu);
	for (int i = 0; i < D.n_workers; i++)
		r -= D.busy_used[i];
	pthread_mutex_unlock(&D.mu);
	return r;
}

/* Keep the entries in hand (queued or screening) from looking idle:
 * XCLAIM ... 0 ids JUSTID resets their idle time.  One round trip.  Not
 * done: checking the owner first; an entry another node took meanwhile
 * (this one was only slow) comes back here, and the item lock keeps the
 * two from screening it at once. */
static void cluster_heartbeat(void)
{
	static char ids[CLUSTER_HELD_MAX][CLUSTER_ENTRY_MAX];
	const char *argv[CLUSTER_HELD_MAX + 6];
	int n = job_entries(ids, CLUSTER_HELD_MAX), argc = 0;

	if (n == 0)
		return;
	argv[argc++] = "XCLAIM";
	argv[argc++] = C.cc.stream;
	argv[argc++] = C.cc.group;
	argv[argc++] = C.cc.node;
	argv[argc++] = "0";
	for (int i = 0; i < n; i++)
		argv[argc++] = ids[i];
	argv[argc++] = "JUSTID";
	pthread_mutex_lock(&C.mu);
	redisReply *r = C.cmd ? redisCommandArgv(C.cmd, argc, argv, NULL) : NULL;
	pthread_mutex_unlock(&C.mu);
	freeReplyObject(r); /* a failure shows on the next command */
}

/* Entries idle past claim_idle_s (their node died, or a job here failed
 * and waits for its retry): XAUTOCLAIM as many as there is room for,
 * continuing from the last cursor.  One round trip. */
static void cluster_autoclaim(int room)
{
	redisReply *r =
	        cluster_cmd("XAUTOCLAIM %s %s %s %lld %s COUNT %d", C.cc.stream, C.cc.group,
	                    C.cc.node, (long long)(C.cc.claim_idle_s * 1000), C.cursor, room);
	int n = 0;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
		freeReplyObject(r);
		return;
	}
	snprintf(C.cursor, sizeof C.cursor, "%s", r->element[0]->str ? r->element[0]->str : "0-0");
	for (size_t i = 0; i < r->element[1]->elements; i++)
		n += cluster_take(r->element[1]->element[i], 1);
	freeReplyObject(r);
	pthread_mutex_lock(&C.smu);
	C.claims += (unsigned long)n;
	pthread_mutex_unlock(&C.smu);
}

/* XREADGROUP: new entries (">"), or with history this node's own pending
 * ones ("0": what it held before a restart).  Blocks up to
 * CLUSTER_BLOCK_MS on the thread's own connection.  -1 when the
 * connection failed. */
static int cluster_read(int room, int history)
{
	redisReply *r = redisCommand(C.rd, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s %s",
	                             C.cc.group, C.cc.node, room, CLUSTER_BLOCK_MS, C.cc.stream,
	                             history ? "0" : ">");

	/* any error reply, not only NOGROUP: a stream key replaced by another
	 * type (WRONGTYPE) answered at once, and the thread spun on it (issue
	 * 18); dropping the connection backs off, logs and makes /healthz 503 */
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		char why[128];
		snprintf(why, sizeof why, "%s", r ? r->str : C.rd->errstr);
		freeReplyObject(r);
		redisFree(C.rd);
		C.rd = NULL;
		cluster_down(why);
		return -1;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 2) {
		redisReply *es = r->element[0]->element[1];
		for (size_t i = 0; es->type == REDIS_REPLY_ARRAY && i < es->elements; i++)
			cluster_take(es->element[i], 0);
	}
	freeReplyObject(r);
	return 0;
}

static pthread_mutex_t cluster_wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cluster_wake_cv = PTHREAD_COND_INITIALIZER;
static int cluster_woken;

/* See cluster.h: a worker took a job, so there is room to read into. */
void cluster_wake(void)
{
	pthread_mutex_lock(&cluster_wake_mu);
	cluster_woken = 1;
	pthread_cond_signal(&cluster_wake_cv);
	pthread_mutex_unlock(&cluster_wake_mu);
}

/* Wait up to s seconds for cluster_wake() (a worker freed a slot): a
 * short file screens in a tenth of a second, so polling would idle the
 * worker as long as it works. */
static void cluster_wait(double s)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_nsec += (long)(s * 1e9);
	dl.tv_sec += dl.tv_nsec / 1000000000L;
	dl.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&cluster_wake_mu);
	while (!cluster_woken && !atomic_load(&C.stop) &&
	       pthread_cond_timedwait(&cluster_wake_cv, &cluster_wake_mu, &dl) == 0)
		;
	cluster_woken = 0;
	pthread_mutex_unlock(&cluster_wake_mu);
}

/* Sleep up to s seconds, waking early when stopping. */
static void cluster_sleep(double s)
{
	for (double t = 0; t < s && !atomic_load(&C.stop) && !atomic_load(&D.stopping); t += 0.1)
		usleep(100000);
}

/* 1 while the shared connection is there (a failed command drops it). */
static int cluster_cmd_alive(void)
{
	pthread_mutex_lock(&C.mu);
	int alive = C.cmd != NULL;
	pthread_mutex_unlock(&C.mu);
	return alive;
}

/* The cluster thread: connect (backoff 0.5 s doubling to 5 s while Redis
 * is away), then leases and stats every second, heartbeat every third of
 * claim_idle_s, autoclaim every second, and reads in between. */
static void *cluster_main(void *arg)
{
	double backoff = 0.5, next_lease = 0, next_beat = 0, next_claim = 0;
	int history = 0;

	while (!atomic_load(&C.stop) && !atomic_load(&D.stopping)) {
		if (C.rd == NULL || !cluster_cmd_alive()) {
			pthread_mutex_lock(&C.mu);
			redisFree(C.cmd);
			C.cmd = NULL;
			pthread_mutex_unlock(&C.mu);
			redisFree(C.rd);
			C.rd = NULL;
			if (cluster_connect() < 0) {
				cluster_sleep(backoff);
				backoff = backoff * 2 > 5 ? 5 : backoff * 2;
				continue;
			}
			backoff = 0.5;
			history = 1;
		}
		double now = cluster_now();
		if (now >= next_lease) {
			cluster_config_check();
			cluster_leases();
			cluster_stats();
			next_lease = now + 1.0;
		}
		if (now >= next_beat) {
			cluster_heartbeat();
			next_beat = now + C.cc.claim_idle_s / 3;
		}
		if (!cluster_config_ok(-1)) { /* issue 18: read and claim nothing */
			cluster_sleep(0.2);
			continue;
		}
		int room = cluster_room();
		if (room > 0 && now >= next_claim) {
			cluster_autoclaim(room);
			next_claim = now + 1.0;
			room = cluster_room();
		}
		if (!cluster_cmd_alive()) {
			cluster_sleep(0.1);
			continue;
		}
		if (room <= 0) {
			cluster_wait(0.2);
			continue;
		}
		if (cluster_read(room, history) == 0)
			history = 0;
	}
	return NULL;
}

/* See cluster.h.  Connects in the thread, not here: a node starts (and
 * says why it waits) while Redis is down. */
int cluster_start(const cluster_conf *cc, const spool *spools, size_t n, int queue_cap, char *err,
                  size_t errlen)
{
	C.cc = *cc;
	C.queue_cap = queue_cap;
	C.sp = calloc(n ? n : 1, sizeof *C.sp);
	C.lease_until = calloc(n ? n : 1, sizeof *C.lease_until);
	C.config = calloc(n ? n : 1, sizeof *C.config);
	C.squat = calloc(n ? n : 1, sizeof *C.squat);
	if (C.sp == NULL || C.lease_until == NULL || C.config == NULL || C.squat == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(C.sp, spools, n * sizeof *spools);
	C.n_sp = n;
	for (size_t i = 0; i < n; i++)
		cluster_config_digest(&C.sp[i], C.config[i].mine);
	snprintf(C.cursor, sizeof C.cursor, "0-0");
	if (pthread_create(&C.thread, NULL, cluster_main, NULL) != 0) {
		snprintf(err, errlen, "cannot start the cluster thread");
		return -1;
	}
	C.started = 1;
	dlog(LOG_NOTICE, "cluster: node %s, redis %s:%d, claim_idle_s %g", C.cc.node, C.cc.host,
	     C.cc.port, C.cc.claim_idle_s);
	return 0;
}

/* See cluster.h.  Joins the thread (at most one XREADGROUP block). */
void cluster_stop(void)
{
	if (!C.started)
		return;
	atomic_store(&C.stop, 1);
	pthread_join(C.thread, NULL);
	redisFree(C.rd);
	redisFree(C.cmd);
	C.rd = C.cmd = NULL;
	free(C.sp);
	free(C.lease_until);
	free(C.config);
	C.config = NULL;
	free(C.squat);
	C.squat = NULL;
	C.started = 0;
}

/* See cluster.h.  Only the fields of the digest change; the spool must
 * agree with the cluster again before this node works it. */
void cluster_reload(const spool *spools, size_t n)
{
	if (!C.started)
		return;
	pthread_mutex_lock(&C.smu);
	for (size_t k = 0; k < n; k++) {
		int i = cluster_spool_index(spools[k].name);
		if (i < 0 || strcmp(C.sp[i].path, spools[k].path) != 0)
			continue;
		C.sp[i].mode = spools[k].mode;
		C.sp[i].keep_days = spools[k].keep_days;
		C.sp[i].claim_max_bytes = spools[k].claim_max_bytes;
		char was[SPOOL_SHA256_HEX];
		memcpy(was, C.config[i].mine, sizeof was);
		cluster_config_digest(&C.sp[i], C.config[i].mine);
		if (strcmp(was, C.config[i].mine) != 0) {
			C.config[i].state = CLUSTER_CONFIG_UNKNOWN;
			C.lease_until[i] = 0;
		}
	}
	pthread_mutex_unlock(&C.smu);
}

/* See cluster.h. */
int cluster_enabled(void)
{
	return C.started;
}

/* See cluster.h.  Reads a time under the stats mutex: no Redis. */
int cluster_is_scanner(const char *spool_name)
{
	int i = cluster_spool_index(spool_name), held;

	if (i < 0)
		return 0;
	pthread_mutex_lock(&C.smu);
	held = C.lease_until[i] > cluster_now();
	pthread_mutex_unlock(&C.smu);
	return held;
}

/* See cluster.h: queue_size minus the entries nobody has read, as of the
 * last stats and counting what was announced since. */
int cluster_claim_room(void)
{
	pthread_mutex_lock(&C.smu);
	long long r = C.up ? C.queue_cap - C.lag - C.announced_since : 0;
	pthread_mutex_unlock(&C.smu);
	return r > 0 ? (int)r : 0;
}

/* See cluster.h.  One round trip (the announce script). */
int cluster_announce(const spool *sp, const char *file)
{
	redisReply *r = cluster_cmd("EVAL %s 2 %s %s:announced:%s %s %s", cluster_lua_announce,
	                            C.cc.stream, C.cc.group, sp->name, sp->name, file);
	int ok = r != NULL && r->type == REDIS_REPLY_STRING;

	if (r != NULL && !ok)
		dlog(LOG_ERR, "cluster: spool %s: cannot announce %s: %s", sp->name, file,
		     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	freeReplyObject(r);
	if (ok) {
		pthread_mutex_lock(&C.smu);
		C.announced++;
		C.announced_since++;
		pthread_mutex_unlock(&C.smu);
	}
	return ok ? 0 : -1;
}

struct cluster_walk {
	redisReply *known; /* HKEYS: announced files */
	int n;
};

/* spool_walk callback: announce an active/ item the hash does not name. */
static int cluster_reannounce_cb(const spool *sp, const spool_item *it, void *arg)
{
	struct cluster_walk *w = arg;

	for (size_t i = 0; i < w->known->elements; i++)
		if (strcmp(w->known->element[i]->str, it->file) == 0)
			return 0;
	if (job_inflight(sp->name, it->file) || cluster_announce(sp, it->file) < 0)
		return 0;
	dlog(LOG_NOTICE, "cluster: spool %s: %s was in active/ unannounced: announced", sp->name,
	     it->file);
	return ++w->n >= CLUSTER_REANNOUNCE_MAX;
}

/* See cluster.h.  Costs HKEYS (every announced file) and a walk of active/
 * with a linear look-up per item: fine for the hundreds a spool holds in
 * active/, not for millions. */
void cluster_reannounce(const spool *sp)
{
	struct cluster_walk w = {cluster_cmd("HKEYS %s:announced:%s", C.cc.group, sp->name), 0};

	if (w.known == NULL || w.known->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(w.known);
		return;
	}
	spool_walk(sp, SPOOL_ACTIVE, cluster_reannounce_cb, &w);
	freeReplyObject(w.known);
	pthread_mutex_lock(&C.smu);
	C.reannounced += (unsigned long)w.n;
	pthread_mutex_unlock(&C.smu);
}

/* See cluster.h.  One round trip (the ack script). */
void cluster_ack(const char *entry, const char *spool_name, const char *file)
{
	redisReply *r = cluster_cmd("EVAL %s 2 %s %s:announced:%s %s %s %s", cluster_lua_ack,
	                            C.cc.stream, C.cc.group, spool_name, C.cc.group, entry, file);

	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		dlog(LOG_WARNING, "cluster: cannot ack %s (%s): it is acked when claimed again",
		     entry, r ? r->str : "redis unreachable");
	else {
		pthread_mutex_lock(&C.smu);
		C.acks++;
		pthread_mutex_unlock(&C.smu);
	}
	freeReplyObject(r);
}

/* See cluster.h. */
int cluster_health(FILE *o)
{
	if (!C.started)
		return 0;
	int bad = 0;
	pthread_mutex_lock(&C.smu);
	if (!C.up) {
		fprintf(o,
		        "cluster: redis %s:%d unreachable: waiting (no claims, no new work)%s%s\n",
		        C.cc.host, C.cc.port, C.why[0] ? ": " : "", C.why);
		bad++;
	}
	for (size_t i = 0; C.up && i < C.n_sp; i++)
		if (C.config[i].state == CLUSTER_CONFIG_DIFFERS) {
			fprintf(o,
			        "cluster: spool %s: configuration differs from the cluster's "
			        "(digest %.12s here, %.12s in redis): not working it\n",
			        C.sp[i].name, C.config[i].mine, C.config[i].theirs);
			bad++;
		}
	for (size_t i = 0; i < C.n_sp; i++)
		if (C.squat[i].reported) {
			fprintf(o,
			        "cluster: spool %s: the scanner lease is held by \"%s\", which no "
			        "node sets: incoming/ is not scanned\n",
			        C.sp[i].name, C.squat[i].holder);
			bad++;
		}
	pthread_mutex_unlock(&C.smu);
	return bad;
}

/* See cluster.h.  Values of the last stats (at most a second old). */
void cluster_metrics(FILE *o)
{
#define OUT(...) fprintf(o, __VA_ARGS__)
	if (!C.started)
		return;
	pthread_mutex_lock(&C.smu);
	OUT("# HELP vmscreen_cluster_up 1 while this node reaches Redis.\n");
	OUT("# TYPE vmscreen_cluster_up gauge\nvmscreen_cluster_up{node=\"%s\"} %d\n", C.cc.node,
	    C.up);
	OUT("# HELP vmscreen_cluster_stream_length Items announced and not yet placed.\n");
	OUT("# TYPE vmscreen_cluster_stream_length gauge\nvmscreen_cluster_stream_length %lld\n",
	    C.xlen);
	OUT("# HELP vmscreen_cluster_lag Items announced that no node has read yet.\n");
	OUT("# TYPE vmscreen_cluster_lag gauge\nvmscreen_cluster_lag %lld\n", C.lag);
	OUT("# HELP vmscreen_cluster_pending Items read by a node and not yet acked.\n");
	OUT("# TYPE vmscreen_cluster_pending gauge\n");
	for (int i = 0; i < C.n_nodes; i++)
		OUT("vmscreen_cluster_pending{node=\"%s\"} %lld\n", C.nodes[i].name,
		    C.nodes[i].pending);
	OUT("# HELP vmscreen_cluster_claims_total Items this node took from a quiet node.\n");
	OUT("# TYPE vmscreen_cluster_claims_total counter\nvmscreen_cluster_claims_total %lu\n",
	    C.claims);
	OUT("# HELP vmscreen_cluster_announced_total Items this node announced (scanner).\n");
	OUT("# TYPE vmscreen_cluster_announced_total counter\n");
	OUT("vmscreen_cluster_announced_total %lu\n", C.announced);
	OUT("# HELP vmscreen_cluster_reannounced_total Items found unannounced in active/.\n");
	OUT("# TYPE vmscreen_cluster_reannounced_total counter\n");
	OUT("vmscreen_cluster_reannounced_total %lu\n", C.reannounced);
	OUT("# HELP vmscreen_cluster_acks_total Entries this node acked.\n");
	OUT("# TYPE vmscreen_cluster_acks_total counter\nvmscreen_cluster_acks_total %lu\n",
	    C.acks);
	OUT("# HELP vmscreen_cluster_acked_placed_total Entries acked unscreened: placed "
	    "before.\n");
	OUT("# TYPE vmscreen_cluster_acked_placed_total counter\n");
	OUT("vmscreen_cluster_acked_placed_total %lu\n", C.acked_placed);
	OUT("# HELP vmscreen_cluster_config_agrees 1 while the spool's configuration digest is "
	    "the cluster's (0: differs or not yet known; this node does not work it).\n");
	OUT("# TYPE vmscreen_cluster_config_agrees gauge\n");
	for (size_t i = 0; i < C.n_sp; i++)
		OUT("vmscreen_cluster_config_agrees{spool=\"%s\"} %d\n", C.sp[i].name,
		    C.config[i].state == CLUSTER_CONFIG_SAME);
	OUT("# HELP vmscreen_cluster_lease_foreign 1 while a client that is no node holds the "
	    "spool's scanner lease.\n");
	OUT("# TYPE vmscreen_cluster_lease_foreign gauge\n");
	for (size_t i = 0; i < C.n_sp; i++)
		OUT("vmscreen_cluster_lease_foreign{spool=\"%s\"} %d\n", C.sp[i].name,
		    C.squat[i].reported);
	OUT("# HELP vmscreen_cluster_foreign_consumers Consumers holding entries under a name "
	    "no node may have.\n");
	OUT("# TYPE vmscreen_cluster_foreign_consumers gauge\n");
	OUT("vmscreen_cluster_foreign_consumers %d\n", C.odd_names);
	OUT("# HELP vmscreen_cluster_scanner 1 while this node scans the spool.\n");
	OUT("# TYPE vmscreen_cluster_scanner gauge\n");
	for (size_t i = 0; i < C.n_sp; i++)
		OUT("vmscreen_cluster_scanner{spool=\"%s\"} %d\n", C.sp[i].name,
		    C.lease_until[i] > cluster_now());
	pthread_mutex_unlock(&C.smu);
#undef OUT
}
