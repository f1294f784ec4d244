/*
 * daemon.h - vmscreend internals: the runtime a config builds, the bounded
 * job queue, workers and metrics.
 */
#ifndef VMSD_DAEMON_H
#define VMSD_DAEMON_H

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <libconfig.h>

#include "vmscreen.h"
#include "conf/conf.h"
#include "spool/spool.h"
#include "alert/alert.h"
#include "cluster.h"

/* Daemon-level settings (top level of the config file). */
typedef struct dconf {
	int workers;              /* decoder threads */
	int queue_size;           /* claimed files waiting for a worker */
	double rescan_interval_s; /* full look at incoming/ without events */
	int settle_ms;            /* a file must look the same for this long */
	long min_free_mb;         /* stop claiming below this much free space */
	int max_attempts;         /* screening starts before a file is held */
	double retry_interval_s;  /* retry of files a temporary error left */
	char metrics_file[VMS_PATH_MAX];
	double metrics_interval_s; /* rewrite period of metrics_file */
	int allow_root;
	double stop_timeout_s; /* how long SIGTERM waits for workers */
} dconf;

/*
 * Everything one load of the config builds.  Reference counted: the main
 * thread holds the current one, each worker the one it screens with; a
 * reload swaps `current` and the old runtime is freed by whoever drops the
 * last reference, so an engine is never freed under a worker.
 */
typedef struct runtime {
	atomic_int refs;
	unsigned gen;
	config_t cfg;
	dconf dc;
	spool_conf sc;
	vms_settings settings;
	vms_engine *engine;
	vms_worker **vw; /* one decoder per worker thread */
	int n_vw;
} runtime;

/* One claimed file waiting in the queue or in a worker's hands. */
typedef struct job {
	spool sp; /* a copy: valid even if a reload drops the spool */
	spool_item it;
	struct timespec claimed;
	int recovered;                 /* found in active/ at start-up or left by a retry */
	char entry[CLUSTER_ENTRY_MAX]; /* cluster mode: the stream entry to ack; else "" */
} job;

/* Shared daemon state. */
typedef struct daemon_state {
	pthread_mutex_t mu;
	pthread_cond_t cond;      /* queue got a job, or stop/reload */
	runtime *current;         /* under mu */
	job *q;                   /* ring buffer of queue_size */
	int q_cap, q_head, q_len; /* under mu */
	job *busy;                /* per worker: the job in hand (busy_used) */
	int *busy_used;
	struct timespec *busy_since;
	int n_workers;
	atomic_int stopping;
	atomic_int workers_running; /* worker threads that have not returned */
	atomic_int audit_failing;   /* the last verdict's audit line could not be written */
	pthread_t *threads;
	alert_hub *hub; /* for the process lifetime (it locks its outbox) */
} daemon_state;

extern daemon_state D;

/* runtime.c */
/* Build a runtime from config_path; parsed, if not NULL, is that file
 * already read by vms_conf_read and is taken over (destroyed on failure). */
runtime *runtime_load(const char *config_path, config_t *parsed, int n_workers, char *err,
                      size_t errlen);
void runtime_ref(runtime *rt);
void runtime_unref(runtime *rt);
int dconf_load(const config_t *cfg, dconf *dc, char *err, size_t errlen);

/* work.c */
int queue_push(const job *j); /* 0, or -1 when full; caller holds no lock */
int queue_room(void);         /* free slots */
int queue_depth(void);
int job_inflight(const char *spool_name, const char *file);
int job_entries(char (*ids)[CLUSTER_ENTRY_MAX], int max); /* cluster entries in hand */
void *worker_main(void *arg);                             /* arg: (intptr_t) worker index */

/* metrics.c */
typedef enum {
	ERR_SCREEN = 0,
	ERR_VERDICT_WRITE,
	ERR_MOVE,
	ERR_ALERT,
	ERR_AUDIT,
	ERR_CLAIM,
	ERR_RELOAD,
	ERR_KINDS
} err_kind;
void metrics_init(void);
void metrics_screened(const char *spool_name, const char *verdict, const vms_result *r,
                      double wall_s);
void metrics_error(err_kind k);
void metrics_claimed(void);
int metrics_write(const char *path);
void metrics_format(FILE *o);

/* http.c: GET /metrics and /healthz from libmicrohttpd's own thread, when
 * the config has http.listen (0 when it has not); http_stop at exit. */
int http_start(const config_t *cfg, char *err, size_t errlen);
int http_check(const config_t *cfg, char *err, size_t errlen); /* --check */
void http_stop(void);
void metrics_status(char *buf, size_t len);
void metrics_free(void);

/* log: journald priority prefixes on stderr */
#define dlog spool_log
/* issue 18: a lock waited for longer than this is reported (/healthz 503,
 * one log line): whoever holds it stops screening or decisions. */
#define DAEMON_LOCK_STALL_S 10.0

#endif
