/*
 * alert_int.h - internals of the webhook hub, shared by the src/alert sources and
 * tests/unit/test_alert.c.  Not part of the public interface (alert.h).
 *
 *   alert_hub.c      configuration, submit, one delivery thread per webhook
 *   alert_payload.c  the bodies: standard, Slack, Teams (jansson)
 *   alert_webhook.c  secrets, Standard Webhooks signature, one HTTP attempt
 *   alert_outbox.c   durable outbox files, retry schedule, parking
 *   alert_log.c      journald-style stderr logging
 */
#ifndef VMS_ALERT_INT_H
#define VMS_ALERT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <pthread.h>
#include <syslog.h>
#include <jansson.h>
#include <curl/curl.h>

#include "alert/alert.h"

#define ALERT_ERR_MAX 512
#define VMS_ALERT_PATH_MAX 4096
#define ALERT_ID_MAX 40        /* "msg_" + 32 hex + NUL */
#define ALERT_HOOK_NAME_MAX 65 /* a webhook's name: 64 bytes and NUL */
#define ALERT_HOOKKEY_MAX 20   /* 16 hex + NUL */
#define ALERT_EXCERPT_PAD_S 3.0
#define ALERT_EXCERPT_MAX_WORDS 60
#define ALERT_MAX_BODY (256 * 1024)

typedef enum { ALERT_FMT_STANDARD = 0, ALERT_FMT_SLACK = 1, ALERT_FMT_TEAMS = 2 } alert_format;

/* ---- the hub (alert_hub.c; alert_admin.c reads it) ---- */

typedef struct hook_item {
	char id[ALERT_ID_MAX];
	int attempts;
	int64_t next_ms;
	int64_t created_ms;
} hook_item;

typedef struct alert_hook {
	alert_hub *hub;
	int index;
	char *url;
	char display[300];                           /* redacted url: safe to log */
	char name[ALERT_HOOK_NAME_MAX];              /* `name`, or "webhook-N": the metrics label */
	atomic_long n_delivered, n_failed, n_parked; /* since start, for /metrics */
	char key_id[ALERT_HOOKKEY_MAX];
	alert_format format;
	int min_severity;
	char **spools; /* NULL: every spool */
	size_t nspools;
	int every_verdict;
	double connect_timeout_s, timeout_s, retry_base_s;
	int max_attempts;
	unsigned char *key; /* NULL: unsigned (Slack/Teams without secret_file) */
	size_t keylen;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	hook_item *q; /* pending entries; linear scan, fine for thousands */
	size_t nq, capq;
	CURLM *multi;
	pthread_t thread;
	int running;
	unsigned int seed;
	int64_t quiet_until_ms; /* Retry-After: no attempt to this hook before */
} alert_hook;

struct alert_hub {
	char outbox[VMS_ALERT_PATH_MAX];
	alert_hook *hooks;
	size_t nhooks;
	atomic_int stop;
	int lock_fd; /* -1 until the outbox is opened (first start or submit) */
	pthread_mutex_t open_mu;
	int started;
	int producer; /* queues for the daemon to deliver: no lock, no delivery */
};

/* ---- logging (alert_log.c) ---- */

/* One line on stderr, "<prio>vmscreend: alert: ...", as journald reads it. */
void alert_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- payloads (alert_payload.c) ---- */

/* Highest finding severity in a verdict object (1 low .. 3 high), 0 if none. */
int alert_verdict_max_severity(const json_t *verdict);
/* The alert's type, from the verdict: "vmscreen.hold" (gate, held),
 * "vmscreen.flagged" (monitor: delivered with findings),
 * "vmscreen.unscreenable", "vmscreen.released" / "vmscreen.rejected" (a
 * review decision: the verdict carries "event"), "vmscreen.pass". */
const char *alert_event_type(const json_t *verdict);
/* "low"/"medium"/"high" -> 1..3; 0 for anything else. */
int alert_severity_parse(const char *name);
int alert_format_parse(const char *name, alert_format *out);
const char *alert_format_name(alert_format f);
/* The request body for one alert, as a malloc'd string; NULL with err set. */
char *alert_payload_build(alert_format fmt, const json_t *verdict, const char *spool,
                          const char *item_id, char *err, size_t errlen);

/* ---- webhooks (alert_webhook.c) ---- */

/* Decodes secret-file text into the HMAC key: "whsec_" + base64 is decoded
 * (Standard Webhooks); anything else is used as raw bytes.  Trailing "\n" or
 * "\r\n" is trimmed first.  0, or -1 with err set. */
int webhook_secret_decode(const char *text, size_t len, unsigned char **key, size_t *keylen,
                          char *err, size_t errlen);
/* Reads and decodes a secret file; refuses one that group or others can read
 * or write (mode & 0066), or that is not a regular file. */
int webhook_secret_load(const char *path, unsigned char **key, size_t *keylen, char *err,
                        size_t errlen);
/* "v1,<base64(HMAC-SHA256(key, id.ts.body))>" into out.  0 or -1. */
int webhook_sign(const unsigned char *key, size_t keylen, const char *msg_id, long long ts,
                 const char *body, size_t bodylen, char *out, size_t outlen);

/* What one HTTP attempt came to. */
typedef struct webhook_result {
	long status;        /* HTTP status, 0 if no response */
	long retry_after_s; /* Retry-After in seconds, 0 if absent */
	int aborted;        /* stopped by alert_hub_stop() */
	char error[256];    /* transport error, empty on a response */
} webhook_result;

/* Checks a webhook URL (http or https with a host) and writes a display form
 * without path or query ("https://hooks.slack.com/..."), because a Slack or
 * Teams URL path is itself a credential and must not reach the logs. */
int webhook_url_check(const char *url, char *display, size_t displen, char *err, size_t errlen);

/* One signed POST of body to url through the caller's multi handle (so
 * alert_hub_stop() can interrupt it with curl_multi_wakeup).  key may be
 * NULL (no signature header).  Fills res; returns 0 if a response came
 * back (any status), -1 on transport error or abort. */
int webhook_post(CURLM *multi, const char *url, double connect_timeout_s, double timeout_s,
                 const unsigned char *key, size_t keylen, const char *msg_id, const char *body,
                 const atomic_int *stop, webhook_result *res);

/* ---- outbox (alert_outbox.c) ---- */

/* One outbox entry as stored in OUTBOX/<id>.json. */
typedef struct outbox_entry {
	char id[ALERT_ID_MAX];        /* webhook-id, also the file name */
	char hook[ALERT_HOOKKEY_MAX]; /* which configured webhook */
	char type[32];                /* vmscreen.hold / vmscreen.pass */
	char spool[128];
	char item[256];
	int attempts;         /* attempts made so far */
	int64_t created_ms;   /* unix ms */
	int64_t next_ms;      /* unix ms of the next attempt */
	long last_status;     /* last HTTP status, 0 none */
	char last_error[256]; /* last failure, for the operator */
	char *body;           /* the exact bytes that are signed and sent */
} outbox_entry;

/* Writes dir/name atomically and durably: temp (O_EXCL) -> fflush -> fsync
 * -> rename -> fsync(dir).  0, or -1 with errno kept (ENOSPC is temporary). */
int outbox_write_atomic(const char *dir, const char *name, const char *text);
/* dir/name into buf; -1 (ENAMETOOLONG, logged) if it does not fit. */
int outbox_path(char *buf, size_t buflen, const char *dir, const char *name);
/* Saves an entry as dir/<id>.json (create or rewrite).  0 or -1 (errno). */
int outbox_entry_save(const char *dir, const outbox_entry *e);
/* Loads dir/<name>; 0, or -1 with err set (unreadable or malformed). */
int outbox_entry_load(const char *dir, const char *name, outbox_entry *e, char *err, size_t errlen);
void outbox_entry_clear(outbox_entry *e);
/* Removes leftovers of interrupted writes (".tmp-*") in dir.  Count removed. */
int outbox_clean_temps(const char *dir);
/* Moves dir/<id>.json to dir/parked/<id>.json durably.  0 or -1. */
int outbox_park(const char *dir, const char *id);
/* Removes dir/<id>.json and syncs the directory.  0 or -1. */
int outbox_remove(const char *dir, const char *id);
/* mkdir -p style for one level, mode 0700; fine if it exists. */
int outbox_mkdir(const char *dir);

/*
 * Retry schedule.  After the n-th failed attempt (n >= 1) the next attempt
 * waits base_s * ALERT_RETRY_STEPS[n-1] seconds (the last step repeats),
 * times a jitter factor 0.8 + 0.4 * rnd (rnd in [0,1)).  With the default
 * base of 5 s: 5s 30s 2m 10m 30m 1h 2h 4h 8h 8h, i.e. about a day, then the
 * alert is parked.  Returns the delay in ms, or -1 once n >= max_attempts.
 */
int64_t outbox_retry_delay_ms(int failed_attempts, int max_attempts, double base_s, double rnd);
#define ALERT_DEFAULT_MAX_ATTEMPTS 11
/* Permanent HTTP failures (4xx but 408/429) are parked after this many. */
#define ALERT_PERMANENT_MAX_ATTEMPTS 3

/* Milliseconds since the epoch (CLOCK_REALTIME: persisted across restarts). */
int64_t alert_now_ms(void);

#endif
