/*
 * work.c - the bounded job queue and the worker threads.  A worker screens
 * one claimed file at a time with its own decoder, writes the verdict file,
 * records it in the audit log, hands it to the alert hub and moves the item
 * to released/ or hold/, in that order: the audio moves last, so a crash at
 * any point leaves it in active/ to be screened again.  Fail closed: a file
 * that cannot be screened goes to hold/ with an `unscreenable` finding, and
 * a temporary failure (disk full, ...) leaves it in active/ for a retry.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define WORK_DONE 0
#define WORK_RETRY 1
#define WORK_ELSEWHERE 2 /* cluster: another node's worker holds the item */

static int work_job(int idx, runtime *rt, job *j);
static int work_attempts(const job *j, int bump);
static void work_attempts_clear(const job *j);
static json_t *work_unscreenable(const job *j, const char *why);
static double work_now(void);

/* Monotonic seconds. */
static double work_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Append a job if there is room; wakes one worker. */
int queue_push(const job *j)
{
	int rc = -1;

	pthread_mutex_lock(&D.mu);
	if (D.q_len < D.q_cap) {
		D.q[(D.q_head + D.q_len) % D.q_cap] = *j;
		D.q_len++;
		rc = 0;
		pthread_cond_signal(&D.cond);
	}
	pthread_mutex_unlock(&D.mu);
	return rc;
}

/* Free queue slots. */
int queue_room(void)
{
	pthread_mutex_lock(&D.mu);
	int n = D.q_cap - D.q_len;
	pthread_mutex_unlock(&D.mu);
	return n;
}

/* Jobs waiting. */
int queue_depth(void)
{
	pthread_mutex_lock(&D.mu);
	int n = D.q_len;
	pthread_mutex_unlock(&D.mu);
	return n;
}

/* 1 if the active/ file is queued or in a worker's hands (the retry scan
 * must not queue it twice). */
int job_inflight(const char *spool_name, const char *file)
{
	int found = 0;

	pthread_mutex_lock(&D.mu);
	for (int i = 0; i < D.q_len && !found; i++) {
		const job *j = &D.q[(D.q_head + i) % D.q_cap];
		found = strcmp(j->sp.name, spool_name) == 0 && strcmp(j->it.file, file) == 0;
	}
	for (int i = 0; i < D.n_workers && !found; i++)
		found = D.busy_used[i] && strcmp(D.busy[i].sp.name, spool_name) == 0 &&
		        strcmp(D.busy[i].it.file, file) == 0;
	pthread_mutex_unlock(&D.mu);
	return found;
}

/* Cluster mode: the stream entries of the jobs queued or in hand (the
 * cluster thread keeps them from looking idle).  Returns how many. */
int job_entries(char (*ids)[CLUSTER_ENTRY_MAX], int max)
{
	int n = 0;

	pthread_mutex_lock(&D.mu);
	for (int i = 0; i < D.q_len && n < max; i++) {
		const job *j = &D.q[(D.q_head + i) % D.q_cap];
		if (j->entry[0])
			memcpy(ids[n++], j->entry, CLUSTER_ENTRY_MAX);
	}
	for (int i = 0; i < D.n_workers && n < max; i++)
		if (D.busy_used[i] && D.busy[i].entry[0])
			memcpy(ids[n++], D.busy[i].entry, CLUSTER_ENTRY_MAX);
	pthread_mutex_unlock(&D.mu);
	return n;
}

/*
 * Cluster mode (issue 13): lock the item (spool_item_lock) for the whole
 * job, so that two nodes given the same item (an entry claimed from a node
 * that was only slow, or announced twice) never screen or move it at once.
 * WORK_DONE when it has left active/ (placed: ack it), WORK_ELSEWHERE when
 * another worker holds it, else -1 with *fd the lock to close after.
 */
static int work_item_lock(const job *j, int *fd)
{
	*fd = spool_item_lock(&j->sp, &j->it);
	if (*fd >= 0)
		return -1;
	return *fd == SPOOL_BUSY ? WORK_ELSEWHERE : WORK_DONE;
}

/* One job as the worker runs it: in cluster mode under the item's lock,
 * and acked once the item is placed. */
static void work_run(int idx, runtime *rt, job *j)
{
	int fd = -1, rc = -1;

	if (j->entry[0])
		rc = work_item_lock(j, &fd);
	if (rc < 0)
		rc = work_job(idx, rt, j);
	if (fd >= 0)
		close(fd);
	if (j->entry[0] && rc == WORK_DONE)
		cluster_ack(j->entry, j->sp.name, j->it.file);
}

/*
 * Worker thread: take a job, screen it with the decoder of the current
 * runtime (switching runtimes only between files, which is what makes a
 * reload safe), repeat until the daemon stops.  Queued jobs are left in
 * active/ at stop: the next start screens them.
 */
void *worker_main(void *arg)
{
	int idx = (int)(intptr_t)arg;
	runtime *rt = NULL;

	atomic_fetch_add(&D.workers_running, 1);
	for (;;) {
		pthread_mutex_lock(&D.mu);
		while (!atomic_load(&D.stopping) && D.q_len == 0 && rt == D.current)
			pthread_cond_wait(&D.cond, &D.mu);
		if (atomic_load(&D.stopping)) {
			pthread_mutex_unlock(&D.mu);
			break;
		}
		if (rt != D.current) {
			runtime *old = rt;
			rt = D.current;
			runtime_ref(rt);
			pthread_mutex_unlock(&D.mu);
			runtime_unref(old);
			continue;
		}
		D.busy[idx] = D.q[D.q_head];
		D.q_head = (D.q_head + 1) % D.q_cap;
		D.q_len--;
		D.busy_used[idx] = 1;
		clock_gettime(CLOCK_MONOTONIC, &D.busy_since[idx]);
		pthread_mutex_unlock(&D.mu);
		if (D.busy[idx].entry[0])
			cluster_wake(); /* a slot is free: the cluster thread reads on */

		work_run(idx, rt, &D.busy[idx]);

		pthread_mutex_lock(&D.mu);
		D.busy_used[idx] = 0;
		pthread_mutex_unlock(&D.mu);
	}
	runtime_unref(rt);
	atomic_fetch_sub(&D.workers_running, 1);
	return NULL;
}

/* Screening starts of a job's item (the backend keeps the count). */
static int work_attempts(const job *j, int bump)
{
	return spool_attempts(&j->sp, j->it.id, bump);
}

/* Forget the attempts of an item that is leaving active/. */
static void work_attempts_clear(const job *j)
{
	spool_attempts_clear(&j->sp, j->it.id);
}

/* A verdict for a file we could not screen: hold, one unscreenable finding. */
static json_t *work_unscreenable(const job *j, const char *why)
{
	json_t *o = json_object(), *alerts = json_array(), *a = json_object();

	json_object_set_new(o, "file", json_string(j->it.file));
	json_object_set_new(o, "verdict", json_string("hold"));
	json_object_set_new(a, "type", json_string("unscreenable"));
	json_object_set_new(a, "category", json_string("daemon"));
	json_object_set_new(a, "severity", json_string("high"));
	json_object_set_new(a, "start_s", json_real(0));
	json_object_set_new(a, "end_s", json_real(0));
	json_object_set_new(a, "evidence", json_string(why));
	json_object_set_new(a, "rule", json_string(""));
	json_array_append_new(alerts, a);
	json_object_set_new(o, "alerts", alerts);
	json_object_set_new(o, "version", json_string(VMS_VERSION));
	return o;
}

/* 1 if the verdict carries an unscreenable finding; *why (if not NULL)
 * gets its evidence, the reason, valid while v lives. */
static int work_has_unscreenable(json_t *v, const char **why)
{
	json_t *alerts = json_object_get(v, "alerts"), *a;
	size_t i;

	json_array_foreach(alerts, i, a)
	{
		const char *t = json_string_value(json_object_get(a, "type"));
		if (t != NULL && strcmp(t, "unscreenable") == 0) {
			if (why != NULL)
				*why = json_string_value(json_object_get(a, "evidence"));
			return 1;
		}
	}
	return 0;
}

/* SHA-256 of a file as 64 hex digits into hex; 0 or -1. */
static int work_sha256(const char *path, char hex[65])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = -1;
	ssize_t n;

	if (fd < 0 || ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
	if (n == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		rc = 0;
	}
out:
	EVP_MD_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * issue 10: the item's claim record, checked before screening.  NULL with
 * why when the item cannot be screened as claimed: no record (not claimed
 * by this daemon, or damaged), a sidecar that was present but refused, or
 * audio whose bytes are not the ones claimed.
 */
static json_t *work_claim_check(const job *j, const char *path, char *why, size_t whylen)
{
	char cpath[SPOOL_PATH_MAX], err[SPOOL_PATH_MAX + 256], hex[65];
	const char *sha, *sidecar;
	char *text;
	json_t *c;

	spool_item_claim(&j->sp, &j->it, cpath, sizeof cpath);
	if ((text = spool_read_file(cpath, 65536, err, sizeof err)) == NULL) {
		snprintf(why, whylen, "no claim record (%.300s): not claimed by this daemon", err);
		return NULL;
	}
	c = json_loads(text, 0, NULL);
	free(text);
	sha = json_string_value(json_object_get(c, "sha256"));
	sidecar = json_string_value(json_object_get(c, "sidecar"));
	if (c == NULL || sha == NULL || sidecar == NULL) {
		snprintf(why, whylen, "the claim record of %.300s is damaged", j->it.file);
	} else if (strcmp(sidecar, "refused") == 0) {
		snprintf(why, whylen, "sidecar refused: %s",
		         json_string_value(json_object_get(c, "sidecar_error")) ?: "?");
	} else if (work_sha256(path, hex) < 0 || strcmp(hex, sha) != 0) {
		snprintf(why, whylen,
		         "the audio is not the file that was claimed (SHA-256 differs)");
	} else
		return c;
	json_decref(c);
	return NULL;
}

/*
 * issue 18: an item is placed under the stricter of the mode it was
 * claimed under (its claim record, else the job's copy of the spool) and
 * the spool's mode now: a SIGHUP that turns a monitor spool into a gate
 * takes effect for every item not yet placed, queued ones included, and a
 * node that claimed under gate is never overruled by one that works under
 * monitor.  A mode the record names but we do not know counts as gate.
 * Updates j->sp.mode.
 */
static void work_mode(job *j, const json_t *claim)
{
	const char *cm = json_string_value(json_object_get(claim, "mode"));

	if (cm != NULL && strcmp(cm, "monitor") != 0)
		j->sp.mode = SPOOL_GATE;
	pthread_mutex_lock(&D.mu);
	for (size_t i = 0; D.current != NULL && i < D.current->sc.n_spools; i++) {
		const spool *now = &D.current->sc.spools[i];
		if (strcmp(now->name, j->sp.name) == 0 && now->mode == SPOOL_GATE)
			j->sp.mode = SPOOL_GATE;
	}
	pthread_mutex_unlock(&D.mu);
}

/*
 * The verdict value of one job: held unscreenable when it has been started
 * too often or its claim does not check out, else what the core says.
 * NULL when screening ran out of memory (the job is retried).
 */
static json_t *work_screen(int idx, runtime *rt, job *j, int attempts, vms_result **r,
                           json_t **claim, double *wall)
{
	char path[SPOOL_PATH_MAX], sidecar[SPOOL_PATH_MAX], why[512];
	double t0 = work_now();
	json_t *v;

	spool_item_path(&j->sp, &j->it, path, sizeof path);
	spool_item_sidecar(&j->sp, &j->it, sidecar, sizeof sidecar);
	if (attempts > rt->dc.max_attempts) {
		snprintf(why, sizeof why,
		         "screening did not finish in %d attempts (the daemon stopped or crashed "
		         "while screening this file)",
		         attempts - 1);
		dlog(LOG_ERR, "spool %s: %s: %s: held", j->sp.name, j->it.file, why);
		return work_unscreenable(j, why);
	}
	if ((*claim = work_claim_check(j, path, why, sizeof why)) == NULL) {
		dlog(LOG_ERR, "spool %s: %s: %s: held", j->sp.name, j->it.file, why);
		return work_unscreenable(j, why);
	}
	work_mode(j, *claim);
	/* a gate's recordings reach a client who hears every channel */
	vms_worker_every_channel_heard(rt->vw[idx], j->sp.mode == SPOOL_GATE);
	*r = vms_screen_file(rt->vw[idx], path, access(sidecar, F_OK) == 0 ? sidecar : NULL);
	*wall = work_now() - t0;
	if (*r == NULL) {
		dlog(LOG_ERR, "spool %s: %s: out of memory while screening: will retry", j->sp.name,
		     j->it.file);
		metrics_error(ERR_SCREEN);
		return NULL;
	}
	/* one value from the core to the verdict file, audit line and alert */
	if ((v = vms_result_object(*r)) == NULL) {
		metrics_error(ERR_SCREEN);
		v = work_unscreenable(j, "the screening result could not be encoded");
	}
	return v;
}

/* Where the item goes.  Fail closed: only an explicit pass without an
 * unscreenable finding is released from a gate; a verdict that is neither
 * pass nor hold is replaced by an unscreenable one (*v may change). */
static spool_state work_destination(json_t **v, const job *j, const char **verdict,
                                    int *unscreenable, const char **why)
{
	*unscreenable = work_has_unscreenable(*v, why);
	*verdict = json_string_value(json_object_get(*v, "verdict"));
	if (*verdict == NULL || (strcmp(*verdict, "pass") != 0 && strcmp(*verdict, "hold") != 0)) {
		json_decref(*v);
		*v = work_unscreenable(j, "the screening result has no verdict");
		*verdict = "hold";
		*unscreenable = work_has_unscreenable(*v, why);
	}
	if (strcmp(*verdict, "pass") == 0 && !*unscreenable)
		return SPOOL_RELEASED;
	if (*unscreenable || j->sp.mode == SPOOL_GATE)
		return SPOOL_HOLD;
	return SPOOL_RELEASED; /* monitor: flagged calls are alerted, not held */
}

/* The daemon's fields on the verdict value (spool, item, state, times,
 * the claimed bytes). */
static void work_stamp(json_t *v, const job *j, spool_state dest, int attempts, const json_t *claim,
                       const char *now_iso)
{
	char claimed_iso[40];

	spool_iso_time(&j->claimed, claimed_iso, sizeof claimed_iso);
	json_object_set_new(v, "spool", json_string(j->sp.name));
	json_object_set_new(v, "id", json_string(j->it.id));
	json_object_set_new(v, "name", json_string(j->it.name));
	json_object_set_new(v, "mode", json_string(spool_mode_name(j->sp.mode)));
	json_object_set_new(v, "state", json_string(spool_state_name(dest)));
	json_object_set_new(v, "claimed_at", json_string(claimed_iso));
	json_object_set_new(v, "screened_at", json_string(now_iso));
	json_object_set_new(v, "attempt", json_integer(attempts));
	if (claim != NULL)
		json_object_set_new(v, "audio",
		                    json_pack("{s:O, s:O}", "bytes",
		                              json_object_get(claim, "bytes"), "sha256",
		                              json_object_get(claim, "sha256")));
}

/* Verdict file (atomic), audit line, alerts (durable), in that order, all
 * from the one value v.  0, or -1 (logged; the job is retried). */
static int work_record(runtime *rt, const job *j, json_t *v, const char *verdict, spool_state dest,
                       int attempts, const char *now_iso, int *n_find)
{
	char vfile[SPOOL_PATH_MAX];
	char *text = vms_verdict_dumps(v, JSON_INDENT(2)), *audit = NULL;
	json_t *a, *types = json_array(), *line;
	size_t i;
	int rc = -1;

	if (text == NULL) {
		metrics_error(ERR_VERDICT_WRITE);
		goto out;
	}
	spool_item_verdict_file(&j->it, vfile, sizeof vfile);
	int prc = spool_put(&j->sp, SPOOL_ACTIVE, vfile, text, strlen(text));
	if (prc != SPOOL_OK) {
		dlog(LOG_ERR, "spool %s: %s: cannot write verdict (%s): left in active/ to retry",
		     j->sp.name, j->it.file, prc == SPOOL_TEMPFAIL ? "temporary" : "error");
		metrics_error(ERR_VERDICT_WRITE);
		goto out;
	}
	json_array_foreach(json_object_get(v, "alerts"), i, a)
	{
		json_array_append(types, json_object_get(a, "type"));
		(*n_find)++;
	}
	line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:i, s:s}", "ts", now_iso,
	                 "event", "verdict", "spool", j->sp.name, "id", j->it.id, "name",
	                 j->it.name, "verdict", verdict, "state", spool_state_name(dest),
	                 "findings", types, "attempt", attempts, "by", "vmscreend");
	audit = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(line);
	if (audit == NULL || spool_audit_append(rt->sc.audit_log, audit) < 0) {
		dlog(LOG_ERR,
		     "spool %s: %s: cannot append to audit log %s: left in active/ to retry",
		     j->sp.name, j->it.file, rt->sc.audit_log);
		metrics_error(ERR_AUDIT);
		atomic_store(&D.audit_failing, 1); /* /healthz says so (attack round 4) */
		goto out;
	}
	atomic_store(&D.audit_failing, 0);
	if (alert_hub_submit(D.hub, j->sp.name, j->it.id, v) < 0) {
		dlog(LOG_ERR, "spool %s: %s: cannot queue alerts: left in active/ to retry",
		     j->sp.name, j->it.file);
		metrics_error(ERR_ALERT);
		goto out;
	}
	rc = 0;
out:
	json_decref(types);
	free(audit);
	free(text);
	return rc;
}

/*
 * Screen one job.  Order: verdict file (atomic) -> audit line -> alert
 * (durable) -> move audio and companions -> forget attempts.  A crash
 * before the move repeats the whole job on restart (at-least-once alerts
 * and audit lines, exactly-once placement).
 */
static int work_job(int idx, runtime *rt, job *j)
{
	char path[SPOOL_PATH_MAX], now_iso[40];
	struct timespec now;
	vms_result *r = NULL;
	json_t *v, *claim = NULL;
	const char *verdict, *unscr_why = NULL;
	spool_state dest;
	int attempts, unscreenable, rc = WORK_RETRY, n_find = 0;
	double wall = 0;

	/* issue 10: companions a failed move left in another state come back
	 * first, so a retry never screens without the sidecar */
	spool_item_gather(&j->sp, &j->it);
	spool_item_path(&j->sp, &j->it, path, sizeof path);
	if (access(path, F_OK) != 0) {
		dlog(LOG_WARNING, "spool %s: %s vanished from active/", j->sp.name, j->it.file);
		return WORK_DONE;
	}
	if ((attempts = work_attempts(j, 1)) < 0) {
		metrics_error(ERR_VERDICT_WRITE);
		return WORK_RETRY;
	}
	if ((v = work_screen(idx, rt, j, attempts, &r, &claim, &wall)) == NULL)
		goto out;
	work_mode(j, claim); /* again: a reload while it was screened */
	dest = work_destination(&v, j, &verdict, &unscreenable, &unscr_why);
	clock_gettime(CLOCK_REALTIME, &now);
	spool_iso_time(&now, now_iso, sizeof now_iso);
	work_stamp(v, j, dest, attempts, claim, now_iso);
	if (work_record(rt, j, v, verdict, dest, attempts, now_iso, &n_find) < 0)
		goto out;
	/* issue 6: forget the attempts before the move, not after: a kill -9
	 * between the move and the unlink left .attempts-ID behind in active/
	 * for good.  Screening has finished here, so a crash before the move
	 * rightly starts the count again. */
	work_attempts_clear(j);
	/* under the review lock: a review command gathering this item's
	 * companions must not see it half moved */
	int lk = spool_lock(&j->sp, "review", 1);
	int mrc = spool_move(&j->sp, &j->it, dest);
	spool_unlock(lk);
	if (mrc != SPOOL_OK) {
		metrics_error(ERR_MOVE);
		goto out;
	}
	metrics_screened(j->sp.name, verdict, r, wall);
	/* issue 6: an unscreenable file's log line says why */
	dlog(unscreenable ? LOG_WARNING : LOG_INFO, "spool %s: %s -> %s (%s, %d finding%s%s%s)",
	     j->sp.name, j->it.file, spool_state_name(dest), verdict, n_find,
	     n_find == 1 ? "" : "s", unscreenable ? ", unscreenable: " : "",
	     unscreenable ? (unscr_why ? unscr_why : "no reason given") : "");
	rc = WORK_DONE;
out:
	json_decref(claim);
	json_decref(v);
	vms_result_free(r);
	return rc;
}
