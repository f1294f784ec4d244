/*
 * metrics.c - counters for the STATUS= line and the Prometheus text file:
 * files screened by spool and verdict, findings by type, errors by kind,
 * a histogram of screening seconds, audio and CPU seconds (real-time
 * factor), queue depth.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

#define METRICS_SPOOLS 64
#define METRICS_NBUCKETS 10

static const double metrics_buckets[METRICS_NBUCKETS] = {0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300};
static const char *const metrics_err_names[ERR_KINDS] = {
        "screen", "verdict_write", "move", "alert", "audit", "claim", "reload"};

struct metrics_spool {
	char name[SPOOL_NAME_MAX];
	unsigned long pass, hold;
};

static struct {
	pthread_mutex_t mu;
	struct metrics_spool sp[METRICS_SPOOLS];
	int n_sp;
	unsigned long findings[3];
	unsigned long errors[ERR_KINDS];
	unsigned long bucket[METRICS_NBUCKETS + 1];
	double seconds_sum;
	unsigned long seconds_count;
	double audio_s, cpu_s;
	unsigned long claimed;
	time_t started;
} M = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct metrics_spool *metrics_spool_get(const char *name);

/* Reset the counters at start-up. */
void metrics_init(void)
{
	M.started = time(NULL);
}

/* The counter slot of a spool (created on first use; a bounded table). */
static struct metrics_spool *metrics_spool_get(const char *name)
{
	for (int i = 0; i < M.n_sp; i++)
		if (strcmp(M.sp[i].name, name) == 0)
			return &M.sp[i];
	if (M.n_sp == METRICS_SPOOLS)
		return NULL;
	snprintf(M.sp[M.n_sp].name, sizeof M.sp[M.n_sp].name, "%s", name);
	return &M.sp[M.n_sp++];
}

/* Count one finished file. */
void metrics_screened(const char *spool_name, const char *verdict, const vms_result *r,
                      double wall_s)
{
	pthread_mutex_lock(&M.mu);
	struct metrics_spool *s = metrics_spool_get(spool_name);
	if (s != NULL) {
		if (strcmp(verdict, "pass") == 0)
			s->pass++;
		else
			s->hold++;
	}
	if (r != NULL) {
		for (size_t i = 0; i < r->n_findings; i++)
			if ((unsigned)r->findings[i].type < 3)
				M.findings[r->findings[i].type]++;
		M.audio_s += r->duration_s;
		M.cpu_s += r->cpu_s;
		int b = 0;
		while (b < METRICS_NBUCKETS && wall_s > metrics_buckets[b])
			b++;
		M.bucket[b]++;
		M.seconds_sum += wall_s;
		M.seconds_count++;
	} else {
		M.findings[VMS_FINDING_UNSCREENABLE]++;
	}
	pthread_mutex_unlock(&M.mu);
}

/* Count one error. */
void metrics_error(err_kind k)
{
	pthread_mutex_lock(&M.mu);
	M.errors[k]++;
	pthread_mutex_unlock(&M.mu);
}

/* Count one claim. */
void metrics_claimed(void)
{
	pthread_mutex_lock(&M.mu);
	M.claimed++;
	pthread_mutex_unlock(&M.mu);
}

/* A one-line summary for systemd's STATUS=. */
void metrics_status(char *buf, size_t len)
{
	unsigned long pass = 0, hold = 0, err = 0;

	pthread_mutex_lock(&M.mu);
	for (int i = 0; i < M.n_sp; i++) {
		pass += M.sp[i].pass;
		hold += M.sp[i].hold;
	}
	for (int i = 0; i < ERR_KINDS; i++)
		err += M.errors[i];
	pthread_mutex_unlock(&M.mu);
	snprintf(buf, len, "screened %lu (pass %lu, hold %lu), errors %lu, queue %d", pass + hold,
	         pass, hold, err, queue_depth());
}

/* The Prometheus text exposition of the counters, onto o (the metrics
 * file and GET /metrics share it). */
void metrics_format(FILE *o)
{
#define OUT(...) fprintf(o, __VA_ARGS__)
	int depth = queue_depth();
	pthread_mutex_lock(&M.mu);
	OUT("# HELP vmscreen_files_screened_total Files screened, by spool and verdict.\n");
	OUT("# TYPE vmscreen_files_screened_total counter\n");
	for (int i = 0; i < M.n_sp; i++) {
		OUT("vmscreen_files_screened_total{spool=\"%s\",verdict=\"pass\"} %lu\n",
		    M.sp[i].name, M.sp[i].pass);
		OUT("vmscreen_files_screened_total{spool=\"%s\",verdict=\"hold\"} %lu\n",
		    M.sp[i].name, M.sp[i].hold);
	}
	OUT("# HELP vmscreen_findings_total Findings, by type.\n");
	OUT("# TYPE vmscreen_findings_total counter\n");
	for (int t = 0; t < 3; t++)
		OUT("vmscreen_findings_total{type=\"%s\"} %lu\n",
		    vms_finding_type_name((vms_finding_type)t), M.findings[t]);
	OUT("# HELP vmscreen_errors_total Errors, by kind.\n");
	OUT("# TYPE vmscreen_errors_total counter\n");
	for (int k = 0; k < ERR_KINDS; k++)
		OUT("vmscreen_errors_total{kind=\"%s\"} %lu\n", metrics_err_names[k], M.errors[k]);
	OUT("# HELP vmscreen_files_claimed_total Files claimed from incoming/.\n");
	OUT("# TYPE vmscreen_files_claimed_total counter\n");
	OUT("vmscreen_files_claimed_total %lu\n", M.claimed);
	OUT("# HELP vmscreen_queue_depth Claimed files waiting for a worker.\n");
	OUT("# TYPE vmscreen_queue_depth gauge\n");
	OUT("vmscreen_queue_depth %d\n", depth);
	OUT("# HELP vmscreen_screening_seconds Wall-clock seconds to screen one file.\n");
	OUT("# TYPE vmscreen_screening_seconds histogram\n");
	unsigned long cum = 0;
	for (int i = 0; i < METRICS_NBUCKETS; i++) {
		cum += M.bucket[i];
		OUT("vmscreen_screening_seconds_bucket{le=\"%g\"} %lu\n", metrics_buckets[i], cum);
	}
	cum += M.bucket[METRICS_NBUCKETS];
	OUT("vmscreen_screening_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
	OUT("vmscreen_screening_seconds_sum %.6f\n", M.seconds_sum);
	OUT("vmscreen_screening_seconds_count %lu\n", M.seconds_count);
	OUT("# HELP vmscreen_audio_seconds_total Seconds of audio screened.\n");
	OUT("# TYPE vmscreen_audio_seconds_total counter\n");
	OUT("vmscreen_audio_seconds_total %.3f\n", M.audio_s);
	OUT("# HELP vmscreen_cpu_seconds_total CPU seconds spent screening.\n");
	OUT("# TYPE vmscreen_cpu_seconds_total counter\n");
	OUT("vmscreen_cpu_seconds_total %.3f\n", M.cpu_s);
	OUT("# HELP vmscreen_realtime_factor CPU seconds per audio second so far.\n");
	OUT("# TYPE vmscreen_realtime_factor gauge\n");
	OUT("vmscreen_realtime_factor %.4f\n", M.audio_s > 0 ? M.cpu_s / M.audio_s : 0.0);
	OUT("# HELP vmscreen_start_time_seconds Daemon start, Unix time.\n");
	OUT("# TYPE vmscreen_start_time_seconds gauge\n");
	OUT("vmscreen_start_time_seconds %lld\n", (long long)M.started);
	pthread_mutex_unlock(&M.mu);
	cluster_metrics(o); /* issue 13: nothing outside cluster mode */
#undef OUT
}

/*
 * Write the exposition atomically (node_exporter's textfile collector
 * reads it; a half-written file is never seen, and the temp name does not
 * end in .prom).
 */
int metrics_write(const char *path)
{
	char *b = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&b, &len);
	int rc;

	if (o == NULL)
		return -1;
	metrics_format(o);
	if (fclose(o) != 0) {
		free(b);
		return -1;
	}
	rc = spool_write_atomic(path, b, len);
	free(b);
	/* issue 12: node_exporter runs as its own user; the unit's umask made
	 * the file 0640 and it could not read it.  Counters are no secret. */
	if (rc == SPOOL_OK && chmod(path, 0644) < 0)
		return -1;
	return rc == SPOOL_OK ? 0 : -1;
}

/* Nothing is allocated today; kept for symmetry with metrics_init. */
void metrics_free(void)
{
}
